"""A seller in real Chromium: signs in, filters the orders list, opens a paid order, refunds part
of it through the confirmation dialog and sees the refund on the order's timeline.

The order is paid the way a buyer pays (the sandbox gateway's signed webhook over HTTP to the live
server, fulfillment by the real worker); the refund goes through the same service and gateway as the
API. Screenshots are kept under ``var/e2e/``.
"""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from marketplace.accounts.tests.factories import DEFAULT_PASSWORD
from orders.models import Order, OrderEvent
from orders.tests.helpers import make_order
from payments.models import Refund
from tests.e2e.accessibility import assert_accessible
from tests.e2e.browser import open_page

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DELIVERED_TIMEOUT = 60.0


@pytest.fixture
def seller_page(chromium_path: str, monkeypatch: pytest.MonkeyPatch, e2e_site: Any, text_product: Any) -> Iterator[Any]:
    """A fresh 1200×900 Chromium page (skipped without Chromium; see ``tests.e2e.browser.open_page``)."""
    with open_page(chromium_path, monkeypatch=monkeypatch, viewport={"width": 1200, "height": 900}) as page:
        yield page


def paid_order(product: Any, email: str) -> Order:
    """Pays through the sandbox gateway as ``orders.tests.helpers.pay`` does; here the signed webhook
    goes over HTTP to the live server and the worker delivers, so this waits for the delivery."""
    from payments.sandbox_server.server import sandbox_complete
    from payments.services import payment_initiate

    order = make_order(product, email=email)
    payment = payment_initiate(order=order, gateway_name="sandbox", return_url="https://shop.test/return")
    sandbox_complete(payment_id=payment.id, outcome="succeeded")  # autocommit: the webhook is sent now
    deadline = time.monotonic() + DELIVERED_TIMEOUT
    while True:
        order.refresh_from_db()
        if order.status == "delivered":
            return order
        assert time.monotonic() < deadline, f"order still {order.status} after {DELIVERED_TIMEOUT:.0f}s"
        time.sleep(0.2)


def test_seller_filters_opens_and_refunds_part_of_an_order(e2e_site: Any, text_product: Any, seller_page: Any) -> None:
    from playwright.sync_api import expect

    page = seller_page
    shots = Path(settings.VAR_DIR) / "e2e"
    shots.mkdir(parents=True, exist_ok=True)
    seller = text_product.seller
    order = paid_order(text_product, "paying.buyer@example.com")
    unpaid = make_order(text_product, email="window.shopper@example.com")

    # Sign in.
    page.goto(f"{e2e_site.url}/accounts/login/")
    page.fill("#id_email", seller.email)
    page.fill("#id_password", DEFAULT_PASSWORD)
    page.click('button[type=submit]:has-text("Sign in")')
    page.wait_for_url(f"{e2e_site.url}/dashboard/")
    expect(page.locator(f'tr[data-order="{unpaid.order_number}"]')).to_be_visible()

    # Filter: delivered orders with a total of at least $10.
    page.check("input[name=status][value=delivered]")
    page.fill("#id_min_amount", "10.00")
    page.screenshot(path=str(shots / "seller-orders-1-list.png"), full_page=True)
    page.click("#apply-filters")
    page.wait_for_url("**/dashboard/?**")
    rows = page.locator("#orders tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-order", order.order_number)
    export = page.get_by_test_id("export-csv")
    expect(export).to_have_attribute("href", "/api/v1/orders/export.csv?status=delivered&currency=USD&min_amount=1000")
    page.screenshot(path=str(shots / "seller-orders-2-filtered.png"), full_page=True)

    # The order page: delivery, payment, timeline.
    page.click(f'a[href="/dashboard/orders/{order.order_number}/"]')
    expect(page.locator("h1")).to_have_text(f"Order #{order.order_number}")
    expect(page.get_by_test_id("delivery")).to_have_text("The secret is OPEN-SESAME-E2E")
    expect(page.locator("#payments tbody tr")).to_have_count(1)
    page.screenshot(path=str(shots / "seller-orders-3-order.png"), full_page=True)

    # Refund $5.00: the confirmation dialog names the amount and is accepted.
    dialogs: list[str] = []

    def accept(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.fill("#refund-amount", "5.00")
    page.fill("#refund-reason", "Arrived late")
    page.click("#refund")
    expect(page.get_by_test_id("message-success")).to_have_text("Refund sent through the payment gateway.")
    assert dialogs == ["Refund $5.00 to the buyer? This cannot be undone."]

    expect(page.get_by_test_id("status")).to_have_text("Partially refunded")
    refund_row = page.locator("#refunds tbody tr")
    expect(refund_row).to_have_count(1)
    expect(refund_row.first).to_contain_text("$5.00")
    expect(refund_row.first).to_contain_text("Arrived late")
    timeline = page.locator('#timeline tr[data-event="status_changed"]').last
    expect(timeline).to_contain_text("delivered → partially_refunded")
    page.locator("#timeline").scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "seller-orders-4-refunded.png"), full_page=True)
    assert_accessible(page, where="an order after a partial refund")

    order.refresh_from_db()
    assert (order.status, order.refunded_amount) == ("partially_refunded", 500)
    refund = Refund.objects.get(order=order)
    assert (refund.amount, refund.reason) == (500, "Arrived late")
    event = OrderEvent.objects.filter(order=order, to_status="partially_refunded").get()
    assert (event.actor, event.actor_user_id) == ("seller", seller.id)
    unpaid.refresh_from_db()
    assert (unpaid.status, unpaid.refunded_amount) == ("pending", 0)


def test_seller_settings_pages_in_chromium(e2e_site: Any, text_product: Any, seller_page: Any) -> None:
    """API key shown once with a copy button, a refused webhook URL next to its field, a discount
    typed as money; screenshots of each page."""
    from playwright.sync_api import expect

    page = seller_page
    shots = Path(settings.VAR_DIR) / "e2e"
    page.goto(f"{e2e_site.url}/accounts/login/")
    page.fill("#id_email", text_product.seller.email)
    page.fill("#id_password", DEFAULT_PASSWORD)
    page.click('button[type=submit]:has-text("Sign in")')
    page.wait_for_url(f"{e2e_site.url}/dashboard/")

    page.click("[data-testid=nav-settings]")
    page.fill("#id_support_email", "help@ada.example")
    page.click("#save-profile")
    expect(page.get_by_test_id("message-success")).to_have_text("Settings saved.")

    page.goto(f"{e2e_site.url}/dashboard/settings/api-keys/")
    page.fill("#id_name", "Shop backend")
    page.click("#create-key")
    key = page.get_by_test_id("new-key-value").inner_text()
    assert key.startswith("sk_")
    page.click("#copy-key")
    expect(page.locator("#copy-key")).to_have_text("Copied")
    page.screenshot(path=str(shots / "seller-settings-1-api-key.png"), full_page=True)

    page.goto(f"{e2e_site.url}/dashboard/settings/webhooks/")
    page.fill("#id_url", "not a url")
    page.check("input[name=events][value='order.paid']")
    page.click("#add-endpoint")
    expect(page.get_by_test_id("error-url")).to_have_text("Must be a valid https:// URL.")
    page.screenshot(path=str(shots / "seller-settings-2-webhooks.png"), full_page=True)

    page.goto(f"{e2e_site.url}/dashboard/settings/discounts/new/")
    page.fill("#id_code", "save5")
    page.check("input[name=kind][value=fixed]")
    page.fill("#id_value", "5.00")
    page.select_option("#id_currency", "USD")
    page.click("#save-discount")
    expect(page.locator("tr[data-discount] code").first).to_have_text("SAVE5")
    expect(page.locator("tr[data-discount]")).to_contain_text("$5.00 off")
    page.screenshot(path=str(shots / "seller-settings-3-discounts.png"), full_page=True)
