"""The sweeper: what lost tasks and lost webhooks left undone, found and finished."""

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from marketplace.core.errors import (
    ApplicationError,
)
from marketplace.core.queue import enqueue
from orders.lifecycle import AWAITING_DELIVERY, PAYABLE, order_event_record
from orders.models import Order
from orders.tasks_names import FULFILL_TASK
from payments.services import payment_reconcile_order

from .payment_outcomes import order_cancel

logger = logging.getLogger(__name__)


# --- The sweeper ---------------------------------------------------------------------------------


@dataclass
class SweepResult:
    requeued: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    paid: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def orders_sweep(*, now: Any = None) -> SweepResult:
    """Recovers what lost tasks and lost webhooks left undone.

    - paid (or partially delivered) orders untouched for a while are queued for fulfillment again;
    - unpaid orders past their expiry are first re-checked with the gateway (a lost webhook), then
      cancelled, releasing their reservations.

    One bad order never stops the sweep: each is handled on its own (its writes in their own
    transactions), and an error is logged and recorded on that order's timeline (``sweep_failed``)
    before the sweep goes on to the next.
    """

    now = now or timezone.now()
    result = SweepResult()
    stuck_before = now - timedelta(seconds=settings.SWEEP_STUCK_AFTER_SECONDS)
    for order_id in Order.objects.filter(
        status__in=AWAITING_DELIVERY, updated_at__lt=stuck_before
    ).values_list("id", flat=True)[:500]:
        try:
            enqueue(FULFILL_TASK, order_id)
        except Exception as exc:  # noqa: BLE001 - recorded on the order; the sweep goes on
            _sweep_failed(order_id, "requeue", exc, result)
            continue
        result.requeued.append(order_id)
    for order_id in Order.objects.filter(status__in=PAYABLE, expires_at__lt=now).values_list(
        "id", flat=True
    )[:500]:
        try:
            order = Order.objects.get(pk=order_id)
            if payment_reconcile_order(order=order):
                result.paid.append(order_id)
                continue
        except Exception as exc:  # noqa: BLE001 - a gateway outage or a bad order must not stop the sweep
            # Not cancelled: it may have been paid, and only its gateway can tell.
            _sweep_failed(order_id, "re-check", exc, result)
            continue
        try:
            order_cancel(order_id=order_id, message="Expired before payment.")
        except ApplicationError:
            continue  # moved on meanwhile
        except Exception as exc:  # noqa: BLE001 - recorded on the order; the sweep goes on
            _sweep_failed(order_id, "cancel", exc, result)
            continue
        result.cancelled.append(order_id)
    if result.requeued or result.cancelled or result.paid or result.failed:
        logger.info(
            "sweeper: requeued=%d cancelled=%d paid=%d failed=%d",
            len(result.requeued),
            len(result.cancelled),
            len(result.paid),
            len(result.failed),
        )
    return result


def _sweep_failed(order_id: str, step: str, exc: Exception, result: SweepResult) -> None:
    """Logs and records on the order what stopped the sweeper on it: the error's class and its
    first line, cut short (an error's text is never a place for more than that)."""
    result.failed.append(order_id)
    kind = type(exc).__name__
    detail = (str(exc).splitlines() or [""])[0][:200]
    order_number = "?"
    try:
        order = Order.objects.get(pk=order_id)
        order_number = order.order_number
        logger.exception("sweeper: %s of order %s failed (%s)", step, order_number, kind)
        order_event_record(
            order=order,
            type="sweep_failed",
            message=f"The sweeper could not {step} this order: {kind}: {detail}"[:500],
            data={"step": step, "error": kind},
        )
    except Exception:  # noqa: BLE001 - the database itself may be the problem; the log has it
        logger.exception("sweeper: %s of order %s failed (%s), and could not be recorded", step, order_number, kind)
