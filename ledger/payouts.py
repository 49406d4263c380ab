"""Every write about payouts: a seller's payout settings, a payout asked for or made by the schedule,
and the operators' moves (approve, export, paid, failed). Views, admin actions and the beat task all
call these.

The money moves in the ledger in the same database transaction as the payout:
- ``payout``: the seller's *available* balance → the platform's ``payouts_in_transit``;
- paid: ``payouts_in_transit`` → ``gateway_clearing`` (a ``payout`` transaction of the platform's
  accounts only, seller amount 0: the money left the gateway's balance for the seller's bank);
- ``payout_failure``: ``payouts_in_transit`` → the seller's balance, available at once.

Two payouts at once never overdraw: each locks the seller's user row (``select_for_update``) before it
sums the available balance and inserts, so the second one sees the first one's ledger lines.
"""

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from marketplace.accounts.models import User
from marketplace.core.crypto import hint
from marketplace.core.errors import Conflict, InvalidTransition, ValidationFailed
from marketplace.core.money import MAX_AMOUNT, format_money, validate_currency

from . import tasks  # the module: its tasks import these services back
from .models import (
    Account,
    LedgerLine,
    Payout,
    PayoutEvent,
    PayoutMethod,
    PayoutSchedule,
    PayoutSettings,
    PayoutStatus,
    StripeAccountStatus,
    StripeConnectAccount,
    TransactionType,
)
from .rollups import seller_sums
from .services import Line, _build, _write

# Which status a payout may move to, from which.
PAYOUT_MOVES: dict[str, set[str]] = {
    PayoutStatus.PENDING: {PayoutStatus.IN_TRANSIT, PayoutStatus.FAILED},
    PayoutStatus.IN_TRANSIT: {PayoutStatus.PAID, PayoutStatus.FAILED},
    PayoutStatus.PAID: set(),
    PayoutStatus.FAILED: set(),
    PayoutStatus.CANCELLED: set(),
}
# A bank transfer is expected this many days after the operators send it.
BANK_TRANSFER_DAYS = 3
_ACCOUNT_NUMBER = re.compile(r"[A-Z0-9]{4,34}")
_COUNTRY = re.compile(r"[A-Z]{2}")
_METHOD_WORDS: dict[str, str] = {
    PayoutMethod.BANK_TRANSFER: "bank transfer",
    PayoutMethod.STRIPE_CONNECT: "Stripe Connect",
}
STRIPE_ONBOARDING_UNFINISHED = (
    "Finish your Stripe onboarding (Balance → Connect with Stripe) before choosing or using Stripe Connect payouts."
)


# --- Settings ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BankAccountInput:
    holder: str
    number: str | None  # None keeps the stored number
    bank: str
    country: str


def payout_settings_get(*, seller: Any) -> PayoutSettings | None:
    return PayoutSettings.objects.filter(seller=seller).first()


def payout_settings_update(
    *, seller: Any, method: str, schedule: str, minimum_amount: int, bank_account: BankAccountInput | None
) -> PayoutSettings:
    """Replaces the seller's settings. A bank transfer needs a bank account (its number the first
    time; later a PUT may leave it out to keep the stored one, which the API never shows back).
    Stripe Connect needs the seller's connected account to be able to receive payouts (onboarding
    finished): otherwise 409 ``stripe_onboarding_incomplete`` and nothing changes; a bank account sent
    with it is kept too."""
    if method not in PayoutMethod.values:
        raise ValidationFailed(fields={"method": [f"Must be one of {', '.join(PayoutMethod.values)}."]})
    if schedule not in PayoutSchedule.values:
        raise ValidationFailed(fields={"schedule": [f"Must be one of {', '.join(PayoutSchedule.values)}."]})
    if not 0 <= minimum_amount <= MAX_AMOUNT:
        raise ValidationFailed(fields={"minimum_amount": [f"Must be between 0 and {MAX_AMOUNT} (minor units)."]})
    if bank_account is None and method == PayoutMethod.BANK_TRANSFER:
        raise ValidationFailed(fields={"bank_account": ["A bank transfer needs a bank account."]})
    with transaction.atomic():
        current = PayoutSettings.objects.select_for_update().filter(seller=seller).first()
        if method == PayoutMethod.STRIPE_CONNECT:
            connected = StripeConnectAccount.objects.filter(seller_id=seller.pk).first()
            if connected is None or not connected.can_receive_payouts:
                raise Conflict(STRIPE_ONBOARDING_UNFINISHED, code="stripe_onboarding_incomplete")
        row = current or PayoutSettings(seller=seller)
        if bank_account is not None:
            _bank_account_apply(row, bank_account)
        row.method, row.schedule, row.minimum_amount = method, schedule, minimum_amount
        row.save()
    return row


def _bank_account_apply(row: PayoutSettings, bank_account: BankAccountInput) -> None:
    number = bank_account.number
    if number is not None:
        number = re.sub(r"[\s-]", "", number).upper()
        if not _ACCOUNT_NUMBER.fullmatch(number):
            raise ValidationFailed(
                fields={"bank_account.number": ["4 to 34 letters and digits (an IBAN or account number)."]}
            )
    elif not row.bank_number:
        raise ValidationFailed(fields={"bank_account.number": ["This field is required."]})
    country = bank_account.country.upper()
    if not _COUNTRY.fullmatch(country):
        raise ValidationFailed(fields={"bank_account.country": ["An ISO 3166 two-letter country code."]})
    row.bank_holder, row.bank_name, row.bank_country = bank_account.holder, bank_account.bank, country
    if number is not None:
        row.bank_number, row.bank_number_hint = number, hint(number)


def payout_settings_to_dict(row: PayoutSettings | None, *, stripe_account: Any = None) -> dict[str, Any]:
    """The seller's settings; ``stripe_account`` is their own connected account (its id is theirs to
    see, never anyone else's), if they started onboarding."""
    connected = {"id": stripe_account.account_id, "status": stripe_account.status} if stripe_account else None
    if row is None:
        return {
            "method": None,
            "schedule": PayoutSchedule.MANUAL,
            "minimum_amount": 0,
            "bank_account": None,
            "stripe_account": connected,
        }
    bank = (
        {
            "holder": row.bank_holder,
            "number_hint": row.bank_number_hint,
            "bank": row.bank_name,
            "country": row.bank_country,
        }
        if row.has_bank_account
        else None
    )
    return {
        "method": row.method,
        "schedule": row.schedule,
        "minimum_amount": row.minimum_amount,
        "bank_account": bank,
        "stripe_account": connected,
    }


# --- Payouts -----------------------------------------------------------------------------------------


def _available(*, seller_id: Any, currency: str, now: datetime) -> int:
    """What can be paid out: the available balance, less any negative pending (never more than the
    whole balance)."""
    for sums in seller_sums(seller_id=seller_id, now=now, currency=currency):
        return min(sums["available"], sums["available"] + sums["pending"])
    return 0


def _event(payout: Payout, kind: str, *, actor: Any = None, note: str = "") -> None:
    PayoutEvent.objects.create(payout=payout, kind=kind, actor=actor, note=note[:500])


def payout_create(*, seller: Any, currency: str, actor: Any = None, period: str = "") -> Payout:
    """Pays out the seller's whole available balance in ``currency`` now, by the seller's method.

    Refused (nothing written) without a bank account (409 ``payout_settings_missing``), by Stripe
    Connect without an account that can receive payouts (409 ``stripe_onboarding_incomplete``), with nothing
    available or less than the seller's minimum (409 ``below_minimum``), or a second time in a
    schedule's period (409 ``already_paid_out``). The seller's row is locked from the sum to the
    insert, so concurrent payouts queue and the later one sees the earlier one's lines."""
    try:
        validate_currency(currency)
    except Exception as exc:
        raise ValidationFailed(fields={"currency": ["An ISO 4217 currency code."]}) from exc
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=seller.pk).values_list("pk", flat=True).get()
        config = PayoutSettings.objects.filter(seller_id=seller.pk).first()
        by_stripe = config is not None and config.method == PayoutMethod.STRIPE_CONNECT
        if by_stripe:
            connected = StripeConnectAccount.objects.filter(seller_id=seller.pk).first()
            if connected is None or not connected.can_receive_payouts:
                raise Conflict(STRIPE_ONBOARDING_UNFINISHED, code="stripe_onboarding_incomplete")
        if config is None or not (by_stripe or config.has_bank_account):
            raise Conflict(
                "Add a bank account in your payout settings before asking for a payout.",
                code="payout_settings_missing",
            )
        if period and Payout.objects.filter(seller_id=seller.pk, currency=currency, period=period).exists():
            raise Conflict(f"A payout was already made for {period}.", code="already_paid_out")
        now = timezone.now()
        available = _available(seller_id=seller.pk, currency=currency, now=now)
        minimum = max(config.minimum_amount, 1)
        if available < minimum:
            raise Conflict(
                f"Your available balance is {format_money(max(available, 0), currency)}; "
                f"the minimum payout is {format_money(minimum, currency)}.",
                code="below_minimum",
                extra={"available": available, "minimum_amount": minimum},
            )
        payout = Payout.objects.create(
            seller_id=seller.pk, amount=available, currency=currency, method=config.method, period=period
        )
        money = format_money(available, currency)
        _write(
            [
                _build(
                    type=TransactionType.PAYOUT,
                    seller_id=seller.pk,
                    currency=currency,
                    source_id=payout.id,
                    payout_id=payout.id,
                    lines=[
                        Line(Account.SELLER_BALANCE, -available),
                        Line(Account.PAYOUTS_IN_TRANSIT, available, seller=False),
                    ],
                    available_on=now,
                    created_at=now,
                    description=f"Payout {payout.id} of {money} by {_METHOD_WORDS[config.method]}",
                )
            ]
        )
        _event(payout, PayoutEvent.Kind.CREATED, actor=actor, note=f"schedule {period}" if period else "")
        if by_stripe:  # the transfer is made once this is committed (ledger.stripe_connect)
            payout_id = payout.id
            transaction.on_commit(lambda: tasks.payout_transfer.delay(payout_id))
    return payout


def _locked(payout_id: str, to: str, *, via_stripe: bool = False) -> Payout:
    """The payout, locked, if it may move to ``to``. A Stripe Connect payout moves by its transfer and
    Connect's webhooks (``via_stripe``), never by an operator's approve or paid; an operator may fail
    one only while it is pending (no transfer made yet: its task then finds it failed and sends nothing)."""
    payout = Payout.objects.select_for_update().get(pk=payout_id)
    if to not in PAYOUT_MOVES[payout.status]:
        raise InvalidTransition(f"Payout {payout.id} is {payout.status}; it cannot become {to}.")
    if payout.method == PayoutMethod.STRIPE_CONNECT and not via_stripe:
        if to != PayoutStatus.FAILED or payout.status != PayoutStatus.PENDING:
            raise InvalidTransition(
                f"Payout {payout.id} goes by Stripe Connect: its transfer and Stripe's webhooks move it, "
                "not an operator."
            )
    return payout


def payout_approve(*, payout_id: str, actor: Any) -> Payout:  # bank transfers only (see _locked)
    """An operator sends the transfer: pending → in_transit, with its expected arrival."""
    with transaction.atomic():
        payout = _locked(payout_id, PayoutStatus.IN_TRANSIT)
        payout.status = PayoutStatus.IN_TRANSIT
        payout.arrival_date = timezone.now().date() + timedelta(days=BANK_TRANSFER_DAYS)
        payout.save(update_fields=["status", "arrival_date"])
        _event(payout, PayoutEvent.Kind.APPROVED, actor=actor)
    return payout


def payout_mark_paid(*, payout_id: str, actor: Any, via_stripe: bool = False) -> Payout:
    """The bank confirmed the transfer: in_transit → paid; the money leaves the platform's payouts in
    transit for the gateway's clearing account (it left the gateway balance); the seller is told."""
    with transaction.atomic():
        payout = _locked(payout_id, PayoutStatus.PAID, via_stripe=via_stripe)
        payout.status = PayoutStatus.PAID
        payout.arrival_date = timezone.now().date()
        payout.save(update_fields=["status", "arrival_date"])
        now = timezone.now()
        _write(
            [
                _build(
                    type=TransactionType.PAYOUT,
                    seller_id=payout.seller_id,
                    currency=payout.currency,
                    source_id=f"{payout.id}:paid",
                    payout_id=payout.id,
                    lines=[
                        Line(Account.PAYOUTS_IN_TRANSIT, -payout.amount, seller=False),
                        Line(Account.GATEWAY_CLEARING, payout.amount, seller=False),
                    ],
                    available_on=now,
                    created_at=now,
                    description=f"Payout {payout.id} arrived at your bank"
                    + (" (Stripe Connect)" if payout.method == PayoutMethod.STRIPE_CONNECT else ""),
                )
            ]
        )
        _event(payout, PayoutEvent.Kind.PAID, actor=actor)
        _email_on_commit(payout.id)
    return payout


def payout_mark_failed(*, payout_id: str, actor: Any, reason: str, via_stripe: bool = False) -> Payout:
    """The transfer failed: the payout's money returns to the seller's available balance in a
    ``payout_failure`` transaction, and the seller is told why and what to do."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(fields={"reason": ["Say why the payout failed; the seller reads it."]})
    with transaction.atomic():
        payout = _locked(payout_id, PayoutStatus.FAILED, via_stripe=via_stripe)
        payout.status = PayoutStatus.FAILED
        payout.failure_reason = reason[:500]
        payout.save(update_fields=["status", "failure_reason"])
        now = timezone.now()
        _write(
            [
                _build(
                    type=TransactionType.PAYOUT_FAILURE,
                    seller_id=payout.seller_id,
                    currency=payout.currency,
                    source_id=payout.id,
                    payout_id=payout.id,
                    lines=[
                        Line(Account.PAYOUTS_IN_TRANSIT, -payout.amount, seller=False),
                        Line(Account.SELLER_BALANCE, payout.amount),
                    ],
                    available_on=now,
                    created_at=now,
                    description=f"Payout {payout.id} failed: {reason}",
                )
            ]
        )
        _event(payout, PayoutEvent.Kind.FAILED, actor=actor, note=reason)
        _email_on_commit(payout.id)
    return payout


def _email_on_commit(payout_id: str) -> None:
    """The seller's email is queued once the status change is committed, never for a rolled-back one."""
    transaction.on_commit(lambda: tasks.payout_email.delay(payout_id))


def payouts_mark_exported(*, payout_ids: list[str], actor: Any) -> None:
    """The bank file with these payouts was downloaded: recorded on each."""
    PayoutEvent.objects.bulk_create(
        [PayoutEvent(payout_id=pid, kind=PayoutEvent.Kind.EXPORTED, actor=actor) for pid in payout_ids]
    )


def payout_to_dict(payout: Payout) -> dict[str, Any]:
    return {
        "id": payout.id,
        "amount": payout.amount,
        "currency": payout.currency,
        "status": payout.status,
        "method": payout.method,
        "arrival_date": payout.arrival_date,
        "failure_reason": payout.failure_reason or None,
        "created_at": payout.created_at,
    }


# --- The schedule ------------------------------------------------------------------------------------


def schedule_period(schedule: str, day: date) -> str:
    """The period a scheduled payout belongs to: ISO week for weekly, month for monthly."""
    if schedule == PayoutSchedule.WEEKLY:
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{day.year}-{day.month:02d}"


def next_period_start(schedule: str, day: date) -> date:
    if schedule == PayoutSchedule.WEEKLY:
        return day + timedelta(days=7 - day.weekday())
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def payouts_schedule_run(*, now: datetime | None = None) -> list[Payout]:
    """The beat task: for every weekly or monthly seller with a bank account or a Stripe Connect
    account, one payout per currency and period of whatever is available, when it reaches the minimum
    (``payout_create`` refuses an account that cannot receive payouts). A second run in the same period
    finds the period's payout and writes nothing."""
    today = timezone.localdate(now or timezone.now())
    made: list[Payout] = []
    scheduled = PayoutSettings.objects.filter(
        Q(method=PayoutMethod.BANK_TRANSFER, bank_number_hint__gt="")
        | Q(method=PayoutMethod.STRIPE_CONNECT, seller__stripe_account__status=StripeAccountStatus.ENABLED),
        schedule__in=[PayoutSchedule.WEEKLY, PayoutSchedule.MONTHLY],
    )
    for config in scheduled.iterator():
        period = schedule_period(config.schedule, today)
        currencies = (
            LedgerLine.objects.filter(seller_id=config.seller_id, account=Account.SELLER_BALANCE)
            .values_list("currency", flat=True)
            .distinct()
        )
        for currency in sorted(set(currencies)):
            try:
                made.append(payout_create(seller=config.seller, currency=currency, period=period))
            except Conflict:
                continue  # below the minimum, or already paid out this period
    return made


def next_payout_for(*, seller: Any, balances: list[dict[str, Any]]) -> dict[str, Any] | None:
    """For a scheduled seller, the next run's date and what it would pay: the currency with the most
    available (if it reaches the minimum, else 0). None for a manual seller or one with no balance."""
    config = PayoutSettings.objects.filter(seller=seller).first()
    if config is None or config.schedule == PayoutSchedule.MANUAL or not balances:
        return None
    today = timezone.localdate()
    best = max(balances, key=lambda b: (b["available"], b["currency"]))
    period = schedule_period(config.schedule, today)
    done = Payout.objects.filter(seller=seller, currency=best["currency"], period=period).exists()
    when = next_period_start(config.schedule, today) if done else today
    amount = best["available"] if best["available"] >= max(config.minimum_amount, 1) else 0
    return {"date": when, "amount": amount, "currency": best["currency"]}
