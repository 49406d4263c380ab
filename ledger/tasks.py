"""The ledger's Celery tasks, thin: each takes ids and calls a service."""

from celery import shared_task

from payments.gateways import GatewayUnavailable

from . import payouts, stripe_connect  # the modules: their services queue these tasks
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


@shared_task(
    name="ledger.tasks.payout_transfer",
    autoretry_for=(GatewayUnavailable,),
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=8,
)
def payout_transfer(payout_id: str) -> str:
    """A Stripe Connect payout's transfer (queued once the payout is committed). Safe to run twice: the
    payout's row is locked and its id is Stripe's idempotency key. Retried while Stripe does not answer;
    ``payouts_transfer_sweep`` queues it again after that."""
    return str(stripe_connect.payout_transfer_send(payout_id=payout_id).status)


@shared_task(name="ledger.tasks.payouts_transfer_sweep")
def payouts_transfer_sweep() -> int:
    """Beat: Stripe Connect payouts still waiting for their transfer are queued again."""
    return len(stripe_connect.payouts_transfer_sweep())
