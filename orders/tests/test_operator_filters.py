"""The operator spelling of the order filters, ``filter.<field>=$<op>:<value>``, on the seller's
list, the buyer's my-orders and the CSV export; unknown fields and operators are 400 naming them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from marketplace.accounts.tests.factories import UserFactory
from orders.models import Order

from .helpers import make_order, pay
from .test_seller_orders_api import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def orders(text_product, django_capture_on_commit_callbacks):
    small = make_order(text_product, email="alice@example.com", idempotency_key="k1")
    big = pay(
        make_order(text_product, email="bob@example.com", quantity=6, idempotency_key="k2"),
        django_capture_on_commit_callbacks,
    )
    Order.objects.filter(pk=small.pk).update(created_at=timezone.now() - timedelta(days=3))
    return small, big


def ids(client, path, query):
    response = client.get(f"{path}?{query}")
    assert response.status_code == 200, response.json()
    return {o["id"] for o in response.json()["data"]["results"]}


class TestSellerList:
    def test_each_operator_filters(self, seller_client, orders, text_product):
        small, big = orders
        assert big.total_amount == 6 * 1999
        assert ids(seller_client, "/api/v1/orders", "filter.amount=$gt:10000") == {big.id}
        assert ids(seller_client, "/api/v1/orders", "filter.amount=$lte:1999") == {small.id}
        assert ids(seller_client, "/api/v1/orders", "filter.amount=$lt:1999") == set()
        assert ids(seller_client, "/api/v1/orders", "filter.amount=$gte:1999") == {small.id, big.id}
        assert ids(seller_client, "/api/v1/orders", "filter.totalAmount=$eq:1999") == {small.id}
        assert ids(seller_client, "/api/v1/orders", "filter.status=$in:pending,delivered") == {small.id, big.id}
        assert ids(seller_client, "/api/v1/orders", "filter.status=delivered") == {big.id}
        assert ids(seller_client, "/api/v1/orders", "filter.idempotencyKey=$in:k1,k9") == {small.id}
        assert ids(seller_client, "/api/v1/orders", f"filter.id={big.id}") == {big.id}
        assert ids(seller_client, "/api/v1/orders", "filter.buyer_email=$eq:ALICE@example.com") == {small.id}
        assert ids(seller_client, "/api/v1/orders", f"filter.product=$in:{text_product.slug}") == {small.id, big.id}
        after = (timezone.now() - timedelta(days=1)).isoformat().replace("+00:00", "Z")
        assert ids(seller_client, "/api/v1/orders", f"filter.createdAt=$gt:{after}") == {big.id}
        assert ids(seller_client, "/api/v1/orders", f"filter.created_at=$lt:{after}") == {small.id}

    def test_both_spellings_combine(self, seller_client, orders):
        small, big = orders
        assert ids(seller_client, "/api/v1/orders", "status=pending,delivered&filter.amount=$gt:10000") == {big.id}

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ("filter.amount=$between:1,2", "filter.amount"),
            ("filter.amount=$gt", "filter.amount"),
            ("filter.amount=$gt:lots", "filter.amount"),
            ("filter.amount=$gt:-5", "filter.amount"),
            ("filter.status=$gt:paid", "filter.status"),
            ("filter.status=$in:paid,shipped", "filter.status"),
            ("filter.createdAt=$gte:yesterday", "filter.createdAt"),
            ("filter.createdAt=$gte:9999-01-01T00:00:00Z", "filter.createdAt"),
            ("filter.colour=$eq:red", "filter.colour"),
            ("filter.id=$in:", "filter.id"),
        ],
    )
    def test_unknown_field_operator_or_value_is_400_naming_it(self, seller_client, orders, query, field):
        response = seller_client.get(f"/api/v1/orders?{query}")
        assert response.status_code == 400, response.json()
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert list(error["fields"]) == [field]


class TestMyOrdersAndExport:
    def test_my_orders_takes_the_operator_spelling(self, text_product):
        buyer = UserFactory(email="bea@example.com")
        cheap = make_order(text_product, email="bea@example.com", buyer=buyer)
        dear = make_order(text_product, email="bea@example.com", buyer=buyer, quantity=7)
        make_order(text_product, email="bea@example.com", quantity=9)  # a guest order: not hers here
        client = client_for(buyer)
        assert ids(client, "/api/v1/orders/my-orders", "filter.amount=$gt:10000") == {dear.id}
        assert ids(client, "/api/v1/orders/my-orders", "min_amount=10000") == {dear.id}
        assert ids(client, "/api/v1/orders/my-orders", "filter.amount=$lte:1999") == {cheap.id}
        response = client.get("/api/v1/orders/my-orders?filter.amount=$near:5")
        assert response.status_code == 400
        assert "filter.amount" in response.json()["error"]["fields"]

    def test_export_takes_the_operator_spelling(self, seller_client, orders):
        small, big = orders
        response = seller_client.get("/api/v1/orders/export.csv?filter.amount=$gt:10000")
        assert response.status_code == 200
        text = b"".join(response.streaming_content).decode()
        assert big.order_number in text
        assert small.order_number not in text
        assert len(text.strip().splitlines()) == 2
        refused = seller_client.get("/api/v1/orders/export.csv?filter.amount=$foo:1")
        assert refused.status_code == 400
        assert refused.json()["error"]["fields"] == {
            "filter.amount": [refused.json()["error"]["fields"]["filter.amount"][0]]
        }
        assert "$foo" in refused.json()["error"]["fields"]["filter.amount"][0]
