"""Operators' adjustments: a signed correction of one seller's balance in one currency, with a reason.

``ledger_adjustment_record`` is the one door (the admin's form calls it): it checks the operator's
permission (a superuser, or staff with ``ledger.add_adjustment``) and the input, then writes the
``Adjustment`` (the audit trail: who, why) and its ``adjustment`` transaction together — the seller's
balance against the platform's ``platform_fees`` account, available at once. A positive amount
credits the seller (the platform pays), a negative one debits it (the balance may go below zero and
is recovered from later sales, like a refund after a payout). Bad input changes nothing.
"""

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from marketplace.accounts.models import User
from marketplace.core.errors import PermissionDenied, ValidationFailed
from marketplace.core.money import MAX_AMOUNT, format_money, validate_currency

from .models import Account, Adjustment, TransactionType
from .services import Line, _build, _write

ADJUSTMENT_PERMISSION = "ledger.add_adjustment"


@dataclass(frozen=True)
class AdjustmentInput:
    seller: Any
    currency: str
    amount: int
    reason: str


def ledger_adjustment_clean(*, seller: Any, currency: Any, amount: Any, reason: Any) -> AdjustmentInput:
    """The input, normalised, or ``ValidationFailed`` naming every bad field."""
    errors: dict[str, list[str]] = {}
    if not isinstance(seller, User) or not seller.is_seller:
        errors["seller"] = ["Choose a seller."]
    currency = (currency or "").strip().upper() if isinstance(currency, str) else ""
    try:
        validate_currency(currency)
    except Exception:  # noqa: BLE001 - any refusal is the same answer
        errors["currency"] = ["An ISO 4217 currency code."]
    if not isinstance(amount, int) or isinstance(amount, bool) or amount == 0 or abs(amount) > MAX_AMOUNT:
        errors["amount"] = [f"A whole, non-zero number of minor units, at most {MAX_AMOUNT} either way."]
    reason = reason.strip() if isinstance(reason, str) else ""
    if not reason:
        errors["reason"] = ["Say why; the seller reads it on the statement."]
    elif len(reason) > 500:
        errors["reason"] = ["At most 500 characters."]
    if errors:
        raise ValidationFailed("The adjustment was not made.", fields=errors)
    return AdjustmentInput(seller=seller, currency=currency, amount=amount, reason=reason)


def ledger_adjustment_allowed(actor: Any) -> bool:
    return bool(
        getattr(actor, "is_authenticated", False)
        and actor.is_active
        and (actor.is_superuser or (actor.is_staff and actor.has_perm(ADJUSTMENT_PERMISSION)))
    )


def ledger_adjustment_record(*, seller: Any, currency: Any, amount: Any, reason: Any, actor: Any) -> Adjustment:
    if not ledger_adjustment_allowed(actor):
        raise PermissionDenied("Only operators allowed to adjust balances may do this.")
    data = ledger_adjustment_clean(seller=seller, currency=currency, amount=amount, reason=reason)
    with transaction.atomic():
        # The payouts' lock: a payout being made now sees this adjustment, or runs before it.
        User.objects.select_for_update().filter(pk=data.seller.pk).values_list("pk", flat=True).get()
        adjustment = Adjustment.objects.create(
            seller=data.seller,
            currency=data.currency,
            amount=data.amount,
            reason=data.reason,
            actor=actor,
            actor_email=actor.email,
        )
        now = timezone.now()
        money = format_money(data.amount, data.currency)
        _write(
            [
                _build(
                    type=TransactionType.ADJUSTMENT,
                    seller_id=data.seller.pk,
                    currency=data.currency,
                    source_id=adjustment.id,
                    lines=[
                        Line(Account.SELLER_BALANCE, data.amount),
                        Line(Account.PLATFORM_FEES, -data.amount, seller=False),
                    ],
                    available_on=now,
                    created_at=now,
                    description=f"Adjustment of {money} by the platform: {data.reason}",
                )
            ]
        )
    return adjustment
