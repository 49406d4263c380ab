"""How fast ``GET /api/v1/orders/export.csv`` streams N orders, and in how much memory.

Generates N paid orders (one seller, one product, one item per order; ``bulk_create`` in batches, a
fifth in KWD and a fifth in UGX, every tenth partly refunded) on a throwaway database, then streams
the export through Django's test client with the seller's JWT — the whole view: authentication,
``OrderFilter``, the two streamed queries and the CSV writer. Counts rows and bytes, checks that
there is one row per order, and prints rows per second and memory.

    .venv/bin/python -m bench.bench_export [--count 1000000] [--batch-size 5000] [--tracemalloc]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python -m bench.bench_export

Memory: ``ru_maxrss`` (the process's peak resident set) before and after the export, always; with
``--tracemalloc`` also the tracemalloc peak of the Python heap during the export (slower: time with
a plain run). Bounded memory means these stay flat when N grows tenfold.
"""

import argparse
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import peak_rss_mb, throwaway_database

CURRENCIES = ("USD", "USD", "USD", "KWD", "UGX")


def generate(count: int, batch_size: int) -> tuple[Any, float]:
    """N orders with one item each, newest first by ``created_at`` one second apart."""
    from datetime import UTC, datetime, timedelta

    from django.db import transaction
    from django.db.models import F

    from catalog.models import Product, Variant
    from marketplace.accounts.models import Role, User
    from orders.models import Order, OrderItem, OrderStatus

    seller = User.objects.create_user("bench-seller@example.com", "x", name="Bench Seller", role=Role.SELLER)
    product = Product.objects.create(
        seller=seller, slug="bench", title="Bench Gift Card", currency="USD", delivery_content="thanks"
    )
    variant = Variant.objects.create(product=product, name="Standard", price=1999)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    started = time.perf_counter()
    for first in range(0, count, batch_size):
        orders = []
        for i in range(first, min(first + batch_size, count)):
            currency = CURRENCIES[i % len(CURRENCIES)]
            total = 1999 + i % 1000
            fee = total // 20
            refunded = total // 2 if i % 10 == 0 else 0
            created = start + timedelta(seconds=i)
            orders.append(
                Order(
                    order_number=f"{i:08d}",
                    seller=seller,
                    product=product,
                    buyer_email=f"buyer{i}@example.com",
                    status=OrderStatus.PARTIALLY_REFUNDED if refunded else OrderStatus.DELIVERED,
                    currency=currency,
                    subtotal=total,
                    total_amount=total,
                    platform_fee=fee,
                    seller_earnings=total - refunded - fee,
                    refunded_amount=refunded,
                    payment_reference=f"INV-{i}",
                    reservation_held=False,
                    paid_at=created,
                    created_at=created,
                )
            )
        with transaction.atomic():
            Order.objects.bulk_create(orders)
            OrderItem.objects.bulk_create(
                OrderItem(
                    order=o,
                    product=product,
                    variant=variant,
                    title="Bench Gift Card",
                    variant_name="Standard",
                    quantity=1 + int(o.order_number) % 3,
                    unit_price=o.subtotal,
                    content_type="text",
                )
                for o in orders
            )
            # auto_now_add overwrote created_at: put the spread-out times back (= paid_at), one UPDATE.
            Order.objects.filter(pk__in=[o.pk for o in orders]).update(created_at=F("paid_at"))
    elapsed = time.perf_counter() - started
    return seller, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1_000_000, help="orders to generate and export")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--tracemalloc", action="store_true", help="also measure the heap peak (slower)")
    args = parser.parse_args()

    with throwaway_database() as database:
        from django.test import Client
        from rest_framework_simplejwt.tokens import RefreshToken

        print(f"database: {database.label}")
        seller, generated_in = generate(args.count, args.batch_size)
        print(f"generated {args.count:,} orders and items in {generated_in:.1f} s")

        client = Client(headers={"Authorization": f"Bearer {RefreshToken.for_user(seller).access_token}"})
        rss_before = peak_rss_mb()
        if args.tracemalloc:
            tracemalloc.start()
        started = time.perf_counter()
        response = client.get("/api/v1/orders/export.csv")
        assert response.status_code == 200, response.status_code
        assert response.streaming
        size = lines = 0
        first_chunk = b""
        for chunk in response.streaming_content:  # type: ignore[attr-defined]
            if not first_chunk:
                first_chunk = chunk
            size += len(chunk)
            lines += chunk.count(b"\r\n")
        elapsed = time.perf_counter() - started
        heap_peak = tracemalloc.get_traced_memory()[1] if args.tracemalloc else None
        if args.tracemalloc:
            tracemalloc.stop()
        rss_after = peak_rss_mb()

        rows = lines - 1  # the header
        print(first_chunk.split(b"\r\n")[1].decode())
        print(f"exported {rows:,} rows, {size / 1e6:,.1f} MB in {elapsed:.1f} s: {rows / elapsed:,.0f} rows/s")
        print(f"ru_maxrss before → after the export: {rss_before:.1f} → {rss_after:.1f} MB")
        if heap_peak is not None:
            print(f"tracemalloc peak during the export: {heap_peak / 1e6:.1f} MB")
        if rows != args.count:
            print(f"expected {args.count:,} rows", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
