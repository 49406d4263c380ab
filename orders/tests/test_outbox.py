import json

import pytest

from catalog.inventory import CodeRow, codes_import
from catalog.models import DeliveryType
from catalog.tests.factories import ProductFactory, VariantFactory
from orders.models import SellerEvent

from .helpers import make_order, pay

pytestmark = pytest.mark.django_db


def test_each_status_change_records_one_frozen_event_without_codes(seller, django_capture_on_commit_callbacks):
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
