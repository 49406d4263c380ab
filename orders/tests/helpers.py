"""Helpers that drive orders through the real services, as the API would."""

from typing import Any

from orders.models import Order
from orders.services import CheckoutLine, order_create


def make_order(product: Any, *, quantity: int = 1, email: str = "buyer@example.com", **kwargs: Any) -> Order:
    variant = product.variants.first()
    return order_create(product=product, buyer_email=email, lines=[CheckoutLine(variant.id, quantity)], **kwargs).order


def pay(order: Order, capture: Any) -> Order:
    """Opens a sandbox payment, completes it on the sandbox and lets the signed webhook land."""
    from payments.sandbox_server.server import sandbox_complete
    from payments.services import payment_initiate

    payment = payment_initiate(order=order, gateway_name="sandbox", return_url="https://shop.test/return")
    with capture(execute=True):
        sandbox_complete(payment_id=payment.id, outcome="succeeded")
    order.refresh_from_db()
    return order


def buyer_mails() -> list[Any]:
    """The emails sent so far, without the sellers' "New sale" notifications (on by default, one
    per paid order, tested in ``test_sale_notification``)."""
    from django.core import mail

    from orders.sale_notifications import is_sale_notification

    return [message for message in mail.outbox if not is_sale_notification(message)]
