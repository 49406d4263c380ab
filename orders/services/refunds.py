"""Refunds, the order's half: asking the gateway for one (``order_refund_create``) and applying what the
gateway refunded to the order (``order_apply_refund``)."""

import logging
from typing import Any

from django.db import transaction
from django.db.models import Count

from catalog.models import Code, CodeStatus
from ledger.services import ledger_refund_record
from marketplace.core.errors import (
    ApplicationError,
    Conflict,
)
from marketplace.core.money import format_money
from orders.emails import send_refund_email
from orders.lifecycle import REFUNDABLE, order_event_record, order_transition
from orders.models import License, Order, OrderStatus
from orders.pricing import platform_fee_for
from orders.seller_events.order_events import order_seller_event
from orders.services.disputes import order_dispute_blocks_refund
from orders.services.payment_outcomes import order_paid_by
from payments.models import Payment, PaymentStatus, Refund
from payments.refunds import (
    refund_for_key,
    refund_idempotency_key_clean,
    refund_key_conflict,
    refund_open,
    refund_payment_for,
    refund_through_gateway,
    refunds_pending_total,
)

logger = logging.getLogger(__name__)
S = OrderStatus


# --- Refunds -------------------------------------------------------------------------------------


def order_apply_refund(*, order_id: str, refund: Any, user: Any, actor: str) -> Order:
    """Applies a refund the gateway has made: the amount, the payment's and the order's status, and —
    once the whole order is refunded — revokes access: codes REVOKED (never resold by default),
    licence keys refunded, downloads and links 410."""
    with transaction.atomic():
        order = Order.objects.select_for_update().select_related("seller").get(pk=order_id)
        order.refunded_amount = min(order.total_amount, order.refunded_amount + refund.amount)
        # The fee follows the money the platform keeps: recomputed on what is left after refunds,
        # so that fee + earnings always equals the revenue net of refunds.
        net = order.total_amount - order.refunded_amount
        order.platform_fee = platform_fee_for(net, seller=order.seller)
        order.seller_earnings = net - order.platform_fee
        order.save(update_fields=["refunded_amount", "platform_fee", "seller_earnings", "updated_at"])
        ledger_refund_record(order=order, refund_id=refund.id, reason=refund.reason)  # books follow the figures
        full = order.refunded_amount >= order.total_amount
        payment_refunded = sum(r.amount for r in refund.payment.refunds.filter(status="succeeded"))
        Payment.objects.filter(pk=refund.payment_id).update(
            status=PaymentStatus.REFUNDED
            if payment_refunded >= refund.payment.amount
            else PaymentStatus.PARTIALLY_REFUNDED
        )
        money = format_money(refund.amount, order.currency)
        order_event_record(
            order=order,
            type="refund",
            message=f"Refunded {money}" + (f": {refund.reason}" if refund.reason else "."),
            actor=actor,
            actor_user=user if getattr(user, "is_authenticated", False) else None,
            data={"refund_id": refund.id, "amount": refund.amount, "refunded_amount": order.refunded_amount},
        )
        refund_id = refund.id
        transaction.on_commit(lambda: _email_refund(order_id=order.id, refund_id=refund_id))
        target = S.REFUNDED if full else S.PARTIALLY_REFUNDED
        if order.status != target:
            order = order_transition(
                order_id=order.id,
                to_status=target,
                message="Refunded in full."
                if full
                else f"Partially refunded ({format_money(order.refunded_amount, order.currency)} of "
                f"{format_money(order.total_amount, order.currency)}).",
                actor=actor,
                actor_user=user if getattr(user, "is_authenticated", False) else None,
                data={"refund_id": refund.id},
            )
        elif not full:
            order_seller_event(order=order, type="order.refunded")
        if full:
            item_ids = list(order.items.values_list("id", flat=True))
            revoked = Code.objects.filter(order_item_id__in=item_ids, status=CodeStatus.DELIVERED).update(
                status=CodeStatus.REVOKED
            )
            released = Code.objects.filter(order_item_id__in=item_ids, status=CodeStatus.ALLOCATED).update(
                status=CodeStatus.AVAILABLE, order_item=None, allocated_at=None
            )
            licenses = License.objects.filter(order_item_id__in=item_ids).update(status=License.Status.REFUNDED)
            order_event_record(
                order=order,
                type="access_revoked",
                message=f"Access revoked: {revoked} code(s) revoked, {licenses} licence key(s) disabled, "
                f"{released} undelivered code(s) returned to the pool.",
                actor=actor,
            )
        else:
            _refund_licence_seats(order=order, actor=actor)
        return order


def _refund_licence_seats(*, order: Order, actor: str) -> int:
    """A partial refund that covers whole licence seats disables that many keys ("refunding a unit
    disables the key that unit delivered"): with two seats bought and one refunded, exactly one key
    stays valid. A seat costs what the buyer paid for it (its price less its share of the discount).
    The keys disabled first are those with the fewest activations, then the newest: the buyer keeps
    the key they use. Runs under the order's lock (the caller's transaction); counts the seats already
    refunded, so a second partial refund disables only the seats it adds."""
    items = [item for item in order.items.all() if item.content_type == "license_key"]
    if not items:
        return 0
    covered, budget = 0, order.refunded_amount
    for item in items:
        seat = item.unit_price * order.total_amount // order.subtotal if order.subtotal else item.unit_price
        for _unit in range(item.quantity):
            if seat <= 0 or budget < seat:
                break
            budget -= seat
            covered += 1
    keys = License.objects.filter(order_item__in=items)  # the order row is locked: refunds run one at a time
    already = keys.filter(status=License.Status.REFUNDED).count()
    if covered <= already:
        return 0
    chosen = list(
        keys.exclude(status=License.Status.REFUNDED)
        .annotate(in_use=Count("activations"))
        .order_by("in_use", "-created_at", "-id")
        .values_list("id", "key_hint")[: covered - already]
    )
    License.objects.filter(id__in=[pk for pk, _hint in chosen]).update(status=License.Status.REFUNDED)
    hints = ", ".join(f"••••{hint}" for _pk, hint in chosen)
    order_event_record(
        order=order,
        type="access_revoked",
        message=f"{len(chosen)} refunded licence seat(s): key {hints} disabled; the other keys stay valid.",
        actor=actor,
    )
    return len(chosen)


def _email_refund(*, order_id: str, refund_id: str) -> None:
    """Tells the buyer their money is on its way back. A mail outage is logged, not raised: the
    refund itself has happened and is on the order's timeline either way."""
    order = Order.objects.select_related("product", "seller").get(pk=order_id)
    refund = Refund.objects.get(pk=refund_id)
    try:
        send_refund_email(order, refund)
    except Exception:  # noqa: BLE001
        logger.exception("refund email for order %s could not be sent", order.order_number)
        return
    order_event_record(order=order, type="refund_email_sent", message=f"Refund email sent to {order.buyer_email}.")


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
        if order_dispute_blocks_refund(locked):
            raise Conflict(
                "This order's payment is disputed: the buyer's bank decides; it cannot be refunded.",
                code="order_disputed",
            )
        remaining = locked.total_amount - locked.refunded_amount - refunds_pending_total(order=locked)
        if amount is None:
            amount = remaining
        if amount <= 0 or amount > remaining:
            message = (
                f"The refund must be between {format_money(1, locked.currency)} and "
                f"{format_money(max(remaining, 0), locked.currency)}, what is left to refund."
            )
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
