"""Delivering seller events: the fan-out of each event into one delivery per receiving URL, one
signed attempt of a delivery and its bookkeeping, resends, and the sweeper for what a lost task left.

- An event (``SellerEvent``, written in the transaction that caused it) is fanned out after commit
  into ``WebhookDelivery`` rows: one per active endpoint of the seller that wants the event, and one
  per ``webhook_urls`` entry of the order it is about. The body is frozen then; every attempt sends
  the same bytes with the same ``webhook-id``, a fresh ``webhook-timestamp`` and its signature.
- An attempt is a success on any 2xx. Anything else is retried by the task on the schedule of
  ``WEBHOOK_RETRY_SCHEDULE``; ``410 Gone`` disables the endpoint at once, and
  ``WEBHOOK_DISABLE_AFTER_FAILURES`` deliveries in a row that failed every retry disable it too.
- Attempts are queued by task name (``marketplace.core.queue``): this module never imports
  ``orders.tasks``, which imports it.
"""

import json
import time
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from marketplace.core.errors import ApplicationError, Conflict, NotFound
from marketplace.core.outbound_http import OutboundError, outbound_post
from marketplace.core.queue import enqueue_on_commit
from marketplace.core.ratelimit import retry_after
from orders.models import Order, SellerEvent, WebhookDelivery, WebhookEndpoint

from .endpoints import order_urls_endpoint, webhook_endpoint_disable, webhook_url_policy

DELIVER_TASK = "orders.tasks.deliver_webhook"
RESPONSE_LIMIT = 1024  # bytes of a receiver's answer that are kept
ATTEMPT_LOG_LIMIT = 50  # attempts kept per delivery (resends add to the schedule's eight)
# A task may run a little before the attempt it carries is due (clocks of different workers).
CLAIM_SLACK = timedelta(seconds=30)
# A pending delivery whose attempt is this late (a lost task, a dead worker) is queued again.
STUCK_AFTER = timedelta(minutes=10)
Status = WebhookDelivery.Status


# --- Deliveries of an endpoint ------------------------------------------------------------------


def webhook_delivery_list(*, endpoint: WebhookEndpoint) -> QuerySet[WebhookDelivery]:
    return endpoint.deliveries.select_related("event").order_by("-created_at", "-id")


def webhook_delivery_get(*, endpoint: WebhookEndpoint, delivery_id: str) -> WebhookDelivery:
    delivery = endpoint.deliveries.select_related("event").filter(id=delivery_id).first()
    if delivery is None:
        raise NotFound("Webhook delivery not found.")
    return delivery


def webhook_delivery_resend(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """A new attempt (and, if it fails, the schedule's retries) of the same delivery: the same
    body and ``webhook-id``, so a receiver that already has it can tell."""
    endpoint = delivery.endpoint
    if endpoint is None:
        raise Conflict("The endpoint of this delivery was deleted.", code="endpoint_deleted")
    if not endpoint.active:
        raise Conflict("The endpoint is disabled: enable it first.", code="endpoint_disabled")
    now = timezone.now()
    WebhookDelivery.objects.filter(id=delivery.id).update(status=Status.PENDING, next_attempt_at=now, updated_at=now)
    _queue_on_commit([delivery.id])
    delivery.refresh_from_db()
    return delivery


# --- Fan-out -----------------------------------------------------------------------------------


def dispatch_seller_event_on_commit(event: SellerEvent) -> None:
    """Called for every new ``SellerEvent`` (see ``orders.seller_events.outbox``): its deliveries are made and
    queued once the transaction that wrote it commits. If that is lost, ``webhooks_sweep`` does it."""
    event_id = event.id
    transaction.on_commit(lambda: seller_event_dispatch(event_id=event_id), robust=True)


def event_body(event: SellerEvent) -> str:
    """The frozen JSON body: ``{"type", "timestamp", "data"}``, whatever shape the event was stored in."""
    payload = event.data
    if not (isinstance(payload, dict) and {"type", "timestamp", "data"} <= set(payload)):
        payload = {
            "type": event.type,
            "timestamp": event.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "data": payload,
        }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def webhook_id_for(event: SellerEvent) -> str:
    """``msg_...``: one per event, so that every destination and every attempt carries the same id."""
    return "msg_" + event.id.removeprefix("evt_")


def _order_webhook_urls(event: SellerEvent) -> list[str]:
    if not event.type.startswith("order."):
        return []
    data = event.data.get("data") if isinstance(event.data, dict) else None
    order_id = data.get("id") if isinstance(data, dict) else None
    if not order_id:
        return []
    urls = Order.objects.filter(id=order_id, seller_id=event.seller_id).values_list("webhook_urls", flat=True).first()
    return [u for u in dict.fromkeys(urls or []) if isinstance(u, str) and u]


def seller_event_dispatch(*, event_id: str) -> list[str]:
    """Makes the event's deliveries (once) and queues them. Returns the ids of new deliveries."""
    created: list[str] = []
    with transaction.atomic():
        event = SellerEvent.objects.select_for_update().filter(id=event_id).first()
        if event is None or event.dispatched_at is not None:
            return created
        targets: list[tuple[WebhookEndpoint, str]] = [
            (endpoint, endpoint.url)
            for endpoint in WebhookEndpoint.objects.filter(
                seller_id=event.seller_id,
                kind=WebhookEndpoint.Kind.ENDPOINT,
                active=True,
                created_at__lte=event.created_at,  # an endpoint hears what happens after it exists
            ).order_by("created_at", "id")
            if endpoint.wants(event.type)
        ]
        order_urls = _order_webhook_urls(event)
        if order_urls:
            shared = order_urls_endpoint(seller_id=event.seller_id)
            targets += [(shared, url) for url in order_urls]
        body = event_body(event)
        now = timezone.now()
        for endpoint, url in targets:
            delivery, was_created = WebhookDelivery.objects.get_or_create(
                event=event,
                endpoint=endpoint,
                url=url,
                defaults={"webhook_id": webhook_id_for(event), "body": body, "next_attempt_at": now},
            )
            if was_created:
                created.append(delivery.id)
        event.dispatched_at = now
        event.save(update_fields=["dispatched_at"])
        _queue_on_commit(created)
    return created


def _queue_on_commit(delivery_ids: list[str]) -> None:
    for delivery_id in delivery_ids:
        enqueue_on_commit(DELIVER_TASK, delivery_id)


# --- One attempt -------------------------------------------------------------------------------


def _sign_headers(*, secret: str, webhook_id: str, body: str) -> dict[str, str]:
    now = datetime.now(tz=UTC)
    return {
        "Content-Type": "application/json",
        "User-Agent": "Marketplace-Webhooks/1.0",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, now, body),
    }


def _post(url: str, body: str, headers: dict[str, str]) -> tuple[int, str]:
    """POSTs through the one outbound client: at most ``RESPONSE_LIMIT`` bytes of the answer are
    kept, no redirect is followed, and the address is checked on the socket itself."""
    response = outbound_post(
        url=url,
        body=body.encode(),
        headers=headers,
        policy=webhook_url_policy(),
        read_timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
        max_bytes=RESPONSE_LIMIT,
        truncate=True,
    )
    return response.status_code, response.text


def webhook_delivery_attempt(*, delivery_id: str, retry_in: float | None, count_for_endpoint: bool = True) -> str:
    """One attempt of a delivery. ``retry_in``: seconds until the next attempt if this one fails,
    or ``None`` if it is the last. Returns ``succeeded``, ``retry``, ``failed``, ``disabled`` or
    ``skipped`` (not pending, not yet due, or already taken by another worker)."""
    now = timezone.now()
    claimed = WebhookDelivery.objects.filter(
        id=delivery_id, status=Status.PENDING, next_attempt_at__lte=now + CLAIM_SLACK
    ).update(next_attempt_at=None, updated_at=now)
    if not claimed:
        return "skipped"
    delivery = WebhookDelivery.objects.select_related("endpoint").get(id=delivery_id)
    endpoint = delivery.endpoint
    if endpoint is None or not endpoint.active:
        reason = "The endpoint was deleted." if endpoint is None else "The endpoint is disabled."
        WebhookDelivery.objects.filter(id=delivery_id).update(
            status=Status.DISABLED, last_error=f"{reason} Nothing was sent.", updated_at=timezone.now()
        )
        return "disabled"

    status_code: int | None = None
    response_text = ""
    error = ""
    permanent = False
    started = time.monotonic()
    try:
        headers = _sign_headers(secret=endpoint.secret, webhook_id=delivery.webhook_id, body=delivery.body)
        status_code, response_text = _post(delivery.url, delivery.body, headers)
    except OutboundError as exc:
        # One text for every failure (a refused address, a closed port, a timeout): the seller
        # learns nothing about our network; the reason is in the operators' log.
        error, permanent = str(exc), not exc.retryable
    duration_ms = int((time.monotonic() - started) * 1000)
    return _record_attempt(
        delivery_id=delivery_id,
        status_code=status_code,
        duration_ms=duration_ms,
        response_text=response_text,
        error=error,
        retry_in=None if permanent else retry_in,
        count_for_endpoint=count_for_endpoint,
    )


def _record_attempt(
    *,
    delivery_id: str,
    status_code: int | None,
    duration_ms: int,
    response_text: str,
    error: str,
    retry_in: float | None,
    count_for_endpoint: bool = True,
) -> str:
    now = timezone.now()
    succeeded = status_code is not None and 200 <= status_code < 300
    gone = status_code == 410
    if status_code is not None and not succeeded and not error:
        error = f"The endpoint answered {status_code}."
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(of=("self",)).select_related("endpoint").get(id=delivery_id)
        )
        endpoint = delivery.endpoint
        delivery.attempts += 1
        delivery.last_attempt_at = now
        delivery.last_status_code = status_code
        delivery.last_duration_ms = duration_ms
        delivery.last_response = response_text
        delivery.last_error = error[:500]
        delivery.attempt_log = [
            *delivery.attempt_log,
            {
                "at": now.isoformat().replace("+00:00", "Z"),
                "status_code": status_code,
                "duration_ms": duration_ms,
                "response": response_text,
                "error": error[:500],
            },
        ][-ATTEMPT_LOG_LIMIT:]
        if succeeded:
            delivery.status, delivery.next_attempt_at, outcome = Status.SUCCEEDED, None, "succeeded"
        elif retry_in is not None and not gone:
            delivery.status, outcome = Status.PENDING, "retry"
            delivery.next_attempt_at = now + timedelta(seconds=retry_in)
        else:
            delivery.status, delivery.next_attempt_at, outcome = Status.FAILED, None, "failed"
        delivery.save()
        if endpoint is not None and count_for_endpoint:
            _endpoint_after_attempt(endpoint_id=endpoint.id, outcome=outcome, gone=gone)
    return outcome


def _endpoint_after_attempt(*, endpoint_id: str, outcome: str, gone: bool) -> None:
    """Resets the failure count on a success; counts a delivery that failed for good, and disables
    the endpoint on ``410 Gone`` or after too many of them in a row."""
    if outcome == "retry":
        return
    endpoint = WebhookEndpoint.objects.select_for_update().get(id=endpoint_id)
    if outcome == "succeeded":
        if endpoint.consecutive_failures:
            WebhookEndpoint.objects.filter(id=endpoint_id).update(consecutive_failures=0)
        return
    WebhookEndpoint.objects.filter(id=endpoint_id).update(consecutive_failures=F("consecutive_failures") + 1)
    endpoint.refresh_from_db(fields=["consecutive_failures"])
    if endpoint.kind != WebhookEndpoint.Kind.ENDPOINT or not endpoint.active:
        return  # the orders' own URLs share one secret: one buyer-side URL never stops the others
    limit = settings.WEBHOOK_DISABLE_AFTER_FAILURES
    if gone:
        webhook_endpoint_disable(endpoint=endpoint, reason="The endpoint answered 410 Gone.")
    elif limit and endpoint.consecutive_failures >= limit:
        webhook_endpoint_disable(
            endpoint=endpoint,
            reason=f"{endpoint.consecutive_failures} deliveries in a row failed after every retry.",
        )


# --- A test event ------------------------------------------------------------------------------

PING_TYPE = "ping"


class WebhookTestRateLimited(ApplicationError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many test events. Try again in {retry_after} seconds.")
        self.retry_after = retry_after


def webhook_endpoint_test(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """Sends a signed ``ping`` to the endpoint now, once, and answers the delivery with what the
    endpoint said. Signed and sent exactly as real events are (the one outbound client, the
    endpoint's secret, Standard Webhooks headers), but never retried and never counted towards
    switching the endpoint off. Rate limited per endpoint (``webhook_test``)."""
    if endpoint.kind != WebhookEndpoint.Kind.ENDPOINT:
        raise NotFound("Webhook endpoint not found.")
    if not endpoint.active:
        raise Conflict("The endpoint is disabled: enable it first.", code="endpoint_disabled")
    wait = retry_after([("webhook_test", endpoint.id)])
    if wait is not None:
        raise WebhookTestRateLimited(wait)
    now = timezone.now()
    payload = {
        "type": PING_TYPE,
        "timestamp": now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": {"endpoint_id": endpoint.id, "message": "A test event from the marketplace."},
    }
    # Written already dispatched: the fan-out and the sweeper never send it to anyone else.
    event = SellerEvent.objects.create(seller_id=endpoint.seller_id, type=PING_TYPE, data=payload, dispatched_at=now)
    delivery = WebhookDelivery.objects.create(
        event=event,
        endpoint=endpoint,
        url=endpoint.url,
        webhook_id=webhook_id_for(event),
        body=event_body(event),
        next_attempt_at=now,
    )
    webhook_delivery_attempt(delivery_id=delivery.id, retry_in=None, count_for_endpoint=False)
    return WebhookDelivery.objects.select_related("event").get(id=delivery.id)


# --- The sweeper ------------------------------------------------------------------------------


def webhooks_sweep(*, limit: int = 500) -> dict[str, int]:
    """Finds what a lost task or a lost ``on_commit`` left undone: events of the last day never
    fanned out, and pending deliveries whose attempt is long overdue."""
    now = timezone.now()
    events = list(
        SellerEvent.objects.filter(
            dispatched_at__isnull=True,
            created_at__gte=now - timedelta(days=1),
            created_at__lte=now - timedelta(minutes=1),
        )
        .order_by("created_at")
        .values_list("id", flat=True)[:limit]
    )
    for event_id in events:
        seller_event_dispatch(event_id=event_id)
    stuck = list(
        WebhookDelivery.objects.filter(status=Status.PENDING)
        .filter(
            Q(next_attempt_at__lt=now - STUCK_AFTER) | Q(next_attempt_at__isnull=True, updated_at__lt=now - STUCK_AFTER)
        )
        .order_by("updated_at")
        .values_list("id", flat=True)[:limit]
    )
    if stuck:
        with transaction.atomic():
            WebhookDelivery.objects.filter(id__in=stuck, status=Status.PENDING).update(next_attempt_at=now)
            _queue_on_commit(stuck)
    return {"dispatched": len(events), "requeued": len(stuck)}
