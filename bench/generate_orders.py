"""Generates N orders (one item each) for a seller, fast: PostgreSQL ``COPY`` in one transaction.

    .venv/bin/python -m bench.generate_orders --count 1000000 [--seller big-seller@bench.test]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python -m bench.generate_orders --count 10000

Runs on a database of its own, ``bench`` on the local server by default (``DATABASE_URL``; its name must
start with ``bench``, so that ``test`` or a real database is never touched). The database is created if
missing and migrated; what is generated stays there for the next run (``bench_order_list_scale`` reuses
it), until ``--drop`` removes the whole database first.

The seller (and its product, a code-pool gift card with one variant) is made if missing; the orders are
added to the ones it has. They spread evenly over the two years before 2026-11-01 (UTC), newest last;
8 in 10 are ``delivered`` (the rest pending, cancelled, failed, refunded, partly refunded, needing
attention), a fifth in EUR; ids are random like the app's, order numbers follow the highest one in
the table. Every column not set here gets its model field's default, so a new field with a default
needs no change here.

While loading, ``session_replication_role = replica`` skips the foreign-key triggers (the rows are
made consistent here, and checking 2,000,000 rows × 5 keys at COMMIT would take minutes); the
indexes are kept up to date as usual, and ``VACUUM ANALYZE`` runs at the end, as autovacuum would.
"""

import argparse
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import ROOT

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench"
WINDOW_END = datetime(2026, 11, 1, tzinfo=UTC)
WINDOW = timedelta(days=730)
# Out of every 100 orders: what status, and whether money moved.
STATUS_PLAN = (
    ["delivered"] * 80
    + ["pending"] * 5
    + ["cancelled"] * 5
    + ["failed"] * 2
    + ["refunded"] * 4
    + ["partially_refunded"] * 3
    + ["needs_attention"] * 1
)
PAID = {"delivered", "refunded", "partially_refunded", "needs_attention"}


@contextmanager
def bench_database(*, drop: bool = False) -> Iterator[str]:
    """Django set up (``marketplace.settings.test``) on the persistent ``bench`` database, created and
    migrated if needed. Yields the database's name."""
    import psycopg
    from psycopg import sql

    url = os.environ.get("DATABASE_URL") or DEFAULT_URL
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not parts.scheme.startswith("postgres") or not name.startswith("bench"):
        raise SystemExit(f"Refusing to run: DATABASE_URL must name a PostgreSQL database called bench…, not {url}")
    server = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(server, autocommit=True) as conn:
        if drop:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings.test")
    os.environ.pop("REDIS_URL", None)  # nothing here needs Redis
    import tempfile

    os.environ.setdefault("VAR_DIR", tempfile.mkdtemp(prefix="bench-var-"))
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django
    from django.conf import settings
    from django.core.management import call_command

    django.setup()
    if settings.DATABASES["default"]["NAME"] != name:
        raise SystemExit(f"Refusing to run: the settings point at {settings.DATABASES['default']['NAME']}, not {name}.")
    call_command("migrate", verbosity=0)
    try:
        yield name
    finally:
        from django.db import connections

        connections.close_all()


def seller_and_product(email: str) -> tuple[Any, Any, Any]:
    from catalog.models import DeliveryType, Product, ProductStatus, Variant
    from marketplace.accounts.models import Role, User

    seller = User.objects.filter(email=email).first() or User.objects.create_user(
        email, None, name=email.split("@")[0], role=Role.SELLER
    )
    product = Product.objects.filter(seller=seller).first() or Product.objects.create(
        seller=seller,
        slug=f"gift-card-{seller.pk}".lower().replace("_", "-")[:80],
        title="Gift card",
        status=ProductStatus.ACTIVE,
        currency="USD",
        delivery_type=DeliveryType.CODE_POOL,
    )
    variant = product.variants.first() or Variant.objects.create(product=product, name="$25", price=2500)
    return seller, product, variant


def _copy_plan(model: Any, varying: set[str]) -> tuple[list[str], list[str], list[Any]]:
    """The table's columns, those this generator sets per row (in order), and the prepared defaults
    of all the others."""
    from django.db import connection

    columns, constants = [], []
    for field in model._meta.concrete_fields:
        if field.attname in varying:
            continue
        if field.has_default():
            value = field.get_db_prep_save(field.get_default(), connection)
        elif field.null:
            value = None
        elif field.blank and field.empty_strings_allowed:
            value = ""
        else:
            raise SystemExit(f"{model.__name__}.{field.name} has no default: teach bench/generate_orders.py its value")
        columns.append(field.column)
        constants.append(value)
    varying_columns = [model._meta.get_field(name).column for name in sorted(varying)]
    return varying_columns, columns, constants


def generate(*, email: str, count: int, log: Callable[[str], None] = print) -> float:
    """Adds ``count`` orders with one item each to the seller ``email``; returns the seconds taken."""
    from django.db import connection, transaction

    from orders.models import Order, OrderItem

    seller, product, variant = seller_and_product(email)
    order_varying = {
        "id", "order_number", "seller_id", "product_id", "buyer_email", "status", "currency", "subtotal",
        "total_amount", "platform_fee", "seller_earnings", "refunded_amount", "reservation_held",
        "dispatched_email", "email_sent_at", "paid_at", "delivered_at", "created_at", "updated_at",
    }  # fmt: skip
    item_varying = {
        "id", "order_id", "product_id", "variant_id", "title", "variant_name", "quantity", "unit_price",
        "content_type", "fulfillment_status", "fulfilled_at",
    }  # fmt: skip
    order_vary, order_cols, order_consts = _copy_plan(Order, order_varying)
    item_vary, item_cols, item_consts = _copy_plan(OrderItem, item_varying)
    step = WINDOW / max(count, 1)
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("SELECT max(order_number) FROM orders_order WHERE order_number ~ '^[0-9]{8}$'")
        first_number = int(cursor.fetchone()[0] or 10_000_000) + 1
        if first_number + count > 99_999_999:
            raise SystemExit("Out of 8-digit order numbers: use --drop.")
        raw = cursor.cursor  # psycopg's own cursor, for COPY
        order_ids: list[str] = []
        columns = ", ".join(order_vary + order_cols)
        with raw.copy(f"COPY orders_order ({columns}) FROM STDIN") as copy:  # noqa: S608 - our own column names
            for i in range(count):
                status = STATUS_PLAN[(i * 37) % 100]
                created = WINDOW_END - WINDOW + step * i
                paid = created + timedelta(seconds=3) if status in PAID else None
                total = 2500 * (1 + i % 3)
                fee = total // 20
                refunded = total if status == "refunded" else total // 2 if status == "partially_refunded" else 0
                order_id = f"ord_{secrets.token_hex(11)}"
                order_ids.append(order_id)
                values = {
                    "buyer_email": f"buyer{i}@example.com",
                    "created_at": created,
                    "currency": "EUR" if i % 5 == 0 else "USD",
                    "delivered_at": created + timedelta(seconds=5) if paid and status != "needs_attention" else None,
                    "dispatched_email": paid is not None,
                    "email_sent_at": created + timedelta(seconds=5) if paid else None,
                    "id": order_id,
                    "order_number": f"{first_number + i:08d}",
                    "paid_at": paid,
                    "platform_fee": fee if paid else 0,
                    "product_id": product.pk,
                    "refunded_amount": refunded,
                    "reservation_held": status == "pending",
                    "seller_earnings": total - refunded - fee if paid else 0,
                    "seller_id": seller.pk,
                    "status": status,
                    "subtotal": total,
                    "total_amount": total,
                    "updated_at": paid or created,
                }
                copy.write_row([values[name] for name in sorted(order_varying)] + order_consts)
        log(f"  {count:,} orders copied in {time.perf_counter() - started:.1f} s")
        columns = ", ".join(item_vary + item_cols)
        with raw.copy(f"COPY orders_orderitem ({columns}) FROM STDIN") as copy:  # noqa: S608 - our own column names
            for i, order_id in enumerate(order_ids):
                status = STATUS_PLAN[(i * 37) % 100]
                delivered = status in PAID and status != "needs_attention"
                values = {
                    "content_type": "code_pool",
                    "fulfilled_at": WINDOW_END - WINDOW + step * i + timedelta(seconds=4) if delivered else None,
                    "fulfillment_status": "succeeded" if delivered else "pending",
                    "id": f"itm_{secrets.token_hex(11)}",
                    "order_id": order_id,
                    "product_id": product.pk,
                    "quantity": 1 + i % 3,
                    "title": product.title,
                    "unit_price": 2500,
                    "variant_id": variant.pk,
                    "variant_name": variant.name,
                }
                copy.write_row([values[name] for name in sorted(item_varying)] + item_consts)
        log(f"  {count:,} items copied; committing at {time.perf_counter() - started:.1f} s")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE orders_order")
        cursor.execute("VACUUM ANALYZE orders_orderitem")
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, required=True, help="orders to add")
    parser.add_argument("--seller", default="big-seller@bench.test", help="the seller's e-mail")
    parser.add_argument("--drop", action="store_true", help="drop and re-create the bench database first")
    args = parser.parse_args()
    with bench_database(drop=args.drop) as name:
        from orders.models import Order

        print(f"database {name}: adding {args.count:,} orders for {args.seller}")
        seconds = generate(email=args.seller, count=args.count)
        total = Order.objects.filter(seller__email=args.seller).count()
        print(f"generated {args.count:,} orders and items in {seconds:.1f} s; the seller has {total:,} orders")
    return 0


if __name__ == "__main__":
    sys.exit(main())
