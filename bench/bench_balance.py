"""The seller's Balance page with 1,000,000 ledger lines: the balance, the statement, its CSV, the payout sum.

    .venv/bin/python -m bench.bench_balance [--repeat 20] [--explain] [--save FILE] [--before FILE]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_ledger .venv/bin/python -m bench.bench_balance

PostgreSQL only, on a database of its own (``bench_ledger`` by default; the name must start with
``bench``), kept between runs: ``bench.generate_ledger`` fills it once (about a minute) with one seller
of ~1,000,000 ledger lines and 20 sellers of ~20,000 beside it. SQLite is refused: the embedded default
is a development database, and a seller with a million lines is a production question.

Timed, ``--repeat`` times each after a warm-up, in turns (so that a busy moment of the machine slows
all alike), as the big seller through Django's test client with its JWT:

* ``GET /api/v1/balance`` — the whole request;
* ``balance_for_seller`` alone (the selector the API and the dashboard page call);
* ``_available`` — the sum ``payout_create`` makes under the seller's lock;
* ``GET /api/v1/balance/transactions`` — page 1, and page 10,000 (rows 199,981–200,000);
* ``GET /api/v1/balance/transactions.csv`` — the whole statement streamed (``--csv-repeat`` times),
  with the peak growth of the process's resident memory while it streams (sampled every 5 ms).

Printed: median and p95 per figure, queries per request, and PostgreSQL's plan summary (``EXPLAIN
(ANALYZE, BUFFERS)``: the top nodes and the execution time; ``--explain`` for the whole plans) of the
balance sums. ``--save`` writes the figures as JSON; ``--before`` reads such a file (a run on the code
before a change, same database) and prints it beside this run with the ratio.
"""

import argparse
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import print_machine
from bench.generate_ledger import DEFAULT_URL, populate
from bench.generate_orders import bench_database

DEEP_PAGE = 10_000


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


class RssPeak:
    """The process's resident memory, sampled on a thread while a block runs: its peak minus its start."""

    def __enter__(self) -> "RssPeak":
        self.start = self.peak = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())

    @property
    def growth(self) -> float:
        return self.peak - self.start


def plan_summary(sql: str, params: Any, *, full: bool) -> tuple[float, list[str]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
        plan = [row[0] for row in cursor.fetchall()]
    executed = float(next(line for line in plan if line.startswith("Execution Time")).split(":")[1].split()[0])
    if full:
        return executed, plan
    nodes = [line for line in plan if "->" in line or not line.startswith(" ")]
    keep = [line for line in nodes if not line.startswith(("Planning", "Execution"))][:6]
    return executed, keep


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20, help="timed runs of each figure")
    parser.add_argument("--csv-repeat", type=int, default=2, help="timed runs of the whole CSV statement")
    parser.add_argument("--lines", type=int, default=1_000_000, help="the big seller's ledger lines (first run)")
    parser.add_argument("--others", type=int, default=20, help="other sellers (first run)")
    parser.add_argument("--other-orders", type=int, default=10_000, help="orders per other seller (first run)")
    parser.add_argument("--explain", action="store_true", help="print the whole plans of the balance sums")
    parser.add_argument("--save", help="write this run's figures to this JSON file")
    parser.add_argument("--before", help="a --save file of a run before the change, printed beside this one")
    parser.add_argument("--label", default="this run", help="the column's name for this run")
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "")
    if url and not url.startswith("postgres"):
        raise SystemExit("bench_balance runs on PostgreSQL only (a million ledger lines is a production question).")
    if not url or not url.rsplit("/", 1)[-1].startswith("bench"):
        # The test database (or none) was given: use the server, with a database of the benchmark's own.
        os.environ["DATABASE_URL"] = (url.rsplit("/", 1)[0] + "/bench_ledger") if url else DEFAULT_URL

    with bench_database() as name:
        import logging

        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext
        from django.utils import timezone
        from rest_framework_simplejwt.tokens import RefreshToken

        from ledger.models import BalanceTransaction, LedgerLine
        from ledger.payouts import _available
        from ledger.selectors import balance_for_seller

        logging.getLogger("marketplace.request").setLevel(logging.WARNING)  # one line per request otherwise
        print(f"database: PostgreSQL, {name}")
        print_machine()
        seller = populate(
            lines=args.lines,
            others=args.others,
            other_orders=args.other_orders,
            log=lambda line: print(line, flush=True),
        )
        lines = LedgerLine.objects.filter(seller=seller).count()
        all_lines = LedgerLine.objects.count()
        transactions = BalanceTransaction.objects.filter(seller=seller).count()
        currency = "USD"
        print(
            f"seller {seller.email}: {lines:,} ledger lines ({all_lines:,} in the table), "
            f"{transactions:,} balance transactions"
        )
        client = Client(headers={"Authorization": f"Bearer {RefreshToken.for_user(seller).access_token}"})

        def get(url: str) -> Callable[[], object]:
            def run() -> None:
                response = client.get(url)
                assert response.status_code == 200, response.content[:300]

            return run

        def available() -> None:
            _available(seller_id=seller.pk, currency=currency, now=timezone.now())

        def lines_sums(now: Any = None) -> list[tuple[Any, ...]]:
            """The balance as a plain sum of every line (the query before the rollup): the truth to check."""
            from django.db.models import Min, Q, Sum

            from ledger.models import Account

            now = now or timezone.now()
            balance = Q(account=Account.SELLER_BALANCE)
            rows = (
                LedgerLine.objects.filter(seller=seller, account__in=[Account.SELLER_BALANCE, Account.SELLER_RESERVED])
                .values("currency")
                .annotate(
                    pending=Sum("amount", filter=balance & Q(available_on__gt=now)),
                    available=Sum("amount", filter=balance & Q(available_on__lte=now)),
                    reserved=Sum("amount", filter=Q(account=Account.SELLER_RESERVED)),
                    next_available_on=Min("available_on", filter=balance & Q(available_on__gt=now)),
                )
                .order_by("currency")
            )
            return [
                (
                    r["currency"],
                    r["pending"] or 0,
                    r["available"] or 0,
                    r["reserved"] or 0,
                    r["next_available_on"] if r["pending"] else None,
                )
                for r in rows
            ]

        from ledger.selectors import balances_for_seller

        check_now = timezone.now()
        truth = lines_sums(check_now)
        shown = [
            (b["currency"], b["pending"], b["available"], b["reserved"], b["next_available_on"])
            for b in balances_for_seller(seller=seller, now=check_now)
        ]
        if truth != shown:
            raise SystemExit(f"balance_for_seller disagrees with the sum of the lines:\n{shown}\n{truth}")
        print("balances (currency, pending, available, reserved, next available):")
        for row in shown:
            print(f"  {row[0]} {row[1]:>14,} {row[2]:>16,} {row[3]:>12,}  {row[4]}")
        print("  = the plain sum of the seller's lines")

        figures: dict[str, Callable[[], object]] = {
            "sum of every line (reference)": lambda: lines_sums(),
            "GET /api/v1/balance": get("/api/v1/balance"),
            "balance_for_seller()": lambda: balance_for_seller(seller=seller),
            "payout_create's _available()": available,
            "transactions, page 1": get("/api/v1/balance/transactions"),
            f"transactions, page {DEEP_PAGE:,}": get(f"/api/v1/balance/transactions?page={DEEP_PAGE}"),
        }
        from ledger.selectors import transactions_for_seller

        # The same rows as the deep page, by keyset, where the API has it (starting_after=btx_…).
        anchor = transactions_for_seller(seller=seller).values_list("id", flat=True)[(DEEP_PAGE - 1) * 20 - 1]
        probe = client.get(f"/api/v1/balance/transactions?limit=1&starting_after={anchor}")
        if probe.status_code == 200:
            by_page = client.get(f"/api/v1/balance/transactions?page={DEEP_PAGE}").json()["data"]["results"]
            by_key = client.get(f"/api/v1/balance/transactions?starting_after={anchor}").json()["data"]["results"]
            if [r["id"] for r in by_page] != [r["id"] for r in by_key]:
                raise SystemExit(f"starting_after={anchor} and page={DEEP_PAGE} answer different rows")
            figures[f"page {DEEP_PAGE:,} by starting_after"] = get(
                f"/api/v1/balance/transactions?starting_after={anchor}"
            )
        queries: dict[str, int] = {}
        for label, run in figures.items():
            run()  # warm: caches, the planner, PostgreSQL's buffers
            with CaptureQueriesContext(connection) as captured:
                run()
            queries[label] = len(captured.captured_queries)
        times: dict[str, list[float]] = {label: [] for label in figures}
        for _ in range(args.repeat):
            for label, run in figures.items():
                began = time.perf_counter()
                run()
                times[label].append((time.perf_counter() - began) * 1000)

        csv_label = "whole CSV statement"
        csv_times: list[float] = []
        csv_rows, csv_peak = 0, 0.0
        for _ in range(max(args.csv_repeat, 1)):
            with RssPeak() as memory:
                began = time.perf_counter()
                response = client.get("/api/v1/balance/transactions.csv")
                assert response.status_code == 200
                chunks = getattr(response, "streaming_content")  # noqa: B009 - a StreamingHttpResponse's
                csv_rows = sum(chunk.count(b"\n") for chunk in chunks) - 1
                csv_times.append((time.perf_counter() - began) * 1000)
            csv_peak = max(csv_peak, memory.growth)
        times[csv_label] = csv_times

        result: dict[str, Any] = {"label": args.label, "lines": lines, "figures": {}}
        for label, values in times.items():
            result["figures"][label] = {
                "median": statistics.median(values),
                "p95": p95(values),
                "queries": queries.get(label),
            }
        result["figures"][csv_label]["rss_growth_mb"] = csv_peak
        result["figures"][csv_label]["rows"] = csv_rows

        before = json.loads(Path(args.before).read_text()) if args.before else None
        print()
        head = f"{'figure (ms)':<32} {'median':>10} {'p95':>10} {'queries':>8}"
        if before:
            head += f"   {before['label'][:22]:>22} {'median ratio':>13}"
        print(head)
        for label, figure in result["figures"].items():
            line = f"{label:<32} {figure['median']:>10.1f} {figure['p95']:>10.1f} {figure['queries'] or '-':>8}"
            if before and label in before["figures"]:
                old = before["figures"][label]
                line += f"   {old['median']:>10.1f} / {old['p95']:>9.1f} {old['median'] / figure['median']:>12.1f}×"
            print(line)
        print(f"  CSV: {csv_rows:,} rows; resident memory grew by at most {csv_peak:.1f} MB while streaming")
        if before and "rss_growth_mb" in before["figures"].get(csv_label, {}):
            print(f"  (before: {before['figures'][csv_label]['rss_growth_mb']:.1f} MB)")

        print("\nThe balance sums in PostgreSQL (EXPLAIN (ANALYZE, BUFFERS)):")
        result["plans"] = {}
        for label, run in (("balance_for_seller()", figures["balance_for_seller()"]), ("_available()", available)):
            with CaptureQueriesContext(connection) as captured:
                run()
            sums = [q["sql"] for q in captured.captured_queries if "ledger_" in q["sql"] and "SUM(" in q["sql"].upper()]
            for sql in sums:
                executed, plan = plan_summary(sql, None, full=args.explain)
                result["plans"][label] = executed
                print(f"  {label}: {executed:.2f} ms in PostgreSQL — {sql[:110]}…")
                print("      " + "\n      ".join(plan))
        if args.save:
            Path(args.save).write_text(json.dumps(result, indent=2))
            print(f"\nfigures saved to {args.save}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
