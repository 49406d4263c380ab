"""Generates a seller's ledger of ~1,000,000 lines (and other sellers' beside it), fast: one
``INSERT … SELECT generate_series`` per table, computed by PostgreSQL, in one transaction.

    .venv/bin/python -m bench.generate_ledger [--lines 1000000] [--others 20 --other-orders 10000] [--drop]

Runs on a database of its own, ``bench_ledger`` on the server of ``DATABASE_URL`` by default (its name must
start with ``bench``, so that ``test`` or a real database is never touched); created and migrated if missing,
kept for the next run (``bench_balance`` reuses it) until ``--drop``.

The mix, per seller, over the two years before the moment of generation: one order every few minutes,
each a ``sale`` and its ``platform_fee`` (5 % + 30), in USD (3 in 5), EUR or GBP; 1 order in 25
refunded (full or half, the fee returned in proportion, held like its sale); 1 in 1,000 disputed (its
amount moved to ``reserved``), half of those won later (``dispute_reversal``); a weekly ``payout`` per
currency of what became available the week before. Every sale is held 7 days, so the last week is
pending. The numbers are a deterministic function of the row's position (no ``random()``): the same
arguments give the same books. The rows are exactly what ``ledger.services`` writes (balanced lines, the
seller's lines' sum in ``amount``), so ``ledger_check``'s ledger-side checks hold on them; there are no
order rows behind them (``order_id`` is a made-up ``ord_`` id, as the column is a plain string).
"""

import argparse
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.generate_orders import bench_database

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_ledger"
BIG_SELLER = "ledger-seller@bench.test"
# Seller lines per order: sale 1 + fee 1 + refund 1/25 + dispute 2/1000 + reversal 2/2000.
LINES_PER_ORDER = 2 + 1 / 25 + 2 / 1000 + 1 / 1000

# One statement: the seller's events in a temporary table, then the transactions and their lines.
EVENTS_SQL = """
CREATE TEMP TABLE bench_events ON COMMIT DROP AS
WITH orders AS (
    SELECT g AS i,
           %(end)s::timestamptz - interval '730 days' + (g::float8 / %(orders)s) * interval '730 days' AS paid_at,
           (ARRAY['USD','USD','USD','EUR','GBP'])[1 + g %% 5] AS currency,
           (500 + (g::bigint * 7919) %% 9500) AS total,
           left(md5(%(tag)s || ':o:' || g), 22) AS h
    FROM generate_series(1, %(orders)s) AS g
), priced AS (
    SELECT *, total * 5 / 100 + 30 AS fee FROM orders
)
SELECT 'sale' AS type, currency, total AS amount, 0::bigint AS fee_back, 'ord_' || h AS source_id,
       'ord_' || h AS order_id, '' AS payout_id, 'Sale, order ' || (10000000 + i) AS description,
       paid_at + interval '7 days' AS available_on, paid_at AS created_at, 's' || h AS k
FROM priced
UNION ALL
SELECT 'platform_fee', currency, -fee, 0, 'ord_' || h, 'ord_' || h, '', 'Platform fee, order ' || (10000000 + i),
       paid_at + interval '7 days', paid_at, 'f' || h
FROM priced
UNION ALL  -- 1 in 25 refunded, 2 days later: whole (odd) or half (even); the fee goes back in proportion
SELECT 'refund', currency,
       -CASE WHEN i %% 50 = 25 THEN total - fee ELSE (total - fee) / 2 END,
       -CASE WHEN i %% 50 = 25 THEN fee ELSE fee / 2 END,
       're_' || h, 'ord_' || h, '', 'Refund, order ' || (10000000 + i),
       paid_at + interval '7 days', paid_at + interval '2 days', 'r' || h
FROM priced WHERE i %% 25 = 0
UNION ALL  -- 1 in 1,000 disputed 5 days later: the amount moves from the balance to reserved
SELECT 'dispute', currency, -total, 0, 'dp_' || h, 'ord_' || h, '', 'Dispute, order ' || (10000000 + i),
       paid_at + interval '5 days', paid_at + interval '5 days', 'd' || h
FROM priced WHERE i %% 1000 = 0
UNION ALL  -- half of them won 30 days later: the reserve comes back
SELECT 'dispute_reversal', currency, total, 0, 'dp_' || h, 'ord_' || h, '', 'Dispute won, order ' || (10000000 + i),
       paid_at + interval '35 days', paid_at + interval '35 days', 'v' || h
FROM priced WHERE i %% 2000 = 0
"""

PAYOUTS_SQL = """
INSERT INTO bench_events
SELECT 'payout', currency, -sum(amount)::bigint, 0, 'po_' || left(md5(%(tag)s || ':p:' || week || currency), 22),
       '', 'po_' || left(md5(%(tag)s || ':p:' || week || currency), 22), 'Payout by bank transfer',
       week + interval '7 days', week + interval '7 days', 'p' || left(md5(%(tag)s || ':p:' || week || currency), 22)
FROM (SELECT date_trunc('week', available_on) AS week, currency, amount FROM bench_events
      WHERE type IN ('sale', 'platform_fee', 'refund')) AS available
WHERE week + interval '7 days' < %(end)s::timestamptz
GROUP BY week, currency
HAVING sum(amount) > 0
"""

TRANSACTIONS_SQL = """
INSERT INTO ledger_balancetransaction
    (id, type, seller_id, currency, amount, source_id, order_id, payout_id, description, available_on, created_at)
SELECT 'btx_' || left(md5(%(tag)s || ':t:' || k), 22), type, %(seller)s, currency, amount, source_id, order_id,
       payout_id, description, available_on, created_at
FROM bench_events
"""

# Each event's lines: the seller's balance (and reserved for disputes) and the platform's other side.
LINES_SQL = """
INSERT INTO ledger_ledgerline (transaction_id, account, seller_id, currency, amount, available_on)
SELECT 'btx_' || left(md5(%(tag)s || ':t:' || e.k), 22), l.account,
       CASE WHEN l.account IN ('seller_balance', 'seller_reserved') THEN %(seller)s END,
       e.currency, l.amount, e.available_on
FROM bench_events AS e
CROSS JOIN LATERAL (VALUES
    ('seller_balance', e.amount),
    (CASE e.type WHEN 'sale' THEN 'gateway_clearing' WHEN 'platform_fee' THEN 'platform_fees'
                 WHEN 'refund' THEN 'platform_fees' WHEN 'payout' THEN 'payouts_in_transit'
                 ELSE 'seller_reserved' END,
     CASE e.type WHEN 'refund' THEN e.fee_back ELSE -e.amount END),
    (CASE WHEN e.type = 'refund' THEN 'gateway_clearing' END, -(e.amount + e.fee_back))
) AS l(account, amount)
WHERE l.account IS NOT NULL AND l.amount <> 0
ORDER BY e.created_at
"""


def orders_for(lines: int) -> int:
    return max(1, math.ceil(lines / LINES_PER_ORDER))


def seller(email: str) -> Any:
    from marketplace.accounts.models import Role, User

    return User.objects.filter(email=email).first() or User.objects.create_user(
        email, None, name=email.split("@")[0], role=Role.SELLER
    )


def generate(*, email: str, orders: int, end: Any, log: Callable[[str], None] = print) -> float:
    """Adds ``orders`` orders' worth of ledger (and the weekly payouts) to seller ``email``."""
    from django.db import connection, transaction

    user = seller(email)
    params = {"seller": user.pk, "orders": orders, "end": end, "tag": email}
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        # The rows are consistent by construction; checking millions of foreign keys at COMMIT is not
        # what is measured here (generate_orders does the same).
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(EVENTS_SQL, params)
        cursor.execute(PAYOUTS_SQL, params)
        cursor.execute(TRANSACTIONS_SQL, params)
        cursor.execute(LINES_SQL, params)
        log(f"  {email}: {orders:,} orders' ledger written in {time.perf_counter() - started:.1f} s")
    return time.perf_counter() - started


def populate(*, lines: int, others: int, other_orders: int, log: Callable[[str], None] = print) -> Any:
    """The big seller with ``lines`` seller lines (about) and ``others`` sellers beside it, unless they
    are there already. Returns the big seller."""
    from django.db import connection
    from django.utils import timezone

    from ledger.models import LedgerLine

    big = seller(BIG_SELLER)
    if LedgerLine.objects.filter(seller=big).exists():
        return big
    end = timezone.now().replace(microsecond=0)
    started = time.perf_counter()
    for n in range(others):
        generate(email=f"ledger-other-{n:03d}@bench.test", orders=other_orders, end=end, log=log)
    generate(email=BIG_SELLER, orders=orders_for(lines), end=end, log=log)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE ledger_balancetransaction")
        cursor.execute("VACUUM ANALYZE ledger_ledgerline")
    log(f"  generated in {time.perf_counter() - started:.1f} s (VACUUM ANALYZE included)")
    return big


def main() -> int:
    import os

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000, help="the big seller's ledger lines (about)")
    parser.add_argument("--others", type=int, default=20, help="other sellers")
    parser.add_argument("--other-orders", type=int, default=10_000, help="orders per other seller")
    parser.add_argument("--drop", action="store_true", help="drop and re-create the database first")
    args = parser.parse_args()
    os.environ.setdefault("DATABASE_URL", DEFAULT_URL)
    with bench_database(drop=args.drop) as name:
        from ledger.models import LedgerLine

        print(f"database {name}")
        big = populate(lines=args.lines, others=args.others, other_orders=args.other_orders)
        print(f"{BIG_SELLER}: {LedgerLine.objects.filter(seller=big).count():,} ledger lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
