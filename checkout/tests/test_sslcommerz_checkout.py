"""The hosted checkout with SSLCommerz: the payment methods it offers (by name, with their vendored
marks; bKash and SSLCommerz first for BDT), and a BDT voucher bought end to end over real HTTP:
checkout page → SSLCommerz's hosted page (the fake, on its own port) → IPN → validation →
delivered, one email."""

import re
import socket
from html.parser import HTMLParser

import pytest
import requests
from django.urls import reverse

from catalog.inventory import CodeRow, codes_import
from catalog.models import Code, DeliveryType
from catalog.tests.factories import ProductFactory, VariantFactory
from orders.models import Order
from orders.tests.helpers import buyer_mails
from payments.models import Payment, WebhookEvent
from payments.tests.fake_sslcommerz import fake_sslcommerz  # noqa: F401

VOUCHER_CODES = [f"BD-VOUCHER-{n:04d}-XYZW" for n in range(1, 4)]


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch):
    resolve = socket.getaddrinfo

    def local_only(host, *args, **kwargs):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise AssertionError(f"A test tried to reach {host}.")
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", local_only)


@pytest.fixture
def sslcommerz_on(settings, fake_sslcommerz):  # noqa: F811
    settings.ENABLED_PAYMENT_GATEWAYS = ["sandbox", "sslcommerz"]
    settings.SSLCOMMERZ_STORE_ID = fake_sslcommerz.store_id
    settings.SSLCOMMERZ_STORE_PASSWORD = fake_sslcommerz.store_password
    settings.SSLCOMMERZ_API_BASE = fake_sslcommerz.url
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    return fake_sslcommerz


def voucher(currency: str = "BDT") -> tuple:
    product = ProductFactory(
        currency=currency, title="Grocery voucher", delivery_type=DeliveryType.CODE_POOL, delivery_content=""
    )
    variant = VariantFactory(product=product, name="500 Taka", price=50000)
    codes_import(variant=variant, rows=[CodeRow(n, code) for n, code in enumerate(VOUCHER_CODES, start=1)])
    return product, variant


class _Methods(HTMLParser):
    """The payment methods a page offers, in order: (value, mark src)."""

    def __init__(self) -> None:
        super().__init__()
        self.methods: list[tuple[str, str]] = []
        self._value = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "input" and a.get("name") == "payment_method":
            self._value = a.get("value") or ""
        if tag == "img" and "payment-mark" in (a.get("class") or "") and self._value:
            self.methods.append((self._value, a.get("src") or ""))
            self._value = ""


def offered(html: str) -> list[tuple[str, str]]:
    parser = _Methods()
    parser.feed(html)
    return parser.methods


@pytest.mark.django_db
def test_a_bdt_product_offers_sslcommerz_first_with_its_mark(client, sslcommerz_on):
    product, _ = voucher()
    html = client.get(reverse("checkout:page", args=[product.slug])).content.decode()
    assert offered(html) == [
        ("sslcommerz", "/static/img/payment/sslcommerz.svg"),
        ("sandbox", "/static/img/payment/sandbox.svg"),
    ]
    assert "SSLCommerz — cards, mobile banking, internet banking" in html
    assert re.search(r'value="sslcommerz" checked', html)  # the first one is chosen


@pytest.mark.django_db
def test_bkash_is_offered_first_once_enabled(client, sslcommerz_on, settings):
    product, _ = voucher()
    settings.ENABLED_PAYMENT_GATEWAYS = ["sandbox", "sslcommerz"]
    assert [m for m, _ in offered(client.get(f"/c/{product.slug}").content.decode())] == ["sslcommerz", "sandbox"]
    settings.ENABLED_PAYMENT_GATEWAYS = ["sandbox", "sslcommerz", "bkash"]
    assert offered(client.get(f"/c/{product.slug}").content.decode()) == [
        ("bkash", "/static/img/payment/bkash.svg"),
        ("sslcommerz", "/static/img/payment/sslcommerz.svg"),
        ("sandbox", "/static/img/payment/sandbox.svg"),
    ]


@pytest.mark.django_db
def test_a_usd_product_does_not_offer_sslcommerz(client, sslcommerz_on):
    product, _ = voucher(currency="USD")
    html = client.get(f"/c/{product.slug}").content.decode()
    assert "sslcommerz" not in html.lower()
    assert 'name="payment_method" value="sandbox"' in html  # the one method, as a hidden field


@pytest.mark.django_db
def test_every_mark_is_a_vendored_svg_served_from_self(client, sslcommerz_on):
    from django.contrib.staticfiles import finders

    for name in ("bkash", "sslcommerz", "stripe", "sandbox"):
        path = finders.find(f"img/payment/{name}.svg")
        assert path, name
        svg = open(path, encoding="utf-8").read()
        assert svg.startswith("<svg") and "http://www.w3.org/2000/svg" in svg
        assert not re.search(r"(href|src)=\"(https?:)?//", svg)  # nothing fetched from elsewhere
    product, _ = voucher()
    response = client.get(f"/c/{product.slug}")
    assert "img-src 'self'" in response["Content-Security-Policy"]


@pytest.mark.django_db
def test_a_method_not_offered_is_an_error_on_the_page_and_creates_nothing(client, sslcommerz_on):
    product, variant = voucher(currency="USD")
    response = client.post(
        f"/c/{product.slug}",
        {"variant_id": variant.id, "quantity": 1, "buyer_email": "b@example.com", "payment_method": "sslcommerz"},
    )
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert Order.objects.count() == 0


class _Form(HTMLParser):
    """The first form of a page: its action and hidden fields."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form" and not self.action:
            self.action = a.get("action") or ""
        if tag == "input" and a.get("type") == "hidden" and a.get("name"):
            self.fields[a["name"] or ""] = a.get("value") or ""


def form_of(html: str) -> _Form:
    parser = _Form()
    parser.feed(html)
    return parser


@pytest.mark.django_db(transaction=True)
def test_e2e_a_bdt_voucher_bought_with_sslcommerz_is_delivered_with_one_email(live_server, settings, sslcommerz_on):
    settings.SITE_URL = live_server.url
    product, variant = voucher()
    browser = requests.Session()
    checkout_url = f"{live_server.url}/c/{product.slug}"

    # 1. The checkout page, paid with SSLCommerz: the buyer is sent to SSLCommerz's page.
    page = browser.get(checkout_url, timeout=10)
    assert page.status_code == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token
    form = form_of(page.text).fields
    sent = browser.post(
        checkout_url,
        data={
            **form,
            "csrfmiddlewaretoken": token.group(1),
            "variant_id": variant.id,
            "quantity": "1",
            "buyer_email": "karim@example.com",
            "payment_method": "sslcommerz",
        },
        headers={"Referer": checkout_url},
        allow_redirects=False,
        timeout=10,
    )
    assert sent.status_code == 302, sent.text[:500]
    gateway_page = sent.headers["Location"]
    assert gateway_page.startswith(f"{sslcommerz_on.url}/EasyCheckOut/")
    order = Order.objects.get()
    assert order.status == "pending"

    # 2. SSLCommerz's page: the buyer pays. SSLCommerz posts the signed IPN to us (server to server)
    # and sends the browser back to our success URL.
    assert "Pay 500.00 BDT" in browser.get(gateway_page, timeout=10).text
    back = browser.post(gateway_page, data={"outcome": "pay"}, timeout=30)
    assert sslcommerz_on.ipn_answers == [200]
    returned = form_of(back.text)
    assert returned.action == f"{live_server.url}/c/payments/sslcommerz/{Payment.objects.get().id}/success"
    landed = browser.post(returned.action, data=returned.fields, allow_redirects=False, timeout=10)
    assert landed.status_code == 303
    success = browser.get(live_server.url + landed.headers["Location"], timeout=10)
    assert success.status_code == 200

    # 3. Validated with SSLCommerz, paid, delivered: one code, one email.
    order.refresh_from_db()
    payment = Payment.objects.get()
    assert order.status == "delivered"
    assert payment.status == "succeeded"
    assert WebhookEvent.objects.get().status == "processed"
    assert len(sslcommerz_on.requests_to("/validator/api/validationserverAPI.php")) >= 1
    delivered = Code.objects.filter(status="DELIVERED")
    assert delivered.count() == 1
    assert len(buyer_mails()) == 1
    assert buyer_mails()[0].to == ["karim@example.com"]
    assert any(code in buyer_mails()[0].body for code in VOUCHER_CODES)
