"""The ledger's Celery tasks, thin: each takes ids and calls a service."""

from celery import shared_task

from . import payouts  # the module: its services queue these tasks
from .emails import payout_email_send


@shared_task(name="ledger.tasks.payouts_schedule")
def payouts_schedule() -> int:
    """Beat: the weekly and monthly sellers' payouts, once per period (safe to run twice)."""
    return len(payouts.payouts_schedule_run())


@shared_task(
    name="ledger.tasks.payout_email", autoretry_for=(OSError,), retry_backoff=True, retry_jitter=True, max_retries=5
)
def payout_email(payout_id: str) -> None:
    """Tells the seller their payout arrived or failed (queued after the status change commits)."""
    payout_email_send(payout_id=payout_id)
