"""Opt-in: the bKash client against bKash's real public sandbox, optionally recorded.

CI never runs this (it needs the network and sandbox credentials); the suite's bKash tests use the
local fake (``fake_bkash``). Run it by hand to check the fake's assumptions against bKash itself:

    BKASH_SANDBOX_RUN=1 BKASH_APP_KEY=… BKASH_APP_SECRET=… BKASH_USERNAME=… BKASH_PASSWORD=… \\
        .venv/bin/python -m pytest payments/tests/test_bkash_sandbox.py -m gateway_sandbox -p no:cacheprovider

It grants a token, creates a BDT 1.00 payment, queries it (``Initiated``), and checks that an execute
before the buyer approved is refused and changes nothing: the assumption that lets the sweeper and
the callback execute any open payment safely. The ``bkashURL`` is printed, so that a person can
approve it with bKash's published sandbox wallet and run ``test_execute_after_approval`` with
``BKASH_SANDBOX_PAYMENT_ID`` set.

Recording: with vcrpy installed (``pip install vcrpy``; it is not a dependency of the project) and
``BKASH_SANDBOX_RECORD=1``, the exchanges are written to ``payments/tests/cassettes/`` (git-ignored:
they are for reading, never committed) with the credentials, tokens and the app secret replaced by
``<redacted>``. Without vcrpy the switch is refused with a message; nothing else changes.
"""

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [
    pytest.mark.gateway_sandbox,
    pytest.mark.skipif(os.environ.get("BKASH_SANDBOX_RUN") != "1", reason="opt-in: BKASH_SANDBOX_RUN=1"),
    pytest.mark.django_db,
]
CASSETTES = Path(__file__).parent / "cassettes"
_SECRET_FIELDS = ("app_secret", "app_key", "id_token", "refresh_token")
_SECRET_HEADERS = ("authorization", "password", "username", "x-app-key")


def _scrub_body(raw: Any) -> Any:
    if not raw:
        return raw
    try:
        data = json.loads(raw)
    except (TypeError, ValueError):
        return raw
    if isinstance(data, dict):
        data = {k: ("<redacted>" if k in _SECRET_FIELDS else v) for k, v in data.items()}
    return json.dumps(data)


@pytest.fixture
def sandbox(settings: Any) -> Iterator[None]:
    names = ("BKASH_APP_KEY", "BKASH_APP_SECRET", "BKASH_USERNAME", "BKASH_PASSWORD")
    missing = [name for name in names if not os.environ.get(name)]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    for name in names:
        setattr(settings, name, os.environ[name])
    settings.BKASH_BASE_URL = os.environ.get("BKASH_BASE_URL", settings.BKASH_SANDBOX_BASE_URL)
    settings.ENABLED_PAYMENT_GATEWAYS = ["bkash"]
    if os.environ.get("BKASH_SANDBOX_RECORD") != "1":
        yield
        return
    try:
        import vcr  # type: ignore[import-not-found]
    except ImportError:
        pytest.fail("BKASH_SANDBOX_RECORD=1 needs vcrpy: pip install vcrpy (not a project dependency).")

    def scrub_request(request: Any) -> Any:
        request.body = _scrub_body(request.body)
        return request

    def scrub_response(response: Any) -> Any:
        response["body"]["string"] = _scrub_body(response["body"]["string"]).encode()
        return response

    recorder = vcr.VCR(
        cassette_library_dir=str(CASSETTES),
        record_mode="all",
        filter_headers=[(name, "<redacted>") for name in _SECRET_HEADERS],
        before_record_request=scrub_request,
        before_record_response=scrub_response,
    )
    with recorder.use_cassette("bkash_sandbox.yaml"):
        yield


def test_create_query_and_an_unapproved_execute_changes_nothing(sandbox: None) -> None:
    from catalog.tests.factories import ProductFactory, VariantFactory
    from orders.tests.helpers import make_order
    from payments.gateways.bkash import BkashGateway
    from payments.models import Payment

    product = ProductFactory(currency="BDT")
    VariantFactory(product=product, price=100)
    order = make_order(product)
    payment = Payment.objects.create(order=order, gateway="bkash", amount=100, currency="BDT")
    gateway = BkashGateway()
    checkout = gateway.create_checkout(payment=payment, order=order, return_url="https://shop.test/return")
    payment.transaction_id = checkout.transaction_id
    print(f"\nbKash page (approve it with the sandbox wallet): {checkout.redirect_url}")
    assert gateway.retrieve(payment=payment).status == "approved"  # Initiated: only an execute can tell
    captured = gateway.capture(payment=payment)
    assert captured.status == "pending"  # refused before approval, and still open
    assert captured.reference == payment.id and captured.amount == 100 and captured.currency == "BDT"


def test_execute_after_approval(sandbox: None) -> None:
    payment_ref = os.environ.get("BKASH_SANDBOX_PAYMENT_ID")
    if not payment_ref:
        pytest.skip("set BKASH_SANDBOX_PAYMENT_ID to a payment approved on bKash's sandbox page")
    from payments.gateways.bkash import BkashGateway

    class Approved:
        id = os.environ.get("BKASH_SANDBOX_INVOICE", "")
        transaction_id = payment_ref
        amount = 100
        currency = "BDT"

    status = BkashGateway().capture(payment=Approved())
    assert status.status == "succeeded", status
