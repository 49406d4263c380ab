"""The operators' bulk "refund in full" (issue 10, item 18): money that leaves cannot be taken back,
so the action first shows what it would do — each order's number and amount — and refunds only
when that page is confirmed."""

from typing import Any

import pytest
from django.test import Client

from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory, UserFactory
from orders.models import Order
from orders.tests.helpers import make_order, pay
from payments.models import Refund

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid_orders(django_capture_on_commit_callbacks: Any) -> list[Order]:
    product = ProductFactory(seller=SellerFactory(), currency="USD", delivery_content="THE-TEXT")
    VariantFactory(product=product, price=2500)
    first = pay(make_order(product), django_capture_on_commit_callbacks)
    second = pay(make_order(product, quantity=2), django_capture_on_commit_callbacks)
    return [first, second]


@pytest.fixture
def operator() -> Client:
    browser = Client()
    browser.force_login(UserFactory(is_staff=True, is_superuser=True))
    return browser


def test_refund_in_full_asks_first_naming_orders_and_amounts_then_refunds(
    operator: Client, paid_orders: list[Order]
) -> None:
    selection = {"action": "refund_in_full", "_selected_action": [order.pk for order in paid_orders]}

    asked = operator.post("/admin/orders/order/", selection)

    assert asked.status_code == 200
    html = asked.content.decode()
    assert "Refund these orders in full?" in html
    assert "#" + paid_orders[0].order_number in html and "#" + paid_orders[1].order_number in html
    assert "$25.00" in html and "$50.00" in html  # what each would return, as money
    assert 'name="post" value="yes"' in html
    assert Refund.objects.count() == 0
    assert [Order.objects.get(pk=o.pk).refunded_amount for o in paid_orders] == [0, 0]

    done = operator.post("/admin/orders/order/", {**selection, "post": "yes"})

    assert done.status_code == 302
    refunded = [Order.objects.get(pk=o.pk) for o in paid_orders]
    assert [(o.status, o.refunded_amount) for o in refunded] == [("refunded", 2500), ("refunded", 5000)]
    assert sorted(r.source for r in Refund.objects.all()) == ["operator", "operator"]
