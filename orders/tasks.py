"""Thin Celery tasks: they take ids and call services."""

import random

from celery import shared_task
from django.conf import settings

from .fulfillment import TransientDeliveryError


def backoff_seconds(retries: int, *, base: float = 5.0, cap: float = 600.0) -> float:
    """Exponential backoff with full jitter: 5s, 10s, 20s ... capped, each scaled by 0.5–1.5."""
    return min(cap, base * (2**retries)) * (0.5 + random.random())  # noqa: S311 - jitter, not crypto


@shared_task(bind=True, name="orders.tasks.fulfil_order", max_retries=None, acks_late=True)
def fulfil_order(self, order_id: str) -> str:  # type: ignore[no-untyped-def]
    from .services import order_fulfil

    final = self.request.retries >= settings.FULFILMENT_MAX_RETRIES
    try:
        return order_fulfil(order_id=order_id, final_attempt=final).outcome
    except TransientDeliveryError as exc:
        raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries)) from exc


@shared_task(name="orders.tasks.sweep_orders")
def sweep_orders() -> dict[str, int]:
    from .services import orders_sweep

    result = orders_sweep()
    return {"requeued": len(result.requeued), "cancelled": len(result.cancelled), "paid": len(result.paid)}
