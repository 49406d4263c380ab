"""``pay`` is the hot path of a sale: its SQL statements are counted, and its answer, built from the
objects the request just wrote, is the same as a fresh read of the order.

Counts are PostgreSQL's (BEGIN/COMMIT or SAVEPOINT/RELEASE included, as Django captures them); on
SQLite the same statements run, so the same ceilings hold there.
"""

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.inventory import CodeRow, codes_import
from catalog.models import DeliveryType
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory
from orders.models import Order, OrderEvent
from payments.models import Payment, SandboxPayment

pytestmark = pytest.mark.django_db

TEXT_PRODUCT_MAX = 10
CODE_POOL_MAX = 12


def _pay(client: Any, slug: str, body: dict[str, Any]) -> Any:
    return client.post(f"/api/v1/public/checkout/{slug}/pay", body, format="json")


@pytest.fixture
def seller(db: Any) -> Any:
    return SellerFactory(name="Ada's Shop")


@pytest.fixture
def text_product(seller: Any) -> Any:
    product = ProductFactory(seller=seller, slug="secret-text", title="Secret Text", delivery_content="OPEN-SESAME")
    VariantFactory(product=product, name="Standard", price=1999)
    return product


@pytest.fixture
def code_product(seller: Any) -> Any:
    product = ProductFactory(seller=seller, slug="gift-card", delivery_type=DeliveryType.CODE_POOL, delivery_content="")
    variant = VariantFactory(product=product, name="$10", price=1000)
    codes_import(variant=variant, rows=[CodeRow(n, f"GIFT-{n:04d}") for n in range(1, 4)])
    return product


def test_pay_for_a_text_product_is_at_most_ten_statements(api_client, text_product):
    variant = text_product.variants.get()
    body = {"buyer_email": "b@example.com", "items": [{"variant_id": variant.id, "quantity": 1}]}
    _pay(api_client, text_product.slug, {**body, "buyer_email": "warm@example.com"})  # warm caches
    with CaptureQueriesContext(connection) as captured:
        response = _pay(api_client, text_product.slug, body)
    assert response.status_code == 201, response.content
    statements = [q["sql"] for q in captured.captured_queries]
    assert len(statements) <= TEXT_PRODUCT_MAX, "\n".join(statements)
    # The order, its payment and the sandbox's record of it are written together.
    order = Order.objects.get(buyer_email="b@example.com")
    payment = Payment.objects.get(order=order)
    assert SandboxPayment.objects.filter(id=payment.id, order_id=order.id, amount=1999).count() == 1
    assert list(OrderEvent.objects.filter(order=order).values_list("type", flat=True)) == [
        "order_created",
        "payment_initiated",
    ]


def test_pay_for_a_code_pool_is_at_most_twelve_statements(api_client, code_product):
    variant = code_product.variants.get()
    body = {"buyer_email": "b@example.com", "items": [{"variant_id": variant.id, "quantity": 1}]}
    _pay(api_client, code_product.slug, {**body, "buyer_email": "warm@example.com"})
    with CaptureQueriesContext(connection) as captured:
        response = _pay(api_client, code_product.slug, body)
    assert response.status_code == 201, response.content
    statements = [q["sql"] for q in captured.captured_queries]
    assert len(statements) <= CODE_POOL_MAX, "\n".join(statements)
    order = Order.objects.get(buyer_email="b@example.com")
    assert order.items.get().codes.filter(status="ALLOCATED").count() == 1


def test_pay_with_django_assert_max_num_queries(api_client, text_product, django_assert_max_num_queries):
    variant = text_product.variants.get()
    body = {"buyer_email": "b@example.com", "items": [{"variant_id": variant.id, "quantity": 2}]}
    _pay(api_client, text_product.slug, {**body, "buyer_email": "warm@example.com"})
    with django_assert_max_num_queries(TEXT_PRODUCT_MAX):
        assert _pay(api_client, text_product.slug, body).status_code == 201


@pytest.mark.parametrize("with_webhook", [False, True])
def test_the_pay_answer_is_the_order_as_read_back_plus_its_payment(
    api_client, text_product, with_webhook, django_capture_on_commit_callbacks, monkeypatch
):
    """Built from the objects in hand, the 201 answer has exactly the keys and values of a fresh read
    of the order (``GET .../order/{id}``) with its ``payment``; the seller event's payload likewise."""
    from orders.models import SellerEvent, WebhookEndpoint
    from orders.presenters import order_to_dict
    from orders.selectors import order_get_for_buyer

    if with_webhook:
        WebhookEndpoint.objects.create(seller=text_product.seller, url="https://hooks.example.test/in", secret="s")
        monkeypatch.setattr("orders.seller_events.delivery._queue_on_commit", lambda delivery_ids: None)
    variant = text_product.variants.get()
    body = {
        "buyer_email": "B@Example.com",
        "recipient_email": "Friend@Example.com",
        "items": [{"variant_id": variant.id, "quantity": 2, "fulfillment_input": {"player": "p1"}}],
        "meta": {"campaign": "spring", "n": [1, 2]},
        "payment_reference": "ref-9",
        "idempotency_key": "k-answer",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = _pay(api_client, text_product.slug, body)
    assert response.status_code == 201
    answer = response.json()["data"]
    read_back = api_client.get(f"/api/v1/public/checkout/{text_product.slug}/order/{answer['id']}").json()["data"]
    payment = Payment.objects.get(order_id=answer["id"])
    assert answer == {
        **read_back,
        "payment": {
            "id": payment.id,
            "gateway": "sandbox",
            "status": "pending",
            "transaction_id": None,
            "amount": 3998,
            "currency": "USD",
            "payment_method": "sandbox",
            "created_at": payment.created_at.isoformat().replace("+00:00", "Z"),
            "redirect_url": payment.redirect_url,
        },
    }
    assert [p["id"] for p in read_back["payments"]] == [payment.id]
    events = list(SellerEvent.objects.filter(seller=text_product.seller))
    if not with_webhook:
        assert events == []
        return
    assert [e.type for e in events] == ["order.created"]
    order = order_get_for_buyer(order_id=answer["id"])
    expected = order_to_dict(order, audience="webhook")
    # The event is frozen when the order is created: before its payment opens.
    expected["payments"] = []
    assert events[0].data["data"] == expected
