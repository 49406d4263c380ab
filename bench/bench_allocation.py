"""Concurrent checkouts against one code pool: how many orders a second, and never a code twice.

A pool of N codes (default 2,000) and 32 buyers — threads, each with its own database connection —
calling ``order_create`` for one unit again and again until the pool is empty. Then the database is
checked: every code went to exactly one order item, every item got exactly its quantity, no code
value is stored twice, and as many codes were allocated as the pool held. Exits 1 otherwise.

    .venv/bin/python -m bench.bench_allocation [--pool 2000] [--buyers 32]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python -m bench.bench_allocation

On PostgreSQL reservations take rows with ``SELECT ... FOR UPDATE SKIP LOCKED``, so buyers do not
wait on each other; on SQLite every write transaction holds the database's write lock, so they queue.
"""

import argparse
import os
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import bench_product, throwaway_database

MAX_ERRORS_PER_BUYER = 20


@dataclass
class BuyerTally:
    orders: int = 0
    out_of_stock: int = 0
    errors: Counter[str] = field(default_factory=Counter)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pool", type=int, default=2000, help="codes in the pool")
    parser.add_argument("--buyers", type=int, default=32, help="concurrent buyers (threads)")
    args = parser.parse_args()

    with throwaway_database() as database:
        from django.db import connections
        from django.db.models import Count, F

        from catalog.inventory import CodeRow, available_codes, codes_import
        from catalog.models import Code, CodeStatus, DeliveryType, Product
        from marketplace.core.errors import OutOfStock
        from orders.models import Order, OrderItem
        from orders.services import CheckoutLine, order_create

        bench_product(
            slug="bench-gift-card",
            title="Bench gift card",
            delivery_type=DeliveryType.CODE_POOL,
            variant_name="$25",
            price=2500,
            seller_email=f"bench-{os.getpid()}@example.com",
        )
        product = Product.objects.select_related("seller").get(slug="bench-gift-card")
        variant = product.variants.get()
        loaded = codes_import(variant=variant, rows=(CodeRow(i, f"POOL-{i:08d}") for i in range(1, args.pool + 1)))
        assert loaded.imported == args.pool

        tallies = [BuyerTally() for _ in range(args.buyers)]
        start = threading.Barrier(args.buyers + 1)

        def buyer(number: int) -> None:
            tally = tallies[number]
            try:
                start.wait()
                while True:
                    try:
                        order_create(
                            product=product,
                            buyer_email=f"buyer{number}@example.com",
                            lines=[CheckoutLine(variant_id=variant.id, quantity=1)],
                        )
                        tally.orders += 1
                    except OutOfStock:
                        tally.out_of_stock += 1
                        # SKIP LOCKED: the last codes may be held by others' open transactions.
                        if not available_codes(variant.id).exists():
                            return
                    except Exception as exc:  # noqa: BLE001 — counted and printed, the run goes on
                        tally.errors[f"{type(exc).__name__}: {exc}"] += 1
                        if sum(tally.errors.values()) >= MAX_ERRORS_PER_BUYER:
                            return
            finally:
                connections.close_all()  # this thread's connections only

        threads = [threading.Thread(target=buyer, args=(n,), name=f"buyer-{n}") for n in range(args.buyers)]
        for thread in threads:
            thread.start()
        start.wait()
        started = time.perf_counter()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started

        created = sum(t.orders for t in tallies)
        out_of_stock = sum(t.out_of_stock for t in tallies)
        errors: Counter[str] = Counter()
        for tally in tallies:
            errors.update(tally.errors)

        # What the database says, not what the threads counted.
        codes = Code.objects.filter(variant=variant)
        allocated = codes.filter(status=CodeStatus.ALLOCATED, order_item__isnull=False).count()
        items = OrderItem.objects.filter(variant=variant).annotate(n=Count("codes"))
        items_overfull = items.filter(n__gt=F("quantity")).count()
        items_short = items.filter(n__lt=F("quantity")).count()
        codes_per_item = Counter(codes.exclude(order_item=None).values_list("order_item_id", flat=True))
        codes_sharing_an_item = sum(n for n in codes_per_item.values() if n > 1)
        values_stored_twice = (
            Code.objects.filter(seller=product.seller).values("code_hash").annotate(n=Count("id")).filter(n__gt=1).count()
        )
        duplicates = items_overfull + codes_sharing_an_item + values_stored_twice
        orders_in_db = Order.objects.filter(product=product).count()
        left = available_codes(variant.id).count()

        print(f"database:                 {database.label}")
        print(f"pool:                     {args.pool:,} codes, {args.buyers} concurrent buyers, 1 unit per order")
        print(f"elapsed:                  {seconds:,.2f} s")
        print(f"orders per second:        {created / seconds:,.0f}")
        print(f"orders created:           {created:,} (in the database: {orders_in_db:,})")
        print(f"out-of-stock answers:     {out_of_stock:,}")
        print(f"other errors:             {sum(errors.values()):,}")
        for message, n in errors.most_common(5):
            print(f"  {n} × {message[:160]}")
        print(f"codes allocated:          {allocated:,} of {args.pool:,} (left available: {left:,})")
        print(f"items short of codes:     {items_short:,}")
        print(
            f"duplicates found: {duplicates} "
            f"(items with more codes than quantity: {items_overfull}, codes sharing an item: {codes_sharing_an_item}, "
            f"code values stored twice: {values_stored_twice})"
        )
        ok = (
            duplicates == 0
            and allocated == args.pool
            and created == orders_in_db == args.pool
            and items_short == 0
            and left == 0
        )
        if not ok:
            print("FAILED: see the figures above.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
