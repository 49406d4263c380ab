"""Incoming gateway events: verified, stored once, then acted on (re-verified with the gateway).

A gateway's event is only a hint: its signature is checked over the raw body, it is written once per
gateway and event id before anything happens (a repeat is a no-op, a failure can be replayed), and
what it claims is believed only as far as the gateway itself confirms server-side.
"""

from typing import Any

from django.db import connection
from django.utils import timezone

from marketplace.core.errors import ApplicationError
from marketplace.core.money import format_money

from .disputes import dispute_apply
from .gateways import GatewayUnavailable, InvalidSignature, get_gateway
from .models import Payment, WebhookEvent
from .ports import OrderActor, order_port
from .refunds import refund_record_from_gateway
from .services import payment_apply_gateway_status


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
    event = WebhookEvent(
        gateway=gateway.name,
        event_id=message.event_id,
        type=message.type,
        payload=message.payload,
        payment_ref=message.payment_id or "",
        refunded_total=message.refunded_total,
        dispute_ref=message.dispute_id or "",
    )
    created = _event_store_once(event)
    if not created:
        event = WebhookEvent.objects.get(gateway=gateway.name, event_id=message.event_id)
    if not created and event.status not in (WebhookEvent.Status.RECEIVED, WebhookEvent.Status.FAILED):
        return event, False
    webhook_process(event=event)
    return event, True


def _event_store_once(event: WebhookEvent) -> bool:
    """Writes the event unless its gateway already sent one with its id; True if this call wrote it.

    One ``INSERT … ON CONFLICT DO NOTHING RETURNING id``: the unique constraint decides, with no
    SELECT before and no savepoint around it (``get_or_create``'s four statements). Both databases
    the project runs on (PostgreSQL, SQLite ≥ 3.35) answer ``RETURNING`` for a row they inserted and
    nothing for a conflict. ``bulk_create(ignore_conflicts=True)`` would not say which happened.
    """
    meta = WebhookEvent._meta
    quote = connection.ops.quote_name
    fields = meta.concrete_fields
    values = [field.get_db_prep_save(field.pre_save(event, True), connection) for field in fields]
    # Every name comes from the model's own metadata, quoted; every value is a parameter.
    table, pk = quote(meta.db_table), quote(meta.pk.column)
    columns = ", ".join(quote(field.column) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    conflict = f"{quote('gateway')}, {quote('event_id')}"
    sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) ON CONFLICT ({conflict}) DO NOTHING RETURNING {pk}"  # noqa: S608, E501
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        created = cursor.fetchone() is not None
    if created:
        event._state.adding, event._state.db = False, connection.alias
    return created


def webhook_replay(*, event: WebhookEvent) -> WebhookEvent:
    """Processes a stored event again (from the admin). Safe: everything is re-verified with the
    gateway and every step is idempotent."""
    return webhook_process(event=event)


def webhook_process(*, event: WebhookEvent) -> WebhookEvent:
    if not event.payment_ref:
        if event.dispute_ref:
            return _finish(event, WebhookEvent.Status.IGNORED, "The disputed charge is not a payment of ours.")
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
        if event.dispute_ref:
            return _dispute_event_process(event=event, payment=payment)
        paid = payment_apply_gateway_status(payment=payment, source=f"webhook {event.event_id}")
    except GatewayUnavailable as exc:
        return _finish(event, WebhookEvent.Status.FAILED, f"Could not re-verify with the gateway: {exc}")
    claims_success = event.type.endswith("succeeded")
    if claims_success and not paid:
        order_port().record_event(
            order=payment.order,
            type="webhook_rejected",
            actor=OrderActor.GATEWAY,
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
        order_port().record_event(
            order=payment.order,
            type="webhook_rejected",
            actor=OrderActor.GATEWAY,
            message=f"A webhook claimed {claimed} refunded; the gateway confirms {confirmed}. Nothing changed.",
            data={"webhook_event_id": event.id, "event_id": event.event_id, "payment_id": payment.id},
        )
        return _finish(event, WebhookEvent.Status.REJECTED, "The gateway does not confirm this refund.")
    refund_record_from_gateway(payment=payment, refunded_total=confirmed)
    return _finish(event, WebhookEvent.Status.PROCESSED, "")


def _dispute_event_process(*, event: WebhookEvent, payment: Payment) -> WebhookEvent:
    """A dispute event is only a hint that a dispute changed: the dispute itself is retrieved from the
    gateway, and only what the gateway answers is applied — for this payment's own PaymentIntent, in
    its currency, for at most its amount. A replay, or an older event after a newer one, applies the
    gateway's current word again, which changes nothing."""
    try:
        confirmed = get_gateway(event.gateway).retrieve_dispute(dispute_id=event.dispute_ref)
    except ApplicationError as exc:  # unknown at the gateway (a forged id) or unreadable
        return _reject_dispute(
            event, payment, f"The gateway does not confirm dispute {event.dispute_ref}: {exc.message}"
        )
    if confirmed.id != event.dispute_ref or confirmed.payment_intent != payment.transaction_id:
        return _reject_dispute(event, payment, f"Dispute {event.dispute_ref} is not about this payment at the gateway.")
    if confirmed.currency != payment.currency or confirmed.amount > payment.amount:
        return _reject_dispute(
            event,
            payment,
            f"Dispute {event.dispute_ref} is for {format_money(confirmed.amount, confirmed.currency)}, which this "
            f"payment of {format_money(payment.amount, payment.currency)} cannot cover.",
        )
    dispute_apply(payment=payment, confirmed=confirmed)
    return _finish(event, WebhookEvent.Status.PROCESSED, "")


def _reject_dispute(event: WebhookEvent, payment: Payment, message: str) -> WebhookEvent:
    order_port().record_event(
        order=payment.order,
        type="webhook_rejected",
        actor=OrderActor.GATEWAY,
        message=f"{message} Nothing changed.",
        data={"webhook_event_id": event.id, "event_id": event.event_id, "dispute": event.dispute_ref},
    )
    return _finish(event, WebhookEvent.Status.REJECTED, message)


def _finish(event: WebhookEvent, status: str, error: str) -> WebhookEvent:
    event.status = status
    event.error = error[:500]
    event.processed_at = timezone.now()
    event.save(update_fields=["status", "error", "processed_at", "payment"])
    return event


def headers_from_request(request: Any) -> dict[str, str]:
    return {key.lower(): value for key, value in request.headers.items()}
