"""The seller's webhook endpoints: which URLs hear which events, their secrets, and switching an
endpoint off (by the seller, or on its own after ``410 Gone`` or too many failures, with an email).

A URL is checked when it is saved (https, a public address) by the one outbound client's rules; it
is checked again on the socket of every attempt (``orders.seller_events.delivery``).
"""

import base64
import secrets
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from marketplace.core.errors import NotFound, ValidationFailed
from marketplace.core.outbound_http import OutboundError, OutboundPolicy, outbound_url_check, private_urls_allowed
from orders.models import WebhookDelivery, WebhookEndpoint

EVENT_TYPES = (
    "order.created",
    "order.paid",
    "order.delivered",
    "order.partially_delivered",
    "order.needs_attention",
    "order.failed",
    "order.cancelled",
    "order.refunded",
    "product.out_of_stock",
)
Status = WebhookDelivery.Status


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def webhook_url_policy() -> OutboundPolicy:
    """Webhooks go to public https:// URLs; local development and tests may use local receivers."""
    allowed = private_urls_allowed()
    return OutboundPolicy(allow_http=allowed, allow_private=allowed)


def webhook_url_clean(url: str, *, field: str = "url") -> str:
    """The URL, stripped, if webhooks may be sent to it; else ``ValidationFailed`` naming ``field``
    with the one neutral text (or what is wrong with the URL's form). Checked again at each call."""
    url = url.strip()
    try:
        outbound_url_check(url, policy=webhook_url_policy())
    except OutboundError as exc:
        raise ValidationFailed(exc.detail, fields={field: [exc.detail]}) from None
    return url


def _clean_events(events: list[str]) -> list[str]:
    unknown = sorted({e for e in events if e not in EVENT_TYPES})
    if unknown:
        message = f"Unknown event type: {', '.join(unknown)}."
        raise ValidationFailed(message, fields={"events": [message]})
    return [e for e in EVENT_TYPES if e in events]  # in a stable order, each once


def webhook_endpoint_list(*, seller: Any) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(seller=seller, kind=WebhookEndpoint.Kind.ENDPOINT).order_by(
        "created_at", "id"
    )


def webhook_endpoint_get(*, seller: Any, endpoint_id: str, any_kind: bool = False) -> WebhookEndpoint:
    endpoints = WebhookEndpoint.objects.filter(seller=seller, id=endpoint_id)
    if not any_kind:
        endpoints = endpoints.filter(kind=WebhookEndpoint.Kind.ENDPOINT)
    endpoint = endpoints.first()
    if endpoint is None:
        raise NotFound("Webhook endpoint not found.")
    return endpoint


def webhook_endpoint_create(
    *, seller: Any, url: str, events: list[str] | None = None, active: bool = True
) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        seller=seller,
        url=webhook_url_clean(url),
        events=_clean_events(events or []),
        active=active,
        secret=new_webhook_secret(),
    )


def webhook_endpoint_update(*, endpoint: WebhookEndpoint, data: dict[str, Any]) -> WebhookEndpoint:
    fields = ["updated_at"]
    if "url" in data:
        endpoint.url = webhook_url_clean(data["url"])
        fields.append("url")
    if "events" in data:
        endpoint.events = _clean_events(data["events"] or [])
        fields.append("events")
    if "active" in data and bool(data["active"]) != endpoint.active:
        endpoint.active = bool(data["active"])
        fields.append("active")
        if endpoint.active:  # switched back on: a fresh start
            endpoint.consecutive_failures, endpoint.disabled_reason, endpoint.disabled_at = 0, "", None
            fields += ["consecutive_failures", "disabled_reason", "disabled_at"]
    endpoint.save(update_fields=fields)
    return endpoint


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """Deletes the endpoint; its deliveries stay (``endpoint`` empty) and pending ones stop."""
    with transaction.atomic():
        endpoint.deliveries.filter(status=Status.PENDING).update(
            status=Status.DISABLED, next_attempt_at=None, last_error="The endpoint was deleted."
        )
        endpoint.delete()


def order_urls_endpoint(*, seller_id: Any) -> WebhookEndpoint:
    """The seller's secret for their orders' own ``webhook_urls``, made the first time it is needed."""
    endpoint, _ = WebhookEndpoint.objects.get_or_create(
        seller_id=seller_id,
        kind=WebhookEndpoint.Kind.ORDER_URLS,
        defaults={"secret": new_webhook_secret()},
    )
    return endpoint


def order_urls_secret_roll(*, seller: Any) -> WebhookEndpoint:
    """A new secret for the orders' ``webhook_urls``; the old one signs nothing from now on."""
    endpoint = order_urls_endpoint(seller_id=seller.pk)
    endpoint.secret = new_webhook_secret()
    endpoint.save(update_fields=["secret", "updated_at"])
    return endpoint


def webhook_endpoint_disable(*, endpoint: WebhookEndpoint, reason: str) -> None:
    """Stops sending to the endpoint (its pending deliveries too) and tells the seller."""
    now = timezone.now()
    WebhookEndpoint.objects.filter(id=endpoint.id).update(
        active=False, disabled_reason=reason[:300], disabled_at=now, updated_at=now
    )
    endpoint.active, endpoint.disabled_reason, endpoint.disabled_at = False, reason[:300], now
    # Not the ones in flight (no next attempt set): their workers hold their rows and record them.
    endpoint.deliveries.filter(status=Status.PENDING, next_attempt_at__isnull=False).update(
        status=Status.DISABLED, next_attempt_at=None, last_error="The endpoint was disabled.", updated_at=now
    )
    seller_email, url = endpoint.seller.email, endpoint.url
    transaction.on_commit(lambda: _email_endpoint_disabled(seller_email, url, reason), robust=True)


def _email_endpoint_disabled(email: str, url: str, reason: str) -> None:
    send_mail(
        subject="A webhook endpoint was disabled",
        message=(
            f"We stopped sending events to {url}.\n\n{reason}\n\n"
            "Events from now on are not sent to it. Once it answers again, switch it back on "
            f"(PATCH /api/v1/webhook-endpoints with active=true) and resend what it missed.\n\n{settings.SITE_URL}\n"
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[email],
    )
