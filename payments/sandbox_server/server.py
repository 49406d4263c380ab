"""The sandbox gateway's own side: what an external gateway would run on its servers.

It keeps its own ledger (``SandboxPayment``), shows a hosted payment page, records the buyer's
outcome, and sends a Standard Webhooks-signed event to the marketplace. The marketplace's client in
``payments/gateways/sandbox.py`` only talks to it through its API and its webhooks.
"""

import json
import logging
from datetime import UTC, datetime
from typing import Any

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from marketplace.core.errors import Conflict, NotFound
from marketplace.core.ids import make_id
from payments.models import SandboxPayment, SandboxRefund

logger = logging.getLogger(__name__)

OUTCOMES = ("succeeded", "failed")


def sandbox_enabled() -> bool:
    """Whether the sandbox is one of this site's gateways. Where it is not (a shop taking real money),
    its pages and status API do not exist: a payment page where anyone can choose "succeeded" must
    never be reachable beside a real gateway."""
    return "sandbox" in settings.ENABLED_PAYMENT_GATEWAYS


def sandbox_in_production() -> bool:
    """A site on production settings that runs the sandbox on purpose (SANDBOX_IN_PRODUCTION): a
    staging or demo site, where anyone can "pay" with a click. ``check --deploy`` warns (payments.W001)
    and ``/readyz`` says so, so that nobody mistakes it for a shop taking money."""
    return bool(settings.SANDBOX_IN_PRODUCTION) and sandbox_enabled()


def sandbox_open_payment(
    *, payment_id: str, order_id: str, amount: int, currency: str, description: str, return_url: str
) -> SandboxPayment:
    """Opens the sandbox's side of a payment, once per payment id (the marketplace's idempotency
    key, as a real gateway's): one ``INSERT … ON CONFLICT DO NOTHING``, so that a repeat changes
    nothing and costs no SELECT or savepoint in the caller's transaction."""
    payment = SandboxPayment(
        id=payment_id,
        order_id=order_id,
        amount=amount,
        currency=currency,
        description=description[:300],
        return_url=return_url,
    )
    SandboxPayment.objects.bulk_create([payment], ignore_conflicts=True)
    return payment


def sandbox_payment_status(payment_id: str) -> dict[str, Any] | None:
    payment = SandboxPayment.objects.filter(id=payment_id).first()
    if payment is None:
        return None
    return {
        "id": payment.id,
        "order_id": payment.order_id,
        "status": payment.status,
        "amount": payment.amount,
        "currency": payment.currency,
        "charge_id": payment.charge_id,
        "refunded_amount": payment.refunded_amount,
        "completed_at": payment.completed_at.isoformat() if payment.completed_at else None,
    }


def sandbox_complete(*, payment_id: str, outcome: str) -> SandboxPayment:
    """Records the buyer's choice on the hosted page, once, and sends the signed webhook."""
    if outcome not in OUTCOMES:
        raise Conflict("Unknown outcome.", code="invalid_outcome", status_code=400)
    with transaction.atomic():
        payment = SandboxPayment.objects.select_for_update().filter(id=payment_id).first()
        if payment is None:
            raise NotFound("No such sandbox payment.")
        if payment.status != "requires_payment":
            return payment  # already decided; a double click changes nothing
        payment.status = outcome
        payment.completed_at = timezone.now()
        if outcome == "succeeded":
            payment.charge_id = make_id("sbxch")
        payment.save(update_fields=["status", "completed_at", "charge_id"])
        event = {
            "id": make_id("evt"),
            "type": f"payment.{outcome}",
            "data": {
                "payment_id": payment.id,
                "order_id": payment.order_id,
                "amount": payment.amount,
                "currency": payment.currency,
            },
        }
        transaction.on_commit(lambda: sandbox_send_webhook(event))
    return payment


def sign_event(
    event: dict[str, Any], *, secret: str | None = None, at: datetime | None = None
) -> tuple[bytes, dict[str, str]]:
    """The raw body and Standard Webhooks headers for an event."""
    body = json.dumps(event, separators=(",", ":"))
    timestamp = at or datetime.now(tz=UTC)
    msg_id = f"msg_{event['id']}"
    signature = Webhook(secret or settings.SANDBOX_WEBHOOK_SECRET).sign(msg_id, timestamp, body)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
    }
    return body.encode(), headers


def sandbox_send_webhook(event: dict[str, Any]) -> None:
    """Delivers the event: over HTTP when SANDBOX_WEBHOOK_URL is set, else straight into the same
    handler the HTTP endpoint uses (signature verification included)."""
    body, headers = sign_event(event)
    url = settings.SANDBOX_WEBHOOK_URL
    if url:
        try:
            response = requests.post(
                url, data=body, headers={**headers, "Content-Type": "application/json"}, timeout=10
            )
            logger.info("sandbox webhook %s → %s", event["id"], response.status_code)
        except requests.RequestException:
            logger.exception("sandbox webhook %s could not be delivered; the sweeper will re-check", event["id"])
        return
    from payments.gateway_events import webhook_receive

    try:
        webhook_receive(gateway_name="sandbox", body=body, headers=headers)
    except Exception:  # noqa: BLE001 - a real gateway would retry; our sweeper and polling re-check
        logger.exception("sandbox webhook %s failed in processing", event["id"])


def sandbox_refund(*, payment_id: str, amount: int, idempotency_key: str) -> SandboxRefund:
    """Refunds part or all of a charged sandbox payment. The same idempotency key refunds once."""
    with transaction.atomic():
        existing = SandboxRefund.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
        payment = SandboxPayment.objects.select_for_update().filter(id=payment_id).first()
        if payment is None or payment.status != "succeeded":
            raise Conflict("The sandbox has no charge to refund for this payment.", code="refund_failed")
        if amount <= 0 or payment.refunded_amount + amount > payment.amount:
            raise Conflict("The refund exceeds what was charged.", code="refund_failed")
        payment.refunded_amount += amount
        payment.save(update_fields=["refunded_amount"])
        return SandboxRefund.objects.create(
            id=make_id("sbxre"), payment=payment, amount=amount, idempotency_key=idempotency_key
        )
