"""The whole story in one walk, two people in real Chromium at once, against a live server and a real
Celery worker:

1. a seller signs up, creates a code-pool product and uploads its codes, and a file product;
2. a buyer on a phone-sized screen buys two codes through the checkout and the sandbox pages and sees
   them on the success page;
3. the seller sees that order in the dashboard, with its codes;
4. the buyer buys the file, opens the library with the emailed link and downloads it;
5. the seller refunds the file order in full from its page, and the buyer's download link stops working.

Every page is kept as a screenshot in ``var/e2e/story-*.png``. The other browser tests go deeper into
each part (errors, reports, filters, accessibility of each page); this one proves the parts join up.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core import mail
from django.core.files.storage import storages

from catalog.models import Code, CodeStatus, Product, Upload
from marketplace.accounts.models import User
from orders.models import Order
from tests.e2e.accessibility import assert_accessible
from tests.e2e.browser import new_page, open_browser

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
DELIVERY_TIMEOUT_MS = 60_000
SHOTS = Path(settings.VAR_DIR) / "e2e"
CODES = ["STORY-GIFT-0001", "STORY-GIFT-0002", "STORY-GIFT-0003"]
FILE_BYTES = b"%PDF-1.7 the story's field guide " + b"x" * 2048


@pytest.fixture
def browser(chromium_path: str, monkeypatch: pytest.MonkeyPatch, e2e_site: Any) -> Iterator[Any]:
    with open_browser(chromium_path, monkeypatch=monkeypatch) as browser:
        yield browser


def collect_errors(page: Any) -> Any:
    page.js_errors = []
    page.on("pageerror", lambda exc: page.js_errors.append(str(exc)))
    return page


@pytest.fixture
def seller_page(browser: Any) -> Iterator[Any]:
    """The seller at a desk."""
    with new_page(browser, viewport={"width": 1280, "height": 900}) as page:
        yield collect_errors(page)


@pytest.fixture
def buyer_page(browser: Any) -> Iterator[Any]:
    """The buyer on a phone, in a context of their own (no cookies shared with the seller)."""
    with new_page(browser, **PHONE, accept_downloads=True) as page:
        yield collect_errors(page)


@pytest.fixture
def uploads_removed() -> Iterator[None]:
    """The file the seller uploads goes to the real private storage (the worker reads the same one);
    it is deleted afterwards."""
    yield
    storage = storages["private"]
    for key in Upload.objects.values_list("key", flat=True):
        storage.delete(key)


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"story-{name}.png"), full_page=True)


def pay_on_sandbox(page: Any, site: Any, slug: str, name: str) -> str:
    page.wait_for_url(re.compile(re.escape(f"{site.url}/sandbox/pay/") + r"pay_\w+$"))
    shot(page, f"{name}-sandbox")
    page.click("#sandbox-pay")
    page.wait_for_url(re.compile(re.escape(f"{site.url}/c/{slug}/orders/") + r"ord_\w+$"))
    return str(page.url.rsplit("/", 1)[1])


def test_seller_and_phone_buyer_from_sign_up_to_refund(
    e2e_site: Any, seller_page: Any, buyer_page: Any, uploads_removed: None
) -> None:
    from playwright.sync_api import expect

    url = e2e_site.url
    seller, buyer = seller_page, buyer_page

    # 1. The seller signs up and creates a code-pool product.
    seller.goto(f"{url}/accounts/signup/")
    seller.fill("#id_name", "Story Cards")
    seller.fill("#id_email", "story.seller@example.com")
    seller.fill("#id_password", "a-story-seller-passphrase")
    shot(seller, "01-seller-signup")
    seller.click("#signup")
    seller.wait_for_url(f"{url}/dashboard/products/")
    seller.click("[data-testid=new-product]")
    seller.fill("#id_title", "Story Gift Card")
    seller.select_option("#id_status", "active")
    seller.select_option("#id_currency", "USD")
    seller.select_option("#id_delivery_type", "code_pool")
    seller.fill("#id_variants-0-name", "$25 card")
    seller.fill("#id_variants-0-price", "25")
    seller.fill("#id_redemption_instructions", "Open the store, choose Redeem, enter the code.")
    shot(seller, "02-seller-new-product")
    seller.click("#save-product")
    seller.wait_for_url(re.compile(re.escape(f"{url}/dashboard/products/") + r"prd_\w+/variants/var_\w+/codes/$"))
    cards = Product.objects.get(seller__email="story.seller@example.com", title="Story Gift Card")

    # ... uploads its codes ...
    csv = "code\n" + "\n".join(CODES) + "\n"
    seller.set_input_files("#id_file", files=[{"name": "codes.csv", "mimeType": "text/csv", "buffer": csv.encode()}])
    seller.click("#codes-upload-button")
    expect(seller.get_by_test_id("import-report").locator('[data-report="imported"]')).to_have_text("3")
    expect(seller.locator('[data-count="AVAILABLE"]')).to_have_text("3")
    shot(seller, "03-seller-codes")

    # ... and a file product, with its upload.
    seller.click("[data-testid=nav-products]")
    seller.click("[data-testid=new-product]")
    seller.fill("#id_title", "Story Field Guide")
    seller.select_option("#id_status", "active")
    seller.select_option("#id_currency", "USD")
    seller.select_option("#id_delivery_type", "file")
    seller.fill("#id_variants-0-price", "9")
    seller.set_input_files(
        "#upload-file", files=[{"name": "field-guide.pdf", "mimeType": "application/pdf", "buffer": FILE_BYTES}]
    )
    expect(seller.get_by_test_id("upload-status")).to_contain_text("Uploaded field-guide.pdf")
    seller.click("#save-product")
    seller.wait_for_url(f"{url}/dashboard/products/")
    guide = Product.objects.get(seller=cards.seller, title="Story Field Guide")
    shot(seller, "04-seller-products")

    # 2. A buyer on a phone buys two codes.
    buyer.goto(f"{url}/c/{cards.slug}")
    expect(buyer.locator("h1")).to_have_text("Story Gift Card")
    buyer.fill("#id_quantity", "2")
    expect(buyer.get_by_test_id("total")).to_have_text("$50.00")
    buyer.fill("#id_buyer_email", "story.buyer@example.com")
    shot(buyer, "05-buyer-checkout")
    buyer.click("#pay")
    cards_order_id = pay_on_sandbox(buyer, e2e_site, cards.slug, "06-buyer")
    expect(buyer.locator("#status")).to_have_text("Delivered", timeout=DELIVERY_TIMEOUT_MS)
    codes = buyer.get_by_test_id("code")
    expect(codes).to_have_count(2)
    bought = sorted(codes.all_inner_texts())
    assert len(set(bought)) == 2 and set(bought) <= set(CODES)
    assert buyer.evaluate("document.documentElement.scrollWidth") <= 390
    shot(buyer, "07-buyer-success")
    assert_accessible(buyer, where="the story's success page")

    # 3. The seller sees the order, and its codes, in the dashboard.
    cards_order = Order.objects.get(pk=cards_order_id)
    seller.click("[data-testid=nav-orders]")
    row = seller.locator(f'tr[data-order="{cards_order.order_number}"]')
    expect(row).to_be_visible()
    expect(row).to_contain_text("story.buyer@example.com")
    expect(row).to_contain_text("$50.00")
    shot(seller, "08-seller-orders")
    seller.click(f'a[href="/dashboard/orders/{cards_order.order_number}/"]')
    expect(seller.get_by_test_id("status")).to_have_text("Delivered")
    for code in bought:
        expect(seller.get_by_test_id("codes")).to_contain_text(code)
    shot(seller, "09-seller-order")
    seller.goto(f"{url}/dashboard/products/")
    expect(seller.locator(f'tr[data-product="{cards.id}"]').get_by_test_id("stock")).to_contain_text("1 code")
    assert Code.objects.filter(variant__product=cards, status=CodeStatus.AVAILABLE).count() == 1

    # 4. The buyer buys the file, then opens the library with the emailed link and downloads it.
    buyer.goto(f"{url}/c/{guide.slug}")
    buyer.fill("#id_buyer_email", "story.buyer@example.com")
    buyer.click("#pay")
    guide_order_id = pay_on_sandbox(buyer, e2e_site, guide.slug, "10-buyer-file")
    expect(buyer.locator("#status")).to_have_text("Delivered", timeout=DELIVERY_TIMEOUT_MS)
    mail.outbox.clear()
    buyer.goto(f"{url}/library")
    buyer.fill("#id_email", "story.buyer@example.com")
    buyer.click("#send-link")
    expect(buyer.get_by_test_id("link-sent")).to_be_visible()
    [message] = mail.outbox
    link = re.search(r"http://\S+/library/signin/\S+", message.body)
    assert link is not None
    buyer.goto(link.group(0))
    buyer.click("#sign-in")
    buyer.wait_for_url(f"{url}/library")
    expect(buyer.locator(f'[data-order="{cards_order_id}"]')).to_be_visible()
    expect(buyer.locator(f'[data-order="{guide_order_id}"]')).to_be_visible()
    shot(buyer, "11-buyer-library")
    with buyer.expect_download() as downloading:
        buyer.locator(f'[data-order="{guide_order_id}"]').get_by_test_id("library-download").click()
    download = downloading.value
    assert Path(download.path()).read_bytes() == FILE_BYTES
    signed_url = download.url
    assert buyer.request.get(signed_url).status == 200

    # 5. The seller refunds the file order in full, after confirming; the buyer's link stops working.
    guide_order = Order.objects.get(pk=guide_order_id)
    seller.goto(f"{url}/dashboard/orders/{guide_order.order_number}/")
    dialogs: list[str] = []

    def accept(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    seller.on("dialog", accept)
    seller.fill("#refund-reason", "Bought by mistake")
    seller.click("#refund")
    expect(seller.get_by_test_id("message-success")).to_have_text("Refund sent through the payment gateway.")
    assert dialogs == ["Refund the whole remaining $9.00 to the buyer? This cannot be undone."]
    expect(seller.get_by_test_id("status")).to_have_text("Refunded")
    shot(seller, "12-seller-refunded")

    assert buyer.request.get(signed_url).status == 410
    buyer.goto(signed_url)
    expect(buyer.locator("h1")).to_have_text("This purchase was refunded")
    shot(buyer, "13-buyer-link-refunded")
    buyer.goto(f"{url}/library")
    expect(buyer.locator(f'[data-order="{guide_order_id}"]')).to_contain_text("Refunded")
    expect(buyer.locator(f'[data-order="{cards_order_id}"]').get_by_test_id("code")).to_have_count(2)
    shot(buyer, "14-buyer-library-after-refund")

    guide_order.refresh_from_db()
    assert (guide_order.status, guide_order.refunded_amount) == ("refunded", 900)
    assert Order.objects.get(pk=cards_order_id).status == "delivered"
    assert User.objects.get(email="story.seller@example.com").role == "seller"
    assert seller.js_errors == [] and buyer.js_errors == []
