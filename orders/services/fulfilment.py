"""Fulfilment: each item through its delivery strategy, retries, the buyer's email, and the hand-over
to an operator when items keep failing."""

import logging
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from marketplace.core.log_context import bound
from orders.emails import build_delivery_email, sandbox_notice
from orders.fulfillment import PermanentDeliveryError, TransientDeliveryError, get_strategy
from orders.lifecycle import FULFILLABLE, can_move, order_event_record, order_transition
from orders.models import FulfillmentStatus, Order, OrderEvent, OrderItem, OrderStatus

logger = logging.getLogger(__name__)
FULFIL_TASK = "orders.tasks.fulfil_order"  # queued by name: the task module imports this one
S = OrderStatus
Actor = OrderEvent.Actor


# --- Fulfilment ----------------------------------------------------------------------------------



@dataclass
class FulfilmentResult:
    outcome: str  # delivered | partial | needs_attention | skipped | retry
    transient_errors: list[str] = field(default_factory=list)


def _fulfil_item(item_id: str) -> tuple[str, str]:
    """Fulfils one item; returns (fulfillment_status, error). Never twice.

    Local strategies run under the item's row lock. Remote ones (partner_api) run outside any
    transaction — a slow partner must not hold a lock, and on SQLite a transaction holds the whole
    database — and store each unit's code once (a unique item+unit constraint); the item's status is
    then settled under the lock. Both paths settle the outcome the same way."""
    content_type = OrderItem.objects.values_list("content_type", flat=True).get(pk=item_id)
    strategy = get_strategy(content_type)
    if strategy.remote:
        item = OrderItem.objects.select_related("order", "product", "variant").get(pk=item_id)
        if item.fulfillment_status == FulfillmentStatus.SUCCEEDED:
            return item.fulfillment_status, ""
        failure = _attempt(strategy, item)
        with transaction.atomic():
            item = OrderItem.objects.select_for_update().select_related("order").get(pk=item_id)
            if item.fulfillment_status == FulfillmentStatus.SUCCEEDED:
                return item.fulfillment_status, ""  # another run finished it meanwhile
            return _settle_item(item, failure)
    with transaction.atomic():
        item = OrderItem.objects.select_for_update().select_related("order").get(pk=item_id)
        if item.fulfillment_status == FulfillmentStatus.SUCCEEDED:
            return item.fulfillment_status, ""
        return _settle_item(item, _attempt(strategy, item))


def _attempt(strategy: Any, item: OrderItem) -> TransientDeliveryError | PermanentDeliveryError | None:
    try:
        strategy.fulfil(item)
    except (TransientDeliveryError, PermanentDeliveryError) as exc:
        return exc
    return None


def _settle_item(item: OrderItem, failure: TransientDeliveryError | PermanentDeliveryError | None) -> tuple[str, str]:
    """Records one attempt's outcome on the (locked) item and its order's timeline."""
    item.attempts += 1
    if isinstance(failure, TransientDeliveryError):
        item.last_error = str(failure)[:500]
        item.save(update_fields=["attempts", "last_error"])
        return "transient", item.last_error
    if isinstance(failure, PermanentDeliveryError):
        item.fulfillment_status = failure.status
        item.last_error = str(failure)[:500]
        item.save(update_fields=["attempts", "last_error", "fulfillment_status"])
        order_event_record(
            order=item.order,
            type="item_failed",
            message=f"{item.title}: {failure}",
            data={"item_id": item.id, "fulfillment_status": failure.status},
        )
        return item.fulfillment_status, item.last_error
    item.fulfillment_status = FulfillmentStatus.SUCCEEDED
    item.fulfilled_at = timezone.now()
    item.last_error = ""
    item.save(update_fields=["attempts", "last_error", "fulfillment_status", "fulfilled_at"])
    order_event_record(
        order=item.order,
        type="item_fulfilled",
        message=f"{item.title} × {item.quantity} fulfilled.",
        data={"item_id": item.id},
    )
    return item.fulfillment_status, ""


def order_fulfil(*, order_id: str, final_attempt: bool = False) -> FulfilmentResult:
    """Fulfils every item not yet fulfilled, sends the one email, and marks the order delivered.

    Safe to run twice or concurrently: items are locked and skipped once fulfilled, the email is
    sent once under the order's lock. Transient failures raise ``TransientDeliveryError`` for the
    task to retry, unless this is the final attempt, which hands the order to an operator.
    """
    order = Order.objects.filter(pk=order_id).first()
    if order is None or order.status not in FULFILLABLE:
        return FulfilmentResult("skipped")
    with bound(order_number=order.order_number):  # the task's lines name the order by its number
        return _order_fulfil(order, final_attempt=final_attempt)


def _order_fulfil(order: Order, *, final_attempt: bool) -> FulfilmentResult:
    transient: list[str] = []
    for item_id in order.items.values_list("id", flat=True):
        status, error = _fulfil_item(item_id)
        if status == "transient":
            transient.append(error)
    items = list(order.items.all())
    done = [item for item in items if item.fulfilled]
    if len(done) == len(items):
        try:
            order_send_delivery_email(order_id=order.id)
        except TransientDeliveryError as exc:
            transient.append(str(exc))
            order_event_record(
                order=order,
                type="email_failed",
                message=f"Delivery email failed; it will be retried alone: {exc}"[:500],
            )
            if not final_attempt:
                raise
            return _hand_to_operator(order, f"The delivery email could not be sent: {exc}")
        _move(order.id, S.DELIVERED, "Every item was delivered and the buyer was emailed.")
        return FulfilmentResult("delivered")
    if transient and not final_attempt:
        if done:
            _move(order.id, S.PARTIALLY_DELIVERED, f"{len(done)} of {len(items)} items delivered; retrying the rest.")
        raise TransientDeliveryError("; ".join(transient))
    if transient:
        # Retries are spent: the items still waiting get their type's failure status.
        for item in items:
            if item.fulfillment_status == FulfillmentStatus.PENDING:
                item.fulfillment_status = get_strategy(item.content_type).failure_status
                item.save(update_fields=["fulfillment_status"])
    reason = "; ".join(item.last_error for item in items if not item.fulfilled and item.last_error)
    prefix = "Delivery failed after retries" if transient else "Delivery failed"
    return _hand_to_operator(order, f"{prefix}: {reason}"[:500])


def _hand_to_operator(order: Order, message: str) -> FulfilmentResult:
    """The buyer paid but could not be served: an operator and the seller must act. Told once."""
    with transaction.atomic():
        current = Order.objects.select_for_update().get(pk=order.id)
        already = current.status == S.NEEDS_ATTENTION
        _move(order.id, S.NEEDS_ATTENTION, message)
    if not already:
        _notify_needs_attention(current, message)
    return FulfilmentResult("needs_attention")


def _notify_needs_attention(order: Order, message: str) -> None:
    from django.core.mail import mail_admins, send_mail

    subject = f"Order #{order.order_number} needs attention"
    body = (
        f"Order #{order.order_number} ({order.id}) was paid but could not be delivered.\n\n{message}\n\n"
        f"Fix the cause, then retry its delivery from the dashboard or the admin."
    )
    if notice := sandbox_notice(order):
        body = f"{notice}\n\n{body}"
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [order.seller.email])
        mail_admins(subject, body)
    except Exception:  # noqa: BLE001 - the order's status already tells; a mail outage must not hide it
        logger.exception("could not notify about order %s", order.order_number)
        return
    order_event_record(order=order, type="attention_notified", message="The seller and the operators were emailed.")


def _move(order_id: str, to_status: str, message: str) -> None:
    """A fulfilment move that may already have happened (a second run): skip if not allowed."""
    with transaction.atomic():
        current = Order.objects.select_for_update().values_list("status", flat=True).get(pk=order_id)
        if current == to_status:
            return
        if can_move(current, to_status):
            order_transition(order_id=order_id, to_status=to_status, message=message)


def order_send_delivery_email(*, order_id: str) -> bool:
    """Sends the buyer one email with everything they bought. Returns False if already sent."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        if order.dispatched_email:
            return False
        message = build_delivery_email(order)
        try:
            message.send(fail_silently=False)
        except Exception as exc:  # noqa: BLE001 - any mail failure is worth a retry
            raise TransientDeliveryError(f"Email not sent: {exc}") from exc
        order.dispatched_email = True
        order.email_sent_at = timezone.now()
        order.save(update_fields=["dispatched_email", "email_sent_at", "updated_at"])
        order_event_record(order=order, type="email_sent", message=f"Delivery email sent to {message.to[0]}.")
        return True
