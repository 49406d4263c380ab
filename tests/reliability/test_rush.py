"""A rush: 200 buyers at once, over HTTP, for a code pool of 100.

``orders/tests/test_concurrency.py`` races 12 buyers for 5 codes through the test client. Here 200
real HTTP clients start together against the live server; the server takes every connection and
serves them as fast as its request threads allow, each checkout in its own transaction. Exactly 100
are sold, each with a different code; the other 100 get a clean 409 ``out_of_stock`` in the API's
envelope; no request fails on the server's side. The 100 then pay (signed webhooks, re-verified
with the gateway over HTTP), and two real workers deliver each buyer its own code, in one email.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from catalog.inventory import CodeRow, codes_import
from catalog.models import Code, DeliveryType, Product
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory
from orders.models import Order, OrderEvent
from tests.reliability.conftest import Site, envelope_error, mail_to, paid_at_gateway, signed_payment_event, text_of

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

BUYERS = 200
CODES = 100
PAYERS = 12  # payment webhooks the gateway sends at the same time


@pytest.fixture
def gift_cards(transactional_db: None) -> Product:
    product = ProductFactory(
        seller=SellerFactory(name="Gift Card Shop"),
        slug="rush-gift-cards",
        title="Gift Card",
        currency="USD",
        delivery_type=DeliveryType.CODE_POOL,
        delivery_content="",
    )
    variant = VariantFactory(product=product, name="25 USD", price=2500)
    result = codes_import(variant=variant, rows=[CodeRow(n, f"RUSH-{n:04d}-CARD") for n in range(1, CODES + 1)])
    assert result.imported == CODES
    return product


def test_two_hundred_buyers_at_once_for_a_hundred_codes(site: Site, gift_cards: Product) -> None:
    start = threading.Barrier(BUYERS)

    def buy(n: int) -> requests.Response:
        start.wait(timeout=60)
        return site.checkout(gift_cards, f"buyer{n:03d}@example.com")

    with ThreadPoolExecutor(max_workers=BUYERS) as pool:
        answers = list(pool.map(buy, range(BUYERS)))

    statuses = Counter(a.status_code for a in answers)
    assert statuses == Counter({201: CODES, 409: BUYERS - CODES}), {
        s: next(a.text for a in answers if a.status_code == s) for s in statuses
    }
    for refused in (a for a in answers if a.status_code == 409):
        error = envelope_error(refused)
        assert error["code"] == "out_of_stock", refused.text
        assert error["message"]
    sold = [a.json()["data"] for a in answers if a.status_code == 201]
    assert all(order["status"] == "pending" and order["payment"]["status"] == "pending" for order in sold)

    # 100 orders, each holding one reserved code, every code reserved once; the refused left nothing.
    variant_codes = Code.objects.filter(variant__product=gift_cards)
    assert Order.objects.filter(product=gift_cards).count() == CODES
    assert variant_codes.filter(status="ALLOCATED").count() == CODES
    reserved_items = list(variant_codes.values_list("order_item_id", flat=True))
    assert None not in reserved_items and len(set(reserved_items)) == CODES

    # The 100 pay; the gateway's signed webhooks reach the app, which re-verifies each over HTTP and
    # queues its fulfillment. A second worker shares the queue.
    site.launcher.start()
    for order in sold:
        paid_at_gateway(order["payment"]["id"])

    def pay(order: dict[str, Any]) -> int:
        return site.post_webhook(*signed_payment_event(order, f"evt_rush_{order['id'][-20:]}")).status_code

    with ThreadPoolExecutor(max_workers=PAYERS) as pool:
        assert Counter(pool.map(pay, sold)) == Counter({200: CODES})
    order_ids = [order["id"] for order in sold]
    site.wait_for_status(gift_cards.slug, order_ids, "delivered", timeout=120)

    # 100 delivered orders, each with its own code from the pool, emailed once to its buyer.
    delivered = variant_codes.filter(status="DELIVERED")
    assert delivered.count() == CODES
    code_by_order = {c.order_item.order_id: c.code for c in delivered.select_related("order_item")}
    assert sorted(code_by_order) == sorted(order_ids)
    assert len(set(code_by_order.values())) == CODES
    assert set(code_by_order.values()) == {f"RUSH-{n:04d}-CARD" for n in range(1, CODES + 1)}
    for order in sold:
        [message] = mail_to(site.mail_dir, order["buyer_email"])
        assert f"Code 1: {code_by_order[order['id']]}" in text_of(message)
    assert OrderEvent.objects.filter(order__product=gift_cards, type="email_sent").count() == CODES
