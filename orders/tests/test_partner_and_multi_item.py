"""Partner fulfillment against a real local HTTP server, and orders with several items."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest import mock

import pytest
from django.core import mail
from standardwebhooks.webhooks import Webhook

from catalog.delivery import partner_secret
from catalog.inventory import CodeRow, codes_import
from catalog.models import Code, DeliveryType
from catalog.tests.factories import ProductFactory, VariantFactory
from orders.models import OrderEvent
from orders.services import CheckoutLine, order_create, order_mark_paid, order_retry_delivery
from orders.tasks import fulfill_order

pytestmark = pytest.mark.django_db
SECRET = "whsec_cGFydG5lci1zZWNyZXQtZm9yLXRlc3RzLTEyMzQ1Njc4"


class Partner:
    """A seller's fulfillment endpoint: verifies our signature, then follows a script of answers."""

    def __init__(self):
        self.script = []  # e.g. [(500, None), (200, {"code": "X"})]; the last entry repeats
        self.requests = []
        partner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                Webhook(SECRET).verify(body, dict(self.headers), json_parse=False)  # raises if forged
                partner.requests.append(json.loads(body))
                status, answer = partner.script.pop(0) if len(partner.script) > 1 else partner.script[0]
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                payload = answer(json.loads(body)) if callable(answer) else answer
                self.wfile.write(json.dumps(payload or {}).encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/fulfill"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def partner():
    server = Partner()
    yield server
    server.close()


@pytest.fixture
def eager_retries():
    conf = fulfill_order.app.conf
    previous = conf.task_eager_propagates
    conf.task_eager_propagates = False
    with mock.patch("orders.tasks.backoff_seconds", return_value=0):
        yield
    conf.task_eager_propagates = previous


def partner_product(seller, url):
    product = ProductFactory(
        seller=seller,
        title="Game Credits",
        delivery_type=DeliveryType.PARTNER_API,
        delivery_content="",
        delivery_options={"partner": {"url": url, "secret": SECRET}},
    )
    VariantFactory(product=product, name="1000 credits", price=999)
    return product


def paid_order(product, lines, **kwargs):
    order = order_create(product=product, buyer_email="gamer@example.com", lines=lines, **kwargs).order
    with mock.patch("orders.tasks.fulfill_order.delay"):
        order_mark_paid(order_id=order.id, payment_id="pay_test")
    return order


def unit_code(body):
    return {"code": f"CREDIT-{body['item_id'][-6:]}-{body['unit']}", "pin": "77"}


def test_partner_codes_are_fetched_per_unit_with_a_signed_request(seller, partner, eager_retries):
    product = partner_product(seller, partner.url)
    variant = product.variants.get()
    partner.script = [(200, unit_code)]
    order = paid_order(product, [CheckoutLine(variant.id, 2, {"player_id": "P-42"})])
    fulfill_order.apply(args=(order.id,), throw=False)
    order.refresh_from_db()
    assert order.status == "delivered"
    assert [r["unit"] for r in partner.requests] == [1, 2]
    assert partner.requests[0]["fulfillment_input"] == {"player_id": "P-42"}
    item = order.items.get()
    codes = sorted(Code.objects.filter(order_item=item).values_list("code_hint", flat=True))
    assert len(codes) == 2
    assert Code.objects.filter(order_item=item, source="partner", status="DELIVERED").count() == 2
    assert "PIN: 77" in mail.outbox[0].body


def test_partner_outage_is_retried_then_succeeds(seller, partner, eager_retries):
    product = partner_product(seller, partner.url)
    partner.script = [(503, None), (500, None), (200, unit_code)]
    order = paid_order(product, [CheckoutLine(product.variants.get().id, 1)])
    fulfill_order.apply(args=(order.id,), throw=False)
    order.refresh_from_db()
    assert order.status == "delivered"
    assert len(partner.requests) == 3
    assert order.items.get().attempts == 3


def test_partner_that_keeps_failing_ends_partner_failed_and_needs_attention(seller, partner, eager_retries, settings):
    settings.FULFILMENT_MAX_RETRIES = 2
    product = partner_product(seller, partner.url)
    partner.script = [(502, None)]
    order = paid_order(product, [CheckoutLine(product.variants.get().id, 1)])
    fulfill_order.apply(args=(order.id,), throw=False)
    order.refresh_from_db()
    item = order.items.get()
    assert (order.status, item.fulfillment_status) == ("needs_attention", "partner_failed")
    assert len(partner.requests) == 3
    assert [m.to for m in mail.outbox] == [[seller.email]]  # the seller is told; the buyer gets no empty email


def test_partner_refusal_is_not_retried(seller, partner, eager_retries):
    product = partner_product(seller, partner.url)
    partner.script = [(400, {"error": "unknown player"})]
    order = paid_order(product, [CheckoutLine(product.variants.get().id, 1)])
    fulfill_order.apply(args=(order.id,), throw=False)
    order.refresh_from_db()
    assert (order.status, order.items.get().fulfillment_status) == ("needs_attention", "partner_failed")
    assert len(partner.requests) == 1


def test_partner_url_must_be_https_unless_allowed(seller_client, settings):
    settings.PARTNER_ALLOW_HTTP = False
    body = {
        "title": "Credits",
        "currency": "USD",
        "price": 100,
        "delivery": {"content_type": "partner_api", "partner": {"url": "http://partner.test/fulfill"}},
    }
    response = seller_client.post("/api/v1/products", body, format="json")
    assert response.status_code == 400
    assert "delivery.partner.url" in response.json()["error"]["fields"]
    body["delivery"]["partner"]["url"] = "https://partner.test/fulfill"
    created = seller_client.post("/api/v1/products", body, format="json")
    assert created.status_code == 201
    assert created.json()["data"]["delivery"]["partner"]["secret"].startswith("whsec_")


class TestSeveralItems:
    def test_one_order_across_the_sellers_products_one_email_with_every_code(
        self, seller, partner, eager_retries, django_capture_on_commit_callbacks
    ):
        pool_product = ProductFactory(
            seller=seller,
            title="Gift Card",
            delivery_type=DeliveryType.CODE_POOL,
            delivery_content="",
            redemption_instructions="Redeem online",
        )
        small = VariantFactory(product=pool_product, name="$10", price=1000)
        big = VariantFactory(product=pool_product, name="$50", price=5000)
        codes_import(variant=small, rows=[CodeRow(i, f"TEN-{i}") for i in range(3)])
        codes_import(variant=big, rows=[CodeRow(1, "FIFTY-1", pin="5050")])
        licence = ProductFactory(
            seller=seller,
            title="Pro App",
            delivery_type=DeliveryType.LICENSE_KEY,
            delivery_content="",
            delivery_options={"license": {"activation_limit": 1}},
        )
        licence_variant = VariantFactory(product=licence, name="Single seat", price=2500)
        lines = [CheckoutLine(small.id, 2), CheckoutLine(big.id, 1), CheckoutLine(licence_variant.id, 1)]
        order = order_create(product=pool_product, buyer_email="many@example.com", lines=lines).order
        assert order.total_amount == 2 * 1000 + 5000 + 2500
        from orders.tests.helpers import pay

        order = pay(order, django_capture_on_commit_callbacks)
        assert order.status == "delivered"
        from rest_framework.test import APIClient

        data = APIClient().get(f"/api/v1/public/checkout/{pool_product.slug}/order/{order.id}").json()["data"]
        per_item = {item["variant_name"]: item["voucher_codes"] for item in data["items"]}
        assert per_item["$10"] == ["TEN-0", "TEN-1"]
        assert per_item["$50"] == ["FIFTY-1"]
        assert len(per_item["Single seat"]) == 1
        assert data["voucher_codes"] == per_item["$10"] + per_item["$50"] + per_item["Single seat"]
        assert all(item["fulfilled"] and item["fulfillment_status"] == "succeeded" for item in data["items"])
        buyer_mails = [m for m in mail.outbox if m.to == ["many@example.com"]]
        assert len(buyer_mails) == 1
        body = buyer_mails[0].body
        for code in [
            "TEN-0",
            "TEN-1",
            "FIFTY-1",
            per_item["Single seat"][0],
            "PIN: 5050",
            "Gift Card ($50)",
            "Pro App (Single seat)",
            "Redeem online",
        ]:
            assert code in body

    def test_partial_delivery_then_retry_fulfills_only_what_is_missing(self, seller, partner, eager_retries, settings):
        settings.FULFILMENT_MAX_RETRIES = 1
        text_product = ProductFactory(seller=seller, title="Guide", delivery_content="Read me")
        text_variant = VariantFactory(product=text_product, price=100)
        credits = partner_product(seller, partner.url)
        partner.script = [(500, None)]
        order = paid_order(text_product, [CheckoutLine(text_variant.id, 1), CheckoutLine(credits.variants.get().id, 1)])
        fulfill_order.apply(args=(order.id,), throw=False)
        order.refresh_from_db()
        statuses = {i.title: i.fulfillment_status for i in order.items.all()}
        assert statuses == {"Guide": "succeeded", "Game Credits": "partner_failed"}
        assert order.status == "needs_attention"
        transitions = list(
            OrderEvent.objects.filter(order=order, type="status_changed").values_list("to_status", flat=True)
        )
        assert transitions == ["paid", "partially_delivered", "needs_attention"]
        guide = order.items.get(title="Guide")
        attempts_before = guide.attempts
        partner.script = [(200, unit_code)]
        order_retry_delivery(order=order, user=seller)
        fulfill_order.apply(args=(order.id,), throw=False)
        order.refresh_from_db()
        guide.refresh_from_db()
        assert order.status == "delivered"
        assert guide.attempts == attempts_before  # the delivered item was not fulfilled again
        assert len([m for m in mail.outbox if m.to == ["gamer@example.com"]]) == 1


def test_the_partner_secret_is_sealed_at_rest_and_still_signs(
    seller_client, seller, partner, settings, django_capture_on_commit_callbacks
):
    """The seller sees the plain secret once, in the answer that made it, and keeps it; the database
    holds only its ciphertext; a request to the partner is signed with the plain one (the fake
    partner verifies it)."""
    from django.db import connection

    from catalog.models import Product

    settings.PARTNER_ALLOW_HTTP = True
    partner.script = [(200, {"code": "CREDIT-SEALED-1"})]
    body = {
        "title": "Credits",
        "currency": "USD",
        "price": 100,
        "delivery": {"content_type": "partner_api", "partner": {"url": partner.url, "secret": SECRET}},
    }
    created = seller_client.post("/api/v1/products", body, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["data"]["delivery"]["partner"] == {
        "url": partner.url,
        "secret": SECRET,
        "secret_hint": SECRET[-4:],
    }
    product = Product.objects.get(pk=created.json()["data"]["id"])
    with connection.cursor() as cursor:
        cursor.execute("SELECT delivery_options FROM catalog_product WHERE id = %s", [product.pk])
        [(raw,)] = cursor.fetchall()
    assert SECRET not in str(raw) and SECRET.removeprefix("whsec_") not in str(raw)

    # An update that does not touch the secret keeps it, and shows only its hint.
    renamed = seller_client.patch(
        f"/api/v1/products/{product.pk}", {"delivery": {"redemption_instructions": "Top up in game."}}, format="json"
    )
    assert renamed.status_code == 200
    assert renamed.json()["data"]["delivery"]["partner"] == {"url": partner.url, "secret_hint": SECRET[-4:]}
    product.refresh_from_db()
    assert partner_secret(product.delivery_options) == SECRET

    order = paid_order(product, [CheckoutLine(product.variants.get().id, 1)])
    with django_capture_on_commit_callbacks(execute=True):
        fulfill_order.apply(args=(order.id,))
    order.refresh_from_db()
    assert order.status == "delivered"
    assert len(partner.requests) == 1  # accepted: its signature verified with SECRET
