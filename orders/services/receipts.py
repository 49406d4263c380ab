"""The seller sends the buyer's receipt (the delivery email) again: rate limited per order, and
recorded in the order's timeline (who, when, to whom)."""

import logging
from typing import Any

from marketplace.core.errors import ApplicationError, Conflict, DependencyUnavailable
from marketplace.core.ratelimit import retry_after
from orders.emails import build_delivery_email
from orders.lifecycle import order_event_record
from orders.models import Order, OrderEvent, OrderStatus

logger = logging.getLogger(__name__)


class ReceiptRateLimited(ApplicationError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, retry_after: int) -> None:
        minutes = max(1, (retry_after + 59) // 60)
        super().__init__(f"The receipt of this order was sent again recently. Try again in {minutes} minutes.")
        self.retry_after = retry_after


def order_receipt_resend(*, order: Order, user: Any, actor: str = OrderEvent.Actor.SELLER) -> OrderEvent:
    """Sends the delivery email of a delivered order again, to the same addresses."""
    if order.email_sent_at is None:
        raise Conflict("This order's receipt has not been sent yet: it is sent once the order is delivered.")
    if order.status in (OrderStatus.REFUNDED, OrderStatus.CANCELLED):
        raise Conflict(f"This order is {order.get_status_display().lower()}: its receipt is no longer sent.")
    if order.access_suspended:
        raise Conflict("This order's payment is disputed: its receipt is not sent until the dispute closes.")
    wait = retry_after([("receipt_resend", order.id)])
    if wait is not None:
        raise ReceiptRateLimited(wait)
    message = build_delivery_email(order)
    try:
        message.send(fail_silently=False)
    except Exception as exc:  # noqa: BLE001 - the mail server's failure, whatever it is, is the same answer
        logger.exception("The receipt of order %s could not be sent again.", order.order_number)
        raise DependencyUnavailable("The email could not be sent just now. Try again in a minute.") from exc
    recipients = [*message.to, *message.cc]
    return order_event_record(
        order=order,
        type="receipt_resent",
        message=f"Receipt sent again to {', '.join(recipients)}.",
        actor=actor,
        actor_user=user,
        data={"to": recipients},
    )
