"""Revenue per product, the per-day series, my-sales and the seller balance, and the buyer's my-orders."""

from datetime import UTC, datetime
from itertools import count

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory, UserFactory
from orders.analytics import seller_balance
from orders.models import Order, OrderItem, OrderStatus

pytestmark = pytest.mark.django_db

S = OrderStatus
_numbers = count(10_000_000)


def client_for(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def product_for(seller, *, currency="USD", title="Secret Text", price=1999):
    product = ProductFactory(seller=seller, currency=currency, title=title)
    VariantFactory(product=product, name="Standard", price=price)
    return product


def order(
    product,
    *,
    total,
    status=S.DELIVERED,
    fee=0,
    refunded=0,
    created=None,
    paid=None,
    email="buyer@example.com",
    buyer=None,
    discount=0,
):
    """An order with exactly these amounts (earnings = total − refunded − fee, as the services keep it)."""
    is_paid = status not in (S.PENDING, S.FAILED, S.CANCELLED)
    created = created or datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    made = Order.objects.create(
        order_number=str(next(_numbers)),
        seller=product.seller,
        product=product,
        buyer=buyer,
        buyer_email=email,
        status=status,
        currency=product.currency,
        subtotal=total + discount,
        discount_amount=discount,
        total_amount=total,
        platform_fee=fee,
        seller_earnings=total - refunded - fee if is_paid else 0,
        refunded_amount=refunded,
        paid_at=(paid or created) if is_paid else None,
    )
    variant = product.variants.first()
    OrderItem.objects.create(
        order=made,
        product=product,
        variant=variant,
        title=product.title,
        variant_name=variant.name,
        quantity=1,
        unit_price=total + discount,
        content_type="text",
    )
    Order.objects.filter(pk=made.pk).update(created_at=created)
    made.refresh_from_db()
    return made


@pytest.fixture
def seller():
    return SellerFactory(name="Ada's Shop")


@pytest.fixture
def client(seller):
    return client_for(seller)


@pytest.fixture
def product(seller):
    return product_for(seller)


@pytest.fixture
def other_seller_orders():
    """Another seller's paid orders, in the same currency and days: they must never show up."""
    other = SellerFactory()
    product = product_for(other)
    order(product, total=77_777, fee=3_888)
    order(product, total=5_000, status=S.PENDING)
    return product


# --- Revenue per product -------------------------------------------------------------------------


class TestProductRevenue:
    def test_revenue_net_of_refunds_paid_count_and_conversion(self, client, product, other_seller_orders):
        order(product, total=1999, fee=100)  # delivered
        order(product, total=1999, fee=100, status=S.PAID)
        order(product, total=3998, fee=200, refunded=1000, status=S.PARTIALLY_REFUNDED)
        order(product, total=1999, fee=0, refunded=1999, status=S.REFUNDED)  # paid, then all given back
        order(product, total=1999, status=S.PENDING)
        order(product, total=1999, status=S.FAILED)
        order(product, total=1999, status=S.CANCELLED)
        # A paid status without paid_at is not a sale (a data error must not inflate revenue).
        broken = order(product, total=9999, status=S.DELIVERED)
        Order.objects.filter(pk=broken.pk).update(paid_at=None)

        response = client.get(f"/api/v1/products/{product.id}/revenue")

        assert response.status_code == 200
        assert response.json() == {
            "success": True,
            "data": {
                "product_id": product.id,
                "currency": "USD",
                "total_revenue": 1999 + 1999 + (3998 - 1000) + 0,
                "order_count": 8,
                "paid_order_count": 4,
                "conversion_rate": 0.5,
            },
        }

    def test_conversion_rounded_to_four_places(self, client, product):
        order(product, total=100)
        order(product, total=100, status=S.PENDING)
        order(product, total=100, status=S.PENDING)
        data = client.get(f"/api/v1/products/{product.id}/revenue").json()["data"]
        assert data["conversion_rate"] == 0.3333
        assert (data["order_count"], data["paid_order_count"], data["total_revenue"]) == (3, 1, 100)

    def test_no_orders_is_all_zero(self, client, product):
        data = client.get(f"/api/v1/products/{product.id}/revenue").json()["data"]
        assert data == {
            "product_id": product.id,
            "currency": "USD",
            "total_revenue": 0,
            "order_count": 0,
            "paid_order_count": 0,
            "conversion_rate": 0,
        }

    def test_another_sellers_product_is_404_like_a_missing_one(self, client, other_seller_orders):
        theirs = client.get(f"/api/v1/products/{other_seller_orders.id}/revenue")
        missing = client.get("/api/v1/products/prd_missing/revenue")
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json() == missing.json()
        assert "77777" not in theirs.content.decode()

    def test_needs_a_seller(self, product):
        assert APIClient().get(f"/api/v1/products/{product.id}/revenue").status_code == 401
        buyer = UserFactory()
        assert client_for(buyer).get(f"/api/v1/products/{product.id}/revenue").status_code == 403

    def test_zero_decimal_currency(self, client, seller):
        ugx = product_for(seller, currency="UGX", price=50000)
        order(ugx, total=50000, fee=2500)
        order(ugx, total=150000, fee=7500, refunded=50000, status=S.PARTIALLY_REFUNDED)
        data = client.get(f"/api/v1/products/{ugx.id}/revenue").json()["data"]
        assert (data["currency"], data["total_revenue"], data["conversion_rate"]) == ("UGX", 150000, 1.0)


# --- Per-day series ------------------------------------------------------------------------------


def _day(series, currency, date):
    block = next(s for s in series if s["currency"] == currency)
    return next(d for d in block["days"] if d["date"] == date)


class TestDaily:
    def test_days_are_filled_and_counted(self, client, product, other_seller_orders):
        order(product, total=1999, fee=100, created=datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
        order(
            product,
            total=3998,
            fee=200,
            refunded=998,
            status=S.PARTIALLY_REFUNDED,
            created=datetime(2026, 3, 2, 10, 0, tzinfo=UTC),
            paid=datetime(2026, 3, 4, 8, 0, tzinfo=UTC),  # started on the 2nd, paid on the 4th
        )
        order(product, total=1999, status=S.PENDING, created=datetime(2026, 3, 4, 23, 0, tzinfo=UTC))
        order(product, total=1999, created=datetime(2026, 3, 5, 0, 0, tzinfo=UTC))  # after the range

        response = client.get("/api/v1/analytics/daily", {"start": "2026-03-01", "end": "2026-03-04"})

        assert response.status_code == 200
        data = response.json()["data"]
        assert (data["start"], data["end"], data["time_zone"], data["product_id"]) == (
            "2026-03-01",
            "2026-03-04",
            "UTC",
            None,
        )
        zero = {"orders": 0, "paid_orders": 0, "revenue": 0, "platform_fees": 0, "earnings": 0}
        assert data["series"] == [
            {
                "currency": "USD",
                "totals": {"orders": 3, "paid_orders": 2, "revenue": 4999, "platform_fees": 300, "earnings": 4699},
                "days": [
                    {"date": "2026-03-01", **zero},
                    {
                        "date": "2026-03-02",
                        "orders": 2,
                        "paid_orders": 1,
                        "revenue": 1999,
                        "platform_fees": 100,
                        "earnings": 1899,
                    },
                    {"date": "2026-03-03", **zero},
                    {
                        "date": "2026-03-04",
                        "orders": 1,
                        "paid_orders": 1,
                        "revenue": 3000,
                        "platform_fees": 200,
                        "earnings": 2800,
                    },
                ],
            }
        ]

    @pytest.mark.parametrize(
        ("time_zone", "day", "other_day"),
        [("Asia/Dhaka", "2026-03-11", "2026-03-10"), ("UTC", "2026-03-10", "2026-03-11")],
    )
    def test_the_sellers_time_zone_decides_the_day(self, seller, client, product, time_zone, day, other_day):
        seller.time_zone = time_zone
        seller.save(update_fields=["time_zone"])
        order(product, total=1999, fee=100, created=datetime(2026, 3, 10, 23, 30, tzinfo=UTC))  # Dhaka: 05:30 the 11th

        data = client.get("/api/v1/analytics/daily", {"start": "2026-03-10", "end": "2026-03-11"}).json()["data"]

        assert data["time_zone"] == time_zone
        assert _day(data["series"], "USD", day) == {
            "date": day,
            "orders": 1,
            "paid_orders": 1,
            "revenue": 1999,
            "platform_fees": 100,
            "earnings": 1899,
        }
        assert _day(data["series"], "USD", other_day)["orders"] == 0

    def test_range_edges_follow_the_time_zone(self, seller, client, product):
        seller.time_zone = "Asia/Dhaka"
        seller.save(update_fields=["time_zone"])
        order(product, total=100, created=datetime(2026, 3, 9, 17, 59, tzinfo=UTC))  # Dhaka 23:59 the 9th
        order(product, total=200, created=datetime(2026, 3, 9, 18, 0, tzinfo=UTC))  # Dhaka 00:00 the 10th
        data = client.get("/api/v1/analytics/daily", {"start": "2026-03-10", "end": "2026-03-10"}).json()["data"]
        assert data["series"][0]["days"] == [
            {"date": "2026-03-10", "orders": 1, "paid_orders": 1, "revenue": 200, "platform_fees": 0, "earnings": 200}
        ]

    def test_time_zone_parameter_overrides(self, client, product):
        order(product, total=1999, created=datetime(2026, 3, 10, 23, 30, tzinfo=UTC))
        data = client.get(
            "/api/v1/analytics/daily", {"start": "2026-03-11", "end": "2026-03-11", "time_zone": "Asia/Dhaka"}
        ).json()["data"]
        assert data["series"][0]["days"][0]["revenue"] == 1999

    def test_one_series_per_currency_and_filters(self, seller, client, product):
        ugx = product_for(seller, currency="UGX", price=50000)
        kwd = product_for(seller, currency="KWD", price=1234)
        order(product, total=1999)
        order(ugx, total=50000, fee=2500)
        order(kwd, total=1234)
        params = {"start": "2026-03-10", "end": "2026-03-10"}

        data = client.get("/api/v1/analytics/daily", params).json()["data"]
        assert [(s["currency"], s["totals"]["revenue"]) for s in data["series"]] == [
            ("KWD", 1234),
            ("UGX", 50000),
            ("USD", 1999),
        ]
        only_ugx = client.get("/api/v1/analytics/daily", {**params, "currency": "ugx"}).json()["data"]
        assert [(s["currency"], s["totals"]["earnings"]) for s in only_ugx["series"]] == [("UGX", 47500)]
        by_product = client.get("/api/v1/analytics/daily", {**params, "product": kwd.id}).json()["data"]
        assert by_product["product_id"] == kwd.id
        assert [(s["currency"], s["totals"]["orders"]) for s in by_product["series"]] == [("KWD", 1)]

    def test_empty_range_shows_zero_series_in_the_sellers_currencies(self, client, product):
        data = client.get("/api/v1/analytics/daily", {"start": "2026-01-01", "end": "2026-01-03"}).json()["data"]
        assert [s["currency"] for s in data["series"]] == ["USD"]
        assert [d["date"] for d in data["series"][0]["days"]] == ["2026-01-01", "2026-01-02", "2026-01-03"]
        assert data["series"][0]["totals"] == {
            "orders": 0,
            "paid_orders": 0,
            "revenue": 0,
            "platform_fees": 0,
            "earnings": 0,
        }

    def test_isolation(self, client, other_seller_orders):
        data = client.get("/api/v1/analytics/daily", {"start": "2026-03-10", "end": "2026-03-10"}).json()["data"]
        assert data["series"] == []
        theirs = client.get("/api/v1/analytics/daily", {"product": other_seller_orders.id})
        assert theirs.status_code == 404

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"start": "2026-03-02", "end": "2026-03-01"}, "start"),
            ({"start": "2024-12-31", "end": "2026-01-01"}, "end"),  # 367 days
            ({"start": "2026-02-30"}, "start"),
            ({"start": "yesterday"}, "start"),
            ({"currency": "XYZ"}, "currency"),
            ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ],
    )
    def test_bad_input_is_400(self, client, product, params, field):
        response = client.get("/api/v1/analytics/daily", params)
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert field in error["fields"]

    def test_a_full_leap_year_is_allowed(self, client, product):
        data = client.get("/api/v1/analytics/daily", {"start": "2028-01-01", "end": "2028-12-31"}).json()["data"]
        assert len(data["series"][0]["days"]) == 366

    def test_constant_queries(self, client, product):
        for day in range(1, 6):
            order(product, total=100, created=datetime(2026, 3, day, 12, tzinfo=UTC))
        with CaptureQueriesContext(connection) as few:
            client.get("/api/v1/analytics/daily", {"start": "2026-03-01", "end": "2026-03-31"})
        for day in range(6, 29):
            order(product, total=100, created=datetime(2026, 3, day, 12, tzinfo=UTC))
        with CaptureQueriesContext(connection) as many:
            client.get("/api/v1/analytics/daily", {"start": "2026-03-01", "end": "2026-03-31"})
        assert len(many) == len(few)


def test_time_zone_field_is_validated(seller):
    from django.core.exceptions import ValidationError

    seller.time_zone = "Europe/Nowhere"
    with pytest.raises(ValidationError) as excinfo:
        seller.full_clean()
    assert "time_zone" in excinfo.value.message_dict
    seller.time_zone = "Asia/Dhaka"
    seller.full_clean()


# --- my-sales ------------------------------------------------------------------------------------


class TestMySales:
    def test_paid_orders_and_summary(self, client, product, other_seller_orders):
        a = order(product, total=1999, fee=100, created=datetime(2026, 3, 1, tzinfo=UTC))
        b = order(
            product,
            total=3998,
            fee=200,
            refunded=1000,
            status=S.PARTIALLY_REFUNDED,
            created=datetime(2026, 3, 2, tzinfo=UTC),
        )
        c = order(product, total=1999, refunded=1999, status=S.REFUNDED, created=datetime(2026, 3, 3, tzinfo=UTC))
        order(product, total=1999, status=S.PENDING)
        order(product, total=1999, status=S.CANCELLED)

        response = client.get("/api/v1/orders/my-sales", {"limit": 2})

        assert response.status_code == 200
        data = response.json()["data"]
        assert [o["id"] for o in data["results"]] == [c.id, b.id]
        assert data["pagination"] == {"page": 1, "limit": 2, "total_items": 3, "total_pages": 2}
        usd = {
            "currency": "USD",
            "total_sales": 3,
            "total_revenue": 1999 + 2998 + 0,
            "total_platform_fees": 300,
            "total_earnings": 1899 + 2798 + 0,
        }
        assert data["summary"] == {**usd, "by_currency": [usd]}
        page2 = client.get("/api/v1/orders/my-sales", {"limit": 2, "page": 2}).json()["data"]
        assert [o["id"] for o in page2["results"]] == [a.id]
        assert page2["summary"] == data["summary"]  # over every page, not this one

    def test_filters_apply_to_results_and_summary(self, client, product):
        order(product, total=1999, fee=100, email="alice@example.com")
        bob = order(product, total=5000, fee=250, email="bob@example.com")
        data = client.get("/api/v1/orders/my-sales", {"buyer_email": "BOB@example.com"}).json()["data"]
        assert [o["id"] for o in data["results"]] == [bob.id]
        assert data["summary"]["total_revenue"] == 5000
        assert data["summary"]["total_earnings"] == 4750
        pending = client.get("/api/v1/orders/my-sales", {"status": "pending"}).json()["data"]
        assert pending["results"] == []
        assert pending["summary"] == {
            "currency": None,
            "total_sales": 0,
            "total_revenue": 0,
            "total_platform_fees": 0,
            "total_earnings": 0,
            "by_currency": [],
        }
        assert client.get("/api/v1/orders/my-sales", {"status": "lost"}).status_code == 400

    def test_several_currencies(self, seller, client, product):
        kwd = product_for(seller, currency="KWD", price=1234)
        order(product, total=1999, fee=100)
        order(kwd, total=1234, fee=62)
        summary = client.get("/api/v1/orders/my-sales").json()["data"]["summary"]
        assert summary == {
            "currency": None,
            "total_sales": 2,
            "total_revenue": None,
            "total_platform_fees": None,
            "total_earnings": None,
            "by_currency": [
                {
                    "currency": "KWD",
                    "total_sales": 1,
                    "total_revenue": 1234,
                    "total_platform_fees": 62,
                    "total_earnings": 1172,
                },
                {
                    "currency": "USD",
                    "total_sales": 1,
                    "total_revenue": 1999,
                    "total_platform_fees": 100,
                    "total_earnings": 1899,
                },
            ],
        }

    def test_constant_queries(self, client, product):
        order(product, total=100)
        with CaptureQueriesContext(connection) as one:
            assert client.get("/api/v1/orders/my-sales").status_code == 200
        for _ in range(5):
            order(product, total=100)
        with CaptureQueriesContext(connection) as six:
            assert len(client.get("/api/v1/orders/my-sales").json()["data"]["results"]) == 6
        assert len(six) == len(one)

    def test_sellers_only(self, product):
        assert APIClient().get("/api/v1/orders/my-sales").status_code == 401
        assert client_for(UserFactory()).get("/api/v1/orders/my-sales").status_code == 403


# --- Seller balance ------------------------------------------------------------------------------


def test_seller_balance_per_currency_net_of_refunds(seller, product, other_seller_orders):
    ugx = product_for(seller, currency="UGX", price=50000)
    order(product, total=1999, fee=100)
    order(product, total=3998, fee=200, refunded=1000, status=S.PARTIALLY_REFUNDED)
    order(product, total=1999, status=S.PENDING)
    order(ugx, total=50000, fee=2500)

    assert seller_balance(seller=seller) == [
        {"currency": "UGX", "orders": 1, "revenue": 50000, "platform_fees": 2500, "refunded": 0, "earnings": 47500},
        {"currency": "USD", "orders": 2, "revenue": 4997, "platform_fees": 300, "refunded": 1000, "earnings": 4697},
    ]


def test_dashboard_shows_the_balance_and_the_export_link(seller, product):
    from django.test import Client

    kwd = product_for(seller, currency="KWD", price=1234)
    order(product, total=3998, fee=200, refunded=1000, status=S.PARTIALLY_REFUNDED)
    order(kwd, total=1234, fee=62)
    browser = Client()
    browser.force_login(seller)

    response = browser.get("/dashboard/", {"status": "delivered"})

    assert response.status_code == 200
    html = response.content.decode()
    assert '<strong data-testid="earnings-USD">$27.98</strong>' in html
    assert '<strong data-testid="earnings-KWD">KWD1.172</strong>' in html
    assert 'href="/api/v1/orders/export.csv?status=delivered"' in html


# --- my-orders -----------------------------------------------------------------------------------


class TestMyOrders:
    def test_a_buyer_sees_their_purchases(self, product, other_seller_orders):
        buyer = UserFactory(email="bea@example.com")
        signed_in = order(product, total=1999, buyer=buyer, email="bea@example.com")
        as_guest = order(product, total=1999, email="bea@example.com", status=S.PENDING)
        other_email = order(product, total=1999, buyer=buyer, email="gift-giver@example.com")
        order(product, total=1999, email="someone@example.com")
        # Placed by another account with Bea's address: that account's purchase, not Bea's.
        order(product, total=1999, buyer=UserFactory(), email="bea@example.com")

        response = client_for(buyer).get("/api/v1/orders/my-orders")

        assert response.status_code == 200
        data = response.json()["data"]
        # A guest order with the same address is not shown: the account never proved the address.
        assert as_guest.id not in {o["id"] for o in data["results"]}
        assert {o["id"] for o in data["results"]} == {signed_in.id, other_email.id}
        assert data["pagination"]["total_items"] == 2
        first = data["results"][0]
        assert first["seller_name"] == "Ada's Shop"
        for private in ("platform_fee", "seller_earnings", "meta", "payment_reference", "events"):
            assert private not in first

    def test_status_filter_and_pagination(self, product):
        buyer = UserFactory(email="bea@example.com")
        paid = [order(product, total=100, buyer=buyer, created=datetime(2026, 3, d, tzinfo=UTC)) for d in (1, 2, 3)]
        order(product, total=100, buyer=buyer, status=S.PENDING)
        client = client_for(buyer)

        data = client.get("/api/v1/orders/my-orders", {"status": "delivered", "limit": 2}).json()["data"]
        assert [o["id"] for o in data["results"]] == [paid[2].id, paid[1].id]
        assert data["pagination"] == {"page": 1, "limit": 2, "total_items": 3, "total_pages": 2}
        assert client.get("/api/v1/orders/my-orders", {"status": "nope"}).status_code == 400

    def test_a_seller_gets_their_own_purchases(self, seller, product):
        other = product_for(SellerFactory())
        bought = order(other, total=100, buyer=seller, email=seller.email)
        order(product, total=100)  # a sale, not a purchase
        data = client_for(seller).get("/api/v1/orders/my-orders").json()["data"]
        assert [o["id"] for o in data["results"]] == [bought.id]

    def test_anonymous_is_401(self, product):
        order(product, total=100)
        response = APIClient().get("/api/v1/orders/my-orders")
        assert response.status_code == 401
        assert response.json()["success"] is False

    def test_constant_queries(self, product):
        buyer = UserFactory()
        order(product, total=100, buyer=buyer)
        with CaptureQueriesContext(connection) as one:
            client_for(buyer).get("/api/v1/orders/my-orders")
        for _ in range(4):
            order(product, total=100, buyer=buyer)
        with CaptureQueriesContext(connection) as five:
            assert len(client_for(buyer).get("/api/v1/orders/my-orders").json()["data"]["results"]) == 5
        assert len(five) == len(one)
