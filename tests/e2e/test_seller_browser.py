"""A seller in real Chromium: signs up, creates a code-pool product, uploads a CSV of codes and sees
the import report and the counts; then blocks a code and uploads a file for a second product.

Drives Debian's Chromium (``CHROMIUM_PATH``, default ``/usr/bin/chromium``) through Playwright
against a live server (no worker needed: nothing here is queued). Without Chromium the test is
skipped with a reason, unless ``REQUIRE_BROWSER=1`` (CI), which turns a missing browser into a failure.
Screenshots of every page go to ``var/e2e/seller-*.png``.
"""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from catalog.models import Code, CodeStatus, Product, Upload
from marketplace.accounts.models import User
from tests.e2e.accessibility import assert_accessible
from tests.e2e.browser import open_page

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CODES_CSV = (
    "code,pin,serial\n"
    "GIFT-AAAA-0001,1111,S-1\n"
    "GIFT-AAAA-0002,2222,S-2\n"
    "GIFT-AAAA-0003,,S-3\n"
    "GIFT-AAAA-0001,,\n"  # the same code again: a duplicate
    ",9999,\n"  # no code: rejected, line 6
    "GIFT-AAAA-0004,1,2,3\n"  # too many columns: rejected, line 7
)


@pytest.fixture
def private_storage(settings: Any, tmp_path: Path) -> Path:
    settings.STORAGES = {
        **settings.STORAGES,
        "private": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }
    return tmp_path


@pytest.fixture
def desktop_page(chromium_path: str, live_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A 1280×900 Chromium page with a 20 s default timeout that collects the page's JavaScript errors
    and console errors (favicon aside) in ``page.js_errors``."""
    with open_page(chromium_path, monkeypatch=monkeypatch, viewport={"width": 1280, "height": 900}) as page:
        page.set_default_timeout(20_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on(
            "console",
            lambda msg: (
                errors.append(f"{msg.text} ({msg.location.get('url')})")
                if msg.type == "error" and "favicon" not in str(msg.location.get("url"))
                else None
            ),
        )
        page.js_errors = errors
        yield page


def test_seller_signs_up_creates_a_code_pool_and_uploads_codes(
    desktop_page: Any, live_server: Any, private_storage: Path
) -> None:
    from playwright.sync_api import expect

    page = desktop_page
    url = live_server.url
    shots = Path(settings.VAR_DIR) / "e2e"
    shots.mkdir(parents=True, exist_ok=True)

    # Sign up from the sign-in page.
    page.goto(f"{url}/accounts/login/")
    page.click("text=Create a seller account")
    expect(page.locator("h1")).to_have_text("Start selling")
    page.fill("#id_name", "Grace's Gift Cards")
    page.fill("#id_email", "grace@example.com")
    page.fill("#id_password", "password")  # too common: refused next to the field
    page.click("#signup")
    expect(page.get_by_test_id("error-password")).to_contain_text("This password is too common.")
    expect(page.locator("#id_email")).to_have_value("grace@example.com")
    page.fill("#id_password", "a-long-unusual-passphrase")
    page.screenshot(path=str(shots / "seller-1-signup.png"), full_page=True)
    page.click("#signup")

    page.wait_for_url(f"{url}/dashboard/products/")
    expect(page.get_by_test_id("empty")).to_contain_text("Create your first product")
    page.screenshot(path=str(shots / "seller-2-products-empty.png"), full_page=True)
    seller = User.objects.get(email="grace@example.com")
    assert seller.role == "seller"

    # Create a code-pool product with three variants (the third through "Add another variant").
    page.click("text=New product")
    expect(page.locator("h1")).to_have_text("New product")
    page.fill("#id_title", "Steam Gift Card")
    page.fill("#id_description", "Redeem on Steam.")
    page.select_option("#id_status", "active")
    page.select_option("#id_currency", "EUR")
    page.select_option("#id_delivery_type", "code_pool")
    expect(page.locator("#field-delivery_text")).to_be_hidden()
    expect(page.locator("th.stock-col")).to_be_hidden()
    page.fill("#id_variants-0-name", "€10")
    page.fill("#id_variants-0-price", "10")
    page.fill("#id_variants-1-name", "€20")
    page.fill("#id_variants-1-price", "19.5")
    page.click("text=+ Add another variant")
    page.fill("#id_variants-2-name", "€50")
    page.fill("#id_variants-2-price", "48.999")  # three decimals in euros: refused on its row
    page.fill("#id_redemption_instructions", "Steam → Redeem a gift card.")
    page.click("#save-product")
    expect(page.get_by_test_id("error-variants-2-price")).to_contain_text("at most 2 decimal places")
    expect(page.locator("#id_title")).to_have_value("Steam Gift Card")
    assert not Product.objects.exists()
    page.screenshot(path=str(shots / "seller-3-product-form-error.png"), full_page=True)
    assert_accessible(page, where="the product form with an error on a variant")
    page.fill("#id_variants-2-price", "48.99")
    page.click("#save-product")

    # Straight on to the first variant's pool.
    page.wait_for_url(re.compile(re.escape(f"{url}/dashboard/products/") + r"prd_\w+/variants/var_\w+/codes/$"))
    expect(page.get_by_test_id("message-success")).to_contain_text("Next: upload the codes")
    product = Product.objects.get(seller=seller)
    assert product.delivery_type == "code_pool"
    assert list(product.variants.order_by("position").values_list("name", "price")) == [
        ("€10", 1000),
        ("€20", 1950),
        ("€50", 4899),
    ]
    expect(page.locator('[data-count="AVAILABLE"]')).to_have_text("0")
    page.screenshot(path=str(shots / "seller-4-codes-empty.png"), full_page=True)

    # Upload the CSV: progress, then the report and the counts, without a reload.
    page.set_input_files(
        "#id_file", files=[{"name": "codes.csv", "mimeType": "text/csv", "buffer": CODES_CSV.encode()}]
    )
    page.click("#codes-upload-button")
    report = page.get_by_test_id("import-report")
    expect(report.locator('[data-report="imported"]')).to_have_text("3")
    expect(report.locator('[data-report="duplicates"]')).to_have_text("1")
    expect(report.locator('[data-report="rejected"]')).to_have_text("2")
    expect(report.locator("table.rejected tbody tr")).to_have_count(2)
    expect(report.locator("table.rejected tbody tr").first).to_contain_text("code is empty.")
    expect(report.locator("table.rejected tbody tr").nth(1)).to_contain_text("Expected 3 columns, found 4.")
    expect(page.locator('[data-count="AVAILABLE"]')).to_have_text("3")
    expect(page.locator('[data-count="sellable"]')).to_have_text("3")
    page.screenshot(path=str(shots / "seller-5-codes-report.png"), full_page=True)
    assert_accessible(page, where="the code pool with its import report")
    variant = product.variants.get(name="€10")
    assert Code.objects.filter(variant=variant, status=CodeStatus.AVAILABLE).count() == 3

    # The list below is refreshed too: the last 4 characters only; block one code after confirming.
    rows = page.locator("#codes tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("••••0001")
    assert "GIFT-AAAA" not in page.content()
    dialogs: list[str] = []

    def accept(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    rows.first.get_by_role("button", name="Block the code ending in 0001").click()
    expect(page.get_by_test_id("message-success")).to_contain_text("The code ending in 0001 is blocked.")
    assert dialogs and "0001" in dialogs[0]
    expect(page.locator('[data-count="BLOCKED"]')).to_have_text("1")
    expect(page.locator('[data-count="AVAILABLE"]')).to_have_text("2")
    page.screenshot(path=str(shots / "seller-6-codes-blocked.png"), full_page=True)

    # The products list: price in euros, stock from the pools.
    page.click("[data-testid=nav-products]")
    row = page.locator(f'tr[data-product="{product.id}"]')
    expect(row.get_by_test_id("price")).to_contain_text("€10.00")
    expect(row.get_by_test_id("stock")).to_contain_text("2 codes")
    expect(row.get_by_test_id("sales")).to_contain_text("0 paid orders")
    page.screenshot(path=str(shots / "seller-7-products.png"), full_page=True)

    # A file product: the upload shows its size and progress, then the product uses it.
    page.click("[data-testid=new-product]")
    page.fill("#id_title", "Brush Pack")
    page.select_option("#id_delivery_type", "file")
    page.fill("#id_variants-0-price", "5")
    content = b"%PDF-1.7 " + b"x" * 300_000
    page.set_input_files(
        "#upload-file", files=[{"name": "Brush Pack.pdf", "mimeType": "application/pdf", "buffer": content}]
    )
    expect(page.get_by_test_id("upload-status")).to_contain_text("Uploaded Brush_Pack.pdf (293.0 KB)")
    expect(page.locator("#upload-percent")).to_have_text("100%")
    page.screenshot(path=str(shots / "seller-8-file-upload.png"), full_page=True)
    assert_accessible(page, where="the product form after a file upload")
    page.click("#save-product")
    page.wait_for_url(f"{url}/dashboard/products/")
    brush = Product.objects.get(seller=seller, title="Brush Pack")
    assert brush.delivery_content == Upload.objects.get(seller=seller).key
    assert page.js_errors == []
