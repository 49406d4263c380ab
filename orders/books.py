"""Whether the ledger agrees with the orders: ``manage.py ledger_check``. Here, above both, because
the orders are what the books must prove (the ledger never reads orders)."""

from collections import defaultdict
from typing import Any

from ledger.rollups import rollup_differences
from ledger.selectors import (
    adjustment_books,
    adjustments_all,
    order_books,
    payout_books,
    payouts_outstanding_all,
    seller_balances_all,
    unbalanced_transactions,
)
from orders.lifecycle import paid_q
from orders.models import Order
from payments.models import Dispute


def _dispute_figures() -> dict[str, dict[str, int]]:
    """Per order id, what its disputes hold: the seller's parts still reserved (open), the seller's
    and the fee's parts lost to the buyer's bank."""
    figures: dict[str, dict[str, int]] = defaultdict(lambda: {"reserved": 0, "lost": 0, "lost_fee": 0})
    rows = Dispute.objects.values_list("order_id", "status", "reserved_amount", "fee_amount")
    for order_id, status, reserved, fee in rows.iterator():
        if status in Dispute.OPEN:
            figures[order_id]["reserved"] += reserved
        elif status == Dispute.Status.LOST:
            figures[order_id]["lost"] += reserved
            figures[order_id]["lost_fee"] += fee
    return figures


def ledger_differences() -> list[str]:
    """Every disagreement, one sentence each, naming the seller, the currency and the order:
    - a transaction whose lines do not add up to zero (or not in its own currency);
    - an order whose seller, reserve, fee or clearing sums differ from its ``seller_earnings``,
      ``platform_fee`` and ``total_amount - refunded_amount`` net of its disputes (an open one's part
      is reserved; a lost one's seller and fee parts left for the buyer's bank); books for an order
      that was never paid;
    - an adjustment whose ledger transaction differs from it (or one with no adjustment behind it);
    - a payout whose ledger does not match its status (taken from the balance unless it failed);
    - a seller whose balance per currency differs from the earnings of its paid orders, net of refunds
      of the payouts that did not fail and of lost disputes, plus its adjustments;
    - a row of the balance rollup (the lines' cache per seller, account, currency and day) that
      differs from the lines (``ledger_rebuild_rollups`` rebuilds it).
    Empty when the books and the orders agree."""
    problems: list[str] = []
    for row in unbalanced_transactions():
        problems.append(
            f"Transaction {row['id']} does not balance: lines sum to {row['total']} {row['currency']} "
            f"(seller's part {row['seller']}, recorded amount {row['amount']})."
        )
    books = order_books()
    disputes = _dispute_figures()
    expected: dict[tuple[Any, str], int] = defaultdict(int)
    emails: dict[Any, str] = {}
    orders = Order.objects.filter(paid_q()).values_list(
        "id",
        "order_number",
        "seller_id",
        "seller__email",
        "currency",
        "total_amount",
        "refunded_amount",
        "platform_fee",
        "seller_earnings",
    )
    seen = set()
    for order_id, number, seller_id, email, currency, total, refunded, fee, earnings in orders.iterator():
        seen.add(order_id)
        emails[seller_id] = email
        disputed = disputes.get(order_id, {"reserved": 0, "lost": 0, "lost_fee": 0})
        expected[(seller_id, currency)] += earnings - disputed["lost"]
        found = books.get(order_id, {"seller": 0, "reserved": 0, "fees": 0, "clearing": 0})
        for name, want, got in (
            ("seller earnings", earnings - disputed["reserved"] - disputed["lost"], found["seller"]),
            ("reserved for disputes", disputed["reserved"], found["reserved"]),
            ("platform fee", fee - disputed["lost_fee"], found["fees"]),
            (
                "money kept from the buyer",
                total - refunded - disputed["lost"] - disputed["lost_fee"],
                -found["clearing"],
            ),
        ):
            if want != got:
                problems.append(
                    f"Seller {email}, {currency}, order {number} ({order_id}): {name} is {want} on the order "
                    f"but {got} in the ledger (difference {got - want})."
                )
    for order_id in sorted(set(books) - seen):
        problems.append(f"Order {order_id} has ledger transactions but was never paid.")
    for payout_id, status, want, got in payout_books():
        problems.append(
            f"Payout {payout_id} ({status}) took {-got} from the seller's balance in the ledger but should "
            f"have taken {-want}."
        )
    for adjustment_id, want, got in adjustment_books():
        problems.append(f"Adjustment {adjustment_id} is {want} but its ledger transaction moved {got}.")
    for key, paid_out in payouts_outstanding_all().items():
        expected[key] -= paid_out
    for key, adjusted in adjustments_all().items():
        expected[key] += adjusted
    balances = seller_balances_all()
    for key in sorted(set(balances) | set(expected), key=lambda k: (str(k[0]), k[1])):
        seller_id, currency = key
        want, got = expected.get(key, 0), balances.get(key, 0)
        if want != got:
            who = emails.get(seller_id, seller_id)
            problems.append(
                f"Seller {who}, {currency}: balance is {got} in the ledger but its orders' earnings net of "
                f"refunds, payouts and lost disputes, plus adjustments, are {want} (difference {got - want})."
            )
    for (seller_id, account, currency, day), want_row, got_row in rollup_differences():
        who = emails.get(seller_id, seller_id)
        problems.append(
            f"Seller {who}, {currency}, {account} on {day}: the balance rollup holds "
            f"{_rollup_text(got_row)} but the lines say {_rollup_text(want_row)}; run ledger_rebuild_rollups."
        )
    return problems


def _rollup_text(row: tuple[int, int, Any] | None) -> str:
    return "nothing" if row is None else f"{row[0]} in {row[1]} line(s)"
