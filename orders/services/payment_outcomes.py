"""What a payment's outcome does to its order: paid (then fulfillment), failed, reopened, cancelled."""

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ledger.services import ledger_external_sale_record, ledger_sale_record
from marketplace.core.errors import (
    ApplicationError,
)
from marketplace.core.queue import enqueue
from orders.lifecycle import order_transition
from orders.models import Order, OrderEvent, OrderStatus
from orders.pricing import platform_fee_for
from orders.tasks_names import FULFILL_TASK
from payments.refunds import payment_refund_unpayable

from .create import order_stock_release, order_stock_reserve_again

logger = logging.getLogger(__name__)
S = OrderStatus
Actor = OrderEvent.Actor


# --- Payment outcomes ----------------------------------------------------------------------------


def order_mark_paid(*, order_id: str, payment_id: str, message: str = "", risk: str = "") -> Order:
    """The gateway confirmed the payment. Moves the order to paid and queues its fulfillment.

    ``risk``: the gateway flags the payment as risky (its words). The order is paid all the same (the
    money is taken, the sale is in the ledger), then moved to ``needs_attention`` instead of being
    fulfilled: an operator checks it and delivers (retry-delivery) or refunds it.

    A payment that cannot pay its order — the order is already paid (by another payment), cancelled
    or refunded, or a failed order's stock or discount is gone meanwhile — is refunded through its
    gateway once this commits, and the order's timeline says why: a buyer is never charged for nothing.
    """
    # No savepoint: the caller's transaction (the payment's) is the unit, and every refusal below
    # returns instead of raising. The order is locked once, with its seller for the fee.
    with transaction.atomic(savepoint=False):
        order = Order.objects.select_for_update(of=("self",)).select_related("seller").get(pk=order_id)
        if order.status == S.FAILED:
            try:
                with transaction.atomic():
                    order_stock_reserve_again(order)
            except ApplicationError as exc:  # out of stock, or the discount was used up meanwhile
                _refund_unpayable_on_commit(
                    payment_id, f"Paid after a failed attempt, but the order can no longer be filled: {exc.message}"
                )
                return order
            order_transition(
                order=order, to_status=S.PENDING, message="A new payment attempt succeeded.", actor=Actor.GATEWAY
            )
        if order.status != S.PENDING:
            if order_paid_by(order) != payment_id:
                reason = (
                    "Paid after the order was cancelled."
                    if order.status == S.CANCELLED
                    else f"Paid for an order that is already {order.status} (paid by another payment)."
                )
                _refund_unpayable_on_commit(payment_id, reason)
            return order
        # The fee is fixed at payment, with the seller's rates as they are now (in the move's UPDATE).
        fee = platform_fee_for(order.total_amount, seller=order.seller)
        values = {}
        if fee != order.platform_fee:
            values = {"platform_fee": fee, "seller_earnings": order.total_amount - fee}
        order = order_transition(
            order=order,
            to_status=S.PAID,
            message=message or "Payment confirmed by the gateway.",
            actor=Actor.GATEWAY,
            data={"payment_id": payment_id},
            values=values,
        )
        # The sale and its fee, in this transaction: this is the order's one move to paid.
        ledger_sale_record(order=order, seller=order.seller, first_time=True)
        if risk:
            return order_transition(
                order=order,
                to_status=S.NEEDS_ATTENTION,
                message=f"The gateway flagged this payment as risky ({risk[:200]}): check it before delivering.",
                actor=Actor.GATEWAY,
                data={"payment_id": payment_id, "risk": risk[:200]},
            )
        _queue_fulfillment_on_commit(order)
        return order


def order_mark_paid_externally(
    *, order_id: str, reference: str, user: Any = None, api_key_id: str | None = None
) -> Order:
    """The seller took the money itself (``payment_method: "external"``, its ``payment_reference``):
    the order moves to paid through the one status door and is fulfilled as any paid order is.

    No gateway holds the buyer's money, so the ledger credits no ``sale`` to the seller's balance;
    the platform's fee is charged to it as usual (``ledger_external_sale_record``). Only a pending
    order moves; any other is answered as it is (a replay)."""
    with transaction.atomic():
        order = Order.objects.select_for_update(of=("self",)).select_related("seller").get(pk=order_id)
        if order.status != S.PENDING:
            return order
        fee = platform_fee_for(order.total_amount, seller=order.seller)
        values: dict[str, Any] = {}
        if fee != order.platform_fee:
            values = {"platform_fee": fee, "seller_earnings": order.total_amount - fee}
        order = order_transition(
            order=order,
            to_status=S.PAID,
            message=f"Paid to the seller directly (reference {reference}).",
            actor=Actor.SELLER,
            actor_user=user,
            data={"payment_method": "external", "payment_reference": reference, "api_key_id": api_key_id},
            values=values,
        )
        ledger_external_sale_record(order=order, seller=order.seller)
        _queue_fulfillment_on_commit(order)
        return order


def order_claim_free(*, order: Order) -> Order:
    """A new order whose total is 0 (a free product, or a 100% discount) is claimed without a
    payment step: it moves to paid in the caller's transaction (the order's own), with no fee and
    no ledger entry (no money moved), and its fulfillment is queued once that commits. Its stock
    was reserved like any order's; the abuse limits are the caller's (``checkout_pay``)."""
    if order.total_amount != 0:
        raise ApplicationError("Only an order whose total is 0 can be claimed without paying.", status_code=409)
    order = order_transition(
        order=order,
        to_status=S.PAID,
        message="Claimed for free: the total was 0, so no payment was needed.",
        actor=Actor.BUYER,
        data={"free": True},
        values={"platform_fee": 0, "seller_earnings": 0},
    )
    _queue_fulfillment_on_commit(order)
    return order


def order_paid_by(order: Order) -> str | None:
    """The id of the payment that paid the order (its move to paid names it), if one did."""
    data = (
        OrderEvent.objects.filter(order=order, type="status_changed", to_status=S.PAID)
        .order_by("created_at", "id")
        .values_list("data", flat=True)
        .first()
    )
    return (data or {}).get("payment_id")


def _refund_unpayable_on_commit(payment_id: str, reason: str) -> None:
    transaction.on_commit(lambda: payment_refund_unpayable(payment_id=payment_id, reason=reason))


def _queue_fulfillment_on_commit(order: Order) -> None:
    """Queues the order's fulfillment once the transaction commits. If the broker does not take the
    task (it is down), the payment stays recorded and the order paid: the failure is logged, and the
    sweeper queues the order again once it has waited ``SWEEP_STUCK_AFTER_SECONDS``. A broker outage
    never turns a confirmed payment into an error for the gateway (whose webhook would otherwise get
    a 500 for an order that is in fact paid)."""

    def queue() -> None:
        try:
            enqueue(FULFILL_TASK, order.id)
        except Exception:  # noqa: BLE001 - whatever the broker's failure, the sweeper recovers the order
            logger.exception(
                "Could not queue the fulfillment of order %s; the sweeper will queue it.", order.order_number
            )

    transaction.on_commit(queue)


def order_mark_payment_failed(*, order_id: str, payment_id: str, reason: str = "") -> Order:
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        if order.status != S.PENDING:
            return order
        order_stock_release(order)
        return order_transition(
            order_id=order.id,
            to_status=S.FAILED,
            message=reason or "The payment was declined.",
            actor=Actor.GATEWAY,
            data={"payment_id": payment_id},
        )


def order_reopen_for_payment(*, order: Order) -> Order:
    """A failed order gets a new payment attempt: failed → pending, with a fresh expiry."""
    with transaction.atomic():
        if order.status == S.FAILED:
            order_stock_reserve_again(order)  # not enough left → OutOfStock, and the order stays failed
            order = order_transition(
                order_id=order.id, to_status=S.PENDING, message="New payment attempt.", actor=Actor.BUYER
            )
        if order.status != S.PENDING:
            raise ApplicationError(
                "This order cannot take a payment in its current state.", code="invalid_transition", status_code=409
            )
        Order.objects.filter(pk=order.pk).update(
            expires_at=timezone.now() + timedelta(minutes=settings.ORDER_EXPIRY_MINUTES)
        )
        order.refresh_from_db()
        return order


def order_cancel(
    *, order_id: str, message: str, actor: str = Actor.SYSTEM, actor_user: Any = None, manual: bool = False
) -> Order:
    """Cancels an unpaid order and releases what it reserved, in one transaction."""
    with transaction.atomic():
        order = order_transition(
            order_id=order_id, to_status=S.CANCELLED, message=message, actor=actor, actor_user=actor_user, manual=manual
        )
        order_stock_release(order)
        return order
