"""An order with items of several products counts for each of them: the ``product`` filter, the
product's revenue, the per-day series and the top products attribute by item."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from catalog.models import Discount, DiscountKind
from catalog.tests.factories import ProductFactory, VariantFactory
from orders.analytics import day_range, product_revenue, seller_daily_series, top_products
from orders.services import CheckoutLine, order_create

from .helpers import pay

pytestmark = pytest.mark.django_db


@pytest.fixture
def mixed_order(seller, django_capture_on_commit_callbacks):
    first = ProductFactory(seller=seller, title="First", currency="USD")
    second = ProductFactory(seller=seller, title="Second", currency="USD")
    a = VariantFactory(product=first, name="A", price=600)
    b = VariantFactory(product=first, name="B", price=400)
    c = VariantFactory(product=second, name="C", price=250)
    Discount.objects.create(seller=seller, code="TEN", kind=DiscountKind.PERCENT, value=10)
    lines = [CheckoutLine(a.id, 1), CheckoutLine(c.id, 1), CheckoutLine(b.id, 2)]
    order = order_create(product=first, buyer_email="b@example.com", lines=lines, discount_code="TEN").order
    # subtotal 600 + 250 + 800 = 1650, 10 % off = 165: total 1485
    order = pay(order, django_capture_on_commit_callbacks)
    lone = order_create(product=first, buyer_email="c@example.com", lines=[CheckoutLine(a.id, 1)]).order
    return {"order": order, "lone": lone, "first": first, "second": second}


def client_for(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def test_the_product_filter_finds_the_order_under_each_product(seller, mixed_order):
    client = client_for(seller)
    order = mixed_order["order"]
    by_second = client.get("/api/v1/orders", {"product": mixed_order["second"].id}).json()["data"]["results"]
    assert [o["id"] for o in by_second] == [order.id]
    by_slug = client.get("/api/v1/orders", {"product": mixed_order["second"].slug}).json()["data"]["results"]
    assert [o["id"] for o in by_slug] == [order.id]
    by_first = client.get("/api/v1/orders", {"product": mixed_order["first"].id}).json()["data"]["results"]
    assert {o["id"] for o in by_first} == {order.id, mixed_order["lone"].id}


def test_revenue_is_attributed_by_item(seller, mixed_order):
    order = mixed_order["order"]
    assert (order.subtotal, order.total_amount, order.status) == (1650, 1485, "delivered")
    first = product_revenue(product=mixed_order["first"])
    second = product_revenue(product=mixed_order["second"])
    # 1485 * 1400 / 1650 = 1260; 1485 * 250 / 1650 = 225: the parts add up to the order's total.
    assert (first["total_revenue"], first["order_count"], first["paid_order_count"]) == (1260, 2, 1)
    assert (second["total_revenue"], second["order_count"], second["paid_order_count"]) == (225, 1, 1)
    assert first["total_revenue"] + second["total_revenue"] == order.total_amount
    response = client_for(seller).get(f"/api/v1/products/{mixed_order['second'].id}/revenue")
    assert response.json()["data"]["total_revenue"] == 225


def test_series_and_top_products_attribute_by_item(seller, mixed_order):
    order = mixed_order["order"]
    today = timezone.now().date()
    days = day_range(start=today - timedelta(days=1), end=today, time_zone="UTC")
    (series,) = seller_daily_series(seller=seller, days=days, product=mixed_order["second"])
    assert series["totals"]["revenue"] == 225
    assert series["totals"]["paid_orders"] == 1 and series["totals"]["orders"] == 1
    share = order.seller_earnings * 250 // 1650
    assert series["totals"]["earnings"] == share

    top = top_products(seller=seller, start=today - timedelta(days=1), end=today, tz="UTC")
    by_title = {row["title"]: row for row in top}
    assert by_title["First"]["revenue"] == 1260 and by_title["Second"]["revenue"] == 225
    assert by_title["First"]["started"] == 2 and by_title["First"]["paid_orders"] == 1  # one row per order
    assert by_title["Second"]["started"] == 1 and by_title["Second"]["converted"] == 1
    assert [row["title"] for row in top] == ["First", "Second"]
