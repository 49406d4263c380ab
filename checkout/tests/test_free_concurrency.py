"""Free claims under real concurrent transactions (PostgreSQL; SQLite serialises writers, so the
test skips there on purpose): limited free stock is never over-claimed, and every claim that got a
unit is paid exactly once with no fee."""

from collections import Counter

import pytest
from django.db import connection
from rest_framework.test import APIClient

from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory
from orders.models import Order, OrderEvent
from tests.campaign.concurrency import run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_free_claims_never_exceed_the_stock() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("Row locks between concurrent transactions need PostgreSQL.")
    product = ProductFactory(seller=SellerFactory(), slug="free-race")
    variant = VariantFactory(product=product, price=0, stock=3)

    def claim(index: int) -> int:
        response = APIClient(REMOTE_ADDR=f"10.0.0.{index + 1}").post(
            "/api/v1/public/checkout/free-race/pay", {"buyer_email": f"fan{index}@example.com"}, format="json"
        )
        return int(response.status_code)

    results = run_concurrently(8, claim)

    assert Counter(results) == Counter({201: 3, 409: 5}), results
    variant.refresh_from_db()
    assert variant.stock == 0
    orders = Order.objects.filter(product=product)
    assert orders.count() == 3
    assert set(orders.values_list("platform_fee", "seller_earnings", "total_amount")) == {(0, 0, 0)}
    assert OrderEvent.objects.filter(order__product=product, to_status="paid").count() == 3
