"""The order lifecycle of ``shared/API.md``, and the one door every status change goes through."""

import logging
from contextlib import ExitStack
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from marketplace.core.errors import InvalidTransition
from marketplace.core.log_context import bound

from .models import Order, OrderEvent, OrderStatus
from .seller_events.order_events import order_seller_event

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
SETTLED = frozenset(
    {S.DELIVERED, S.FAILED, S.CANCELLED, S.REFUNDED, S.PARTIALLY_REFUNDED, S.NEEDS_ATTENTION}
)


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

# Moves a seller or operator may make by hand; the rest belong to payments and fulfilment.
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
    order_id: str,
    to_status: str,
    message: str = "",
    actor: str = OrderEvent.Actor.SYSTEM,
    actor_user: Any = None,
    data: dict[str, Any] | None = None,
    manual: bool = False,
) -> Order:
    """Locks the order, checks the move, applies it and records an ``OrderEvent`` — atomically.

    Raises ``InvalidTransition`` (409) for a move the lifecycle does not allow.
    """
    with ExitStack() as context, transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        context.enter_context(bound(order_number=order.order_number))
        from_status = order.status
        table = MANUAL if manual else ALLOWED
        if to_status not in table.get(from_status, frozenset()):
            raise InvalidTransition(
                f"An order cannot move from {from_status} to {to_status}.",
                extra={"from_status": from_status, "to_status": to_status},
            )
        now = timezone.now()
        order.status = to_status
        order.status_message = message[:500]
        fields = ["status", "status_message", "updated_at"]
        if to_status == S.PAID and order.paid_at is None:
            order.paid_at = now
            fields.append("paid_at")
        if to_status == S.DELIVERED and order.delivered_at is None:
            order.delivered_at = now
            fields.append("delivered_at")
        order.save(update_fields=fields)
        OrderEvent.objects.create(
            order=order,
            type="status_changed",
            from_status=from_status,
            to_status=to_status,
            message=message[:500],
            actor=actor,
            actor_user=actor_user,
            data=data or {},
        )
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
        return order


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


def order_event_record(
    *,
    order: Order,
    type: str,
    message: str = "",
    actor: str = OrderEvent.Actor.SYSTEM,
    actor_user: Any = None,
    data: dict[str, Any] | None = None,
) -> OrderEvent:
    return OrderEvent.objects.create(
        order=order, type=type, message=message[:500], actor=actor, actor_user=actor_user, data=data or {}
    )
