"""Thin Celery tasks: they take ids and call services.

Services queue these by their registered names (``marketplace.core.queue``) and never import this
module, so it imports the services at the top. The names are part of the contract with the broker
(queued messages, beat's schedule): they never change."""

import random

from celery import shared_task
from django.conf import settings

from .fulfillment import TransientDeliveryError
from .sale_notifications import sale_notification_send
from .seller_events.delivery import webhook_delivery_attempt, webhooks_sweep
from .services import order_fulfill, orders_sweep
from .services.gifts import gifts_send_due, order_gift_send


def backoff_seconds(retries: int, *, base: float = 5.0, cap: float = 600.0) -> float:
    """Exponential backoff with full jitter: 5s, 10s, 20s ... capped, each scaled by 0.5–1.5."""
    return min(cap, base * (2**retries)) * (0.5 + random.random())  # noqa: S311 - jitter, not crypto


@shared_task(bind=True, name="orders.tasks.fulfil_order", max_retries=None, acks_late=True)
def fulfill_order(self, order_id: str) -> str:  # type: ignore[no-untyped-def]
    final = self.request.retries >= settings.FULFILMENT_MAX_RETRIES
    try:
        return order_fulfill(order_id=order_id, final_attempt=final).outcome
    except TransientDeliveryError as exc:
        raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries)) from exc


@shared_task(name="orders.tasks.sweep_orders")
def sweep_orders() -> dict[str, int]:
    result = orders_sweep()
    return {
        "requeued": len(result.requeued),
        "cancelled": len(result.cancelled),
        "paid": len(result.paid),
        "failed": len(result.failed),
        "payments_paid": len(result.payments_paid),
        "payments_settled": len(result.payments_settled),
        "payments_unanswered": len(result.payments_unanswered),
    }


def webhook_retry_countdown(retries: int) -> float | None:
    """Seconds before the attempt after attempt ``retries + 1`` (Standard Webhooks' schedule in
    ``WEBHOOK_RETRY_SCHEDULE``), each scaled by 0.8–1.2 for jitter; ``None`` after the last one."""
    schedule = settings.WEBHOOK_RETRY_SCHEDULE
    if retries + 1 >= len(schedule):
        return None
    return float(schedule[retries + 1]) * (0.8 + 0.4 * random.random())  # noqa: S311 - jitter, not crypto


@shared_task(bind=True, name="orders.tasks.deliver_webhook", max_retries=None, acks_late=True)
def deliver_webhook(self, delivery_id: str) -> str:  # type: ignore[no-untyped-def]
    """One attempt of an outgoing webhook; a failure is retried by Celery after the countdown."""
    countdown = webhook_retry_countdown(self.request.retries)
    outcome = webhook_delivery_attempt(delivery_id=delivery_id, retry_in=countdown)
    if outcome == "retry":
        raise self.retry(countdown=countdown)
    return outcome


@shared_task(name="orders.tasks.sweep_webhooks")
def sweep_webhooks() -> dict[str, int]:
    return webhooks_sweep()


@shared_task(bind=True, name="orders.tasks.send_gift", max_retries=5, acks_late=True)
def send_gift(self, order_id: str) -> bool:  # type: ignore[no-untyped-def]
    """The recipient's gift e-mail of a delivered gift that is due (a later one: ``send_due_gifts``)."""
    try:
        return order_gift_send(order_id=order_id)
    except TransientDeliveryError as exc:
        raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries)) from exc


@shared_task(name="orders.tasks.send_due_gifts")
def send_due_gifts() -> dict[str, int]:
    """Beat: sends every gift whose ``deliver_at`` has come (and any a lost task left unsent)."""
    return gifts_send_due()


@shared_task(bind=True, name="orders.tasks.notify_seller_of_sale", max_retries=5, acks_late=True)
def notify_seller_of_sale(self, order_id: str) -> str:  # type: ignore[no-untyped-def]
    """The seller's sale email; a refused send is retried with backoff."""
    try:
        return sale_notification_send(order_id=order_id)
    except OSError as exc:  # SMTP and socket errors
        raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries)) from exc
