"""The order's ``sub_status`` of ``shared/API.md``: a refinement of its status for integrators,
derived from the order's state each time it is shown, never stored (so it cannot disagree with it)."""

from collections.abc import Iterable

from .fulfillment import get_strategy
from .models import Order, OrderItem, OrderStatus

S = OrderStatus


def order_sub_status(order: Order, items: Iterable[OrderItem]) -> str:
    """``items`` are the order's items, in hand (the presenter has them)."""
    if order.status in (S.REFUNDED, S.PARTIALLY_REFUNDED):
        return "REFUNDED"
    if order.status == S.NEEDS_ATTENTION:
        return "NOT_REFUNDED"  # charged, not delivered, the money not (yet) returned
    if order.status in (S.PENDING, S.FAILED, S.CANCELLED):
        return "INITIAL"
    if order.status == S.PARTIALLY_DELIVERED:
        return "PARTIAL"
    if order.status == S.PAID:
        remote = [item for item in items if get_strategy(item.content_type).remote]
        if not remote:
            return "PROCESSING"
        if all(item.fulfilled for item in remote):
            return "VENDOR_VOUCHER_FETCHED"
        return "VENDOR_ORDER_CREATED" if any(item.attempts for item in remote) else "VENDOR_ORDER_PENDING"
    # delivered: the buyer has their receipt; a gift may still wait for its date or its claim
    if order.is_gift and order.gift_sent_at is None and order.deliver_at is not None:
        return "DELAYED"
    if order.is_gift and order.gift_claim_link:
        return "GV_LINK_CLAIMED" if order.gift_claimed_at else "GV_LINK_UNCLAIMED"
    return "COMPLETED"
