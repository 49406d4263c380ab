"""Incoming Stripe Connect webhooks (``POST /api/v1/payments/webhooks/stripe-connect``): the signature
over the raw body with ``STRIPE_CONNECT_WEBHOOK_SECRET`` first, then stored once (``WebhookEvent``,
gateway ``stripe_connect``, unique per event id), then handed to the payouts side through
``connect_port`` — which retrieves the account or payout from Stripe before it changes anything.

Like the payment gateways' webhooks: a bad signature is a 400 that stores nothing; a repeat answers
200 and does nothing again; an event that could not be processed (Stripe did not answer) is kept as
``failed`` and answered 503, so Stripe sends it again, and an operator can replay it from the admin.
"""

from django.utils import timezone

from marketplace.core.errors import ApplicationError

from .connect_port import ConnectOutcome, connect_port
from .gateway_events import _event_store_once
from .gateways import GatewayUnavailable, InvalidSignature
from .gateways.stripe_connect import parse_connect_webhook
from .models import WebhookEvent

CONNECT_GATEWAY = "stripe_connect"


def connect_webhook_receive(*, body: bytes, headers: dict[str, str]) -> tuple[WebhookEvent, bool]:
    """Returns the stored event and whether this call processed it (False for a repeat)."""
    try:
        message = parse_connect_webhook(body=body, headers=headers)
    except InvalidSignature as exc:
        raise ApplicationError(f"Invalid webhook signature: {exc}", code="invalid_signature", status_code=400) from exc
    event = WebhookEvent(gateway=CONNECT_GATEWAY, event_id=message.event_id, type=message.type, payload=message.payload)
    if not _event_store_once(event):
        event = WebhookEvent.objects.get(gateway=CONNECT_GATEWAY, event_id=message.event_id)
        if event.status not in (WebhookEvent.Status.RECEIVED, WebhookEvent.Status.FAILED):
            return event, False
    connect_event_process(event=event)
    return event, True


def connect_event_process(*, event: WebhookEvent) -> WebhookEvent:
    """Acts on a stored Connect event (also the admin's replay): only the account and object ids are
    taken from it, and they were checked when it was received."""
    account_id = str(event.payload.get("account") or "")
    object_id = str(((event.payload.get("data") or {}).get("object") or {}).get("id") or "")
    port = connect_port()
    try:
        if event.type == "account.updated":
            outcome, note = port.account_updated(account_id=account_id)
        elif event.type in ("payout.paid", "payout.failed"):
            outcome, note = port.payout_settled(account_id=account_id, stripe_payout_id=object_id)
        else:
            outcome, note = ConnectOutcome.IGNORED, f"{event.type} is not acted on."
    except GatewayUnavailable as exc:
        return _finish(event, WebhookEvent.Status.FAILED, f"Could not re-verify with Stripe: {exc}")
    except ApplicationError as exc:  # Stripe refused (e.g. a reversal): kept for an operator to replay
        return _finish(event, WebhookEvent.Status.FAILED, exc.message)
    return _finish(event, outcome, note)


def _finish(event: WebhookEvent, status: str, error: str) -> WebhookEvent:
    event.status = status
    event.error = error[:500]
    event.processed_at = timezone.now()
    event.save(update_fields=["status", "error", "processed_at"])
    return event
