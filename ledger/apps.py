from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "ledger"
    label = "ledger"
    verbose_name = "Ledger"

    def ready(self) -> None:
        """Binds the payouts side of payments' Stripe Connect port (``payments.connect_port``): Connect's
        webhooks reach the payouts without payments importing the ledger."""
        from payments.connect_port import bind_connect_port

        from .stripe_connect import LedgerConnectPort

        bind_connect_port(LedgerConnectPort())
