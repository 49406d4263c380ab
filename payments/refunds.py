"""Refunds: the gateway's half. Money goes back through the gateway that took it, once per refund.

The order's half (its lock, whether it may be refunded, how much is left) is ``orders/services/refunds.py``,
which opens a pending refund here and hands it to ``refund_through_gateway``. What a refund does to
its order goes through ``ports.order_port()``.
"""

import logging
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction

from marketplace.core.errors import ApplicationError, DependencyUnavailable, IdempotencyConflict, ValidationFailed
from marketplace.core.money import format_money

from .gateways import GatewayUnavailable, get_gateway
from .gateways.base import GatewayRefund
from .models import Payment, PaymentStatus, Refund
from .ports import OrderActor, PayableOrder, order_port
from .services import payment_apply_gateway_status

logger = logging.getLogger(__name__)


def refund_idempotency_key_clean(key: str | None) -> str | None:
    """A refund's ``Idempotency-Key``: printable text of at most 200 characters (the column), or 400."""
    key = (key or "").strip()
    if not key:
        return None
    limit = Refund._meta.get_field("idempotency_key").max_length or 200
    if len(key) > limit or not key.isprintable():
        message = f"The Idempotency-Key must be printable text of at most {limit} characters."
        raise ValidationFailed(message, fields={"idempotency_key": [message]})
    return key


def refund_key_conflict() -> ApplicationError:
    return IdempotencyConflict("This idempotency key was already used for another refund.")


def refund_for_key(*, seller_id: Any, idempotency_key: str) -> Refund | None:
    """The seller's refund under this key, if any. Keys are the seller's own: another seller's same
    key is another refund, never theirs."""
    return Refund.objects.filter(seller_id=seller_id, idempotency_key=idempotency_key).first()


def refunds_pending_total(*, order: PayableOrder) -> int:
    """What refunds still in flight at the gateway hold of the order (minor units)."""
    return sum(Refund.objects.filter(order_id=order.pk, status=Refund.Status.PENDING).values_list("amount", flat=True))


def refund_payment_for(*, payment_id: str | None) -> Payment | None:
    """The captured payment a refund goes back through (the one that paid the order), if it has
    money left to return."""
    return Payment.objects.filter(
        id=payment_id, status__in=[PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED]
    ).first()


def refund_open(
    *,
    order: PayableOrder,
    payment: Payment,
    amount: int,
    reason: str,
    source: str,
    user: Any,
    idempotency_key: str | None,
) -> Refund:
    """Writes a pending refund (inside the caller's lock on the order), before the gateway is asked:
    its id is the gateway's idempotency key, and its amount is held from other refunds meanwhile."""
    try:
        with transaction.atomic():
            return Refund.objects.create(
                order_id=order.pk,
                seller_id=order.seller_id,
                payment=payment,
                amount=amount,
                currency=order.currency,
                reason=reason[:500],
                source=source,
                created_by=user if getattr(user, "is_authenticated", False) else None,
                idempotency_key=idempotency_key,
            )
    except IntegrityError:  # the same key, at the same moment, on another of the seller's orders
        raise refund_key_conflict() from None


def refund_through_gateway(*, refund: Refund, order: PayableOrder, user: Any = None) -> Refund:
    """Asks the gateway to return a pending refund, with the refund's id as idempotency key, and
    applies the answer. Runs outside any lock, so that a slow gateway never holds the order's row.
    A refused or unanswered request fails the refund (its amount is free again); a pending answer
    keeps it pending until the gateway's refund event settles it; a success is applied to the order."""
    payment = refund.payment
    amount = refund.amount
    source = refund.source
    try:
        answer = get_gateway(payment.gateway).refund(
            payment=payment, amount=amount, reason=refund.reason, idempotency_key=refund.id
        )
    except GatewayUnavailable as exc:
        Refund.objects.filter(pk=refund.pk).update(status=Refund.Status.FAILED, failure_reason=str(exc)[:500])
        raise DependencyUnavailable("The payment gateway did not answer; nothing was refunded. Try again.") from exc
    if answer.status == "failed":
        Refund.objects.filter(pk=refund.pk).update(status=Refund.Status.FAILED, failure_reason=answer.failure_reason)
        raise ApplicationError(
            f"The gateway refused the refund: {answer.failure_reason or 'no reason given'}.",
            code="refund_failed",
            status_code=409,
        )
    if answer.status == "pending":
        # The gateway accepted it but has not moved the money yet (some payment methods): the
        # refund stays pending, holding its amount, until the gateway's refund event settles it.
        Refund.objects.filter(pk=refund.pk).update(gateway_refund_id=answer.refund_id)
        order_port().record_event(
            order=order,
            type="refund_pending",
            actor=source,
            message=f"Refund of {format_money(amount, order.currency)} requested; the gateway will confirm it.",
            data={"refund_id": refund.id},
        )
        refund.refresh_from_db()
        return refund
    with transaction.atomic():
        refund = Refund.objects.select_for_update().get(pk=refund.pk)
        if refund.status == Refund.Status.PENDING:
            refund.status = Refund.Status.SUCCEEDED
            refund.gateway_refund_id = answer.refund_id
            refund.save(update_fields=["status", "gateway_refund_id", "updated_at"])
            order_port().apply_refund(order_id=order.id, refund=refund, user=user, actor=source)
    return refund


def refund_record_from_gateway(*, payment: Payment, refunded_total: int) -> Refund | None:
    """The gateway's confirmed total refunded of a payment (``webhook_process`` re-verifies what an
    event claims before it calls this). Only the part we do not know yet is recorded: never
    double-counted. Refunds of a payment that did not pay its order (one refunded automatically)
    settle that payment only; they never touch the order's books."""
    orders = order_port()
    if orders.awaiting_payment(payment.order):
        # A refund reported before the completion it refers to: settle the payment first.
        payment_apply_gateway_status(payment=payment, source="refund event")
    with transaction.atomic():
        order = orders.lock(order_id=payment.order_id)
        pays_order = orders.paid_by(order) == payment.id
        total = min(refunded_total, payment.amount)
        refunds = list(Refund.objects.select_for_update().filter(payment=payment).order_by("created_at", "id"))
        covered = total - sum(r.amount for r in refunds if r.status == Refund.Status.SUCCEEDED)
        # Refunds we asked for and the gateway left pending are settled first, oldest first.
        for pending in [r for r in refunds if r.status == Refund.Status.PENDING]:
            if pending.amount > covered:
                break
            pending.status = Refund.Status.SUCCEEDED
            pending.save(update_fields=["status", "updated_at"])
            if pays_order:
                orders.apply_refund(order_id=order.id, refund=pending, user=None, actor=OrderActor.GATEWAY)
            covered -= pending.amount
        if not pays_order:
            refunded = sum(r.amount for r in refunds if r.status == Refund.Status.SUCCEEDED)
            if refunded:
                Payment.objects.filter(pk=payment.pk).update(
                    status=PaymentStatus.REFUNDED if refunded >= payment.amount else PaymentStatus.PARTIALLY_REFUNDED
                )
        known = sum(r.amount for r in refunds if r.status in (Refund.Status.SUCCEEDED, Refund.Status.PENDING))
        missing = total - known
        if missing <= 0:
            return None
        order.refresh_from_db()
        if not pays_order or not orders.can_take_refund(order):
            orders.record_event(
                order=order,
                type="refund_unapplied",
                actor=OrderActor.GATEWAY,
                message=f"The gateway reports a refund of {format_money(missing, payment.currency)} on payment "
                f"{payment.id} that this {order.status} order cannot take.",
                data={"payment_id": payment.id, "amount": missing},
            )
            return None
        refund = Refund.objects.create(
            order_id=order.pk,
            seller_id=order.seller_id,
            payment=payment,
            amount=missing,
            currency=order.currency,
            reason="Refunded at the gateway.",
            status=Refund.Status.SUCCEEDED,
            source=Refund.Source.GATEWAY,
        )
        orders.apply_refund(order_id=order.id, refund=refund, user=None, actor=OrderActor.GATEWAY)
        return refund


def payment_refund_unpayable(*, payment_id: str, reason: str) -> Refund | None:
    """Refunds in full, once, a payment that succeeded for an order that could not take it (already
    paid by another payment, cancelled, refunded, or no longer fillable). The order keeps its status
    and its books (this money was never its revenue); its timeline says what happened and the seller
    is emailed. Running it again retries a refund the gateway failed, and never refunds twice."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().select_related("order", "order__seller").get(pk=payment_id)
        refund = Refund.objects.filter(payment=payment, source=Refund.Source.SYSTEM).first()
        if refund is not None and refund.status != Refund.Status.FAILED:
            return refund  # done, or the gateway is settling it
        if refund is None:
            if payment.status != PaymentStatus.SUCCEEDED:
                return None
            refund = Refund.objects.create(
                order=payment.order,
                seller_id=payment.order.seller_id,
                payment=payment,
                amount=payment.amount,
                currency=payment.currency,
                reason=f"{reason} Refunded automatically."[:500],
                source=Refund.Source.SYSTEM,
            )
        else:
            Refund.objects.filter(pk=refund.pk).update(status=Refund.Status.PENDING, failure_reason="")
    order = payment.order
    orders = order_port()
    answer: GatewayRefund | None = None
    try:
        answer = get_gateway(payment.gateway).refund(
            payment=payment, amount=payment.amount, reason=refund.reason, idempotency_key=refund.id
        )
    except (GatewayUnavailable, ApplicationError) as exc:
        failure = str(exc)
    else:
        failure = answer.failure_reason or "refused" if answer.status == "failed" else ""
    data = {"payment_id": payment.id, "refund_id": refund.id, "amount": payment.amount}
    with transaction.atomic():
        if answer is not None and not failure:
            settled = answer.status == "succeeded"  # a pending one is settled by the gateway's refund event
            Refund.objects.filter(pk=refund.pk).update(
                status=Refund.Status.SUCCEEDED if settled else Refund.Status.PENDING,
                gateway_refund_id=answer.refund_id,
            )
            if settled:
                Payment.objects.filter(pk=payment.pk).update(status=PaymentStatus.REFUNDED)
            message = f"{reason} The payment was refunded to the buyer automatically."[:500]
            orders.record_event(
                order=order, type="unpayable_payment_refunded", actor=OrderActor.SYSTEM, message=message, data=data
            )
        else:
            Refund.objects.filter(pk=refund.pk).update(status=Refund.Status.FAILED, failure_reason=failure[:500])
            message = f"{reason} Refunding it failed ({failure}); an operator must refund it."[:500]
            orders.record_event(
                order=order, type="unpayable_payment_refund_failed", actor=OrderActor.SYSTEM, message=message, data=data
            )
        transaction.on_commit(lambda: _notify_seller_of_unpayable(order=order, message=message))
    refund.refresh_from_db()
    return refund


def _notify_seller_of_unpayable(*, order: PayableOrder, message: str) -> None:
    """The seller hears of money that came in for an order and went back (or must go back)."""
    subject = f"Order #{order.order_number}: a payment was refunded automatically"
    body = (
        f"Order #{order.order_number} received a payment it could not take.\n\n{message}\n\n"
        "The order's timeline in your dashboard has the details."
    )
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [order.seller.email])
    except Exception:  # noqa: BLE001 - the refund and its timeline entry stand; a mail outage is logged
        logger.exception("could not email the seller of order #%s about a refunded payment", order.order_number)
        return
    order_port().record_event(order=order, type="seller_notified", message="The seller was emailed about the refund.")
