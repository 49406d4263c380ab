"""A seller in real Chromium uses the customers page and a product's licence-key page.

Customers: buyers by email with their orders and totals per currency, a search, the CSV export
downloaded; another seller's buyer never appears. Licence keys: a key sold through the sandbox and
delivered by the real worker, activated by the seller's app over HTTP, listed by its hint (never in
full) with its activation, then disabled (after the browser's confirmation), enabled and reset.
Each page has no axe-core violation at all (every impact) and fits a 390 px phone without sideways
scrolling. Screenshots are kept under ``var/e2e/``.
"""

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings

from catalog.models import DeliveryType
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import DEFAULT_PASSWORD, SellerFactory
from orders.models import License, LicenseActivation
from orders.tests.test_analytics import S, order
from tests.e2e.accessibility import axe_violations, format_violations
from tests.e2e.test_seller_orders_browser import paid_order, seller_page  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
PHONE = {"width": 390, "height": 844}


def sign_in(page: Any, url: str, email: str) -> None:
    page.goto(f"{url}/accounts/login/")
    page.fill("#id_email", email)
    page.fill("#id_password", DEFAULT_PASSWORD)
    page.click('button[type=submit]:has-text("Sign in")')
    page.wait_for_url(f"{url}/dashboard/")


def assert_no_violations(page: Any, where: str) -> None:
    violations = axe_violations(page)
    assert violations == [], format_violations(violations, where=where)


def assert_fits_a_phone(page: Any, shots: Path, name: str) -> None:
    page.set_viewport_size(PHONE)
    page.reload()
    width = page.evaluate("() => document.documentElement.scrollWidth")
    page.screenshot(path=str(shots / f"{name}-phone.png"), full_page=True)
    assert width <= PHONE["width"], f"{name} is {width}px wide on a {PHONE['width']}px phone"
    page.set_viewport_size({"width": 1200, "height": 900})


def test_customers_page_search_and_export(e2e_site: Any, text_product: Any, request: pytest.FixtureRequest) -> None:
    from playwright.sync_api import expect

    page = request.getfixturevalue("seller_page")  # Chromium at 1200x900, from the orders browser test
    shots = Path(settings.VAR_DIR) / "e2e"
    shots.mkdir(parents=True, exist_ok=True)
    seller = text_product.seller
    paid_order(text_product, "ann@example.com")  # $19.99, through the sandbox and the worker
    euro = ProductFactory(seller=seller, title="Cours", currency="EUR")
    VariantFactory(product=euro, price=5000)
    now = datetime.now(UTC)
    order(euro, total=5000, fee=250, email="ann@example.com", created=now - timedelta(days=3))
    order(text_product, total=3998, fee=200, email="cy@example.com", created=now - timedelta(days=9))
    order(text_product, total=1999, status=S.PENDING, email="never.paid@example.com", created=now)
    other = SellerFactory(name="Other Shop")
    theirs = ProductFactory(seller=other, title="Theirs", currency="USD")
    VariantFactory(product=theirs, price=900)
    order(theirs, total=900, email="bob@example.com", created=now)

    sign_in(page, e2e_site.url, seller.email)
    page.get_by_test_id("nav-customers").click()
    page.wait_for_url(f"{e2e_site.url}/dashboard/customers/")
    expect(page.locator("h1")).to_have_text("Customers")
    rows = page.locator("#customers tbody tr")
    expect(rows).to_have_count(2)
    ann = page.locator('tr[data-customer="ann@example.com"]')
    expect(ann.get_by_test_id("orders")).to_have_text("2")
    expect(ann.get_by_test_id("spent")).to_contain_text("$19.99")
    expect(ann.get_by_test_id("spent")).to_contain_text("€50.00")
    expect(page.locator('tr[data-customer="cy@example.com"]').get_by_test_id("spent")).to_have_text("$39.98")
    expect(page.locator("body")).not_to_contain_text("bob@example.com")
    expect(page.locator("body")).not_to_contain_text("never.paid@example.com")
    assert_no_violations(page, "customers")
    page.screenshot(path=str(shots / "seller-customers-1-list.png"), full_page=True)

    page.fill("#id_q", "cy@")
    page.click("#customer-search button[type=submit]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("cy@example.com")

    with page.expect_download() as download_info:
        page.click("#customers-export")
    download = download_info.value
    assert download.suggested_filename.startswith("customers-")
    exported = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert exported[0][:5] == ["email", "currency", "orders", "total_spent", "refunded"]
    assert [row[:5] for row in exported[1:]] == [["cy@example.com", "USD", "1", "39.98", "0.00"]]  # the search applies

    page.click('a:has-text("Clear")')
    expect(rows).to_have_count(2)
    assert_fits_a_phone(page, shots, "seller-customers-2")

    # The buyer's email leads to their orders.
    page.locator('tr[data-customer="ann@example.com"] a').click()
    expect(page.locator("body")).to_contain_text("ann@example.com")


def test_licence_keys_page(e2e_site: Any, text_product: Any, request: pytest.FixtureRequest) -> None:
    from playwright.sync_api import expect

    page = request.getfixturevalue("seller_page")  # Chromium at 1200x900, from the orders browser test
    shots = Path(settings.VAR_DIR) / "e2e"
    shots.mkdir(parents=True, exist_ok=True)
    seller = text_product.seller
    app = ProductFactory(
        seller=seller,
        slug="e2e-pro-app",
        title="Pro App",
        currency="USD",
        delivery_type=DeliveryType.LICENSE_KEY,
        delivery_content="",
        delivery_options={"license": {"activation_limit": 2, "prefix": "PRO"}},
    )
    VariantFactory(product=app, price=4900)
    sold = paid_order(app, "ann@example.com")  # the worker issues the key
    lic = License.objects.get(order_item__order=sold)
    activated = requests.post(
        f"{e2e_site.url}/api/v1/licenses/activate",
        json={"license_key": lic.key, "instance_name": "Ann's laptop"},
        timeout=10,
    )
    assert activated.status_code == 201, activated.text

    sign_in(page, e2e_site.url, seller.email)
    page.get_by_test_id("nav-products").click()
    page.get_by_test_id("licenses-link").first.click()
    page.wait_for_url(f"{e2e_site.url}/dashboard/products/{app.id}/licenses/")
    expect(page.locator("h1")).to_have_text("License keys · Pro App")
    row = page.locator(f'tr[data-license="{lic.id}"]')
    expect(row).to_contain_text(f"••••{lic.key_hint}")
    expect(row).to_contain_text("ann@example.com")
    expect(row.get_by_test_id(f"activations-{lic.id}")).to_contain_text("1 of 2")
    expect(row).to_contain_text("Ann's laptop")
    assert lic.key not in page.content()  # the whole key is never on the page
    assert_no_violations(page, "licence keys")
    page.screenshot(path=str(shots / "seller-licenses-1-list.png"), full_page=True)

    dialogs: list[str] = []

    def accept(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.get_by_test_id(f"disable-{lic.id}").click()
    expect(page.get_by_test_id(f"status-{lic.id}")).to_have_text("Disabled")
    expect(page.get_by_test_id("message-success")).to_contain_text(f"ending in {lic.key_hint} is disabled")
    assert dialogs and lic.key_hint in dialogs[0]
    verify = requests.post(
        f"{e2e_site.url}/api/v1/licenses/verify", json={"product_id": app.id, "license_key": lic.key}, timeout=10
    )
    assert verify.status_code == 404
    page.get_by_test_id(f"enable-{lic.id}").click()
    expect(page.get_by_test_id(f"status-{lic.id}")).to_have_text("Active")
    page.get_by_test_id(f"reset-{lic.id}").click()
    expect(row.get_by_test_id(f"activations-{lic.id}")).to_contain_text("0 of 2")
    assert not LicenseActivation.objects.filter(license=lic, deactivated_at__isnull=True).exists()
    assert_no_violations(page, "licence keys after the changes")
    assert_fits_a_phone(page, shots, "seller-licenses-2")

    # The order's timeline says who did what.
    page.goto(f"{e2e_site.url}/dashboard/orders/{sold.order_number}/")
    expect(page.locator("body")).to_contain_text(f"License key ••••{lic.key_hint} disabled by the seller.")


def test_an_over_stock_quantity_says_how_many_are_left_before_pay(
    e2e_site: Any, text_product: Any, request: pytest.FixtureRequest
) -> None:
    from playwright.sync_api import expect

    page = request.getfixturevalue("seller_page")
    variant = text_product.variants.get()
    variant.stock = 3
    variant.save(update_fields=["stock"])
    page.goto(f"{e2e_site.url}/c/{text_product.slug}")
    page.fill("#id_quantity", "5")
    expect(page.get_by_test_id("quantity-error")).to_have_text(f"Only 3 left of {variant.name}.")
    expect(page.locator("#id_quantity")).to_have_attribute("aria-invalid", "true")
    page.fill("#id_quantity", "2")
    expect(page.get_by_test_id("quantity-error")).to_be_hidden()
    assert text_product.orders.count() == 0  # nothing was created while the buyer typed
