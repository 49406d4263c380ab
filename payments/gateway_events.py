"""Incoming gateway events: verified, stored once, then acted on (re-verified with the gateway).

A gateway's event is only a hint: its signature is checked over the raw body, it is written once per
gateway and event id before anything happens (a repeat is a no-op, a failure can be replayed), and
what it claims is believed only as far as the gateway itself confirms server-side.
"""

import logging
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.utils import timezone

from marketplace.core.errors import ApplicationError, DependencyUnavailable, NotFound
from marketplace.core.money import format_money

from .disputes import dispute_apply
from .gateways import GatewayUnavailable, InvalidSignature, get_gateway
from .models import Payment, PaymentStatus, WebhookEvent
from .ports import OrderActor, order_port
from .refunds import refund_record_from_gateway
from .services import payment_apply_gateway_status

logger = logging.getLogger(__name__)


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


# --- Browser returns (gateways without webhooks) and status queries --------------------------------

# What the buyer's browser may say when it comes back from a gateway; only the wording of a closed
# attempt's reason depends on it, never whether anything is paid.
RETURN_OUTCOMES = {
    "success": "The buyer came back from {gateway}, which did not complete the payment.",
    "failure": "The payment failed at {gateway}.",
    "cancel": "The buyer cancelled the payment at {gateway}.",
}


def gateway_return_receive(*, gateway_name: str, reference: str, outcome: str) -> Payment:
    """The buyer's browser came back from a gateway whose only signal that is (bKash's callback).

    Nothing in it is trusted beyond ``reference``, the gateway's id of the payment, which finds ours
    (or 404; nothing changes). The server then asks the gateway itself: a ``needs_capture`` gateway
    executes the approved payment and is queried; only its own answer, amount, currency and
    reference matching, pays the order (a mismatch is recorded and pays nothing). An attempt the
    gateway did not complete is closed as failed, so the order can take a new one. A repeat (a
    reload, a replay, a late return) asks again and changes nothing more: a payment already paid
    stays paid, one delivery. The gateway not answering is ``DependencyUnavailable`` (503), with
    nothing changed: the buyer may come back again, and the sweeper asks meanwhile.
    """
    if outcome not in RETURN_OUTCOMES:
        raise ApplicationError("Unknown outcome.", code="validation_error", status_code=400)
    gateway = get_gateway(gateway_name)
    payment = (
        Payment.objects.select_related("order__product")
        .filter(gateway=gateway.name, transaction_id=reference)
        .exclude(transaction_id="")
        .first()
    )
    if payment is None:
        raise NotFound("No payment matches this return.", code="payment_not_found")
    try:
        payment_apply_gateway_status(
            payment=payment,
            source=f"{gateway.name} return",
            capture=outcome == "success",
            close_unpaid=RETURN_OUTCOMES[outcome].format(gateway=gateway.name),
        )
    except GatewayUnavailable as exc:
        raise DependencyUnavailable(
            "The payment gateway is not answering; your payment is not lost. Please try again in a moment."
        ) from exc
    return payment


@dataclass
class OpenPaymentsQueried:
    paid: list[str] = field(default_factory=list)
    settled: list[str] = field(default_factory=list)  # failed (or closed) at the gateway's word
    open: list[str] = field(default_factory=list)  # still open at the gateway
    unanswered: list[str] = field(default_factory=list)  # the gateway did not answer: next run


def payment_query_and_settle(*, payment: Payment, source: str) -> str:
    """Asks the payment's gateway (``retrieve``, and ``capture`` for an approved payment of a
    ``needs_capture`` gateway) and settles the payment either way, as a webhook's re-verification
    does. Answers ``paid``, ``settled`` or ``open``. Raises ``GatewayUnavailable``."""
    if payment_apply_gateway_status(payment=payment, source=source):
        return "paid"
    return "open" if payment.status == PaymentStatus.PENDING else "settled"


def payments_query_open(*, created_before: Any, created_after: Any, limit: int = 500) -> OpenPaymentsQueried:
    """The sweeper's half for lost signals: every open payment of any gateway created between
    ``created_after`` and ``created_before`` (a lost webhook, a buyer who closed the tab before the
    gateway sent them back) is asked about and settled; older ones are no longer asked (their pages
    are long gone), so that abandoned payments do not pile up into every run. A gateway that does
    not answer leaves its payment for the next run; any other error is logged and the run goes on
    (one payment never stops the others)."""
    result = OpenPaymentsQueried()
    open_payments = Payment.objects.filter(
        status=PaymentStatus.PENDING, created_at__lt=created_before, created_at__gte=created_after
    ).exclude(redirect_url="")
    for payment in open_payments.order_by("created_at")[:limit]:
        try:
            outcome = payment_query_and_settle(payment=payment, source="status query")
        except GatewayUnavailable:
            result.unanswered.append(payment.id)
            continue
        except Exception:  # noqa: BLE001 - logged; the next payment is asked all the same
            logger.exception("status query of payment %s failed", payment.id)
            result.unanswered.append(payment.id)
            continue
        getattr(result, outcome).append(payment.id)
    return result


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
