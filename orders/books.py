"""Whether the ledger agrees with the orders: ``manage.py ledger_check``. Here, above both, because
the orders are what the books must prove (the ledger never reads orders)."""

from collections import defaultdict
from typing import Any

from ledger.rollups import rollup_differences
from ledger.selectors import (
    order_books,
    payout_books,
    payouts_outstanding_all,
    seller_balances_all,
    unbalanced_transactions,
)
from orders.lifecycle import paid_q
from orders.models import Order


def ledger_differences() -> list[str]:
    """Every disagreement, one sentence each, naming the seller, the currency and the order:
    - a transaction whose lines do not add up to zero (or not in its own currency);
    - an order whose seller, fee or clearing sums differ from its ``seller_earnings``, ``platform_fee``
      and ``total_amount - refunded_amount``; books for an order that was never paid;
    - a payout whose ledger does not match its status (taken from the balance unless it failed);
    - a seller whose balance per currency differs from the earnings of its paid orders, net of refunds
      and of the payouts that did not fail;
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
        expected[(seller_id, currency)] += earnings
        found = books.get(order_id, {"seller": 0, "fees": 0, "clearing": 0})
        for name, want, got in (
            ("seller earnings", earnings, found["seller"]),
            ("platform fee", fee, found["fees"]),
            ("money kept from the buyer", total - refunded, -found["clearing"]),
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
    for key, paid_out in payouts_outstanding_all().items():
        expected[key] -= paid_out
    balances = seller_balances_all()
    for key in sorted(set(balances) | set(expected), key=lambda k: (str(k[0]), k[1])):
        seller_id, currency = key
        want, got = expected.get(key, 0), balances.get(key, 0)
        if want != got:
            who = emails.get(seller_id, seller_id)
            problems.append(
                f"Seller {who}, {currency}: balance is {got} in the ledger but its orders' earnings net of "
                f"refunds and payouts are {want} (difference {got - want})."
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
