"""Issue 13 (SSLCommerz): what an attacker, a careless operator or SSLCommerz's own retries can do.

- Production refuses to start with SSLCommerz enabled but unconfigured, against its sandbox (unless
  said on purpose), or pointed at another API base (which would receive the store password).
- The store password never reaches a log line, an error answer, a stored event or the buyer.
- Unsigned browser returns are spammed or forged: nothing is believed, SSLCommerz is asked at most
  every few seconds per order.
- An IPN and the browser return (or two IPN deliveries) land at once: the order is paid once,
  delivered once, one email (PostgreSQL, real concurrent transactions).
- A signed IPN cannot act on another gateway's payment or on another SSLCommerz payment.
"""

import socket
import sys
from collections import Counter

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from catalog.tests.factories import ProductFactory, VariantFactory
from ledger.models import BalanceTransaction
from marketplace.accounts.tests.factories import SellerFactory
from marketplace.core.tests.test_settings_production import SETUP, production_env, run
from orders.models import Order, OrderEvent
from orders.services import CheckoutLine, order_create
from orders.tests.helpers import buyer_mails
from payments.models import Payment, WebhookEvent
from payments.services import payment_initiate
from payments.tests.fake_sslcommerz import FakeSSLCommerz, fake_sslcommerz  # noqa: F401
from tests.campaign.concurrency import run_concurrently
from tests.campaign.secrets_registry import register

WEBHOOK_URL = "/api/v1/payments/webhooks/sslcommerz"
LIVE_STORE = {
    "ENABLED_PAYMENT_GATEWAYS": "sslcommerz",
    "DEFAULT_PAYMENT_GATEWAY": "sslcommerz",
    "SSLCOMMERZ_STORE_ID": "shop0live1store",
    "SSLCOMMERZ_STORE_PASSWORD": "live-store-password-Xy7",
}


# --- production settings, in a fresh interpreter -------------------------------------------------


def test_production_starts_with_a_live_sslcommerz_store() -> None:
    probe = (
        SETUP + "; from django.conf import settings; from payments.gateways import get_gateway;"
        " print(settings.ENABLED_PAYMENT_GATEWAYS, get_gateway('sslcommerz')._base())"
    )
    result = run([sys.executable, "-c", probe], production_env(**LIVE_STORE))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['sslcommerz'] https://securepay.sslcommerz.com"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param(
            {"SSLCOMMERZ_STORE_PASSWORD": None},
            "SSLCommerz is enabled: SSLCOMMERZ_STORE_ID and SSLCOMMERZ_STORE_PASSWORD must be set.",
            id="no-password",
        ),
        pytest.param(
            {"SSLCOMMERZ_STORE_ID": None},
            "SSLCommerz is enabled: SSLCOMMERZ_STORE_ID and SSLCOMMERZ_STORE_PASSWORD must be set.",
            id="no-store",
        ),
        pytest.param(
            {"SSLCOMMERZ_SANDBOX": "true"},
            "SSLCommerz is enabled against its sandbox (SSLCOMMERZ_SANDBOX=true)",
            id="sandbox-by-accident",
        ),
        pytest.param(
            {"SSLCOMMERZ_API_BASE": "https://collector.example"},
            "SSLCOMMERZ_API_BASE must not be set in production.",
            id="api-base-elsewhere",
        ),
    ],
)
def test_production_refuses_to_start(overrides: dict[str, str | None], message: str) -> None:
    result = run([sys.executable, "-c", SETUP], production_env(**{**LIVE_STORE, **overrides}))
    assert result.returncode != 0
    assert message in result.stderr
    assert LIVE_STORE["SSLCOMMERZ_STORE_PASSWORD"] not in result.stderr


def test_production_takes_the_sslcommerz_sandbox_only_on_purpose() -> None:
    probe = SETUP + "; from payments.gateways import get_gateway; print(get_gateway('sslcommerz')._base())"
    env = production_env(**LIVE_STORE, SSLCOMMERZ_SANDBOX="true", SSLCOMMERZ_SANDBOX_IN_PRODUCTION="true")
    result = run([sys.executable, "-c", probe], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "https://sandbox.sslcommerz.com"


def test_check_deploy_warns_while_the_sslcommerz_sandbox_is_on_on_purpose() -> None:
    env = production_env(**LIVE_STORE, SSLCOMMERZ_SANDBOX="true", SSLCOMMERZ_SANDBOX_IN_PRODUCTION="true")
    on = run([sys.executable, "manage.py", "check", "--deploy"], env)
    assert "payments.W002" in on.stdout + on.stderr
    live = run([sys.executable, "manage.py", "check", "--deploy"], production_env(**LIVE_STORE))
    assert "payments.W002" not in live.stdout + live.stderr


# --- in the test process, against the fake -------------------------------------------------------


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
    register(fake_sslcommerz.store_password, kind="SSLCommerz store password")
    return fake_sslcommerz


def bdt_order() -> Order:
    product = ProductFactory(seller=SellerFactory(), currency="BDT", delivery_content="TOPUP-SECRET-42")
    variant = VariantFactory(product=product, price=99900)
    return order_create(product=product, buyer_email="buyer@example.com", lines=[CheckoutLine(variant.id, 1)]).order


def opened(fake: FakeSSLCommerz) -> tuple[Order, Payment]:
    order = bdt_order()
    return order, payment_initiate(order=order, gateway_name="sslcommerz", return_url="https://shop.test/r")


@pytest.mark.django_db
def test_the_store_password_is_in_no_answer_no_event_and_no_log(sslcommerz_on, caplog, settings):
    order, payment = opened(sslcommerz_on)
    record = sslcommerz_on.pay(payment.id)
    client = APIClient()
    with caplog.at_level("INFO"):
        ipn = client.generic(
            "POST", WEBHOOK_URL, sslcommerz_on.ipn_body(record), content_type="application/x-www-form-urlencoded"
        )
        settings.SSLCOMMERZ_API_BASE = "http://127.0.0.1:9"  # nothing listens: a failed call is logged
        failed = client.post(f"/api/v1/payments/initiate/{bdt_order().id}", {"payment_method": "sslcommerz"})
    password = sslcommerz_on.store_password
    assert ipn.status_code == 200 and failed.status_code == 503
    assert password not in ipn.content.decode() + failed.content.decode()
    assert all(password not in str(e.payload) for e in WebhookEvent.objects.all())
    assert all(password not in str(e.data) + e.message for e in OrderEvent.objects.all())
    assert all(password not in (p.failure_reason + p.redirect_url) for p in Payment.objects.all())
    assert password not in caplog.text
    assert "127.0.0.1:9" in caplog.text  # the failure was logged, by host only


@pytest.mark.django_db
def test_browser_returns_are_believed_never_and_asked_about_at_most_every_few_seconds(sslcommerz_on):
    order, payment = opened(sslcommerz_on)
    url = reverse("checkout:sslcommerz-return", args=[payment.id, "success"])
    browser = Client()
    forged = {"status": "VALID", "tran_id": payment.id, "val_id": "x", "amount": "999.00", "verify_sign": "0" * 32}
    before = len(sslcommerz_on.requests)
    answers = Counter(browser.post(url, forged).status_code for _ in range(5))
    assert answers == Counter({303: 5})
    asked = sslcommerz_on.requests[before:]
    assert [r.path for r in asked] == ["/validator/api/merchantTransIDvalidationAPI.php"]  # once, by tran_id
    order.refresh_from_db()
    assert order.status == "pending"
    assert WebhookEvent.objects.count() == 0


@pytest.mark.django_db
def test_a_signed_ipn_cannot_reach_another_gateways_payment(sslcommerz_on):
    order = bdt_order()
    sandbox_payment = payment_initiate(order=order, gateway_name="sandbox", return_url="https://shop.test/r")
    other_order, payment = opened(sslcommerz_on)
    record = sslcommerz_on.pay(payment.id)
    # SSLCommerz (or whoever holds the store password) names the sandbox payment: it is not an SSLCommerz one.
    body = sslcommerz_on.ipn_body({**record, "tran_id": sandbox_payment.id})
    response = APIClient().generic("POST", WEBHOOK_URL, body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 503  # stored, matched to no payment of SSLCommerz's: kept for a retry
    assert WebhookEvent.objects.get().payment_id is None
    order.refresh_from_db()
    sandbox_payment.refresh_from_db()
    assert (order.status, sandbox_payment.status) == ("pending", "pending")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("second", ["ipn-again", "browser-return"])
def test_an_ipn_and_a_second_signal_at_once_pay_and_deliver_once(sslcommerz_on, second):
    if connection.vendor == "sqlite":
        pytest.skip("Needs row locks between real concurrent transactions (PostgreSQL); the sequential tests run here.")
    order, payment = opened(sslcommerz_on)
    record = sslcommerz_on.pay(payment.id)
    body = sslcommerz_on.ipn_body(record)
    duplicate = sslcommerz_on.ipn_body({**record, "tran_date": "2026-12-03 18:00:01"})  # a second delivery

    def call(index: int) -> int:
        if index == 0:
            return (
                APIClient()
                .generic("POST", WEBHOOK_URL, body, content_type="application/x-www-form-urlencoded")
                .status_code
            )
        if second == "ipn-again":
            return (
                APIClient()
                .generic("POST", WEBHOOK_URL, duplicate, content_type="application/x-www-form-urlencoded")
                .status_code
            )
        return Client().post(reverse("checkout:sslcommerz-return", args=[payment.id, "success"]), {}).status_code

    results = run_concurrently(2, call)
    assert all(isinstance(r, int) for r in results), results
    order.refresh_from_db()
    payment.refresh_from_db()
    assert (order.status, payment.status) == ("delivered", "succeeded")
    assert OrderEvent.objects.filter(order=order, type="status_changed", to_status="paid").count() == 1
    assert len(buyer_mails()) == 1
    assert BalanceTransaction.objects.filter(order_id=order.id, type="sale").count() == 1
