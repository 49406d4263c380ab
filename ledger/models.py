"""The sellers' money as a double-entry ledger (Stripe's balance transactions, kept as books).

Every money event is one ``BalanceTransaction`` (``btx_``) with its ``LedgerLine``s, which add up to zero
in the transaction's one currency. Nothing is ever edited: a correction is a new transaction. Nothing
stores a balance either: a balance is the sum of an account's lines, read through ``BalanceRollup``, their
per-day sums written with them, checked against them by ``ledger_check`` and rebuilt from them on demand.

The accounts are (kind, seller, currency): per seller and currency its ``seller_balance`` — *pending*
while a line's ``available_on`` is in the future, *available* from then on, so no job has to move money
when a hold ends — and its ``seller_reserved`` (disputes); the platform's ``platform_fees``,
``gateway_clearing`` (the buyers' money the gateway holds for us) and ``payouts_in_transit`` per currency.
Signs: a line credits its account with a positive amount; the clearing account takes the other side.
"""

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from marketplace.core.crypto import EncryptedTextField
from marketplace.core.ids import PrefixedIdField
from marketplace.core.money import format_money


class TransactionType(models.TextChoices):
    SALE = "sale", "Sale"
    PLATFORM_FEE = "platform_fee", "Platform fee"
    REFUND = "refund", "Refund"
    DISPUTE = "dispute", "Dispute"
    DISPUTE_REVERSAL = "dispute_reversal", "Dispute reversal"
    PAYOUT = "payout", "Payout"
    PAYOUT_FAILURE = "payout_failure", "Payout failure"
    ADJUSTMENT = "adjustment", "Adjustment"


class Account(models.TextChoices):
    SELLER_BALANCE = "seller_balance", "Seller balance (pending until available_on, then available)"
    SELLER_RESERVED = "seller_reserved", "Seller reserved"
    PLATFORM_FEES = "platform_fees", "Platform fees"
    GATEWAY_CLEARING = "gateway_clearing", "Gateway clearing"
    PAYOUTS_IN_TRANSIT = "payouts_in_transit", "Payouts in transit"


SELLER_ACCOUNTS = frozenset({Account.SELLER_BALANCE, Account.SELLER_RESERVED})


class ImmutableError(Exception):
    """A ledger row was about to be changed: the books are append-only."""


class BalanceTransaction(models.Model):
    """One money event of one seller, in one currency. ``amount`` is what it did to the seller's
    balance (the sum of its ``seller_balance`` lines, written with them and never changed)."""

    id = PrefixedIdField(prefix="btx")
    type = models.CharField(max_length=20, choices=TransactionType.choices)
    seller = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    currency = models.CharField(max_length=3)
    amount = models.BigIntegerField(help_text="Signed, minor units: what this did to the seller's balance.")
    # The event's cause: an order for a sale and its fee, a refund for a refund. (type, source_id) is
    # unique, so a replayed event can never be written twice.
    source_id = models.CharField(max_length=64)
    order_id = models.CharField(max_length=40, blank=True, db_index=True)
    payout_id = models.CharField(max_length=40, blank=True, db_index=True)
    description = models.CharField(max_length=500, blank=True)
    available_on = models.DateTimeField(help_text="When the amount leaves pending; past means available.")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["type", "source_id"], name="ledger_btx_once_per_source"),
        ]
        indexes = [models.Index(fields=["seller", "-created_at", "-id"], name="ledger_btx_seller_created")]

    def __str__(self) -> str:
        return f"{self.id} {self.type} {format_money(self.amount, self.currency)}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ImmutableError("A balance transaction is never edited; write a correcting one instead.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ImmutableError("A balance transaction is never deleted; write a correcting one instead.")


class LedgerLine(models.Model):
    """One side of a transaction: an amount on one account (kind, seller or the platform, currency)."""

    transaction = models.ForeignKey(BalanceTransaction, on_delete=models.PROTECT, related_name="lines")
    account = models.CharField(max_length=20, choices=Account.choices)
    seller = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    currency = models.CharField(max_length=3)
    amount = models.BigIntegerField()
    available_on = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(seller__isnull=False) | ~Q(account__in=sorted(SELLER_ACCOUNTS)),
                name="ledger_line_seller_account_has_seller",
            ),
        ]
        # The balance is a sum over one seller's lines, split at now by available_on.
        indexes = [
            models.Index(fields=["seller", "account", "currency", "available_on"], name="ledger_line_balance"),
        ]

    def __str__(self) -> str:
        return f"{self.account} {format_money(self.amount, self.currency)}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ImmutableError("A ledger line is never edited.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ImmutableError("A ledger line is never deleted.")


class BalanceRollup(models.Model):
    """A cache of a seller's ledger lines: per (seller, account, currency, UTC day of ``available_on``) the
    lines' sum, count and earliest ``available_on``. Written in the same database transaction as the
    lines (``services._write``), checked against them by ``ledger_check`` and rebuilt from them by
    ``ledger_rebuild_rollups``: the lines stay the truth. A balance then sums a few rows per day instead
    of every line; only today's lines are read one by one, to split them at now."""

    seller = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    account = models.CharField(max_length=20, choices=Account.choices)
    currency = models.CharField(max_length=3)
    day = models.DateField(help_text="The UTC date of the lines' available_on.")
    amount = models.BigIntegerField()
    lines = models.PositiveIntegerField()
    first_available_on = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["seller", "account", "currency", "day"], name="ledger_rollup_key"),
        ]

    def __str__(self) -> str:
        return f"{self.seller_id} {self.account} {self.currency} {self.day}: {self.amount}"


# --- Payouts -----------------------------------------------------------------------------------------


class PayoutMethod(models.TextChoices):
    BANK_TRANSFER = "bank_transfer", "Bank transfer"
    STRIPE_CONNECT = "stripe_connect", "Stripe Connect"


class PayoutSchedule(models.TextChoices):
    MANUAL = "manual", "Manual (the seller asks)"
    WEEKLY = "weekly", "Weekly (Mondays)"
    MONTHLY = "monthly", "Monthly (the 1st)"


class PayoutSettings(models.Model):
    """How a seller is paid. ``minimum_amount`` is one number in minor units that applies to every
    currency (a payout of less is refused, and a schedule skips it). The account number is stored
    Fernet-encrypted and shown only as its last 4 (``bank_number_hint``); the full number leaves the
    database only in the operators' bank file."""

    seller = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="payout_settings")
    method = models.CharField(max_length=20, choices=PayoutMethod.choices, default=PayoutMethod.BANK_TRANSFER)
    schedule = models.CharField(max_length=10, choices=PayoutSchedule.choices, default=PayoutSchedule.MANUAL)
    minimum_amount = models.BigIntegerField(default=0, help_text="Minor units, the same figure in every currency.")
    bank_holder = models.CharField(max_length=140, blank=True)
    # NULL for a seller paid by Stripe Connect who never gave a bank account (the field stores "" as NULL).
    bank_number = EncryptedTextField(blank=True, default="", null=True)
    bank_number_hint = models.CharField(max_length=4, blank=True)
    bank_name = models.CharField(max_length=140, blank=True)
    bank_country = models.CharField(max_length=2, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.seller_id} {self.method} {self.schedule}"

    @property
    def has_bank_account(self) -> bool:
        return bool(self.bank_holder and self.bank_number_hint)


class PayoutStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    IN_TRANSIT = "in_transit", "In transit"
    PAID = "paid", "Paid"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class Payout(models.Model):
    """Money leaving a seller's available balance for their bank. Its ``payout`` ledger transaction is
    written with it; a failure writes ``payout_failure``, which returns the money. ``period`` is the
    schedule's period (``2026-W49``, ``2026-12``) for a scheduled payout, unique per seller and
    currency, so the beat task can run twice; empty for one the seller asked for."""

    id = PrefixedIdField(prefix="po")
    seller = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payouts")
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=12, choices=PayoutStatus.choices, default=PayoutStatus.PENDING)
    method = models.CharField(max_length=20, choices=PayoutMethod.choices)
    period = models.CharField(max_length=10, blank=True, default="")
    arrival_date = models.DateField(null=True, blank=True)
    failure_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Stripe Connect: the transfer that carried it to the seller's connected account, the ``py_``
    # payment that transfer made there (how the account's own payout is matched back to this one),
    # and that payout.
    transfer_id = models.CharField(max_length=255, blank=True, db_index=True)
    transfer_payment_id = models.CharField(max_length=255, blank=True, db_index=True)
    stripe_payout_id = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["seller", "currency", "period"],
                condition=~Q(period=""),
                name="ledger_payout_once_per_period",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="ledger_payout_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {format_money(self.amount, self.currency)} {self.status}"


class PayoutEvent(models.Model):
    """The payout's audit trail: what happened, who did it (an operator, the seller, or nobody for the
    schedule) and when."""

    class Kind(models.TextChoices):
        CREATED = "created", "Created"
        APPROVED = "approved", "Approved (in transit)"
        EXPORTED = "exported", "Exported in a bank file"
        PAID = "paid", "Paid"
        FAILED = "failed", "Failed"
        TRANSFER = "transfer", "Stripe transfer made (in transit)"
        REVERSAL = "reversal", "Stripe transfer reversed"

    payout = models.ForeignKey(Payout, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.payout_id} {self.kind}"


# --- Operators' adjustments ----------------------------------------------------------------------------


class Adjustment(models.Model):
    """An operator's correction of a seller's balance, and its audit trail: who (``actor``, with the
    email they had then), why (``reason``, which the seller reads on the statement) and when. Its
    ``adjustment`` ledger transaction (source = this id) is written with it; neither is ever edited."""

    id = PrefixedIdField(prefix="adj")
    seller = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    currency = models.CharField(max_length=3)
    amount = models.BigIntegerField(help_text="Signed, minor units: positive credits the seller.")
    reason = models.CharField(max_length=500)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_email = models.EmailField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.CheckConstraint(condition=~Q(amount=0), name="ledger_adjustment_amount_nonzero")]

    def __str__(self) -> str:
        return f"{self.id} {format_money(self.amount, self.currency)}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ImmutableError("An adjustment is never edited; make a correcting one instead.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ImmutableError("An adjustment is never deleted; make a correcting one instead.")


# --- Stripe Connect ----------------------------------------------------------------------------------


class StripeAccountStatus(models.TextChoices):
    PENDING = "pending", "Pending (onboarding not finished)"
    RESTRICTED = "restricted", "Restricted (Stripe needs more information)"
    ENABLED = "enabled", "Enabled (can receive payouts)"


class StripeConnectAccount(models.Model):
    """A seller's Stripe Express account (one per seller, made once), as Stripe last described it:
    refreshed when the seller comes back from onboarding and on every ``account.updated``. The
    account id is the seller's own to see; it grants nothing without the platform's secret key."""

    seller = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="stripe_account")
    account_id = models.CharField(max_length=255, unique=True)
    status = models.CharField(max_length=12, choices=StripeAccountStatus.choices, default=StripeAccountStatus.PENDING)
    charges_enabled = models.BooleanField(default=False)
    payouts_enabled = models.BooleanField(default=False)
    details_submitted = models.BooleanField(default=False)
    requirements_due = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.account_id} {self.status}"

    @property
    def can_receive_payouts(self) -> bool:
        return self.status == StripeAccountStatus.ENABLED
