"""Payments: opening them, and believing them only when the gateway confirms server-side."""

import logging
from typing import Any

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from marketplace.core.errors import ApplicationError, DependencyUnavailable
from orders.lifecycle import order_event_record
from orders.models import Order, OrderEvent, OrderStatus

from .gateways import GatewayUnavailable, InvalidSignature, get_gateway
from .gateways.base import GatewayRefund
from .models import Payment, PaymentStatus, Refund, WebhookEvent

logger = logging.getLogger(__name__)


def payment_initiate(*, order: Order, gateway_name: str | None, return_url: str) -> Payment:
    """Opens a payment for a pending order (or a failed one, which becomes pending again).

    A pending payment that is still open is reused, so a double submit never opens two.
    """
    from orders.services import order_reopen_for_payment

    gateway = get_gateway(gateway_name)
    if order.status == OrderStatus.FAILED:
        order = order_reopen_for_payment(order=order)
    if order.status != OrderStatus.PENDING:
        raise ApplicationError(
            f"This order is {order.status}; it cannot take a payment.", code="invalid_transition", status_code=409
        )
    open_payment = (
        order.payments.filter(gateway=gateway.name, status=PaymentStatus.PENDING).exclude(redirect_url="").last()
    )
    if open_payment is not None:
        return open_payment
    # The payment row is committed before the gateway is called (its id is the gateway's idempotency
    # key), so a slow gateway never holds a transaction open.
    payment = Payment.objects.create(
        order=order,
        gateway=gateway.name,
        amount=order.total_amount,
        currency=order.currency,
        payment_method=gateway.name,
    )
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
            refund_record_from_gateway(payment=payment, refunded_total=event.refunded_total)
            return _finish(event, WebhookEvent.Status.PROCESSED, "")
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
    from orders.services import order_apply_refund

    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if idempotency_key:
            existing = Refund.objects.filter(idempotency_key=idempotency_key).first()
            if existing is not None:
                if existing.order_id != locked.id or (amount is not None and existing.amount != amount):
                    raise ApplicationError(
                        "This idempotency key was already used for another refund.",
                        code="idempotency_conflict",
                        status_code=409,
                    )
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
        payment = (
            locked.payments.filter(status__in=[PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED])
            .order_by("-created_at")
            .first()
        )
        if payment is None:
            raise ApplicationError("This order has no captured payment to refund.", code="no_payment", status_code=409)
        refund = Refund.objects.create(
            order=locked,
            payment=payment,
            amount=amount,
            currency=locked.currency,
            reason=reason[:500],
            source=source,
            created_by=user if getattr(user, "is_authenticated", False) else None,
            idempotency_key=idempotency_key or None,
        )
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
    """The gateway reports how much of a payment is refunded in total (e.g. Stripe's
    ``charge.refunded``). Only the part we do not know yet is recorded: never double-counted."""
    from orders.services import order_apply_refund

    if payment.order.status == OrderStatus.PENDING:
        # A refund reported before the completion it refers to: settle the payment first.
        payment_apply_gateway_status(payment=payment, source="refund event")
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=payment.order_id)
        covered = min(refunded_total, order.total_amount) - order.refunded_amount
        # Refunds we asked for and the gateway left pending are settled first, oldest first.
        for pending in (
            Refund.objects.select_for_update()
            .filter(order=order, status=Refund.Status.PENDING)
            .order_by("created_at", "id")
        ):
            if pending.amount > covered:
                break
            pending.status = Refund.Status.SUCCEEDED
            pending.save(update_fields=["status", "updated_at"])
            order_apply_refund(order_id=order.id, refund=pending, user=None, actor=OrderEvent.Actor.GATEWAY)
            covered -= pending.amount
            order.refresh_from_db()
        known = order.refunded_amount + _pending_refunds(order)
        missing = min(refunded_total, order.total_amount) - known
        if missing <= 0:
            return None
        if order.status not in REFUNDABLE:
            order_event_record(
                order=order,
                type="refund_unapplied",
                actor=OrderEvent.Actor.GATEWAY,
                message=f"The gateway reports a refund of {missing} that this {order.status} order cannot take.",
            )
            return None
        refund = Refund.objects.create(
            order=order,
            payment=payment,
            amount=missing,
            currency=order.currency,
            reason="Refunded at the gateway.",
            status=Refund.Status.SUCCEEDED,
            source=Refund.Source.GATEWAY,
        )
        order_apply_refund(order_id=order.id, refund=refund, user=None, actor=OrderEvent.Actor.GATEWAY)
        return refund


def payment_refund_orphan(*, payment_id: str) -> Refund | None:
    """Refunds, once, a payment that succeeded after its order was cancelled (it expired while the
    buyer was still on the gateway's page). The order stays cancelled; its timeline says why."""
    payment = Payment.objects.select_related("order").filter(id=payment_id).first()
    if payment is None or payment.order.status != OrderStatus.CANCELLED:
        return None
    key = f"late-payment-{payment.id}"
    try:
        with transaction.atomic():
            refund = Refund.objects.create(
                order=payment.order,
                payment=payment,
                amount=payment.amount,
                currency=payment.currency,
                reason="Paid after the order was cancelled; refunded automatically.",
                source=Refund.Source.SYSTEM,
                idempotency_key=key,
            )
    except IntegrityError:
        return None  # already refunded (a repeated webhook)
    answer: GatewayRefund | None = None
    try:
        answer = get_gateway(payment.gateway).refund(
            payment=payment, amount=payment.amount, reason=refund.reason, idempotency_key=refund.id
        )
    except GatewayUnavailable as exc:
        failure = str(exc)
    else:
        failure = answer.failure_reason if answer.status == "failed" else ""
    with transaction.atomic():  # a pending gateway refund is settled later by its charge.refunded event
        if answer is not None and not failure:
            Refund.objects.filter(pk=refund.pk).update(
                status=Refund.Status.SUCCEEDED, gateway_refund_id=answer.refund_id
            )
            Payment.objects.filter(pk=payment.pk).update(status=PaymentStatus.REFUNDED)
            order_event_record(
                order=payment.order,
                type="late_payment_refunded",
                actor=OrderEvent.Actor.SYSTEM,
                message="A payment arrived after the order was cancelled; it was refunded automatically.",
                data={"payment_id": payment.id, "refund_id": refund.id},
            )
        else:
            Refund.objects.filter(pk=refund.pk).update(status=Refund.Status.FAILED, failure_reason=failure[:500])
            order_event_record(
                order=payment.order,
                type="late_payment_refund_failed",
                actor=OrderEvent.Actor.SYSTEM,
                message=f"A payment arrived after the order was cancelled; refunding it failed: {failure}"[:500],
                data={"payment_id": payment.id, "refund_id": refund.id},
            )
    return refund
