"""Refunds: the order's half. Whether an order may be refunded, and by how much, is the order's
business (its lifecycle and its books); returning the money is the gateway's (``payments.refunds``)."""

from typing import Any

from django.db import transaction

from marketplace.core.errors import ApplicationError
from payments.models import Refund
from payments.refunds import (
    refund_for_key,
    refund_idempotency_key_clean,
    refund_key_conflict,
    refund_open,
    refund_payment_for,
    refund_through_gateway,
    refunds_pending_total,
)

from .lifecycle import REFUNDABLE
from .models import Order
from .services import order_paid_by


def order_refund_create(
    *,
    order: Order,
    amount: int | None,
    reason: str = "",
    user: Any = None,
    source: str = Refund.Source.SELLER,
    idempotency_key: str | None = None,
) -> Refund:
    """Refunds all (no amount) or part of an order through its gateway.

    Two steps, so that a gateway that answers slowly never holds the order's lock and two refunds
    at once can never return more than was paid: (1) under the order's lock, check what is left
    (counting refunds still in flight) and write a pending refund; (2) ask the gateway, with the
    refund's id as idempotency key, and apply the answer to the order (``refund_through_gateway``).
    """
    idempotency_key = refund_idempotency_key_clean(idempotency_key)
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if idempotency_key:
            existing = refund_for_key(seller_id=locked.seller_id, idempotency_key=idempotency_key)
            if existing is not None:
                if existing.order_id != locked.id or (amount is not None and existing.amount != amount):
                    raise refund_key_conflict()
                return existing
        if locked.status not in REFUNDABLE:
            raise ApplicationError(
                f"An order that is {locked.status} cannot be refunded.", code="invalid_transition", status_code=409
            )
        remaining = locked.total_amount - locked.refunded_amount - refunds_pending_total(order=locked)
        if amount is None:
            amount = remaining
        if amount <= 0 or amount > remaining:
            message = f"The refund must be between 1 and {remaining} ({locked.currency} minor units)."
            raise ApplicationError(message, code="invalid_amount", status_code=400, fields={"amount": [message]})
        # The payment that paid the order: another one that succeeded for it is refunded on its own.
        payment = refund_payment_for(payment_id=order_paid_by(locked))
        if payment is None:
            raise ApplicationError("This order has no captured payment to refund.", code="no_payment", status_code=409)
        refund = refund_open(
            order=locked,
            payment=payment,
            amount=amount,
            reason=reason,
            source=source,
            user=user,
            idempotency_key=idempotency_key,
        )
    return refund_through_gateway(refund=refund, order=order, user=user)
