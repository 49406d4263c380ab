"""A buyer in real Chromium: checkout page → sandbox payment page → success page with the delivery.

Drives Debian's Chromium (``CHROMIUM_PATH``, default ``/usr/bin/chromium``) through Playwright,
against a live server and a real Celery worker. Without Chromium the test is skipped with a reason,
unless ``REQUIRE_BROWSER=1`` (CI), which turns a missing browser into a failure.
"""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from orders.models import Order, OrderEvent
from tests.e2e.browser import open_page

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DELIVERY_TIMEOUT_MS = 60_000


@pytest.fixture
def browser_page(
    chromium_path: str, monkeypatch: pytest.MonkeyPatch, e2e_site: Any, text_product: Any
) -> Iterator[Any]:
    """A fresh Chromium page, started after the site and its data and closed before them
    (``chromium_path`` is checked first; see ``tests.e2e.browser.open_page``)."""
    with open_page(chromium_path, monkeypatch=monkeypatch, viewport={"width": 1100, "height": 800}) as page:
        yield page


def test_buyer_pays_in_chromium_and_sees_the_delivery(
    chromium_path: str, e2e_site: Any, text_product: Any, browser_page: Any
) -> None:
    from playwright.sync_api import expect

    page = browser_page
    shots = Path(settings.VAR_DIR) / "e2e"
    shots.mkdir(parents=True, exist_ok=True)
    page.goto(f"{e2e_site.url}/c/{text_product.slug}")
    expect(page.locator("h1")).to_have_text("Secret Text")
    expect(page.get_by_test_id("price")).to_have_text("$19.99")
    page.fill("#id_buyer_email", "browser.buyer@example.com")
    page.screenshot(path=str(shots / "browser-checkout-1-checkout.png"), full_page=True)
    page.click("#pay")

    # The sandbox gateway's hosted page.
    page.wait_for_url(re.compile(re.escape(f"{e2e_site.url}/sandbox/pay/") + r"pay_\w+$"))
    expect(page.locator("h1")).to_have_text("Pay $19.99")
    page.screenshot(path=str(shots / "browser-checkout-2-sandbox.png"), full_page=True)
    page.click("#sandbox-pay")

    # Back on the shop's success page, which polls until the worker has delivered.
    page.wait_for_url(re.compile(re.escape(f"{e2e_site.url}/c/{text_product.slug}/orders/") + r"ord_\w+$"))
    order_id = page.url.rsplit("/", 1)[1]
    delivery = page.get_by_test_id("delivery")
    expect(delivery).to_have_text("The secret is OPEN-SESAME-E2E", timeout=DELIVERY_TIMEOUT_MS)
    expect(page.locator("#status")).to_have_text("Delivered")
    expect(page.locator("#headline")).to_have_text("Your purchase is ready")

    page.screenshot(path=str(shots / "browser-checkout-3-success.png"), full_page=True)

    order = Order.objects.get(pk=order_id)
    assert order.status == "delivered"
    assert order.buyer_email == "browser.buyer@example.com"
    assert order.dispatched_email is True
    assert OrderEvent.objects.filter(order_id=order_id, type="email_sent").count() == 1
    [published] = e2e_site.worker.published_for("orders.tasks.fulfil_order")
    assert order_id in published["argsrepr"]
    e2e_site.worker.wait_for_log(
        rf"Task orders\.tasks\.fulfil_order\[{re.escape(published['id'])}\] succeeded", timeout=10
    )
