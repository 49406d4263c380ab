"""Reads of the ledger: a seller's balances (sums of lines, split at now by ``available_on``) and
statement, and the per-order figures ``ledger_check`` compares with the orders."""

from collections.abc import Iterator
from datetime import datetime, tzinfo
from typing import Any

from django.db.models import F, Min, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from .models import Account, Adjustment, BalanceTransaction, LedgerLine, Payout, PayoutStatus, TransactionType
from .payouts import next_payout_for
from .rollups import seller_sums
from .services import hold_days_for


def balances_for_seller(*, seller: Any, now: datetime | None = None) -> list[dict[str, Any]]:
    """Per currency: ``pending`` (balance lines still on hold), ``available`` (held no longer; may be
    negative after a refund), ``reserved`` (disputes), ``total``, and ``next_available_on`` — when the
    next held amount becomes available. One query, whatever the number of lines: the balance rollup's
    days, and today's lines (``rollups.seller_sums``)."""
    now = now or timezone.now()
    result = []
    for row in seller_sums(seller_id=seller.pk, now=now):
        pending, available, reserved = row["pending"], row["available"], row["reserved"]
        result.append(
            {
                "currency": row["currency"],
                "pending": pending,
                "available": available,
                "reserved": reserved,
                "total": pending + available + reserved,
                "next_available_on": row["next_available_on"] if pending else None,
            }
        )
    return result


def balance_for_seller(*, seller: Any) -> dict[str, Any]:
    balances = balances_for_seller(seller=seller)
    return {
        "balances": balances,
        "hold_days": hold_days_for(seller),
        "next_payout": next_payout_for(seller=seller, balances=balances),
    }


def transactions_for_seller(*, seller: Any) -> QuerySet[BalanceTransaction]:
    return BalanceTransaction.objects.filter(seller=seller).order_by("-created_at", "-id")


def transactions_after(
    queryset: QuerySet[BalanceTransaction], *, seller: Any, btx_id: str
) -> QuerySet[BalanceTransaction] | None:
    """Keyset paging: the transactions of ``queryset`` (the seller's statement, newest first, maybe
    filtered) that come after ``btx_id`` in that order; None if ``btx_id`` is not one of the seller's
    transactions. ``created_at <=`` the anchor's is a range of the index ``ledger_btx_seller_created``,
    so a page costs the same at any depth; the rest drops the rows of the anchor's own timestamp that
    come before it."""
    row = BalanceTransaction.objects.filter(pk=btx_id, seller=seller).values("created_at", "id").first()
    if row is None:
        return None
    at, pk = row["created_at"], row["id"]
    return queryset.filter(Q(created_at__lt=at) | Q(created_at=at, id__lt=pk), created_at__lte=at)


def transaction_to_dict(btx: BalanceTransaction, *, now: datetime) -> dict[str, Any]:
    return {
        "id": btx.id,
        "type": btx.type,
        "amount": btx.amount,
        "currency": btx.currency,
        "status": "pending" if btx.available_on > now else "available",
        "available_on": btx.available_on,
        "order_id": btx.order_id or None,
        "payout_id": btx.payout_id or None,
        "description": btx.description,
        "created_at": btx.created_at,
    }


def unbalanced_transactions() -> Iterator[dict[str, Any]]:
    """Transactions whose lines do not add up to zero, or whose ``amount`` is not its seller lines' sum."""
    sums = BalanceTransaction.objects.values("id", "amount", "currency").annotate(
        total=Sum("lines__amount"), seller=Sum("lines__amount", filter=Q(lines__account=Account.SELLER_BALANCE))
    )
    for row in sums.iterator():
        if (row["total"] or 0) != 0 or (row["seller"] or 0) != row["amount"]:
            yield row
    mixed = LedgerLine.objects.exclude(currency=F("transaction__currency")).values_list("transaction_id", flat=True)
    for btx_id in mixed.distinct():
        yield {"id": btx_id, "amount": None, "currency": "mixed", "total": None, "seller": None}


def order_books() -> dict[str, dict[str, int]]:
    """Per order id: the ledger's seller balance, seller reserve, fee and clearing sums."""
    rows = (
        LedgerLine.objects.exclude(transaction__order_id="")
        .values("transaction__order_id")
        .annotate(
            seller=Sum("amount", filter=Q(account=Account.SELLER_BALANCE)),
            fees=Sum("amount", filter=Q(account=Account.PLATFORM_FEES)),
            clearing=Sum("amount", filter=Q(account=Account.GATEWAY_CLEARING)),
            reserved=Sum("amount", filter=Q(account=Account.SELLER_RESERVED)),
        )
    )
    return {
        row["transaction__order_id"]: {
            "seller": row["seller"] or 0,
            "reserved": row["reserved"] or 0,
            "fees": row["fees"] or 0,
            "clearing": row["clearing"] or 0,
        }
        for row in rows.iterator()
    }


def seller_balances_all() -> dict[tuple[Any, str], int]:
    """Every seller's balance per currency (pending + available + reserved), for ``ledger_check``."""
    rows = (
        LedgerLine.objects.filter(account__in=[Account.SELLER_BALANCE, Account.SELLER_RESERVED])
        .values("seller_id", "currency")
        .annotate(total=Sum("amount"))
    )
    return {(row["seller_id"], row["currency"]): row["total"] or 0 for row in rows}


_RETURNED = [PayoutStatus.FAILED, PayoutStatus.CANCELLED]


def payouts_outstanding_all() -> dict[tuple[Any, str], int]:
    """Per seller and currency, what its payouts took from the balance for good (all but failed)."""
    rows = Payout.objects.exclude(status__in=_RETURNED).values("seller_id", "currency").annotate(total=Sum("amount"))
    return {(row["seller_id"], row["currency"]): row["total"] or 0 for row in rows}


def payout_books() -> Iterator[tuple[str, str, int, int]]:
    """Payouts whose seller lines disagree with their status: (id, status, expected, found), where a
    live payout's lines take its amount and a failed one's give it back (sum 0)."""
    found = dict(
        LedgerLine.objects.filter(account=Account.SELLER_BALANCE)
        .exclude(transaction__payout_id="")
        .values("transaction__payout_id")
        .annotate(total=Sum("amount"))
        .values_list("transaction__payout_id", "total")
    )
    for payout_id, status, amount in Payout.objects.values_list("id", "status", "amount").iterator():
        want = 0 if status in _RETURNED else -amount
        got = found.get(payout_id, 0)
        if want != got:
            yield payout_id, status, want, got


def adjustments_all() -> dict[tuple[Any, str], int]:
    """Per seller and currency, the operators' adjustments (the audit rows, not the ledger)."""
    rows = Adjustment.objects.values("seller_id", "currency").annotate(total=Sum("amount"))
    return {(row["seller_id"], row["currency"]): row["total"] or 0 for row in rows}


def adjustment_books() -> Iterator[tuple[str, int, int]]:
    """Adjustments whose ledger transaction disagrees with them: (id, expected, found), and
    adjustment transactions with no adjustment behind them (expected 0)."""
    found = dict(BalanceTransaction.objects.filter(type=TransactionType.ADJUSTMENT).values_list("source_id", "amount"))
    for adjustment_id, amount in Adjustment.objects.values_list("id", "amount").iterator():
        got = found.pop(adjustment_id, 0)
        if got != amount:
            yield adjustment_id, amount, got
    for source_id, amount in found.items():
        yield source_id, 0, amount


def pending_releases_for_seller(
    *, seller: Any, now: datetime | None = None, zone: tzinfo | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """What the seller's pending balance releases and when: per currency and day (in ``zone``), the
    net amount of the balance lines still on hold that become available that day, with the first
    moment of that day's release (``available_on``). Days whose lines net to zero (a pending sale
    refunded in full) are left out. One query over the lines still on hold, never the whole ledger."""
    now = now or timezone.now()
    rows = (
        LedgerLine.objects.filter(seller=seller, account=Account.SELLER_BALANCE, available_on__gt=now)
        .annotate(day=TruncDate("available_on", tzinfo=zone))
        .values("currency", "day")
        .annotate(amount=Sum("amount"), available_on=Min("available_on"))
        .order_by("currency", "day")[:limit]
    )
    return [
        {"currency": r["currency"], "date": r["day"], "amount": r["amount"], "available_on": r["available_on"]}
        for r in rows
        if r["amount"]
    ]
