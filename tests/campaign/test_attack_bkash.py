"""Attacks on the bKash flow, whose only signal from the buyer is an unsigned browser return.

- Racing returns: eight success callbacks at once for one approved payment, and a callback racing
  the sweeper, pay the order once: one move to paid, one sale in the ledger, one email (PostgreSQL,
  real concurrent transactions).
- Forged returns: guessed payment ids are 404 and never reach bKash; a return names only a payment
  to look up, so it can never pay another order, and a query answer naming another invoice pays none.
- A callback cannot be used to read an order: an unknown id answers a bare 404 with no order id.
- bKash's credentials and tokens never reach a log record or an answer.
"""

import secrets
import socket
from collections import Counter
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from catalog.inventory import CodeRow, codes_import
from catalog.models import DeliveryType
from catalog.tests.factories import ProductFactory, VariantFactory
from ledger.models import BalanceTransaction
from marketplace.accounts.tests.factories import SellerFactory
from orders.models import Order, OrderEvent
from orders.services import orders_sweep
from orders.tests.helpers import buyer_mails
from payments.gateways.bkash import BkashGateway
from payments.models import Payment
from payments.tests.fake_bkash import FakeBkash, fake_bkash  # noqa: F401 - a fixture
from tests.campaign import secrets_registry
from tests.campaign.concurrency import run_concurrently

CALLBACK = "/api/v1/payments/callbacks/bkash"


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch):
    resolve = socket.getaddrinfo

    def local_only(host, *args, **kwargs):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise AssertionError(f"A test tried to reach {host}.")
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", local_only)


@pytest.fixture
def bkash(settings, fake_bkash: FakeBkash) -> FakeBkash:  # noqa: F811
    settings.ENABLED_PAYMENT_GATEWAYS = ["sandbox", "bkash"]
    settings.BKASH_BASE_URL = fake_bkash.url
    settings.BKASH_APP_KEY = fake_bkash.app_key
    settings.BKASH_APP_SECRET = fake_bkash.app_secret
    settings.BKASH_USERNAME = fake_bkash.username
    settings.BKASH_PASSWORD = fake_bkash.password
    settings.BKASH_TIMEOUT_SECONDS = 5.0
    secrets_registry.register(fake_bkash.app_secret, kind="bKash app secret")
    secrets_registry.register(fake_bkash.password, kind="bKash password")
    return fake_bkash


def bdt_product(codes: int = 5):
    product = ProductFactory(
        seller=SellerFactory(),
        currency="BDT",
        delivery_type=DeliveryType.CODE_POOL,
        delivery_content="",
    )
    variant = VariantFactory(product=product, name="1000 Tk", price=100000)
    codes_import(variant=variant, rows=[CodeRow(n, f"ATTACK-BD-{n:04d}-{secrets.token_hex(4)}") for n in range(codes)])
    return product


def open_bkash(product) -> tuple[Order, Payment]:
    response = APIClient().post(
        f"/api/v1/public/checkout/{product.slug}/pay",
        {"buyer_email": "buyer@example.com", "payment_method": "bkash"},
        format="json",
    )
    assert response.status_code == 201, response.content
    data = response.json()["data"]
    return Order.objects.get(pk=data["id"]), Payment.objects.get(pk=data["payment"]["id"])


def returned(payment_ref: str, status: str = "success"):
    return APIClient().get(CALLBACK, {"paymentID": payment_ref, "status": status})


def paid_moves(order: Order) -> int:
    return OrderEvent.objects.filter(order=order, type="status_changed", to_status="paid").count()


# --- Racing returns ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_eight_success_callbacks_at_once_pay_and_deliver_once(bkash):
    if connection.vendor == "sqlite":
        pytest.skip("Needs row locks between real concurrent transactions (PostgreSQL).")
    order, payment = open_bkash(bdt_product())
    bkash.approve(payment.transaction_id)

    results = run_concurrently(8, lambda _: returned(payment.transaction_id).status_code)
    assert all(isinstance(r, int) for r in results), results
    assert Counter(results) == Counter({302: 8})
    order.refresh_from_db()
    payment.refresh_from_db()
    assert (order.status, payment.status) == ("delivered", "succeeded")
    assert paid_moves(order) == 1
    kinds = list(BalanceTransaction.objects.filter(order_id=order.id).values_list("type", flat=True))
    assert kinds and len(kinds) == len(set(kinds)), kinds  # the sale written once, nothing twice
    assert len([m for m in buyer_mails() if m.to == ["buyer@example.com"]]) == 1
    assert bkash.only_payment()["transactionStatus"] == "Completed"


@pytest.mark.django_db(transaction=True)
def test_a_callback_racing_the_sweeper_pays_once(bkash):
    if connection.vendor == "sqlite":
        pytest.skip("Needs row locks between real concurrent transactions (PostgreSQL).")
    order, payment = open_bkash(bdt_product())
    bkash.approve(payment.transaction_id)
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(minutes=10))

    def act(index: int):
        return returned(payment.transaction_id).status_code if index % 2 else orders_sweep().payments_paid

    results = run_concurrently(4, act)
    assert not [r for r in results if isinstance(r, Exception)], results
    order.refresh_from_db()
    assert order.status == "delivered"
    assert paid_moves(order) == 1
    assert len([m for m in buyer_mails() if m.to == ["buyer@example.com"]]) == 1


# --- Forged returns ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_guessed_payment_ids_are_404_and_never_reach_bkash(bkash):
    order, payment = open_bkash(bdt_product())
    calls = len(bkash.requests)
    real = payment.transaction_id
    guesses = [
        real[:-1] + ("0" if real[-1] != "0" else "1"),  # one digit off
        real.lower(),
        real + " ",
        f"{real}%00",
        "' OR '1'='1",
        payment.id,  # our own id is not bKash's
        order.id,  # nor is the order's
        "TR0011" + "x" * 180,
    ]
    for guess in guesses:
        response = returned(guess)
        assert response.status_code == 404, (guess, response.content)
        body = response.content.decode()
        assert order.id not in body and payment.id not in body
        assert "Location" not in response
    assert len(bkash.requests) == calls
    order.refresh_from_db()
    payment.refresh_from_db()
    assert (order.status, payment.status) == ("pending", "pending")


@pytest.mark.django_db
def test_a_return_for_a_cheap_payment_never_pays_a_dear_order(bkash):
    """The attacker pays their own cheap order at bKash, then makes bKash's answer (here: the fake)
    name the victim's invoice: the return finds only the attacker's payment, whose answer matches
    neither; nothing is paid."""
    cheap = ProductFactory(seller=SellerFactory(), currency="BDT", delivery_content="cheap")
    VariantFactory(product=cheap, price=100)
    attacker_order, attacker_payment = open_bkash(cheap)
    victim_order, victim_payment = open_bkash(bdt_product())
    bkash.approve(attacker_payment.transaction_id)
    bkash.tamper(attacker_payment.transaction_id, merchantInvoiceNumber=victim_payment.id, amount="1000.00")
    assert returned(attacker_payment.transaction_id).status_code == 302
    for order in (attacker_order, victim_order):
        order.refresh_from_db()
        assert order.paid_at is None and order.status == "pending"
    assert OrderEvent.objects.filter(order=attacker_order, type="payment_mismatch").count() == 1
    assert not OrderEvent.objects.filter(order=victim_order, type="payment_mismatch").exists()
    assert Payment.objects.filter(status="succeeded").count() == 0


@pytest.mark.django_db
def test_a_status_word_never_pays_and_a_paid_payment_ignores_every_later_word(
    bkash, django_capture_on_commit_callbacks
):
    order, payment = open_bkash(bdt_product())
    for word in ("success", "success", "failure"):
        assert returned(payment.transaction_id, word).status_code == 302
    order.refresh_from_db()
    assert order.status == "failed" and order.paid_at is None  # never approved at bKash
    bkash.approve(payment.transaction_id)
    with django_capture_on_commit_callbacks(execute=True):
        assert returned(payment.transaction_id, "cancel").status_code == 302  # executed anyway: bKash decides
    order.refresh_from_db()
    assert order.status == "delivered"
    with django_capture_on_commit_callbacks(execute=True):
        for word in ("cancel", "failure", "success"):
            assert returned(payment.transaction_id, word).status_code == 302
    order.refresh_from_db()
    assert order.status == "delivered" and paid_moves(order) == 1
    assert len([m for m in buyer_mails() if m.to == ["buyer@example.com"]]) == 1


# --- Secrets -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_credentials_and_tokens_never_reach_an_answer_or_a_log(bkash, caplog, django_capture_on_commit_callbacks):
    product = bdt_product()
    for name in ("payments", "marketplace.core.outbound_http", "marketplace.request", "django.request"):
        caplog.set_level("DEBUG", logger=name)  # everything the bKash path logs, at its most talkative
    order, payment = open_bkash(product)
    tokens = cache.get(BkashGateway()._cache_key())
    for token in (tokens["id_token"], tokens["refresh_token"]):
        secrets_registry.register(token, kind="bKash token")
    bkash.approve(payment.transaction_id)
    bkash.fail_next(503)
    unavailable = returned(payment.transaction_id)
    with django_capture_on_commit_callbacks(execute=True):
        paid = returned(payment.transaction_id)
    answers = unavailable.content.decode() + paid.content.decode() + paid.get("Location", "")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for secret in (bkash.app_secret, bkash.password, tokens["id_token"], tokens["refresh_token"]):
        assert secret not in answers
        assert secret not in logged
    assert unavailable.status_code == 503 and paid.status_code == 302
