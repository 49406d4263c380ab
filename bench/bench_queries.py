"""How many SQL queries a request makes: the seller's order list (10 and 100 orders a page), an
order's detail, the checkout page and ``pay``.

A seller with four products — text, link, a code pool and licence keys — and 120 delivered orders
made through the real services (checkout, the sandbox's signed webhook, re-verification, fulfillment
run eagerly), spread over the four kinds, some with two items. Each request goes through Django's
test client with the seller's JWT (the list and the detail) or as a buyer (the page and ``pay``),
inside ``CaptureQueriesContext``. Exits 1 if the list makes more queries for 100 orders than for 10.

    .venv/bin/python -m bench.bench_queries [--show]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python -m bench.bench_queries

``--show`` prints every query of every request (first 160 characters).
"""

import argparse
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import print_machine, throwaway_database

ORDERS = 120


def make_catalog() -> tuple[Any, list[Any]]:
    from catalog.inventory import CodeRow, codes_import
    from catalog.models import DeliveryType, Product, ProductStatus, Variant
    from marketplace.accounts.models import Role, User

    seller = User.objects.create_user("bench-queries@example.com", "x", name="Bench Seller", role=Role.SELLER)

    def product(slug: str, delivery_type: str, **fields: Any) -> Any:
        made = Product.objects.create(
            seller=seller,
            slug=slug,
            title=slug.replace("-", " ").title(),
            status=ProductStatus.ACTIVE,
            currency="USD",
            delivery_type=delivery_type,
            **fields,
        )
        Variant.objects.create(product=made, name="Standard", price=1999)
        Variant.objects.create(product=made, name="Deluxe", price=4999, position=1)
        return made

    products = [
        product("bench-text", DeliveryType.TEXT, delivery_content="The secret is OPEN-SESAME"),
        product("bench-link", DeliveryType.LINK, delivery_content="https://example.com/download"),
        product("bench-codes", DeliveryType.CODE_POOL, redemption_instructions="Redeem at example.com"),
        product(
            "bench-licences",
            DeliveryType.LICENSE_KEY,
            delivery_options={"license": {"activation_limit": 3, "expires_in_days": 365, "prefix": None}},
        ),
    ]
    for variant in products[2].variants.all():
        codes_import(
            variant=variant, rows=(CodeRow(i, f"{variant.name.upper()}-{i:06d}") for i in range(1, ORDERS * 2 + 1))
        )
    return seller, products


def make_orders(products: list[Any]) -> None:
    """ORDERS orders through the real checkout and payment path, every one delivered."""
    from orders.models import Order, OrderStatus
    from orders.services import CheckoutLine, order_create
    from payments.sandbox_server.server import sandbox_complete
    from payments.services import payment_initiate

    for i in range(ORDERS):
        product = products[i % len(products)]
        variants = list(product.variants.all())
        lines = [CheckoutLine(variants[0].id, 1 + i % 2)]
        if i % 3 == 0:
            lines.append(CheckoutLine(variants[1].id, 1))
        order = order_create(product=product, buyer_email=f"buyer{i}@example.com", lines=lines).order
        payment = payment_initiate(order=order, gateway_name="sandbox", return_url="https://shop.test/return")
        sandbox_complete(payment_id=payment.id, outcome="succeeded")  # webhook on commit; fulfillment eager
    delivered = Order.objects.filter(status=OrderStatus.DELIVERED).count()
    if delivered != ORDERS:
        raise SystemExit(f"only {delivered} of {ORDERS} orders were delivered")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--show", action="store_true", help="print each request's queries")
    args = parser.parse_args()

    with throwaway_database() as database:
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext
        from rest_framework_simplejwt.tokens import RefreshToken

        from orders.models import Order

        print(f"database: {database.label}")
        print_machine()
        seller, products = make_catalog()
        make_orders(products)
        seller_client = Client(headers={"Authorization": f"Bearer {RefreshToken.for_user(seller).access_token}"})
        buyer_client = Client()
        order = Order.objects.filter(seller=seller, product=products[2]).order_by("-created_at").first()
        assert order is not None
        code_variant = products[2].variants.first()

        requests: list[tuple[str, Any]] = [
            ("order list, limit=10", lambda: seller_client.get("/api/v1/orders?limit=10")),
            ("order list, limit=100", lambda: seller_client.get("/api/v1/orders?limit=100")),
            (
                "order list, limit=100, status=delivered",
                lambda: seller_client.get("/api/v1/orders?limit=100&status=delivered"),
            ),
            ("order detail (code pool, 2 items)", lambda: seller_client.get(f"/api/v1/orders/{order.id}")),
            ("checkout page GET /c/<slug>", lambda: buyer_client.get(f"/c/{products[2].slug}")),
            (
                "pay (code pool, sandbox)",
                lambda: buyer_client.post(
                    f"/api/v1/public/checkout/{products[2].slug}/pay",
                    {"buyer_email": "new@example.com", "variant_id": code_variant.id, "quantity": 1},
                    content_type="application/json",
                ),
            ),
        ]
        counts: dict[str, int] = {}
        for name, request in requests:
            request()  # warm: the first request of a kind fills caches (content types, the JWT's user)
            with CaptureQueriesContext(connection) as captured:
                response = request()
            if response.status_code not in (200, 201):
                raise SystemExit(f"{name}: HTTP {response.status_code}: {response.content[:300]!r}")
            counts[name] = len(captured.captured_queries)
            if name.startswith("order list"):
                results = response.json()["data"]["results"]
                name = f"{name} ({len(results)} orders)"
            print(f"{name:<52} {len(captured.captured_queries):>4} queries")
            if args.show:
                for query in captured.captured_queries:
                    print(f"    {query['sql'][:160]}")
        grows = counts["order list, limit=100"] > counts["order list, limit=10"]
        print(f"list queries grow with the page: {'YES' if grows else 'no'}")
    return 1 if grows else 0


if __name__ == "__main__":
    sys.exit(main())
