"""The order side of ``payments.ports.OrderPort``: what a gateway's word does to an order.

Bound in ``OrdersConfig.ready()``. Each method is one call into the order services or the lifecycle,
so the rules stay where they are (one status door, one set of "paid" statuses); payments only asks.
"""

from typing import Any

from payments.ports import OrderActor, PayableOrder

from .lifecycle import PAYABLE, REFUNDABLE, order_event_record
from .models import Order, OrderStatus
from .services import (
    order_apply_refund,
    order_mark_paid,
    order_mark_payment_failed,
    order_paid_by,
    order_reopen_for_payment,
)
from .services.disputes import order_apply_dispute


def _order(order: PayableOrder) -> Order:
    """``Payment.order`` and ``lock`` answer real orders; anything else is a caller's mistake."""
    if not isinstance(order, Order):
        raise TypeError(f"expected an Order, got {type(order).__name__}")
    return order


class OrdersPaymentPort:
    def lock(self, *, order_id: str) -> Order:
        return Order.objects.select_for_update().get(pk=order_id)

    def can_take_payment(self, order: PayableOrder) -> bool:
        return order.status in PAYABLE

    def awaiting_payment(self, order: PayableOrder) -> bool:
        return bool(order.status == OrderStatus.PENDING)

    def can_take_refund(self, order: PayableOrder) -> bool:
        return order.status in REFUNDABLE

    def reopen_for_payment(self, *, order: PayableOrder) -> Order:
        if order.status == OrderStatus.FAILED:
            return order_reopen_for_payment(order=_order(order))
        return _order(order)

    def paid_by(self, order: PayableOrder) -> str | None:
        return order_paid_by(_order(order))

    def mark_paid(self, *, order_id: str, payment_id: str, message: str, risk: str = "") -> None:
        order_mark_paid(order_id=order_id, payment_id=payment_id, message=message, risk=risk)

    def mark_payment_failed(self, *, order_id: str, payment_id: str, reason: str) -> None:
        order_mark_payment_failed(order_id=order_id, payment_id=payment_id, reason=reason)

    def apply_refund(self, *, order_id: str, refund: Any, user: Any, actor: str) -> None:
        order_apply_refund(order_id=order_id, refund=refund, user=user, actor=actor)

    def record_event(
        self, *, order: PayableOrder, type: str, message: str, actor: str = OrderActor.SYSTEM, data: Any = None
    ) -> None:
        order_event_record(order=_order(order), type=type, message=message, actor=actor, data=data)

    def apply_dispute(self, *, order: PayableOrder, dispute: Any, change: str) -> None:
        order_apply_dispute(order=_order(order), dispute=dispute, change=change)
