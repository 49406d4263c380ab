"""Every write to the ledger. Each money event is one balanced transaction, written inside the caller's
database transaction (the cause and its books commit or roll back together), at most once per
(type, source): a replayed event finds its transaction and writes nothing.

Callers (orders) pass the figures they have just stored; the ledger never recomputes a fee. A refund is
written as the difference between what the ledger holds for the order and the order's new stored
figures, so the books follow the order's fee rules exactly, whatever they are.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from django.conf import settings
from django.db.models import Exists, Max, OuterRef, Q, Sum
from django.utils import timezone

from marketplace.accounts.models import User
from marketplace.core.money import format_money

from .models import Account, BalanceTransaction, LedgerLine, TransactionType
from .rollups import rollup_add

T = TransactionType


class OrderFigures(Protocol):
    """What the ledger reads from an order (orders' ``Order``; the ledger does not import it)."""

    id: str
    order_number: str
    seller_id: Any
    currency: str
    total_amount: int
    platform_fee: int
    seller_earnings: int
    refunded_amount: int
    paid_at: datetime | None


@dataclass(frozen=True)
class Line:
    account: str
    amount: int
    seller: bool = True  # on the seller's account, else the platform's


class UnbalancedTransaction(ValueError):
    """Lines that do not add up to zero: a bug in the caller, never written."""


def hold_days_for(seller: Any) -> int:
    """The seller's own hold (an operator's override) or ``PAYOUT_HOLD_DAYS``."""
    days = getattr(seller, "payout_hold_days", None)
    return int(settings.PAYOUT_HOLD_DAYS if days is None else days)


def _build(
    *,
    type: str,
    seller_id: Any,
    currency: str,
    source_id: str,
    lines: list[Line],
    available_on: datetime,
    created_at: datetime,
    order_id: str = "",
    payout_id: str = "",
    description: str = "",
) -> tuple[BalanceTransaction, list[LedgerLine]]:
    if sum(line.amount for line in lines) != 0:
        raise UnbalancedTransaction(f"{type} {source_id}: lines sum to {sum(line.amount for line in lines)}, not 0.")
    btx = BalanceTransaction(
        type=type,
        seller_id=seller_id,
        currency=currency,
        amount=sum(line.amount for line in lines if line.account == Account.SELLER_BALANCE),
        source_id=source_id,
        order_id=order_id,
        payout_id=payout_id,
        description=description[:500],
        available_on=available_on,
        created_at=created_at,
    )
    rows = [
        LedgerLine(
            transaction=btx,
            account=line.account,
            seller_id=seller_id if line.seller else None,
            currency=currency,
            amount=line.amount,
            available_on=available_on,
        )
        for line in lines
        if line.amount
    ]
    return btx, rows


def _write(built: list[tuple[BalanceTransaction, list[LedgerLine]]]) -> list[BalanceTransaction]:
    """Three statements whatever the number of transactions: their rows, all their lines, and the
    seller lines' sums added to the balance rollup (``rollups``; none when no line is a seller's)."""
    if not built:
        return []
    BalanceTransaction.objects.bulk_create([btx for btx, _ in built])
    lines = [line for _, lines in built for line in lines]
    LedgerLine.objects.bulk_create(lines)
    rollup_add(lines)
    return [btx for btx, _ in built]


def ledger_sale_record(
    *, order: OrderFigures, seller: Any = None, first_time: bool = False
) -> list[BalanceTransaction]:
    """A paid order: its ``sale`` (the total, from the gateway's clearing to the seller's balance) and
    its ``platform_fee`` (from the seller's balance to the platform), both pending until the hold ends.

    On the paid path, inside ``order_mark_paid``'s transaction, the caller hands over the seller it
    loaded with the order and says this is the order's one move to paid (``first_time``): two
    statements, one insert of the transactions and one of their lines (the unique (type, source)
    index still refuses a second sale). Called any other way it first reads the seller's hold and
    whether the sale is already written (one more statement), so a repeat writes nothing. An order
    with nothing to pay moves no money and writes nothing.
    """
    if order.total_amount <= 0:
        return []
    if seller is not None and first_time:
        hold_days = seller.payout_hold_days
    else:
        found = (
            User.objects.filter(pk=order.seller_id)
            .annotate(
                recorded=Exists(
                    BalanceTransaction.objects.filter(type=T.SALE, source_id=order.id, seller=OuterRef("pk"))
                )
            )
            .values("payout_hold_days", "recorded")
            .get()
        )
        if found["recorded"]:
            return []
        hold_days = found["payout_hold_days"]
    now = timezone.now()
    paid_at = order.paid_at or now
    days = settings.PAYOUT_HOLD_DAYS if hold_days is None else hold_days
    available_on = paid_at + timedelta(days=days)
    common: dict[str, Any] = {
        "seller_id": order.seller_id,
        "currency": order.currency,
        "source_id": order.id,
        "order_id": order.id,
        "available_on": available_on,
        "created_at": paid_at,
    }
    built = [
        _build(
            type=T.SALE,
            lines=[
                Line(Account.GATEWAY_CLEARING, -order.total_amount, seller=False),
                Line(Account.SELLER_BALANCE, order.total_amount),
            ],
            description=f"Sale, order {order.order_number}",
            **common,
        )
    ]
    if order.platform_fee:
        built.append(
            _build(
                type=T.PLATFORM_FEE,
                lines=[
                    Line(Account.SELLER_BALANCE, -order.platform_fee),
                    Line(Account.PLATFORM_FEES, order.platform_fee, seller=False),
                ],
                description=f"Platform fee, order {order.order_number}",
                **common,
            )
        )
    return _write(built)


def ledger_external_sale_record(*, order: OrderFigures, seller: Any) -> list[BalanceTransaction]:
    """An order the seller was paid for outside the platform (``payment_method: "external"``): the
    buyer's money is in the seller's hands, never in the platform's clearing account, so no ``sale``
    credits the seller's balance with it. Only the ``platform_fee`` is written (from the seller's
    balance to the platform, held like any fee): the balance goes down by the fee and is recovered
    from later sales, as a refund after a payout is. Once per order (the unique (type, source) index).
    """
    if order.total_amount <= 0 or not order.platform_fee:
        return []
    if BalanceTransaction.objects.filter(type=T.PLATFORM_FEE, source_id=order.id).exists():
        return []
    now = timezone.now()
    paid_at = order.paid_at or now
    built = [
        _build(
            type=T.PLATFORM_FEE,
            seller_id=order.seller_id,
            currency=order.currency,
            source_id=order.id,
            order_id=order.id,
            available_on=paid_at + timedelta(days=hold_days_for(seller)),
            created_at=paid_at,
            lines=[
                Line(Account.SELLER_BALANCE, -order.platform_fee),
                Line(Account.PLATFORM_FEES, order.platform_fee, seller=False),
            ],
            description=f"Platform fee, order {order.order_number} (paid to the seller directly)",
        )
    ]
    return _write(built)


def ledger_refund_record(*, order: OrderFigures, refund_id: str, reason: str = "") -> BalanceTransaction | None:
    """A refund the order has just applied (its ``refunded_amount``, ``platform_fee`` and
    ``seller_earnings`` already stored): one ``refund`` transaction that brings the order's books to those
    figures — the seller gives back what the order's earnings dropped by, the platform the fee it
    returned, and the clearing account the money that went back to the buyer.

    The seller's part is held like the sale it reverses (its ``available_on``): a refund of a pending
    sale lowers pending; of an available one, available — below zero if it was paid out meanwhile.
    """
    if BalanceTransaction.objects.filter(type=T.REFUND, source_id=refund_id).exists():
        return None
    figures = _order_books(order_id=order.id)
    seller_delta = order.seller_earnings - figures["seller"]
    fee_delta = order.platform_fee - figures["fees"]
    if not seller_delta and not fee_delta:
        return None
    now = timezone.now()
    money = format_money(-(seller_delta + fee_delta), order.currency)
    description = f"Refund of {money}, order {order.order_number}" + (f": {reason}" if reason else "")
    ((btx, lines),) = [
        _build(
            type=T.REFUND,
            seller_id=order.seller_id,
            currency=order.currency,
            source_id=refund_id,
            order_id=order.id,
            lines=[
                Line(Account.SELLER_BALANCE, seller_delta),
                Line(Account.PLATFORM_FEES, fee_delta, seller=False),
                Line(Account.GATEWAY_CLEARING, -(seller_delta + fee_delta), seller=False),
            ],
            available_on=figures["available_on"] or now,
            created_at=now,
            description=description,
        )
    ]
    return _write([(btx, lines)])[0]


# A refund brings the order's sale, fee and refunds to its figures; disputes are apart (their own rows).
_ORDER_FIGURE_TYPES = [T.SALE, T.PLATFORM_FEE, T.REFUND]


def _order_books(*, order_id: str) -> dict[str, Any]:
    """What the ledger holds for one order from its sale, fee and refunds: the seller's and the
    platform's fee sums, and the hold of its sale."""
    sums = LedgerLine.objects.filter(
        transaction__order_id=order_id, transaction__type__in=_ORDER_FIGURE_TYPES
    ).aggregate(
        seller=Sum("amount", filter=Q(account=Account.SELLER_BALANCE)),
        fees=Sum("amount", filter=Q(account=Account.PLATFORM_FEES)),
        available_on=Max("available_on", filter=Q(transaction__type=T.SALE)),
    )
    return {"seller": sums["seller"] or 0, "fees": sums["fees"] or 0, "available_on": sums["available_on"]}


# --- Disputes ----------------------------------------------------------------------------------------
#
# The rule (orders decides the figures, as for refunds): a dispute of D takes from the seller what
# the order's earnings would drop by if D were refunded — the platform fee follows the money the
# platform keeps, exactly as a refund returns it — so the seller's part is never more than what the
# seller still holds from the order (its un-refunded earnings). Opened: that part moves from the
# seller's balance (pending while the sale is, else available) to ``seller_reserved``. Won: it
# comes back (``dispute_reversal``), available from the sale's own available_on, or now if that
# passed. Lost: the reserve and the fee's part leave for ``gateway_clearing`` (the buyer's bank took
# the money from the platform's gateway balance); the seller's balance does not move in that step.


def _sale_release(order_id: str, now: datetime) -> datetime:
    sale = BalanceTransaction.objects.filter(type=T.SALE, source_id=order_id).values_list("available_on", flat=True)
    found = sale.first()
    return max(found, now) if found is not None else now


def _once(type: str, source_id: str) -> bool:
    return not BalanceTransaction.objects.filter(type=type, source_id=source_id).exists()


def _dispute_write(
    *, order: OrderFigures, type: str, source_id: str, lines: list[Line], description: str, held: bool
) -> BalanceTransaction:
    """One transaction of a dispute's steps, on the order; ``held``: released with the order's sale
    (or now if that passed), else available at once."""
    now = timezone.now()
    built = _build(
        type=type,
        seller_id=order.seller_id,
        currency=order.currency,
        source_id=source_id,
        order_id=order.id,
        lines=lines,
        available_on=_sale_release(order.id, now) if held else now,
        created_at=now,
        description=description,
    )
    return _write([built])[0]


def ledger_dispute_open(
    *, order: OrderFigures, dispute_id: str, amount: int, description: str
) -> BalanceTransaction | None:
    """``dispute``: ``amount`` (the seller's part) from the seller's balance to its reserve. Once per
    dispute; nothing for a part of 0."""
    if amount <= 0 or not _once(T.DISPUTE, dispute_id):
        return None
    lines = [Line(Account.SELLER_BALANCE, -amount), Line(Account.SELLER_RESERVED, amount)]
    return _dispute_write(
        order=order, type=T.DISPUTE, source_id=dispute_id, lines=lines, description=description, held=True
    )


def ledger_dispute_won(
    *, order: OrderFigures, dispute_id: str, amount: int, description: str
) -> BalanceTransaction | None:
    """``dispute_reversal``: the reserve back to the seller's balance."""
    if amount <= 0 or not _once(T.DISPUTE_REVERSAL, dispute_id):
        return None
    lines = [Line(Account.SELLER_RESERVED, -amount), Line(Account.SELLER_BALANCE, amount)]
    return _dispute_write(
        order=order, type=T.DISPUTE_REVERSAL, source_id=dispute_id, lines=lines, description=description, held=True
    )


def ledger_dispute_lost(
    *, order: OrderFigures, dispute_id: str, amount: int, fee_amount: int, description: str
) -> BalanceTransaction | None:
    """A second ``dispute`` transaction (source ``<dispute>:lost``): the seller's reserve and the
    platform fee's part leave for the gateway's clearing account. Its seller amount is 0."""
    source_id = f"{dispute_id}:lost"
    if amount + fee_amount <= 0 or not _once(T.DISPUTE, source_id):
        return None
    lines = [
        Line(Account.SELLER_RESERVED, -amount),
        Line(Account.PLATFORM_FEES, -fee_amount, seller=False),
        Line(Account.GATEWAY_CLEARING, amount + fee_amount, seller=False),
    ]
    return _dispute_write(
        order=order, type=T.DISPUTE, source_id=source_id, lines=lines, description=description, held=False
    )
