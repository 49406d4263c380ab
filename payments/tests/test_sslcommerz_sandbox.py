"""Opt-in: real exchanges with SSLCommerz's public sandbox, recorded with vcrpy.

CI never runs this against the network. It runs only when asked:

    pip install vcrpy   # not in requirements-dev.txt: only whoever records needs it
    SSLCOMMERZ_RECORD=1 SSLCOMMERZ_SANDBOX_STORE_ID=... SSLCOMMERZ_SANDBOX_STORE_PASSWORD=... \\
        .venv/bin/python -m pytest payments/tests/test_sslcommerz_sandbox.py

and writes ``cassettes/sslcommerz_sandbox.yaml`` (the store id and password filtered out of every
request). Without ``SSLCOMMERZ_RECORD`` it replays that cassette if it exists and vcrpy is installed,
without the network; otherwise it is skipped. The fake (``fake_sslcommerz.py``) is what the suite
relies on; a recording is how anyone with sandbox credentials checks the fake against the real thing.
"""

import os
from pathlib import Path

import pytest

from catalog.tests.factories import ProductFactory, VariantFactory
from orders.tests.helpers import make_order
from payments.gateways import get_gateway
from payments.services import payment_initiate

CASSETTE = Path(__file__).parent / "cassettes" / "sslcommerz_sandbox.yaml"
RECORD = os.environ.get("SSLCOMMERZ_RECORD") == "1"

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        not RECORD and not CASSETTE.exists(), reason="opt-in: SSLCOMMERZ_RECORD=1 with sandbox credentials"
    ),
]


@pytest.fixture
def recorder(settings, seller):
    vcr = pytest.importorskip("vcr", reason="recording needs vcrpy (pip install vcrpy)")
    settings.ENABLED_PAYMENT_GATEWAYS = ["sandbox", "sslcommerz"]
    settings.SSLCOMMERZ_SANDBOX = True
    settings.SSLCOMMERZ_API_BASE = ""
    settings.SSLCOMMERZ_STORE_ID = os.environ.get("SSLCOMMERZ_SANDBOX_STORE_ID", "recorded-store")
    settings.SSLCOMMERZ_STORE_PASSWORD = os.environ.get("SSLCOMMERZ_SANDBOX_STORE_PASSWORD", "recorded-password")
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True  # the plain adapter, which vcrpy sees (the host is public anyway)
    if RECORD and not os.environ.get("SSLCOMMERZ_SANDBOX_STORE_PASSWORD"):
        pytest.skip("SSLCOMMERZ_SANDBOX_STORE_ID and SSLCOMMERZ_SANDBOX_STORE_PASSWORD are needed to record")
    hidden = [("store_id", "STORE_ID"), ("store_passwd", "STORE_PASSWORD")]
    return vcr.VCR(
        record_mode="all" if RECORD else "none",
        filter_query_parameters=hidden,
        filter_post_data_parameters=hidden,
        match_on=["method", "scheme", "host", "path"],
    )


def test_the_sandbox_opens_a_session_and_knows_the_transaction(recorder, seller):
    product = ProductFactory(seller=seller, currency="BDT")
    VariantFactory(product=product, price=10000)
    order = make_order(product)
    CASSETTE.parent.mkdir(exist_ok=True)
    with recorder.use_cassette(str(CASSETTE)):
        payment = payment_initiate(order=order, gateway_name="sslcommerz", return_url="https://shop.test/r")
        status = get_gateway("sslcommerz").retrieve(payment=payment)
    assert payment.redirect_url.startswith("https://sandbox.sslcommerz.com/")
    assert payment.transaction_id  # the session key
    assert status.status == "pending"  # opened, not paid
