"""``GET /api/v1/orders/export.csv``: exact content, streaming, filters, isolation and auth."""

import csv
import io
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from catalog.tests.factories import VariantFactory
from marketplace.accounts.services import api_key_create
from marketplace.accounts.tests.factories import SellerFactory, UserFactory
from orders.analytics import EXPORT_COLUMNS, export_rows, major_units
from orders.models import Order, OrderItem, OrderStatus

from .test_analytics import client_for, order, product_for

pytestmark = pytest.mark.django_db

S = OrderStatus
HEADER = (
    "order_number,order_id,created_at,paid_at,status,buyer_email,items,currency,subtotal,discount_code,"
    "discount_amount,total_amount,platform_fee,seller_earnings,refunded_amount,payment_reference\r\n"
)


def body(response) -> str:
    assert response.streaming is True
    return b"".join(response.streaming_content).decode()


@pytest.fixture
def seller():
    return SellerFactory(name="Ada's Shop")


@pytest.fixture
def three_orders(seller):
    """A USD order with a discount and two items, a refunded UGX order and a KWD one; plus another
    seller's order that must never appear."""
    usd = product_for(seller, currency="USD", title="Secret Text", price=1999)
    VariantFactory(product=usd, name="Deluxe", price=2500)
    ugx = product_for(seller, currency="UGX", title="Shilling Thing", price=50000)
    kwd = product_for(seller, currency="KWD", title="Dinar Deal", price=1234)

    a = order(
        usd,
        total=5598,
        discount=900,
        fee=280,
        email="alice@example.com",
        created=datetime(2026, 3, 1, 9, 0, 0, 123456, tzinfo=UTC),
        paid=datetime(2026, 3, 1, 9, 1, 5, tzinfo=UTC),
    )
    Order.objects.filter(pk=a.pk).update(discount_code="SPRING10", payment_reference="INV-2026-001")
    deluxe = usd.variants.get(name="Deluxe")
    OrderItem.objects.create(
        order=a,
        product=usd,
        variant=deluxe,
        title="Secret Text",
        variant_name="Deluxe",
        quantity=2,
        unit_price=2500,
        content_type="text",
        position=1,
    )
    b = order(
        ugx,
        total=50000,
        fee=2500,
        refunded=50000,
        status=S.REFUNDED,
        email="bob@example.com",
        created=datetime(2026, 3, 2, 10, 0, tzinfo=UTC),
    )
    Order.objects.filter(pk=b.pk).update(seller_earnings=0, platform_fee=0)
    c = order(kwd, total=1234, status=S.PENDING, email="=cmd@example.com", created=datetime(2026, 3, 3, tzinfo=UTC))
    Order.objects.filter(pk=c.pk).update(payment_reference="+1-555")

    theirs = product_for(SellerFactory(), currency="USD", title="Not Yours")
    order(theirs, total=7777, email="stranger@example.com")
    return a, b, c


def test_exact_content(seller, three_orders):
    a, b, c = three_orders

    response = client_for(seller).get("/api/v1/orders/export.csv")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="orders-20')
    assert response["Content-Disposition"].endswith('.csv"')
    assert body(response) == (
        HEADER
        + f"{c.order_number},{c.id},2026-03-03T00:00:00Z,,pending,'=cmd@example.com,Dinar Deal / Standard ×1,KWD,"
        "1.234,,0.000,1.234,0.000,0.000,0.000,'+1-555\r\n"
        f"{b.order_number},{b.id},2026-03-02T10:00:00Z,2026-03-02T10:00:00Z,refunded,bob@example.com,"
        "Shilling Thing / Standard ×1,UGX,50000,,0,50000,0,0,50000,\r\n"
        f"{a.order_number},{a.id},2026-03-01T09:00:00Z,2026-03-01T09:01:05Z,delivered,alice@example.com,"
        "Secret Text / Standard ×1; Secret Text / Deluxe ×2,USD,64.98,SPRING10,9.00,55.98,2.80,53.18,0.00,"
        "INV-2026-001\r\n"
    )


def test_parses_back_with_the_csv_module(seller, three_orders):
    rows = list(csv.DictReader(io.StringIO(body(client_for(seller).get("/api/v1/orders/export.csv")))))
    assert tuple(rows[0]) == EXPORT_COLUMNS
    assert [r["currency"] for r in rows] == ["KWD", "UGX", "USD"]
    assert rows[2]["items"] == "Secret Text / Standard ×1; Secret Text / Deluxe ×2"


def test_filters_apply(seller, three_orders):
    a, b, _ = three_orders
    client = client_for(seller)
    refunded = body(client.get("/api/v1/orders/export.csv", {"status": "refunded,delivered"}))
    assert [line.split(",")[1] for line in refunded.splitlines()[1:]] == [b.id, a.id]
    by_email = body(client.get("/api/v1/orders/export.csv", {"q": "alice"}))
    assert [line.split(",")[1] for line in by_email.splitlines()[1:]] == [a.id]
    nothing = body(client.get("/api/v1/orders/export.csv", {"buyer_email": "stranger@example.com"}))
    assert nothing == HEADER


def test_bad_filter_is_a_json_400(seller):
    response = client_for(seller).get("/api/v1/orders/export.csv", {"status": "lost"}, HTTP_ACCEPT="text/csv")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


def test_accept_text_csv_still_gets_the_file(seller, three_orders):
    response = client_for(seller).get("/api/v1/orders/export.csv", HTTP_ACCEPT="text/csv")
    assert response.status_code == 200
    assert body(response).startswith(HEADER)


def test_api_key_and_session_work_and_others_do_not(seller, three_orders):
    _, secret = api_key_create(user=seller, name="books")
    with_key = APIClient()
    with_key.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert body(with_key.get("/api/v1/orders/export.csv")).count("\r\n") == 4

    browser = Client()
    browser.force_login(seller)
    assert body(browser.get("/api/v1/orders/export.csv")).count("\r\n") == 4

    anonymous = APIClient().get("/api/v1/orders/export.csv")
    assert anonymous.status_code == 401
    assert anonymous.json()["success"] is False
    assert client_for(UserFactory()).get("/api/v1/orders/export.csv").status_code == 403


def test_two_queries_whatever_the_number_of_orders(seller, three_orders):
    rows_three = list(export_rows(Order.objects.filter(seller=seller)))
    product = Order.objects.filter(seller=seller).first().product
    for _ in range(10):
        order(product, total=100)
    with CaptureQueriesContext(connection) as queries:
        rows = list(export_rows(Order.objects.filter(seller=seller), chunk_size=2000))
    assert len(rows) == len(rows_three) + 10
    assert len(queries) == 2


def test_orders_created_in_the_same_microsecond_keep_their_own_items(seller):
    product = product_for(seller, title="Same Time")
    when = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)
    made = [order(product, total=100 * n, created=when) for n in range(1, 6)]
    for n, o in enumerate(made, start=1):
        OrderItem.objects.filter(order=o).update(quantity=n)
    rows = list(export_rows(Order.objects.filter(seller=seller)))
    assert sorted((r[1], r[6]) for r in rows) == sorted(
        (o.id, f"Same Time / Standard ×{n}") for n, o in enumerate(made, start=1)
    )


def test_items_of_an_order_missing_from_the_order_stream_are_skipped(seller, monkeypatch):
    """An order created between the two streamed queries: its items come, the order does not."""
    from orders import analytics

    product = product_for(seller, title="Kept")
    older = order(product, total=100, created=datetime(2026, 3, 1, tzinfo=UTC))
    newer = order(product, total=200, created=datetime(2026, 3, 2, tzinfo=UTC))
    real_blocks = analytics._item_blocks

    def blocks_with_an_intruder(items):
        yield datetime(2026, 3, 9, tzinfo=UTC), {"ord_intruder": ["Intruder ×1"]}
        yield from real_blocks(items)

    monkeypatch.setattr(analytics, "_item_blocks", blocks_with_an_intruder)
    rows = list(export_rows(Order.objects.filter(seller=seller)))
    assert [(r[1], r[6]) for r in rows] == [(newer.id, "Kept / Standard ×1"), (older.id, "Kept / Standard ×1")]


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (1999, "USD", "19.99"),
        (5, "USD", "0.05"),
        (0, "USD", "0.00"),
        (50000, "UGX", "50000"),
        (1234, "KWD", "1.234"),
        (7, "KWD", "0.007"),
        (1500, "JPY", "1500"),
        (10**12, "USD", "10000000000.00"),
    ],
)
def test_major_units(amount, currency, text):
    assert major_units(amount, currency) == text
