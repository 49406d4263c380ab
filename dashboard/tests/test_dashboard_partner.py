"""Partner products: the buyer's input field named by the seller, the partner's expected reply on the
product page, and "Test the partner URL" — one signed test call through the guarded client that shows
what the partner answered, follows no redirect and reaches no private address."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.cache import cache
from standardwebhooks.webhooks import Webhook

from catalog.delivery import partner_secret
from catalog.models import DeliveryType, Product
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory
from orders.tests.test_outgoing_webhooks import resolving_to

from .test_dashboard_catalog import form_data

pytestmark = pytest.mark.django_db
SECRET = "whsec_cGFydG5lci1zZWNyZXQtZm9yLXRlc3RzLTEyMzQ1Njc4"


class Partner:
    """A partner endpoint: verifies our signature, answers ``status`` with ``body`` (and a Location)."""

    def __init__(self, status=200, body=b'{"code": "TEST-CODE-1", "pin": "12"}', location=""):
        self.requests: list[dict] = []
        partner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                Webhook(SECRET).verify(raw, dict(self.headers), json_parse=False)  # raises if forged
                partner.requests.append(json.loads(raw))
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/fulfill"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def local_partners(settings):
    settings.PARTNER_ALLOW_HTTP = True
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def me():
    return SellerFactory(name="Ada's Shop", email="ada@example.com")


@pytest.fixture
def browser(client, me):
    client.force_login(me)
    return client


def partner_product(seller, url, **partner):
    product = ProductFactory(
        seller=seller,
        slug=f"credits-{seller.pk}",
        title="Game Credits",
        delivery_type=DeliveryType.PARTNER_API,
        delivery_content="",
        delivery_options={"partner": {"url": url, "secret": SECRET, **partner}},
    )
    VariantFactory(product=product, name="1000 credits", price=999)
    return product


def test_the_seller_names_the_buyers_field_and_checkout_shows_it(browser, me, client):
    data = form_data(
        delivery_type="partner_api",
        delivery_text="",
        partner_url="https://partner.example.com/fulfill",
        partner_input_label="Steam friend code",
        partner_input_help="Steam → Friends → Add a friend shows it.",
    )
    assert browser.post("/dashboard/products/new/", data).status_code == 200
    product = Product.objects.get(seller=me)
    partner = product.delivery_options["partner"]
    assert (partner["input_label"], partner["input_help"]) == (
        "Steam friend code",
        "Steam → Friends → Add a friend shows it.",
    )
    page = client.get(f"/c/{product.slug}").content.decode()
    assert "Steam friend code" in page and "Steam → Friends → Add a friend shows it." in page
    assert "Player / account ID" not in page
    edit = browser.get(f"/dashboard/products/{product.id}/edit/").content.decode()
    assert 'value="Steam friend code"' in edit
    assert 'data-testid="partner-reply"' in edit and "THE-CODE-TO-DELIVER" in edit  # the expected reply
    assert 'id="partner-test-button"' in edit


def test_without_a_label_checkout_keeps_the_default(client, me):
    product = partner_product(me, "https://partner.example.com/f")
    page = client.get(f"/c/{product.slug}").content.decode()
    assert "Player / account ID" in page


def test_the_api_validates_the_input_field(me):
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import RefreshToken

    seller_client = APIClient()
    seller_client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(me).access_token}")
    body = {
        "title": "Credits",
        "currency": "USD",
        "price": 100,
        "delivery": {
            "content_type": "partner_api",
            "partner": {"url": "https://partner.test/f", "input_label": "x" * 81},
        },
    }
    response = seller_client.post("/api/v1/products", body, format="json")
    assert response.status_code == 400
    assert "delivery.partner.input_label" in response.json()["error"]["fields"]
    assert not Product.objects.exists()
    body["delivery"]["partner"] = {"url": "https://partner.test/f", "input_label": "Account", "input_help": "Yours."}
    created = seller_client.post("/api/v1/products", body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["data"]["delivery"]["partner"]["input_label"] == "Account"
    assert partner_secret(Product.objects.get().delivery_options).startswith("whsec_")


def test_test_button_shows_a_valid_reply(browser, me):
    partner = Partner()
    try:
        product = partner_product(me, partner.url)
        response = browser.post(f"/dashboard/products/{product.id}/partner-test/")
    finally:
        partner.close()
    assert response.status_code == 200
    html = response.content.decode()
    assert "Valid reply" in html and "HTTP 200" in html
    assert "TEST-CODE-1" in html  # what the partner answered
    [sent] = partner.requests  # signed (the server verified it) and marked as a test
    assert (sent["type"], sent["test"], sent["product_id"]) == ("fulfillment.test", True, product.id)


@pytest.mark.parametrize(
    "status,body,verdict",
    [
        (200, b'{"pin": "1"}', "The answer has no &quot;code&quot; (a non-empty string)."),
        (200, b"<html>oops</html>", "The answer is not JSON."),
        (500, b'{"error": "down"}', "The partner answered 500"),
    ],
)
def test_test_button_explains_an_invalid_reply(browser, me, status, body, verdict):
    partner = Partner(status=status, body=body)
    try:
        product = partner_product(me, partner.url)
        html = browser.post(f"/dashboard/products/{product.id}/partner-test/").content.decode()
    finally:
        partner.close()
    assert "Not a valid reply" in html and verdict in html


def test_a_redirect_is_never_followed(browser, me):
    target = Partner()
    redirecting = Partner(status=302, body=b"", location=target.url)
    try:
        product = partner_product(me, redirecting.url)
        html = browser.post(f"/dashboard/products/{product.id}/partner-test/").content.decode()
    finally:
        redirecting.close()
        target.close()
    assert "Not a valid reply" in html
    assert len(redirecting.requests) == 1 and target.requests == []


def test_a_private_address_is_refused_on_the_socket(browser, me, settings):
    partner = Partner()
    try:
        product = partner_product(me, "https://partner.example.test/fulfill")
        settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
        with resolving_to("127.0.0.1"):
            html = browser.post(f"/dashboard/products/{product.id}/partner-test/").content.decode()
    finally:
        partner.close()
    assert "No answer: The URL could not be reached." in html
    assert "127.0.0.1" not in html and partner.requests == []


def test_another_sellers_product_is_not_found_and_not_called(browser):
    partner = Partner()
    try:
        theirs = partner_product(SellerFactory(), partner.url)
        assert browser.post(f"/dashboard/products/{theirs.id}/partner-test/").status_code == 404
    finally:
        partner.close()
    assert partner.requests == []


def test_a_product_that_is_not_a_partner_product_is_refused(browser, me):
    product = ProductFactory(seller=me, delivery_content="Hi")
    response = browser.post(f"/dashboard/products/{product.id}/partner-test/")
    assert response.status_code == 409
    assert "not fulfilled by a partner URL" in response.content.decode()


def test_the_test_is_rate_limited_per_product(browser, me, settings):
    partner = Partner()
    try:
        product = partner_product(me, partner.url)
        codes = [browser.post(f"/dashboard/products/{product.id}/partner-test/").status_code for _ in range(11)]
    finally:
        partner.close()
    assert codes == [200] * 10 + [429]
    assert len(partner.requests) == 10
