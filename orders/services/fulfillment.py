"""Fulfillment: each item through its delivery strategy, retries, the buyer's email, and the hand-over
to an operator when items keep failing."""

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from marketplace.core.errors import InvalidTransition
from marketplace.core.log_context import bound
from marketplace.core.queue import enqueue_on_commit
from orders.emails import build_delivery_email, paid_in_sandbox, sandbox_notice
from orders.fulfillment import NotTogether, PermanentDeliveryError, TransientDeliveryError, get_strategy
from orders.lifecycle import (
    FULFILLABLE,
    can_move,
    order_event_record,
    order_events_record_together,
    order_transition,
)
from orders.models import FulfillmentStatus, Order, OrderEvent, OrderItem, OrderStatus
from orders.tasks_names import SEND_GIFT

logger = logging.getLogger(__name__)
S = OrderStatus


# --- Fulfillment ----------------------------------------------------------------------------------


@dataclass
class FulfillmentResult:
    outcome: str  # delivered | partial | needs_attention | skipped | retry
    transient_errors: list[str] = field(default_factory=list)


def _fulfill_item(item_id: str, *, failure: Exception | None = None) -> tuple[str, str]:
    """Fulfills one item; returns (fulfillment_status, error). Never twice.

    ``failure``: this attempt was already made (and failed so) in the one-transaction path, whose
    writes were rolled back: it is settled as it is, not made again.

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
        if isinstance(failure, TransientDeliveryError | PermanentDeliveryError):
            return _settle_item(item, failure)
        return _settle_item(item, _attempt(strategy, item))


def _attempt(strategy: Any, item: OrderItem) -> TransientDeliveryError | PermanentDeliveryError | None:
    try:
        strategy.fulfill(item)
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


def order_fulfill(*, order_id: str, final_attempt: bool = False) -> FulfillmentResult:
    """Fulfills every item not yet fulfilled, sends the one email, and marks the order delivered.

    Safe to run twice or concurrently: items are locked and skipped once fulfilled, and the email
    is claimed under the order's lock and sent once, after that lock is released. Transient failures
    raise ``TransientDeliveryError`` for the task to retry, unless this is the final attempt, which
    hands the order to an operator.

    An order whose strategies are all local (text, link, file, code pool, licence key) is fulfilled
    in one transaction (``_order_fulfill_together``); a remote strategy (partner) or any failure
    takes the item-by-item path, which settles each item on its own.
    """
    together = _order_fulfill_together(order_id, final_attempt=final_attempt)
    if isinstance(together, FulfillmentResult):
        return together
    order = Order.objects.filter(pk=order_id).first()
    if order is None or order.status not in FULFILLABLE:
        return FulfillmentResult("skipped")
    with bound(order_number=order.order_number):  # the task's lines name the order by its number
        return _order_fulfill(order, final_attempt=final_attempt, attempted=together)


class _OneByOne(Exception):
    """The order is not for the one-transaction path: its writes are rolled back, and the
    item-by-item path does the work."""


def _order_fulfill_together(order_id: str, *, final_attempt: bool) -> FulfillmentResult | dict[str, Exception]:
    """The whole fulfillment of an order whose items are all local, in one transaction.

    The order (with its product, seller and whether the sandbox paid it) and its items are locked
    once; each strategy fulfills its items together (a code pool's codes in one query); the items'
    outcomes are one UPDATE and their timeline entries one INSERT; the e-mail is claimed
    (``dispatched_email``) in the same transaction. The e-mail is rendered from what is in memory and
    sent after the commit, never under the row lock; the move to delivered, ``delivered_at`` and
    ``email_sent_at`` are then one UPDATE with the ``email_sent`` and ``status_changed`` entries.

    Answers, instead of a result, the attempts that failed here (item id → failure; their writes
    rolled back, the attempt itself counted by the item-by-item path, which settles them without
    trying again) when the order must take that path: a remote strategy, an item that failed
    before, an e-mail already claimed, or a strategy's failure.
    """
    try:
        with transaction.atomic():
            order = (
                Order.objects.select_for_update(of=("self",))
                .select_related("product", "seller")
                .annotate(paid_in_sandbox=paid_in_sandbox())
                .filter(pk=order_id)
                .first()
            )
            if order is None or order.status not in FULFILLABLE:
                return FulfillmentResult("skipped")
            if order.dispatched_email:
                raise _OneByOne  # sent, or being sent: the one-by-one path knows which
            with bound(order_number=order.order_number):
                _fulfill_together(order)
    except _OneByOne:
        return {}
    except NotTogether as exc:
        return {exc.item_id: exc.failure} if exc.item_id and exc.failure else {}
    with bound(order_number=order.order_number):
        try:
            recipient = _email_send_claimed(order)
        except TransientDeliveryError as exc:
            return _email_failed(order, exc, final_attempt=final_attempt)
        with transaction.atomic():
            _delivered_with_email(order, recipient)
            _gift_queue_if_due(order)
    return FulfillmentResult("delivered")


def _fulfill_together(order: Order) -> None:
    """In the order's locked transaction: fulfills its pending items, records them, claims the e-mail."""
    items = list(OrderItem.objects.select_for_update(of=("self",)).select_related("product").filter(order_id=order.pk))
    by_type: dict[str, list[OrderItem]] = {}
    for item in items:
        item.order = order
        if item.fulfillment_status not in (FulfillmentStatus.PENDING, FulfillmentStatus.SUCCEEDED):
            raise _OneByOne  # failed before: its status and message are the item-by-item path's to settle
        if get_strategy(item.content_type).remote:
            raise _OneByOne
        if item.fulfillment_status == FulfillmentStatus.PENDING:
            by_type.setdefault(item.content_type, []).append(item)
    order._prefetched_objects_cache = {"items": items}  # type: ignore[attr-defined]  # Django's prefetch cache
    for content_type, pending in by_type.items():
        get_strategy(content_type).fulfill_together(pending)
    now = timezone.now()
    fulfilled = [item for pending in by_type.values() for item in pending]
    fulfilled.sort(key=items.index)
    for item in fulfilled:
        item.attempts += 1
        item.fulfillment_status = FulfillmentStatus.SUCCEEDED
        item.fulfilled_at = now
        item.last_error = ""
    if fulfilled:
        # Every item gets the same outcome: one plain UPDATE (``bulk_update``'s CASE per column
        # costs more to build than the whole statement takes to run).
        OrderItem.objects.filter(pk__in=[item.pk for item in fulfilled]).update(
            attempts=F("attempts") + 1, fulfillment_status=FulfillmentStatus.SUCCEEDED, fulfilled_at=now, last_error=""
        )
        order_events_record_together(
            [
                OrderEvent(
                    order=order,
                    type="item_fulfilled",
                    message=f"{item.title} × {item.quantity} fulfilled.",
                    data={"item_id": item.id},
                )
                for item in fulfilled
            ]
        )
    _email_claim(order)


def _order_fulfill(
    order: Order, *, final_attempt: bool, attempted: dict[str, Exception] | None = None
) -> FulfillmentResult:
    transient: list[str] = []
    for item_id in order.items.values_list("id", flat=True):
        status, error = _fulfill_item(item_id, failure=(attempted or {}).get(item_id))
        if status == "transient":
            transient.append(error)
    items = list(order.items.all())
    done = [item for item in items if item.fulfilled]
    if len(done) == len(items):
        try:
            order_send_delivery_email(order_id=order.id)
        except EmailInFlight:
            return FulfillmentResult("skipped")
        except TransientDeliveryError as exc:
            return _email_failed(order, exc, final_attempt=final_attempt)
        _move(order.id, S.DELIVERED, "Every item was delivered and the buyer was emailed.")
        _gift_queue_if_due(order)
        return FulfillmentResult("delivered")
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


def _gift_queue_if_due(order: Order) -> None:
    """A gift whose recipient's e-mail is due (a claim link without a date, or a date past) is sent
    by a task once the delivery commits; a later one by the beat task at its time."""
    if order.is_gift and (order.deliver_at is None or order.deliver_at <= timezone.now()):
        enqueue_on_commit(SEND_GIFT, order.id)


def _hand_to_operator(order: Order, message: str) -> FulfillmentResult:
    """The buyer paid but could not be served: an operator and the seller must act. Told once."""
    with transaction.atomic():
        current = Order.objects.select_for_update().get(pk=order.id)
        already = current.status == S.NEEDS_ATTENTION
        _move(order.id, S.NEEDS_ATTENTION, message)
    if not already:
        _notify_needs_attention(current, message)
    return FulfillmentResult("needs_attention")


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
    """A fulfillment move that may already have happened (a second run): skip if not allowed."""
    with transaction.atomic():
        current = Order.objects.select_for_update().values_list("status", flat=True).get(pk=order_id)
        if current == to_status:
            return
        if can_move(current, to_status):
            order_transition(order_id=order_id, to_status=to_status, message=message)


def order_send_delivery_email(*, order_id: str) -> bool:
    """Sends the buyer one email with everything they bought. Returns False if already sent.

    The e-mail is claimed under the order's lock (``dispatched_email`` set, ``email_sent_at`` still
    empty: "to send"), sent after that lock is released, then stamped ``email_sent_at`` with its
    ``email_sent`` entry. A send that fails gives the claim back, so a retry sends it; a claim left
    by a run that died (older than ``EMAIL_CLAIM_STALE_SECONDS``) is taken over. Raises
    ``TransientDeliveryError`` while the e-mail cannot be sent, ``EmailInFlight`` while another run
    is sending it (that run finishes the order, or gives the claim back for a retry).
    """
    with transaction.atomic():
        order = (
            Order.objects.select_for_update(of=("self",))
            .select_related("product", "seller")
            .annotate(paid_in_sandbox=paid_in_sandbox())
            .get(pk=order_id)
        )
        if order.email_sent_at is not None:
            return False
        if order.dispatched_email and order.updated_at > timezone.now() - timedelta(seconds=EMAIL_CLAIM_STALE_SECONDS):
            raise EmailInFlight("The delivery email is being sent by another run.")
        _email_claim(order)
    recipient = _email_send_claimed(order)
    with transaction.atomic():
        sent_at = timezone.now()
        Order.objects.filter(pk=order.pk).update(dispatched_email=True, email_sent_at=sent_at, updated_at=sent_at)
        order.dispatched_email, order.email_sent_at = True, sent_at
        order_event_record(order=order, type="email_sent", message=f"Delivery email sent to {recipient}.")
    return True


class EmailInFlight(Exception):
    """Another run claimed the delivery e-mail and is sending it: this run leaves the order to it."""


# A claimed e-mail not stamped as sent after this long was claimed by a run that died: taken over.
EMAIL_CLAIM_STALE_SECONDS = 300


def _email_claim(order: Order) -> None:
    """In the transaction that holds the order's lock: the e-mail is "to send" (dispatched_email
    set, email_sent_at empty). ``updated_at`` dates the claim."""
    claimed_at = timezone.now()
    Order.objects.filter(pk=order.pk).update(dispatched_email=True, updated_at=claimed_at)
    order.dispatched_email, order.updated_at = True, claimed_at


def _email_send_claimed(order: Order) -> str:
    """Sends the claimed delivery e-mail, with no transaction open and no lock held; returns its
    recipient. On failure the claim is given back (a retry sends it) and ``TransientDeliveryError``
    is raised."""
    try:
        message = build_delivery_email(order)
        message.send(fail_silently=False)
    except Exception as exc:  # noqa: BLE001 - any mail failure is worth a retry
        Order.objects.filter(pk=order.pk, email_sent_at__isnull=True).update(dispatched_email=False)
        order.dispatched_email = False
        raise TransientDeliveryError(f"Email not sent: {exc}") from exc
    return str(message.to[0])


def _email_failed(order: Order, exc: TransientDeliveryError, *, final_attempt: bool) -> FulfillmentResult:
    """The delivery e-mail could not be sent: recorded; retried alone, or handed to an operator."""
    order_event_record(
        order=order,
        type="email_failed",
        message=f"Delivery email failed; it will be retried alone: {exc}"[:500],
    )
    if not final_attempt:
        raise exc
    return _hand_to_operator(order, f"The delivery email could not be sent: {exc}")


def _delivered_with_email(order: Order, recipient: str) -> None:
    """After the e-mail went out: the order is delivered and the e-mail stamped, in one UPDATE (the
    status guarded: a move made meanwhile, such as a refund, is kept, and only the e-mail recorded)."""
    sent_at = timezone.now()
    sent = OrderEvent(order=order, type="email_sent", message=f"Delivery email sent to {recipient}.")
    try:
        order_transition(
            order=order,
            to_status=S.DELIVERED,
            message="Every item was delivered and the buyer was emailed.",
            values={"dispatched_email": True, "email_sent_at": sent_at},
            events=[sent],
        )
    except InvalidTransition:
        Order.objects.filter(pk=order.pk).update(dispatched_email=True, email_sent_at=sent_at, updated_at=sent_at)
        order_events_record_together([sent])
