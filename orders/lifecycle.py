"""The order lifecycle of ``shared/API.md``, and the one door every status change goes through."""

import itertools
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from typing import Any, cast

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from marketplace.core.errors import InvalidTransition
from marketplace.core.ids import make_ids
from marketplace.core.log_context import bound
from marketplace.core.queue import enqueue

from .models import Order, OrderEvent, OrderStatus
from .seller_events.order_events import order_seller_event
from .tasks_names import SALE_NOTIFY_TASK

logger = logging.getLogger(__name__)

S = OrderStatus

# --- The status sets: every figure and every check in the project uses these ----------------------

# An order whose payment was taken. A refunded order was paid (its refunds are subtracted from every
# figure), so it counts: the dashboard, the balance, my-sales and the analytics agree on "paid".
PAID_STATUSES = frozenset(
    {S.PAID, S.DELIVERED, S.PARTIALLY_DELIVERED, S.NEEDS_ATTENTION, S.PARTIALLY_REFUNDED, S.REFUNDED}
)
# Paid orders whose items may still be fulfilled (a retry, the sweeper, a late task).
FULFILLABLE = frozenset({S.PAID, S.PARTIALLY_DELIVERED, S.NEEDS_ATTENTION})
# Paid orders that still hold money to return.
REFUNDABLE = PAID_STATUSES - {S.REFUNDED}
# Orders that can take a payment (a failed one is reopened for a new attempt first).
PAYABLE = frozenset({S.PENDING, S.FAILED})
# Orders whose items may still be recovered by the sweeper (paid, not yet or not fully delivered).
AWAITING_DELIVERY = frozenset({S.PAID, S.PARTIALLY_DELIVERED})
# Orders whose content is no longer anyone's to change: nothing to override or deliver.
CLOSED = frozenset({S.CANCELLED, S.REFUNDED})
# Where the buyer's success page stops polling: nothing will change without someone acting.
SETTLED = frozenset({S.DELIVERED, S.FAILED, S.CANCELLED, S.REFUNDED, S.PARTIALLY_REFUNDED, S.NEEDS_ATTENTION})


def paid_q(prefix: str = "") -> Q:
    """Paid orders as a filter (``prefix`` reaches them through a relation, e.g. ``"orders__"``)."""
    return Q(**{f"{prefix}paid_at__isnull": False, f"{prefix}status__in": PAID_STATUSES})


ALLOWED: dict[str, frozenset[str]] = {
    S.PENDING: frozenset({S.PAID, S.FAILED, S.CANCELLED}),
    S.FAILED: frozenset({S.PENDING, S.CANCELLED}),
    S.PAID: frozenset({S.DELIVERED, S.PARTIALLY_DELIVERED, S.NEEDS_ATTENTION, S.REFUNDED, S.PARTIALLY_REFUNDED}),
    S.PARTIALLY_DELIVERED: frozenset({S.DELIVERED, S.NEEDS_ATTENTION, S.REFUNDED, S.PARTIALLY_REFUNDED}),
    S.NEEDS_ATTENTION: frozenset({S.DELIVERED, S.PARTIALLY_DELIVERED, S.REFUNDED, S.PARTIALLY_REFUNDED}),
    S.DELIVERED: frozenset({S.REFUNDED, S.PARTIALLY_REFUNDED}),
    S.PARTIALLY_REFUNDED: frozenset({S.REFUNDED}),
    S.CANCELLED: frozenset(),
    S.REFUNDED: frozenset(),
}

# Moves a seller or operator may make by hand; the rest belong to payments and fulfillment.
MANUAL: dict[str, frozenset[str]] = {
    S.PENDING: frozenset({S.CANCELLED}),
    S.FAILED: frozenset({S.CANCELLED}),
    S.PAID: frozenset({S.DELIVERED, S.NEEDS_ATTENTION}),
    S.PARTIALLY_DELIVERED: frozenset({S.DELIVERED, S.NEEDS_ATTENTION}),
    S.NEEDS_ATTENTION: frozenset({S.DELIVERED}),
}


def can_move(from_status: str, to_status: str) -> bool:
    return to_status in ALLOWED.get(from_status, frozenset())


def order_transition(
    *,
    order_id: str | None = None,
    order: Order | None = None,
    to_status: str,
    message: str = "",
    actor: str = OrderEvent.Actor.SYSTEM,
    actor_user: Any = None,
    data: dict[str, Any] | None = None,
    manual: bool = False,
    values: dict[str, Any] | None = None,
    events: Sequence[OrderEvent] = (),
) -> Order:
    """Locks the order, checks the move, applies it and records an ``OrderEvent`` — atomically.

    ``order_id``: the order is locked here. ``order``: the caller already holds it in its own
    transaction — locked with ``select_for_update``, or guarded: the UPDATE applies only while the
    status is still the one read, so a move made meanwhile is refused, never overwritten. Either
    way one UPDATE writes the status with ``values`` (other columns of the same moment: the fee,
    the e-mail's stamp), and one INSERT writes ``events`` (entries that happened just before the
    move, in order) with the ``status_changed`` entry last.

    Raises ``InvalidTransition`` (409) for a move the lifecycle does not allow; nothing is written then.
    """
    if order is not None:
        if not transaction.get_connection().in_atomic_block:
            raise RuntimeError("order_transition(order=...) runs in the transaction that holds the order.")
        return _transition(order, to_status, message, actor, actor_user, data, manual, values, events)
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order_id)
        return _transition(locked, to_status, message, actor, actor_user, data, manual, values, events)


def _transition(
    order: Order,
    to_status: str,
    message: str,
    actor: str,
    actor_user: Any,
    data: dict[str, Any] | None,
    manual: bool,
    values: dict[str, Any] | None,
    events: Sequence[OrderEvent],
) -> Order:
    with bound(order_number=order.order_number):
        from_status = order.status
        table = MANUAL if manual else ALLOWED
        if to_status not in table.get(from_status, frozenset()):
            raise InvalidTransition(
                f"An order cannot move from {from_status} to {to_status}.",
                extra={"from_status": from_status, "to_status": to_status},
            )
        now = timezone.now()
        changes: dict[str, Any] = {"status": to_status, "status_message": message[:500], "updated_at": now}
        if to_status == S.PAID and order.paid_at is None:
            changes["paid_at"] = now
        if to_status == S.DELIVERED and order.delivered_at is None:
            changes["delivered_at"] = now
        changes.update(values or {})
        if not Order.objects.filter(pk=order.pk, status=from_status).update(**changes):
            raise InvalidTransition(
                f"The order moved meanwhile; it is no longer {from_status}.",
                extra={"from_status": from_status, "to_status": to_status},
            )
        for name, value in changes.items():
            setattr(order, name, value)
        status_changed = OrderEvent(
            order=order,
            type="status_changed",
            from_status=from_status,
            to_status=to_status,
            message=message[:500],
            actor=actor,
            actor_user=actor_user,
            data=data or {},
        )
        order_events_record_together([*events, status_changed])
        logger.info(
            "order %s: %s -> %s",
            order.order_number,
            from_status,
            to_status,
            extra={"from_status": from_status, "to_status": to_status, "actor": actor},
        )
        event_type = SELLER_EVENTS.get(to_status)
        if event_type:
            order_seller_event(order=order, type=event_type)
        if to_status == S.PAID and from_status != S.PAID and _seller_may_want_sale_email(order):
            _queue_sale_notification_on_commit(order.id, order_number=order.order_number)
        return order


def _seller_may_want_sale_email(order: Order) -> bool:
    """False only when the seller, already loaded with the order, turned the email off: no query
    here either way (the task checks again)."""
    if Order._meta.get_field("seller").is_cached(order):  # type: ignore[union-attr]
        return bool(order.seller.notify_on_sale)
    return True


def _queue_sale_notification_on_commit(order_id: str, *, order_number: str) -> None:
    """The seller's "you made a sale" email, once the move to paid commits. No query here (the hot
    path's counts are held by tests): the task reads the seller's setting. A broker that does not
    take it loses only this courtesy email, never the payment: the failure is logged, naming the
    order by its number (the ``ord_`` id is the buyer's capability and never goes to a log)."""

    def queue() -> None:
        try:
            enqueue(SALE_NOTIFY_TASK, order_id)
        except Exception:  # noqa: BLE001 - whatever the broker's failure, the order is unaffected
            logger.exception("Could not queue the sale notification of order %s.", order_number)

    transaction.on_commit(queue)


def order_events_record_together(events: Sequence[OrderEvent]) -> list[OrderEvent]:
    """Writes timeline entries in one INSERT, in the order given.

    The timeline is ordered by (created_at, id) and entries written together may share a
    microsecond: their ids are drawn sorted, so such a tie still reads in the order given."""
    for event, event_id in zip(events, sorted(make_ids("evt", len(events))), strict=True):
        event.id = event_id
        event.message = event.message[:500]
        if event.data is None:
            event.data = {}
    return OrderEvent.objects.bulk_create(events)


# The seller's webhook event for each status an order can reach.
SELLER_EVENTS: dict[str, str] = {
    S.PAID: "order.paid",
    S.DELIVERED: "order.delivered",
    S.PARTIALLY_DELIVERED: "order.partially_delivered",
    S.NEEDS_ATTENTION: "order.needs_attention",
    S.FAILED: "order.failed",
    S.CANCELLED: "order.cancelled",
    S.REFUNDED: "order.refunded",
    S.PARTIALLY_REFUNDED: "order.refunded",
}


# Events recorded inside ``order_events_together()``: written in one INSERT when it ends.
_events_together: ContextVar[list[OrderEvent] | None] = ContextVar("order_events_together", default=None)


@contextmanager
def order_events_together() -> Iterator[list[OrderEvent]]:
    """Inside one transaction, every ``order_event_record`` is kept and written in one INSERT at
    the end (a new order's ``order_created`` and ``payment_initiated``), in the order recorded:
    ``created_at`` is made strictly increasing so that the timeline reads as it happened. An
    exception writes nothing (the transaction rolls back anyway)."""
    if _events_together.get() is not None:  # already inside one: the outer block writes them
        yield cast(list[OrderEvent], _events_together.get())
        return
    events: list[OrderEvent] = []
    token = _events_together.set(events)
    try:
        yield events
    finally:
        _events_together.reset(token)
    if not events:
        return
    OrderEvent.objects.bulk_create(events)
    for earlier, later in itertools.pairwise(events):
        if later.created_at <= earlier.created_at:  # the same microsecond: keep the recorded order
            later.created_at = earlier.created_at + timedelta(microseconds=1)
            OrderEvent.objects.filter(pk=later.pk).update(created_at=later.created_at)


def order_event_record(
    *,
    order: Order,
    type: str,
    message: str = "",
    actor: str = OrderEvent.Actor.SYSTEM,
    actor_user: Any = None,
    data: dict[str, Any] | None = None,
) -> OrderEvent:
    event = OrderEvent(
        order=order, type=type, message=message[:500], actor=actor, actor_user=actor_user, data=data or {}
    )
    together = _events_together.get()
    if together is not None:
        together.append(event)
    else:
        event.save(force_insert=True)
    return event
