"""Issue 10, item 3 — SSRF. A seller chooses the URLs the server calls on their behalf (the partner
fulfillment URL of a product, webhook endpoints, an order's ``webhook_urls``). The attack: point one
at the server itself, the private network or the cloud's metadata service, directly, through a DNS
name (that may change its answer after it was saved), an IPv6 spelling of an IPv4 address, or a
redirect; then read the inside answer back as a delivered code, or tell open ports from closed
ones by the error text. Every one is refused, when saved and when called, with one neutral text,
and nothing from inside reaches the buyer or the seller. Local servers on 127.0.0.1 play the
"inside"; made-up names are answered by a patched resolver: nothing but loopback is contacted."""

import json
from unittest import mock

import pytest
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from catalog.models import Code, DeliveryType, Product
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory
from marketplace.core.errors import ValidationFailed
from marketplace.core.tests.outbound_servers import LocalHTTP, RawTCP, closed_port, resolving
from orders.models import Order, SellerEvent, WebhookDelivery, WebhookEndpoint
from orders.seller_events.delivery import webhook_delivery_attempt
from orders.seller_events.endpoints import new_webhook_secret
from orders.services import CheckoutLine, order_create, order_fulfill, order_mark_paid

pytestmark = pytest.mark.django_db

UNREACHABLE = "The URL could not be reached."
INSIDE_CODE = "INSIDE-ANSWER-7f3c"
SECRET = "whsec_cGFydG5lci1zZWNyZXQtZm9yLXRlc3RzLTEyMzQ1Njc4"

# Names the patched resolver answers: each stands for a seller's DNS record.
NAMES = {
    "metadata.example.test": ["169.254.169.254"],
    "mixed.example.test": ["93.184.215.14", "10.0.0.7"],  # one public record, one inside
    "v6-inside.example.test": ["fd00:ec2::254"],
    "mapped.example.test": ["::ffff:127.0.0.1"],
}
INSIDE_URLS = [
    "https://127.0.0.1/fulfill",
    "https://localhost/fulfill",
    "https://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "https://[fd00:ec2::254]/latest/meta-data/",
    "https://10.0.0.5/fulfill",
    "https://100.64.0.1/fulfill",
    "https://[::ffff:127.0.0.1]/fulfill",
    "https://[::ffff:a9fe:a9fe]/fulfill",
    "https://[2002:a9fe:a9fe::1]/fulfill",
    "https://[64:ff9b::a9fe:a9fe]/fulfill",
    "https://[2001::1]/fulfill",
    "https://[fe80::1]/fulfill",
    "https://metadata.example.test/computeMetadata/v1/",
    "https://mixed.example.test/fulfill",
    "https://v6-inside.example.test/fulfill",
    "https://mapped.example.test/fulfill",
]


@pytest.fixture
def production_like(settings):
    """What production runs with: https only, no private addresses."""
    settings.PARTNER_ALLOW_HTTP = False
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False


@pytest.fixture
def seller(db):
    return SellerFactory(name="Mallory's Shop")


@pytest.fixture
def seller_client(seller):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(seller).access_token}")
    return client


@pytest.fixture
def inside():
    """A service inside the network: whatever asks gets a code-shaped secret."""
    server = LocalHTTP((200, {"Content-Type": "application/json"}, json.dumps({"code": INSIDE_CODE}).encode()))
    yield server
    server.close()


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


def fulfilled_once(product):
    """A paid order for one unit, fulfilled once (its last attempt), as the worker would."""
    order = order_create(
        product=product, buyer_email="buyer@example.com", lines=[CheckoutLine(product.variants.get().id, 1)]
    ).order
    with mock.patch("orders.tasks.fulfill_order.delay"):
        order_mark_paid(order_id=order.id, payment_id="pay_ssrf")
    order_fulfill(order_id=order.id, final_attempt=True)
    order.refresh_from_db()
    return order


def assert_nothing_inside_was_delivered(order):
    item = order.items.get()
    assert (order.status, item.fulfillment_status, item.last_error) == (
        "needs_attention",
        "partner_failed",
        UNREACHABLE,
    )
    assert Code.objects.filter(order_item=item).count() == 0
    buyer_view = APIClient().get(f"/api/v1/public/checkout/{order.product.slug}/order/{order.id}")
    assert buyer_view.status_code == 200
    assert INSIDE_CODE not in buyer_view.content.decode()
    assert buyer_view.json()["data"]["items"][0]["voucher_codes"] == []
    assert all(INSIDE_CODE not in m.body for m in mail.outbox)
    assert [m for m in mail.outbox if "buyer@example.com" in m.to] == []


def partner_body(url):
    return {
        "title": "Credits",
        "currency": "USD",
        "price": 100,
        "delivery": {"content_type": "partner_api", "partner": {"url": url}},
    }


# --- Partner fulfillment URLs -------------------------------------------------------------------


@pytest.mark.parametrize("url", INSIDE_URLS)
def test_a_partner_url_inside_the_network_is_refused_when_the_product_is_saved(seller_client, production_like, url):
    with resolving(NAMES):
        response = seller_client.post("/api/v1/products", partner_body(url), format="json")
    assert response.status_code == 400
    assert response.json()["success"] is False
    assert response.json()["error"]["fields"] == {"delivery.partner.url": [UNREACHABLE]}
    assert Product.objects.count() == 0


def test_a_partner_url_cannot_be_changed_to_an_inside_one(seller_client, production_like):
    with resolving({"partner.example.test": ["93.184.215.14"], **NAMES}):
        created = seller_client.post("/api/v1/products", partner_body("https://partner.example.test/f"), format="json")
        assert created.status_code == 201, created.json()
        product_id = created.json()["data"]["id"]
        patched = seller_client.patch(
            f"/api/v1/products/{product_id}",
            {"delivery": {"content_type": "partner_api", "partner": {"url": "https://metadata.example.test/"}}},
            format="json",
        )
    assert patched.status_code == 400
    assert patched.json()["error"]["fields"] == {"delivery.partner.url": [UNREACHABLE]}
    product = Product.objects.get(pk=product_id)
    assert product.delivery_options["partner"]["url"] == "https://partner.example.test/f"


def test_partner_fulfillment_to_loopback_with_production_settings_is_refused(seller, inside, production_like):
    """The headline: a partner URL on 127.0.0.1 (saved before, or by any other door) is never called
    under production settings; the item fails with the neutral text and the buyer gets nothing."""
    order = fulfilled_once(partner_product(seller, f"{inside.url}fulfill"))
    assert inside.requests == []
    assert_nothing_inside_was_delivered(order)


@pytest.mark.parametrize("host", ["127.0.0.1", "partner.example.test", "2130706433"])
def test_partner_fulfillment_to_an_inside_address_is_refused_even_over_allowed_http(seller, inside, settings, host):
    settings.PARTNER_ALLOW_HTTP = True  # http allowed, private addresses still not
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    with resolving({"partner.example.test": ["127.0.0.1"]}):
        order = fulfilled_once(partner_product(seller, f"http://{host}:{inside.port}/fulfill"))
    assert inside.requests == []
    assert_nothing_inside_was_delivered(order)


def test_a_partner_name_public_when_saved_and_inside_when_called_is_refused_at_the_call(
    seller_client, seller, inside, settings
):
    """DNS rebinding between saving the product and selling it."""
    settings.PARTNER_ALLOW_HTTP = True
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    url = f"http://rebind.example.test:{inside.port}/fulfill"
    with resolving({"rebind.example.test": ["93.184.215.14"]}):
        created = seller_client.post("/api/v1/products", partner_body(url), format="json")
    assert created.status_code == 201, created.json()
    product = Product.objects.get(pk=created.json()["data"]["id"])
    with resolving({"rebind.example.test": ["127.0.0.1"]}):
        order = fulfilled_once(product)
    assert inside.requests == []
    assert_nothing_inside_was_delivered(order)


def test_a_partner_redirect_to_the_inside_is_not_followed(seller, inside, settings):
    """Even where local receivers are allowed (so the first hop can be a local server here), the
    client never follows a redirect: a 3xx fails the item."""
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    settings.PARTNER_ALLOW_HTTP = True
    bouncer = LocalHTTP((302, {"Location": f"{inside.url}latest/meta-data/"}, b""))
    try:
        order = fulfilled_once(partner_product(seller, f"{bouncer.url}fulfill"))
        assert len(bouncer.requests) == 1
    finally:
        bouncer.close()
    assert inside.requests == []
    assert_nothing_inside_was_delivered(order)


def test_an_oversized_partner_answer_is_refused(seller, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    settings.PARTNER_ALLOW_HTTP = True
    huge = LocalHTTP((200, {}, json.dumps({"code": INSIDE_CODE, "pad": "x" * 1_000_000}).encode()))
    try:
        order = fulfilled_once(partner_product(seller, f"{huge.url}fulfill"))
    finally:
        huge.close()
    assert_nothing_inside_was_delivered(order)


def test_the_partner_error_text_is_the_same_for_a_closed_port_an_open_port_and_a_refused_address(
    seller, inside, settings
):
    """No port scan through the item's failure text."""
    raw = RawTCP()
    texts = {}
    try:
        settings.PARTNER_ALLOW_HTTP = True
        settings.WEBHOOK_ALLOW_PRIVATE_URLS = True  # the closed and the non-HTTP port are reached
        for label, port in (("closed", closed_port()), ("open, not HTTP", raw.port)):
            order = fulfilled_once(partner_product(seller, f"http://127.0.0.1:{port}/"))
            texts[label] = order.items.get().last_error
        settings.WEBHOOK_ALLOW_PRIVATE_URLS = False  # production: an open HTTP port, refused
        order = fulfilled_once(partner_product(seller, f"{inside.url}fulfill"))
        texts["open, refused address"] = order.items.get().last_error
    finally:
        raw.close()
    assert texts == {"closed": UNREACHABLE, "open, not HTTP": UNREACHABLE, "open, refused address": UNREACHABLE}
    assert inside.requests == []


# --- Webhook endpoints and orders' webhook_urls ------------------------------------------------------


@pytest.mark.parametrize("url", INSIDE_URLS)
def test_a_webhook_endpoint_inside_the_network_is_refused_with_the_neutral_text(seller_client, production_like, url):
    with resolving(NAMES):
        response = seller_client.post("/api/v1/webhook-endpoints", {"url": url}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"url": [UNREACHABLE]}
    assert WebhookEndpoint.objects.count() == 0


@pytest.mark.parametrize("url", ["https://169.254.169.254/latest/meta-data/", "https://metadata.example.test/"])
def test_an_orders_webhook_urls_inside_the_network_are_refused_and_no_order_is_made(seller, production_like, url):
    product = ProductFactory(seller=seller)
    VariantFactory(product=product, price=500)
    with resolving(NAMES), pytest.raises(ValidationFailed) as refused:
        order_create(
            product=product,
            buyer_email="buyer@example.com",
            lines=[CheckoutLine(product.variants.get().id, 1)],
            webhook_urls=["https://hooks.example.com/ok", url],
        )
    assert refused.value.fields == {"webhook_urls": [UNREACHABLE]}
    assert Order.objects.count() == 0


def attempt_once(seller, url):
    """One attempt of a delivery to ``url``, as if the endpoint had been saved earlier."""
    endpoint = WebhookEndpoint.objects.create(seller=seller, url=url, secret=new_webhook_secret())
    event = SellerEvent.objects.create(seller=seller, type="order.paid", data={"id": "ord_x"})
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        url=url,
        event=event,
        webhook_id=f"msg_{event.id}",
        body="{}",
        next_attempt_at=timezone.now(),
    )
    webhook_delivery_attempt(delivery_id=delivery.id, retry_in=None)
    delivery.refresh_from_db()
    return delivery


def test_a_webhook_name_public_when_saved_and_inside_when_called_sends_nothing(seller_client, seller, inside, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    url = "https://rebind.example.test/hooks"
    with resolving({"rebind.example.test": ["93.184.215.14"]}):
        assert seller_client.post("/api/v1/webhook-endpoints", {"url": url}, format="json").status_code == 201
    WebhookEndpoint.objects.all().delete()
    with resolving({"rebind.example.test": ["127.0.0.1"]}):
        delivery = attempt_once(seller, url)
    assert (delivery.status, delivery.last_status_code, delivery.last_error, delivery.last_response) == (
        "failed",
        None,
        UNREACHABLE,
        "",
    )
    assert delivery.attempt_log[0]["error"] == UNREACHABLE


def test_the_webhook_error_text_is_the_same_for_a_closed_port_an_open_port_and_a_refused_address(
    seller, inside, settings
):
    raw = RawTCP()
    try:
        settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
        closed = attempt_once(seller, f"http://127.0.0.1:{closed_port()}/")
        not_http = attempt_once(seller, f"http://127.0.0.1:{raw.port}/")
        settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
        refused = attempt_once(seller, "https://127.0.0.1/")
    finally:
        raw.close()
    assert [d.last_error for d in (closed, not_http, refused)] == [UNREACHABLE] * 3
    assert {d.last_status_code for d in (closed, not_http, refused)} == {None}


def test_a_webhook_redirect_is_not_followed(seller, inside, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    bouncer = LocalHTTP((307, {"Location": f"{inside.url}latest/meta-data/"}, b""))
    try:
        delivery = attempt_once(seller, bouncer.url)
    finally:
        bouncer.close()
    assert inside.requests == []
    assert (delivery.status, delivery.last_error) == ("failed", UNREACHABLE)
    assert INSIDE_CODE not in json.dumps(delivery.attempt_log)
