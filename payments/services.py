"""Payments: opening them, and believing them only when the gateway confirms server-side."""

import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from marketplace.core.errors import ApplicationError, DependencyUnavailable, IdempotencyConflict, ValidationFailed
from orders.lifecycle import order_event_record
from orders.models import Order, OrderEvent, OrderStatus

from .gateways import GatewayUnavailable, InvalidSignature, get_gateway
from .gateways.base import GatewayRefund
from .models import Payment, PaymentStatus, Refund, WebhookEvent

logger = logging.getLogger(__name__)


# How long a request that opened a payment may still be talking to its gateway. A payment with no
# gateway page after this is taken as abandoned (its request died), closed, and replaced.
PAYMENT_OPENING_STALE_SECONDS = 120
# How long a second request waits for the first one's gateway page before it answers without it.
PAYMENT_OPENING_WAIT_SECONDS = 10.0


@dataclass
class OpenedPayment:
    payment: Payment
    created: bool  # False: the order already had this open payment


def payment_initiate(*, order: Order, gateway_name: str | None, return_url: str) -> Payment:
    """The order's open payment (see ``payment_open``)."""
    return payment_open(order=order, gateway_name=gateway_name, return_url=return_url).payment


def payment_open(*, order: Order, gateway_name: str | None, return_url: str) -> OpenedPayment:
    """Opens a payment for a pending order (or a failed one, which becomes pending again), or answers
    the one that is already open.

    An order has at most one open (pending) payment, whatever its gateway: two would be two pages a
    buyer can pay. The order's row is locked while it is decided, and a partial unique constraint
    holds it in the database too; the loser of a race answers the winner's payment. A payment whose
    gateway call failed is marked failed, so it is not open; one whose gateway call is still under
    way is waited for briefly, and taken as abandoned once it is ``PAYMENT_OPENING_STALE_SECONDS`` old.
    """
    gateway = get_gateway(gateway_name)
    try:
        with transaction.atomic():
            locked = Order.objects.select_for_update().get(pk=order.pk)
            if locked.status not in (OrderStatus.PENDING, OrderStatus.FAILED):
                raise ApplicationError(
                    f"This order is {locked.status}; it cannot take a payment.",
                    code="invalid_transition",
                    status_code=409,
                )
            open_payment = _open_payment(locked)
            if open_payment is None:
                if locked.status == OrderStatus.FAILED:
                    from orders.services import order_reopen_for_payment

                    locked = order_reopen_for_payment(order=locked)
                # The payment row is committed before the gateway is called (its id is the gateway's
                # idempotency key), so a slow gateway never holds a transaction open.
                with transaction.atomic():
                    payment = Payment.objects.create(
                        order=locked,
                        gateway=gateway.name,
                        amount=locked.total_amount,
                        currency=locked.currency,
                        payment_method=gateway.name,
                    )
    except IntegrityError:
        # Another request opened one between our read and our insert (no row lock on SQLite).
        open_payment = _open_payment(order)
        if open_payment is None:
            raise
    if open_payment is not None:
        return OpenedPayment(_wait_for_gateway_page(open_payment), created=False)
    order = locked
    try:
        checkout = gateway.create_checkout(payment=payment, order=order, return_url=return_url)
    except Exception as exc:
        Payment.objects.filter(pk=payment.pk).update(
            status=PaymentStatus.FAILED, failure_reason=f"The gateway did not open the payment: {exc}"[:500]
        )
        if isinstance(exc, GatewayUnavailable):
            raise DependencyUnavailable("The payment gateway is not answering. Please try again.") from exc
        raise
    with transaction.atomic():
        payment.redirect_url = checkout.redirect_url
        payment.transaction_id = checkout.transaction_id
        payment.save(update_fields=["redirect_url", "transaction_id", "updated_at"])
        order_event_record(
            order=order,
            type="payment_initiated",
            message=f"Payment opened with {gateway.name}.",
            actor=OrderEvent.Actor.BUYER,
            data={"payment_id": payment.id, "amount": payment.amount},
        )
    return OpenedPayment(payment, created=True)


def _open_payment(order: Order) -> Payment | None:
    """The order's open payment, if any. One still without a gateway page past the stale limit was
    abandoned by the request that opened it: it is closed (failed), so that a new one can open."""
    payment = Payment.objects.filter(order_id=order.pk, status=PaymentStatus.PENDING).first()
    if payment is None or payment.redirect_url:
        return payment
    if payment.created_at < timezone.now() - timedelta(seconds=PAYMENT_OPENING_STALE_SECONDS):
        Payment.objects.filter(pk=payment.pk, status=PaymentStatus.PENDING, redirect_url="").update(
            status=PaymentStatus.FAILED, failure_reason="The gateway page was never opened; abandoned."
        )
        return Payment.objects.filter(order_id=order.pk, status=PaymentStatus.PENDING).first()
    return payment


def _wait_for_gateway_page(payment: Payment) -> Payment:
    """Another request is opening this payment at its gateway: wait for its page a little."""
    deadline = time.monotonic() + PAYMENT_OPENING_WAIT_SECONDS
    while not payment.redirect_url and payment.status == PaymentStatus.PENDING and time.monotonic() < deadline:
        time.sleep(0.05)
        payment.refresh_from_db()
    return payment


def payment_apply_gateway_status(*, payment: Payment, source: str) -> bool:
    """Asks the gateway for the payment's real status and applies it. Returns True if it is paid."""
    from orders.services import order_mark_paid, order_mark_payment_failed

    gateway = get_gateway(payment.gateway)
    status = gateway.retrieve(payment=payment)
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if status.status == "succeeded":
            if status.amount != payment.amount or status.currency != payment.currency:
                order_event_record(
                    order=payment.order,
                    type="payment_mismatch",
                    actor=OrderEvent.Actor.GATEWAY,
                    message=f"The gateway reports {status.amount} {status.currency}; the order expects "
                    f"{payment.amount} {payment.currency}. Not marked paid.",
                    data={"payment_id": payment.id},
                )
                return False
            # Only forward: a refunded payment never goes back to merely "succeeded".
            if payment.status in (PaymentStatus.PENDING, PaymentStatus.FAILED, PaymentStatus.CANCELLED):
                payment.status = PaymentStatus.SUCCEEDED
                payment.transaction_id = status.transaction_id or payment.transaction_id
                payment.save(update_fields=["status", "transaction_id", "updated_at"])
            order_mark_paid(
                order_id=payment.order_id,
                payment_id=payment.id,
                message=f"Payment confirmed by {payment.gateway} ({source}).",
            )
            return True
        if status.status == "failed" and payment.status == PaymentStatus.PENDING:
            payment.status = PaymentStatus.FAILED
            payment.failure_reason = "Declined at the gateway."
            payment.save(update_fields=["status", "failure_reason", "updated_at"])
            order_mark_payment_failed(
                order_id=payment.order_id,
                payment_id=payment.id,
                reason=f"The payment was declined ({payment.gateway}).",
            )
    return False


def payment_reconcile_order(*, order: Order) -> bool:
    """Re-checks an unpaid order's open payments with their gateways (a webhook may be lost)."""
    paid = False
    for payment in order.payments.filter(status=PaymentStatus.PENDING):
        paid = payment_apply_gateway_status(payment=payment, source="re-check") or paid
    return paid


def payment_reconcile_throttled(*, order: Order, every_seconds: int = 5) -> None:
    """For polling pages: re-check at most once every few seconds per order."""
    if order.status != OrderStatus.PENDING:
        return
    if not cache.add(f"reconcile:{order.id}", 1, timeout=every_seconds):
        return
    try:
        payment_reconcile_order(order=order)
    except GatewayUnavailable:
        logger.warning("gateway unavailable while re-checking order %s", order.order_number)


def webhook_receive(*, gateway_name: str, body: bytes, headers: dict[str, str]) -> tuple[WebhookEvent, bool]:
    """Verifies, stores once, then processes an incoming webhook.

    Returns the stored event and whether this call processed it (False for a repeat).
    Raises ``ApplicationError`` 400 for a bad signature; nothing is stored then.
    """
    gateway = get_gateway(gateway_name)
    try:
        message = gateway.parse_webhook(body=body, headers=headers)
    except InvalidSignature as exc:
        raise ApplicationError(f"Invalid webhook signature: {exc}", code="invalid_signature", status_code=400) from exc
    try:
        with transaction.atomic():
            event, created = WebhookEvent.objects.get_or_create(
                gateway=gateway.name,
                event_id=message.event_id,
                defaults={
                    "type": message.type,
                    "payload": message.payload,
                    "payment_ref": message.payment_id or "",
                    "refunded_total": message.refunded_total,
                },
            )
    except IntegrityError:
        event, created = WebhookEvent.objects.get(gateway=gateway.name, event_id=message.event_id), False
    if not created and event.status not in (WebhookEvent.Status.RECEIVED, WebhookEvent.Status.FAILED):
        return event, False
    webhook_process(event=event)
    return event, True


def webhook_replay(*, event: WebhookEvent) -> WebhookEvent:
    """Processes a stored event again (from the admin). Safe: everything is re-verified with the
    gateway and every step is idempotent."""
    return webhook_process(event=event)


def webhook_process(*, event: WebhookEvent) -> WebhookEvent:
    if not event.payment_ref:
        return _finish(event, WebhookEvent.Status.IGNORED, "The event names no payment.")
    payment = Payment.objects.filter(id=event.payment_ref, gateway=event.gateway).first()
    if payment is None:
        payment = Payment.objects.filter(transaction_id=event.payment_ref, gateway=event.gateway).first()
    if payment is None:
        # It may be early (its order not committed yet): keep it for a retry instead of dropping it.
        return _finish(event, WebhookEvent.Status.FAILED, "No payment of ours matches this event (yet).")
    event.payment = payment
    try:
        if event.refunded_total is not None:
            return _refund_event_process(event=event, payment=payment, claimed=event.refunded_total)
        paid = payment_apply_gateway_status(payment=payment, source=f"webhook {event.event_id}")
    except GatewayUnavailable as exc:
        return _finish(event, WebhookEvent.Status.FAILED, f"Could not re-verify with the gateway: {exc}")
    payment.refresh_from_db()
    claims_success = event.type.endswith("succeeded")
    if claims_success and not paid:
        order_event_record(
            order=payment.order,
            type="webhook_rejected",
            actor=OrderEvent.Actor.GATEWAY,
            message="A webhook claimed success that the gateway does not confirm; nothing changed.",
            data={"webhook_event_id": event.id, "event_id": event.event_id},
        )
        return _finish(event, WebhookEvent.Status.REJECTED, "The gateway does not confirm this payment.")
    return _finish(event, WebhookEvent.Status.PROCESSED, "")


def _refund_event_process(*, event: WebhookEvent, payment: Payment, claimed: int) -> WebhookEvent:
    """A refund event is believed only as far as the gateway itself confirms it, as payments are: a
    signed claim of more than the gateway holds changes nothing. What is applied is the gateway's
    own total, so a late or reordered event never moves anything backwards."""
    confirmed = get_gateway(event.gateway).retrieve_refunded(payment=payment)
    if confirmed < claimed:
        order_event_record(
            order=payment.order,
            type="webhook_rejected",
            actor=OrderEvent.Actor.GATEWAY,
            message=f"A webhook claimed {claimed} refunded; the gateway confirms {confirmed}. Nothing changed.",
            data={"webhook_event_id": event.id, "event_id": event.event_id, "payment_id": payment.id},
        )
        return _finish(event, WebhookEvent.Status.REJECTED, "The gateway does not confirm this refund.")
    refund_record_from_gateway(payment=payment, refunded_total=confirmed)
    return _finish(event, WebhookEvent.Status.PROCESSED, "")


def _finish(event: WebhookEvent, status: str, error: str) -> WebhookEvent:
    event.status = status
    event.error = error[:500]
    event.processed_at = timezone.now()
    event.save(update_fields=["status", "error", "processed_at", "payment"])
    return event


def headers_from_request(request: Any) -> dict[str, str]:
    return {key.lower(): value for key, value in request.headers.items()}


# --- Refunds -------------------------------------------------------------------------------------

REFUNDABLE = (
    OrderStatus.PAID,
    OrderStatus.DELIVERED,
    OrderStatus.PARTIALLY_DELIVERED,
    OrderStatus.NEEDS_ATTENTION,
    OrderStatus.PARTIALLY_REFUNDED,
)


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


def _key_conflict() -> ApplicationError:
    return IdempotencyConflict("This idempotency key was already used for another refund.")


def _pending_refunds(order: Order) -> int:
    return sum(Refund.objects.filter(order=order, status=Refund.Status.PENDING).values_list("amount", flat=True))


def refund_create(
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
    refund's id as idempotency key, and apply the answer to the order.
    """
    from orders.services import order_apply_refund, order_paid_by

    idempotency_key = refund_idempotency_key_clean(idempotency_key)
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if idempotency_key:
            # Keys are the seller's own: another seller's same key is another refund, never theirs.
            existing = Refund.objects.filter(seller_id=locked.seller_id, idempotency_key=idempotency_key).first()
            if existing is not None:
                if existing.order_id != locked.id or (amount is not None and existing.amount != amount):
                    raise _key_conflict()
                return existing
        if locked.status not in REFUNDABLE:
            raise ApplicationError(
                f"An order that is {locked.status} cannot be refunded.", code="invalid_transition", status_code=409
            )
        remaining = locked.total_amount - locked.refunded_amount - _pending_refunds(locked)
        if amount is None:
            amount = remaining
        if amount <= 0 or amount > remaining:
            message = f"The refund must be between 1 and {remaining} ({locked.currency} minor units)."
            raise ApplicationError(message, code="invalid_amount", status_code=400, fields={"amount": [message]})
        # The payment that paid the order: another one that succeeded for it is refunded on its own.
        payment = Payment.objects.filter(
            id=order_paid_by(locked), status__in=[PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED]
        ).first()
        if payment is None:
            raise ApplicationError("This order has no captured payment to refund.", code="no_payment", status_code=409)
        try:
            with transaction.atomic():
                refund = Refund.objects.create(
                    order=locked,
                    seller_id=locked.seller_id,
                    payment=payment,
                    amount=amount,
                    currency=locked.currency,
                    reason=reason[:500],
                    source=source,
                    created_by=user if getattr(user, "is_authenticated", False) else None,
                    idempotency_key=idempotency_key,
                )
        except IntegrityError:  # the same key, at the same moment, on another of the seller's orders
            raise _key_conflict() from None
    gateway = get_gateway(payment.gateway)
    try:
        answer = gateway.refund(payment=payment, amount=amount, reason=reason, idempotency_key=refund.id)
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
        order_event_record(
            order=order,
            type="refund_pending",
            actor=source,
            message=f"Refund of {amount} requested; the gateway will confirm it.",
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
            order_apply_refund(order_id=order.id, refund=refund, user=user, actor=source)
    return refund


def refund_record_from_gateway(*, payment: Payment, refunded_total: int) -> Refund | None:
    """The gateway's confirmed total refunded of a payment (``webhook_process`` re-verifies what an
    event claims before it calls this). Only the part we do not know yet is recorded: never
    double-counted. Refunds of a payment that did not pay its order (one refunded automatically)
    settle that payment only; they never touch the order's books."""
    from orders.services import order_apply_refund, order_paid_by

    if payment.order.status == OrderStatus.PENDING:
        # A refund reported before the completion it refers to: settle the payment first.
        payment_apply_gateway_status(payment=payment, source="refund event")
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=payment.order_id)
        pays_order = order_paid_by(order) == payment.id
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
                order_apply_refund(order_id=order.id, refund=pending, user=None, actor=OrderEvent.Actor.GATEWAY)
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
        if not pays_order or order.status not in REFUNDABLE:
            order_event_record(
                order=order,
                type="refund_unapplied",
                actor=OrderEvent.Actor.GATEWAY,
                message=f"The gateway reports a refund of {missing} on payment {payment.id} that this "
                f"{order.status} order cannot take.",
                data={"payment_id": payment.id, "amount": missing},
            )
            return None
        refund = Refund.objects.create(
            order=order,
            seller_id=order.seller_id,
            payment=payment,
            amount=missing,
            currency=order.currency,
            reason="Refunded at the gateway.",
            status=Refund.Status.SUCCEEDED,
            source=Refund.Source.GATEWAY,
        )
        order_apply_refund(order_id=order.id, refund=refund, user=None, actor=OrderEvent.Actor.GATEWAY)
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
            event = order_event_record(
                order=order,
                type="unpayable_payment_refunded",
                actor=OrderEvent.Actor.SYSTEM,
                message=f"{reason} The payment was refunded to the buyer automatically.",
                data=data,
            )
        else:
            Refund.objects.filter(pk=refund.pk).update(status=Refund.Status.FAILED, failure_reason=failure[:500])
            event = order_event_record(
                order=order,
                type="unpayable_payment_refund_failed",
                actor=OrderEvent.Actor.SYSTEM,
                message=f"{reason} Refunding it failed ({failure}); an operator must refund it."[:500],
                data=data,
            )
        transaction.on_commit(lambda: _notify_seller_of_unpayable(order=order, message=event.message))
    refund.refresh_from_db()
    return refund


def _notify_seller_of_unpayable(*, order: Order, message: str) -> None:
    """The seller hears of money that came in for an order and went back (or must go back)."""
    from django.conf import settings
    from django.core.mail import send_mail

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
    order_event_record(order=order, type="seller_notified", message="The seller was emailed about the refund.")
