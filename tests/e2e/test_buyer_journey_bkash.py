"""A buyer in Bangladesh buys a BDT voucher with bKash, over HTTP end to end.

A local fake of bKash's Tokenized Checkout API (``payments.tests.fake_bkash``) stands in for
tokenized.pay.bka.sh, on a local port; the live server's bKash client talks to it through the guarded
outbound client. Checkout over the public API creates the payment at "bKash" → the buyer opens
bKash's page and confirms (the fake's approve) → bKash sends the browser to our callback → the
server executes the payment and queries it at bKash → the real Celery worker delivers the voucher
code → exactly one email. The same callback replayed afterwards changes nothing.
"""

import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings

from catalog.inventory import CodeRow, codes_import
from catalog.models import DeliveryType
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory
from orders.models import Order, OrderEvent
from payments.models import Payment
from payments.tests.fake_bkash import FakeBkash, fake_bkash  # noqa: F401 - fake_bkash: a fixture

from .test_buyer_journey_stripe import poll_order, status_moves

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CODE = "BD-GIFT-0001-SECRET"


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test process (and its live server) resolves no host but this machine."""
    resolve = socket.getaddrinfo

    def local_only(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise AssertionError(f"A test tried to reach {host}.")
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", local_only)


@pytest.fixture
def worker_env(fake_bkash: FakeBkash) -> dict[str, str]:  # noqa: F811 - the imported fixture
    """The worker gets the same gateway settings (it only delivers; it never calls bKash)."""
    return {
        "ENABLED_PAYMENT_GATEWAYS": "sandbox,bkash",
        "BKASH_BASE_URL": fake_bkash.url,
        "BKASH_APP_KEY": fake_bkash.app_key,
        "BKASH_APP_SECRET": fake_bkash.app_secret,
        "BKASH_USERNAME": fake_bkash.username,
        "BKASH_PASSWORD": fake_bkash.password,
    }


@pytest.fixture
def bkash_site(e2e_site: Any, settings: Any, fake_bkash: FakeBkash) -> Iterator[Any]:  # noqa: F811
    settings.ENABLED_PAYMENT_GATEWAYS = ["sandbox", "bkash"]
    settings.BKASH_BASE_URL = fake_bkash.url
    settings.BKASH_APP_KEY = fake_bkash.app_key
    settings.BKASH_APP_SECRET = fake_bkash.app_secret
    settings.BKASH_USERNAME = fake_bkash.username
    settings.BKASH_PASSWORD = fake_bkash.password
    yield e2e_site


@pytest.fixture
def bdt_voucher(transactional_db: None) -> Any:
    product = ProductFactory(
        seller=SellerFactory(name="Dhaka Gifts"),
        slug="bkash-voucher",
        title="Gift voucher",
        currency="BDT",
        delivery_type=DeliveryType.CODE_POOL,
        delivery_content="",
    )
    variant = VariantFactory(product=product, name="500 Tk", price=50000)
    codes_import(variant=variant, rows=[CodeRow(1, CODE)])
    return product


def test_buyer_pays_a_bdt_voucher_with_bkash_and_gets_it_once(
    bkash_site: Any,
    fake_bkash: FakeBkash,  # noqa: F811
    bdt_voucher: Any,
) -> None:
    site, fake, slug = bkash_site, fake_bkash, bdt_voucher.slug
    assert settings.CELERY_TASK_ALWAYS_EAGER is False

    # 1. Checkout with bKash: the payment is created at bKash; the buyer is sent to its page.
    response = site.http.post(
        site.api(f"/api/v1/public/checkout/{slug}/pay"),
        json={"buyer_email": "buyer@example.com", "quantity": 1, "payment_method": "bkash"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    order = response.json()["data"]
    order_id, payment = order["id"], order["payment"]
    assert (order["status"], order["total_amount"], order["currency"]) == ("pending", 50000, "BDT")
    at_bkash = fake.only_payment()
    assert (at_bkash["amount"], at_bkash["currency"], at_bkash["merchantInvoiceNumber"]) == (
        "500.00",
        "BDT",
        payment["id"],
    )
    assert at_bkash["callbackURL"] == f"{site.url}/api/v1/payments/callbacks/bkash"
    assert payment["redirect_url"] == f"{fake.url}/pay?paymentId={at_bkash['paymentID']}"

    # 2. The buyer opens bKash's page and confirms; bKash sends the browser back to our callback.
    page = site.http.get(payment["redirect_url"], timeout=30)
    assert page.status_code == 200 and "bKash" in page.text
    confirmed = site.http.post(f"{fake.url}/pay/{at_bkash['paymentID']}/approve", allow_redirects=False, timeout=30)
    assert confirmed.status_code == 302
    back = confirmed.headers["Location"]
    assert back.startswith(f"{site.url}/api/v1/payments/callbacks/bkash?")
    assert parse_qs(urlsplit(back).query) == {"paymentID": [at_bkash["paymentID"]], "status": ["success"]}

    # 3. The callback: the server executes and queries at bKash, then sends the buyer to the order page.
    returned = site.http.get(back, allow_redirects=False, timeout=30)
    assert returned.status_code == 302, returned.text
    assert returned.headers["Location"] == f"/c/{slug}/orders/{order_id}"
    assert len(fake.requests_to("/tokenized/checkout/execute")) == 1
    assert fake.only_payment()["transactionStatus"] == "Completed"
    success_page = site.http.get(site.api(returned.headers["Location"]), timeout=30)
    assert success_page.status_code == 200

    # 4. The real worker delivers the voucher; one email.
    delivered = poll_order(site, slug, order_id, until="delivered")
    assert delivered["voucher_codes"] == [CODE]
    assert [(p["gateway"], p["status"]) for p in delivered["payments"]] == [("bkash", "succeeded")]
    assert Payment.objects.get(pk=payment["id"]).transaction_id == at_bkash["paymentID"]
    assert OrderEvent.objects.filter(order_id=order_id, type="email_sent").count() == 1
    assert status_moves(order_id) == [("pending", "paid"), ("paid", "delivered")]

    # 5. The same return again (a reload, a replay): nothing more happens.
    again = site.http.get(back, allow_redirects=False, timeout=30)
    assert again.status_code == 302
    assert Order.objects.get(pk=order_id).status == "delivered"
    assert OrderEvent.objects.filter(order_id=order_id, type="email_sent").count() == 1
    assert status_moves(order_id) == [("pending", "paid"), ("paid", "delivered")]
