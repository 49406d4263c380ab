from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        """Binds the order side of the payments port: payments tells orders what its gateways say
        without importing it (the import waits for the app registry, as Django's ``ready()`` must)."""
        from catalog.ports import bind_file_replaced
        from payments.ports import bind_order_port

        from .fulfillment.file import items_follow_replaced_file
        from .payment_port import OrdersPaymentPort

        bind_order_port(OrdersPaymentPort())
        bind_file_replaced(items_follow_replaced_file)
