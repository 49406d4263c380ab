"""The first page of a seller's filtered order list, at 10,000 and at 1,000,000 orders.

Two sellers in the same ``orders_order`` table of the ``bench`` database (see ``generate_orders``): one
with 10,000 orders and one with 1,000,000, made with ``bench.generate_orders`` if they have fewer (a few
minutes, once; the database is kept for the next run). Each seller asks for
``GET /api/v1/orders?status=delivered&created_after=<30 days before the last order>&created_before=<the end>``
— the last month's delivered orders, newest first, page 1 of 20 — through Django's test client with its
JWT: the whole view, the count for ``pagination.total_items``, the page and its prefetches. The two
sellers take turns, ``--repeat`` times each after a warm-up; the medians and their ratio are printed,
with PostgreSQL's own execution time (``EXPLAIN ANALYZE``) of the request's two queries on orders — the
count and the page — and with ``--explain`` their whole plans.

    .venv/bin/python -m bench.bench_order_list_scale [--repeat 20] [--explain]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python -m bench.bench_order_list_scale
"""

import argparse
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import print_machine
from bench.generate_orders import WINDOW_END, bench_database, generate, seller_and_product

SELLERS = (("small-seller@bench.test", 10_000), ("big-seller@bench.test", 1_000_000))


def iso(value: Any) -> str:
    return value.isoformat().replace("+00:00", "Z")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20, help="timed requests per seller")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of the list's queries")
    args = parser.parse_args()

    with bench_database() as name:
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext
        from rest_framework_simplejwt.tokens import RefreshToken

        from orders.models import Order

        print(f"database: PostgreSQL, {name}")
        print_machine()
        query = (
            f"status=delivered&created_after={iso(WINDOW_END - timedelta(days=30))}&created_before={iso(WINDOW_END)}"
        )
        print(f"GET /api/v1/orders?{query}")
        clients: dict[int, Any] = {}
        for email, wanted in SELLERS:
            seller, _, _ = seller_and_product(email)
            have = Order.objects.filter(seller=seller).count()
            if have < wanted:
                print(f"generating {wanted - have:,} orders for {email} …", flush=True)
                seconds = generate(email=email, count=wanted - have, log=lambda line: print(line, flush=True))
                print(f"  done in {seconds:.1f} s")
                have = wanted
            clients[have] = Client(headers={"Authorization": f"Bearer {RefreshToken.for_user(seller).access_token}"})
        url = f"/api/v1/orders?{query}"
        for client in clients.values():
            for _ in range(3):  # warm: caches, the planner, PostgreSQL's buffers
                response = client.get(url)
                assert response.status_code == 200, response.content[:300]
        # The two sellers take turns, so that a busy moment of the machine slows both alike.
        times: dict[int, list[float]] = {have: [] for have in clients}
        for _ in range(args.repeat):
            for have, client in clients.items():
                began = time.perf_counter()
                client.get(url)
                times[have].append(time.perf_counter() - began)
        medians: dict[int, float] = {}
        for have, client in clients.items():
            with CaptureQueriesContext(connection) as captured:
                response = client.get(url)
            data = response.json()["data"]
            medians[have] = statistics.median(times[have])
            print(
                f"{have:>9,} orders: first page median {medians[have] * 1000:7.1f} ms "
                f"(min {min(times[have]) * 1000:.1f}, max {max(times[have]) * 1000:.1f}); "
                f"{len(data['results'])} of {data['pagination']['total_items']:,} matching; "
                f"{len(captured.captured_queries)} queries"
            )
            on_orders = [q["sql"] for q in captured.captured_queries if 'FROM "orders_order"' in q["sql"]]
            for sql in on_orders[:2]:  # the count and the page
                with connection.cursor() as cursor:
                    cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
                    plan = [row[0] for row in cursor.fetchall()]
                executed = next(line for line in plan if line.startswith("Execution Time"))
                print(f"      {executed.split(':')[1].strip():>10} in PostgreSQL: {sql[:90]}")
                if args.explain:
                    print("      " + "\n      ".join(plan))
        small, large = medians[min(medians)], medians[max(medians)]
        print(f"first page at {max(medians):,} / at {min(medians):,} orders: {large / small:.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
