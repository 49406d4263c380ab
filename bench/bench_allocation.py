"""Concurrent checkouts against a code pool: as many orders a second from a pool of 1,000,000 codes
as from one of 2,000, and never a code twice.

Two pools of one seller: a big one (``--big-pool``, default 1,000,000 codes, imported once with
``codes_import``) and, for every round, a fresh small one (``--small-pool``, default 2,000). In each
round 32 buyers — threads, each with its own database connection — call ``order_create`` for one
unit until ``--orders`` orders (default 1,000) are sold from the small pool, then as many from the
big one (an out-of-stock answer while codes are still available — held by other buyers' open
transactions under SKIP LOCKED — sends the buyer back to try again). Each round gives the ratio
big ÷ small of orders per second; the figure is the median of ``--rounds`` (default 3) rounds, the
two phases alternating (small, big, small, big, ...) so that the machine's changing load falls on
both alike.

Then the database, not the threads' tallies, is checked: items with more codes than their quantity,
codes sharing an item, code values stored twice (``code_hash`` per seller), items short of codes,
and per pool, codes allocated against orders created. Exits 1 on any duplicate or mismatch.

    .venv/bin/python -m bench.bench_allocation [--big-pool 1000000] [--small-pool 2000] [--orders 1000]
        [--rounds 3] [--buyers 32]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python -m bench.bench_allocation

On PostgreSQL reservations take rows with ``SELECT ... FOR UPDATE SKIP LOCKED ... LIMIT quantity``,
so buyers do not wait on each other; on SQLite every write transaction holds the database's write
lock, so they queue.
"""

import argparse
import os
import statistics
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import print_machine, throwaway_database

MAX_ERRORS_PER_BUYER = 20


@dataclass
class Phase:
    name: str
    seconds: float = 0.0
    orders: int = 0
    out_of_stock: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def per_second(self) -> float:
        return self.orders / self.seconds if self.seconds else 0.0


def sell(name: str, product: Any, variant: Any, *, orders: int, buyers: int) -> Phase:
    """``buyers`` threads buy one unit each, again and again, until ``orders`` are sold (or the pool
    is empty, or a buyer has seen too many errors)."""
    from django.db import connections

    from catalog.inventory import available_codes
    from marketplace.core.errors import OutOfStock
    from orders.services import CheckoutLine, order_create

    phase = Phase(name)
    lock = threading.Lock()
    started = 0
    start = threading.Barrier(buyers + 1)

    def buyer(number: int) -> None:
        nonlocal started
        errors = 0
        try:
            start.wait()
            while True:
                with lock:
                    if started >= orders:
                        return
                    started += 1
                try:
                    order_create(
                        product=product,
                        buyer_email=f"buyer{number}@example.com",
                        lines=[CheckoutLine(variant_id=variant.id, quantity=1)],
                    )
                    with lock:
                        phase.orders += 1
                except OutOfStock:
                    with lock:
                        phase.out_of_stock += 1
                        started -= 1  # not sold: another try
                    # SKIP LOCKED: the last codes may be held by others' open transactions.
                    if not available_codes(variant.id).exists():
                        return
                except Exception as exc:  # noqa: BLE001 — counted and printed, the run goes on
                    with lock:
                        phase.errors[f"{type(exc).__name__}: {exc}"] += 1
                        started -= 1
                    errors += 1
                    if errors >= MAX_ERRORS_PER_BUYER:
                        return
        finally:
            connections.close_all()  # this thread's connections only

    threads = [threading.Thread(target=buyer, args=(n,), name=f"{name}-buyer-{n}") for n in range(buyers)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    phase.seconds = time.perf_counter() - began
    return phase


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--big-pool", type=int, default=1_000_000, help="codes in the big pool")
    parser.add_argument("--small-pool", type=int, default=2000, help="codes in each round's small pool")
    parser.add_argument("--orders", type=int, default=1000, help="orders sold from each pool per round")
    parser.add_argument("--rounds", type=int, default=3, help="small/big pairs, alternating")
    parser.add_argument("--buyers", type=int, default=32, help="concurrent buyers (threads)")
    args = parser.parse_args()
    if args.orders > args.small_pool:
        parser.error("--orders must not exceed --small-pool")

    with throwaway_database() as database:
        from django.db import connection
        from django.db.models import Count, F

        from catalog.inventory import CodeRow, available_codes, codes_import
        from catalog.models import Code, CodeStatus, DeliveryType, Product, ProductStatus, Variant
        from marketplace.accounts.models import Role, User
        from orders.models import Order, OrderItem

        print(f"database: {database.label}")
        print_machine()
        seller = User.objects.create_user(f"bench-{os.getpid()}@example.com", None, name="Bench", role=Role.SELLER)

        def pool(label: str, size: int) -> tuple[Any, Any, float]:
            product = Product.objects.create(
                seller=seller,
                slug=f"bench-{label}",
                title=f"Bench gift card ({label})",
                status=ProductStatus.ACTIVE,
                currency="USD",
                delivery_type=DeliveryType.CODE_POOL,
            )
            variant = Variant.objects.create(product=product, name="$25", price=2500)
            began = time.perf_counter()
            rows = (CodeRow(i, f"{label.upper()}-{i:08d}") for i in range(1, size + 1))
            loaded = codes_import(variant=variant, rows=rows, batch_size=5000)
            assert loaded.imported == size, loaded.as_dict()
            product = Product.objects.select_related("seller").get(pk=product.pk)
            return product, variant, time.perf_counter() - began

        def analyze() -> None:
            with connection.cursor() as cursor:  # as autovacuum would after a bulk load
                cursor.execute(f"ANALYZE {Code._meta.db_table}")

        big_product, big_variant, load_seconds = pool("big", args.big_pool)
        analyze()
        print(f"big pool: {args.big_pool:,} codes imported in {load_seconds:.1f} s")
        print(
            f"{args.rounds} rounds; in each, {args.orders:,} orders from a fresh pool of {args.small_pool:,} codes, "
            f"then {args.orders:,} from the big pool; {args.buyers} concurrent buyers, 1 unit per order"
        )

        phases: list[tuple[Phase, Phase]] = []
        pools = [(big_product, big_variant, None)]
        for number in range(1, args.rounds + 1):
            small_product, small_variant, _ = pool(f"small{number}", args.small_pool)
            analyze()
            pools.append((small_product, small_variant, args.small_pool))
            small = sell("small", small_product, small_variant, orders=args.orders, buyers=args.buyers)
            big = sell("big", big_product, big_variant, orders=args.orders, buyers=args.buyers)
            phases.append((small, big))
            for phase in (small, big):
                print(
                    f"  round {number} {phase.name:<5} pool: {phase.orders:>6,} orders in {phase.seconds:6.2f} s = "
                    f"{phase.per_second:7.1f}/s   out-of-stock answers {phase.out_of_stock:,}   "
                    f"errors {sum(phase.errors.values())}"
                )
            print(f"  round {number} big / small: {big.per_second / small.per_second:.3f}")

        errors: Counter[str] = Counter()
        for small, big in phases:
            errors.update(small.errors)
            errors.update(big.errors)
        ratios = [big.per_second / small.per_second for small, big in phases]

        # What the database says, not what the threads counted.
        items = OrderItem.objects.filter(product__seller=seller).annotate(n=Count("codes"))
        items_overfull = items.filter(n__gt=F("quantity")).count()
        items_short = items.filter(n__lt=F("quantity")).count()
        codes_per_item = Counter(
            Code.objects.filter(seller=seller).exclude(order_item=None).values_list("order_item_id", flat=True)
        )
        codes_sharing_an_item = sum(n for n in codes_per_item.values() if n > 1)
        values_stored_twice = (
            Code.objects.filter(seller=seller).values("code_hash").annotate(n=Count("id")).filter(n__gt=1).count()
        )
        duplicates = items_overfull + codes_sharing_an_item + values_stored_twice
        mismatched = []
        for product, variant, _size in pools:
            allocated = Code.objects.filter(variant=variant, status=CodeStatus.ALLOCATED).count()
            orders_in_db = Order.objects.filter(product=product).count()
            if allocated != orders_in_db:
                mismatched.append(f"{product.slug}: {allocated:,} codes allocated for {orders_in_db:,} orders")
        sold = sum(small.orders + big.orders for small, big in phases)
        expected = 2 * args.orders * args.rounds
        big_left = available_codes(big_variant.id).count()

        print(f"orders sold:              {sold:,} of {expected:,}")
        print(f"other errors:             {sum(errors.values()):,}")
        for message, n in errors.most_common(5):
            print(f"  {n} × {message[:160]}")
        print(f"items short of codes:     {items_short:,}")
        for line in mismatched:
            print(f"  MISMATCH {line}")
        print(f"big pool left available:  {big_left:,} of {args.big_pool:,}")
        print(
            f"duplicates found: {duplicates} "
            f"(items with more codes than quantity: {items_overfull}, codes sharing an item: {codes_sharing_an_item}, "
            f"code values stored twice: {values_stored_twice})"
        )
        print(
            f"orders/s, {args.big_pool:,}-code pool ÷ {args.small_pool:,}-code pool: "
            f"median {statistics.median(ratios):.3f}   (per round: {', '.join(f'{r:.3f}' for r in ratios)})"
        )
        ok = (
            duplicates == 0
            and not mismatched
            and items_short == 0
            and sold == expected
            and big_left == args.big_pool - args.orders * args.rounds
        )
        if not ok:
            print("FAILED: see the figures above.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
