import json

import pytest

from catalog.inventory import CodeRow, codes_import
from catalog.models import DeliveryType
from catalog.tests.factories import ProductFactory, VariantFactory
from orders.models import SellerEvent, WebhookEndpoint

from .helpers import make_order, pay

pytestmark = pytest.mark.django_db


def test_each_status_change_records_one_frozen_event_without_codes(
    seller, django_capture_on_commit_callbacks, monkeypatch
):
    # Someone listens (the outbox only records what can be received); the deliveries themselves are not sent here.
    WebhookEndpoint.objects.create(seller=seller, url="https://hooks.example.test/in", secret="whsec_test")
    monkeypatch.setattr("orders.seller_events.delivery._queue_on_commit", lambda delivery_ids: None)
    product = ProductFactory(seller=seller, delivery_type=DeliveryType.CODE_POOL, delivery_content="")
    variant = VariantFactory(product=product, price=700)
    codes_import(variant=variant, rows=[CodeRow(1, "OUTBOX-SECRET-1"), CodeRow(2, "OUTBOX-SECRET-2")])
    order = pay(make_order(product, meta={"campaign": "fall"}), django_capture_on_commit_callbacks)
    assert order.status == "delivered"
    events = list(SellerEvent.objects.filter(seller=seller).order_by("created_at", "id"))
    assert [e.type for e in events] == ["order.created", "order.paid", "order.delivered"]
    for event in events:
        assert event.data["type"] == event.type
        assert event.data["data"]["id"] == order.id
        assert event.data["data"]["meta"] == {"campaign": "fall"}
        assert event.data["timestamp"].endswith("Z")
        assert "OUTBOX-SECRET" not in json.dumps(event.data)
    assert events[0].data["data"]["status"] == "pending"
    assert events[2].data["data"]["status"] == "delivered"
    assert events[2].data["data"]["items"][0]["fulfilled"] is True


def test_no_event_is_written_when_nobody_can_receive_it(seller, django_capture_on_commit_callbacks):
    """A seller with no endpoint and an order with no webhook_urls: nothing to dispatch, no outbox row."""
    WebhookEndpoint.objects.create(
        seller=seller, url="https://hooks.example.test/in", secret="whsec_test", events=["product.out_of_stock"]
    )
    WebhookEndpoint.objects.create(seller=seller, url="https://hooks.example.test/off", secret="x", active=False)
    product = ProductFactory(seller=seller, delivery_type=DeliveryType.TEXT, delivery_content="hello")
    VariantFactory(product=product, price=700)
    order = pay(make_order(product), django_capture_on_commit_callbacks)
    assert order.status == "delivered"
    assert SellerEvent.objects.count() == 0


def test_an_orders_own_webhook_urls_make_it_record_events(seller, django_capture_on_commit_callbacks, monkeypatch):
    monkeypatch.setattr("orders.seller_events.delivery._queue_on_commit", lambda delivery_ids: None)
    product = ProductFactory(seller=seller, delivery_type=DeliveryType.TEXT, delivery_content="hello")
    VariantFactory(product=product, price=700)
    order = make_order(product)
    order.webhook_urls = ["https://shop.example.test/hook"]
    order.save(update_fields=["webhook_urls"])
    pay(order, django_capture_on_commit_callbacks)
    assert list(SellerEvent.objects.order_by("created_at", "id").values_list("type", flat=True)) == [
        "order.paid",
        "order.delivered",
    ]
