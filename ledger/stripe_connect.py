"""Payouts by Stripe Connect: a seller's Express account, its onboarding, a transfer per payout and the
account's own payouts followed through Connect's webhooks.

The path of a payout:
1. ``payout_create`` (``ledger.payouts``) takes the available balance into ``payouts_in_transit`` as for
   a bank transfer, and queues ``payout_transfer_send`` once that is committed.
2. ``payout_transfer_send`` (a Celery task with retries; the payout's id is Stripe's idempotency key
   and the transfer group) makes the transfer to the seller's connected account: the payout goes
   ``in_transit`` with the transfer's id and the ``py_`` payment it made on the account. A transfer
   Stripe refuses fails the payout (the money is back in the balance; the seller gets an email).
3. The connected account pays its balance out to the seller's bank on its own (automatic) schedule.
   Its ``payout.paid`` / ``payout.failed`` event names only Stripe's payout, never ours. The mapping:
   the payout is retrieved from the account (``Stripe-Account``), and the balance transactions it
   carried are listed (``GET /v1/balance_transactions?payout=po_…&type=payment`` — Stripe's own
   reconciliation of an automatic payout); each ``payment`` there is a ``py_`` our transfer made, which
   names exactly one of our payouts, and only the seller who owns that account is looked at.
   - paid → our payout is ``paid`` (``payouts_in_transit`` → ``gateway_clearing``), email sent.
   - failed → the money is back on the connected account's Stripe balance; the transfer is reversed
     (the money comes back to the platform, idempotency key ``<payout id>:reversal``) and only then our
     payout ``failed`` (``payout_failure``: the money returns to the seller's available balance), with
     Stripe's reason, and the seller is emailed. A refused reversal leaves the payout in transit and
     the event ``failed``, for an operator to see and replay.
   What the event's body says is never used beyond the account and payout ids.
4. ``account.updated`` refreshes the stored account (status, flags, requirements due).
"""

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from marketplace.accounts.models import User
from marketplace.core.errors import ApplicationError, InvalidTransition
from payments.connect_port import ConnectOutcome, ConnectPort
from payments.gateways.stripe_connect import ConnectAccountState, connect_rail

from . import payouts, tasks  # the modules: each imports this one back
from .models import (
    Payout,
    PayoutEvent,
    PayoutMethod,
    PayoutSettings,
    PayoutStatus,
    StripeAccountStatus,
    StripeConnectAccount,
)

# --- The account -------------------------------------------------------------------------------------


def stripe_account_get(*, seller: Any) -> StripeConnectAccount | None:
    return StripeConnectAccount.objects.filter(seller_id=seller.pk).first()


def stripe_account_to_dict(account: StripeConnectAccount | None) -> dict[str, Any] | None:
    return None if account is None else {"id": account.account_id, "status": account.status}


def _store_state(account: StripeConnectAccount, state: ConnectAccountState) -> StripeConnectAccount:
    account.status = state.status
    account.charges_enabled = state.charges_enabled
    account.payouts_enabled = state.payouts_enabled
    account.details_submitted = state.details_submitted
    account.requirements_due = state.requirements_due
    account.refreshed_at = timezone.now()
    account.save(
        update_fields=[
            "status",
            "charges_enabled",
            "payouts_enabled",
            "details_submitted",
            "requirements_due",
            "refreshed_at",
        ]
    )
    return account


def stripe_account_ensure(*, seller: Any) -> StripeConnectAccount:
    """The seller's Express account, created at Stripe the first time only. The seller's row is locked
    while it is made, so two clicks make one account; the idempotency key covers a retry after a crash
    between Stripe's answer and our commit."""
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=seller.pk).values_list("pk", flat=True).get()
        existing = StripeConnectAccount.objects.filter(seller_id=seller.pk).first()
        if existing is not None:
            return existing
        config = PayoutSettings.objects.filter(seller_id=seller.pk).first()
        state = connect_rail().account_create(
            seller_id=str(seller.pk),
            email=seller.email,
            country=config.bank_country if config is not None else "",
            idempotency_key=f"connect-account-{seller.pk}",
        )
        account = StripeConnectAccount.objects.create(seller_id=seller.pk, account_id=state.account_id)
        return _store_state(account, state)


def stripe_connect_onboarding_link(*, seller: Any, return_url: str, refresh_url: str) -> str:
    """Where to send the seller to (continue to) onboard: Stripe's hosted page for their account,
    made now (account links are single-use and expire within minutes; never stored or logged)."""
    account = stripe_account_ensure(seller=seller)
    return connect_rail().onboarding_link(account_id=account.account_id, return_url=return_url, refresh_url=refresh_url)


def stripe_account_refresh(*, account_id: str) -> StripeConnectAccount | None:
    """Stores what Stripe says about the account now (None: not an account of ours)."""
    account = StripeConnectAccount.objects.filter(account_id=account_id).first()
    if account is None:
        return None
    state = connect_rail().account_retrieve(account_id=account_id)
    with transaction.atomic():
        account = StripeConnectAccount.objects.select_for_update().get(pk=account.pk)
        return _store_state(account, state)


def stripe_account_refresh_for(*, seller: Any) -> StripeConnectAccount | None:
    account = stripe_account_get(seller=seller)
    return None if account is None else stripe_account_refresh(account_id=account.account_id)


# --- The transfer ------------------------------------------------------------------------------------


def payout_transfer_send(*, payout_id: str) -> Payout:
    """Makes the payout's one transfer. The payout's row stays locked from the check to the answer, so
    the task running twice at once makes one request; a later run finds it in transit (or failed) and
    does nothing. ``GatewayUnavailable`` (Stripe did not answer) leaves it pending for a retry."""
    with transaction.atomic():
        payout = Payout.objects.select_for_update().get(pk=payout_id)
        if payout.method != PayoutMethod.STRIPE_CONNECT or payout.status != PayoutStatus.PENDING or payout.transfer_id:
            return payout
        account = StripeConnectAccount.objects.filter(seller_id=payout.seller_id).first()
        if account is None:
            reason = "The Stripe account this payout was for is gone; connect it again."
            return payouts.payout_mark_failed(payout_id=payout.id, actor=None, reason=reason, via_stripe=True)
        try:
            made = connect_rail().transfer_create(
                amount=payout.amount,
                currency=payout.currency,
                account_id=account.account_id,
                payout_id=payout.id,
                seller_id=str(payout.seller_id),
            )
        except ApplicationError as exc:  # refused: nothing was transferred
            return payouts.payout_mark_failed(payout_id=payout.id, actor=None, reason=exc.message, via_stripe=True)
        payout.status = PayoutStatus.IN_TRANSIT
        payout.transfer_id, payout.transfer_payment_id = made.transfer_id, made.destination_payment
        payout.save(update_fields=["status", "transfer_id", "transfer_payment_id"])
        payouts._event(
            payout, PayoutEvent.Kind.TRANSFER, note=f"Stripe transfer {made.transfer_id} to {account.account_id}"
        )
    return payout


def payouts_transfer_sweep(*, older_than_seconds: int = 600) -> list[str]:
    """Beat: Connect payouts still pending a while after they were made (their task was lost, or gave
    up while Stripe was down) are queued again; the task is safe to run twice."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    stuck = list(
        Payout.objects.filter(
            method=PayoutMethod.STRIPE_CONNECT, status=PayoutStatus.PENDING, transfer_id="", created_at__lt=cutoff
        ).values_list("id", flat=True)
    )
    for payout_id in stuck:
        tasks.payout_transfer.delay(payout_id)
    return stuck


# --- Connect's webhooks (bound to payments' ConnectPort) ---------------------------------------------


def stripe_payout_settle(*, account_id: str, stripe_payout_id: str) -> tuple[str, str]:
    """A connected account's payout was paid or failed, as Stripe confirms it now (the event's own
    status is not read); the payouts of ours it carried follow. Replays change nothing more."""
    account = StripeConnectAccount.objects.filter(account_id=account_id).first()
    if account is None:
        return ConnectOutcome.IGNORED, "Not a connected account of ours."
    rail = connect_rail()
    try:
        stripe_payout = rail.payout_retrieve(account_id=account_id, payout_id=stripe_payout_id)
    except ApplicationError as exc:  # e.g. no such payout on that account: a crossed or forged event
        return ConnectOutcome.REJECTED, f"Stripe does not confirm this payout for {account_id}: {exc.message}"
    if stripe_payout.status not in ("paid", "failed"):
        return ConnectOutcome.IGNORED, f"Stripe's payout {stripe_payout_id} is {stripe_payout.status or 'unknown'}."
    ours = list(
        Payout.objects.filter(
            seller_id=account.seller_id,  # only the account owner's payouts, whatever the event says
            method=PayoutMethod.STRIPE_CONNECT,
            transfer_payment_id__in=sorted(stripe_payout.payments),
        ).exclude(transfer_payment_id="")
    )
    if not ours:
        return ConnectOutcome.IGNORED, f"Stripe's payout {stripe_payout_id} carried none of our transfers."
    moved = []
    for payout in ours:
        if payout.status != PayoutStatus.IN_TRANSIT:
            continue  # already settled (a replay), or not ours to move
        if stripe_payout.status == "paid":
            _settle_paid(payout.id, stripe_payout_id)
        else:
            reason = stripe_payout.failure_message or "Your bank refused the payout."
            _settle_failed(payout.id, payout.transfer_id, stripe_payout_id, reason)
        moved.append(payout.id)
    return ConnectOutcome.PROCESSED, f"{stripe_payout.status}: {', '.join(moved) or 'nothing left to move'}"


def _settle_paid(payout_id: str, stripe_payout_id: str) -> None:
    with transaction.atomic():
        try:
            payout = payouts.payout_mark_paid(payout_id=payout_id, actor=None, via_stripe=True)
        except InvalidTransition:
            return  # settled meanwhile by another delivery of the event
        Payout.objects.filter(pk=payout.pk).update(stripe_payout_id=stripe_payout_id)


def _settle_failed(payout_id: str, transfer_id: str, stripe_payout_id: str, reason: str) -> None:
    """The reversal first (Stripe refuses → ``ApplicationError``, nothing changes here), then the
    payout fails and its money returns to the seller's balance."""
    reversal_id = connect_rail().transfer_reverse(transfer_id=transfer_id, payout_id=payout_id)
    with transaction.atomic():
        try:
            payout = payouts.payout_mark_failed(
                payout_id=payout_id, actor=None, reason=f"Stripe could not pay it out: {reason}", via_stripe=True
            )
        except InvalidTransition:
            return
        Payout.objects.filter(pk=payout.pk).update(stripe_payout_id=stripe_payout_id)
        payouts._event(
            payout, PayoutEvent.Kind.REVERSAL, note=f"Stripe transfer {transfer_id} reversed ({reversal_id})"
        )


class LedgerConnectPort(ConnectPort):
    """The ledger's side of ``payments.connect_port``."""

    def account_updated(self, *, account_id: str) -> tuple[str, str]:
        account = stripe_account_refresh(account_id=account_id)
        if account is None:
            return ConnectOutcome.IGNORED, "Not a connected account of ours."
        return ConnectOutcome.PROCESSED, f"{account.account_id} is {account.status}"

    def payout_settled(self, *, account_id: str, stripe_payout_id: str) -> tuple[str, str]:
        return stripe_payout_settle(account_id=account_id, stripe_payout_id=stripe_payout_id)


__all__ = [
    "LedgerConnectPort",
    "StripeAccountStatus",
    "payout_transfer_send",
    "payouts_transfer_sweep",
    "stripe_account_ensure",
    "stripe_account_get",
    "stripe_account_refresh",
    "stripe_account_refresh_for",
    "stripe_account_to_dict",
    "stripe_connect_onboarding_link",
    "stripe_payout_settle",
]
