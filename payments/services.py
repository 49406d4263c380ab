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
from .models import Payment, PaymentStatus, WebhookEvent

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
    with transaction.atomic():
        payment = Payment.objects.create(
            order=order,
            gateway=gateway.name,
            amount=order.total_amount,
            currency=order.currency,
            payment_method=gateway.name,
        )
        try:
            checkout = gateway.create_checkout(payment=payment, order=order, return_url=return_url)
        except GatewayUnavailable as exc:
            raise DependencyUnavailable("The payment gateway is not answering. Please try again.") from exc
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
            if payment.status != PaymentStatus.SUCCEEDED:
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
        logger.warning("gateway unavailable while re-checking %s", order.id)


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
                defaults={"type": message.type, "payload": message.payload},
            )
    except IntegrityError:
        event, created = WebhookEvent.objects.get(gateway=gateway.name, event_id=message.event_id), False
    if not created and event.status not in (WebhookEvent.Status.RECEIVED, WebhookEvent.Status.FAILED):
        return event, False
    webhook_process(event=event, payment_id=message.payment_id)
    return event, True


def webhook_process(*, event: WebhookEvent, payment_id: str | None) -> WebhookEvent:
    payment = Payment.objects.filter(id=payment_id, gateway=event.gateway).first() if payment_id else None
    if payment is None:
        return _finish(event, WebhookEvent.Status.IGNORED, "No payment of ours matches this event.")
    event.payment = payment
    try:
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
