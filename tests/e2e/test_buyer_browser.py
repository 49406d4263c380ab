"""The buyer's side in real Chromium on a phone-sized screen (390×844), against a live server and a
real Celery worker: checkout (live quote, a refused discount code) → sandbox → success page with the
codes; the library opened with the emailed one-time link; a download; a full refund stops it.

Screenshots of every page are kept in ``var/e2e/buyer-*.png``. Skipped without Chromium unless
``REQUIRE_BROWSER=1``.
"""

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core import mail
from django.core.files.base import ContentFile
from django.core.files.storage import storages

from catalog.inventory import CodeRow, codes_import
from catalog.models import DeliveryType, Product, Upload
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory
from orders.models import Order
from tests.e2e.accessibility import assert_accessible
from tests.e2e.browser import open_page

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
DELIVERY_TIMEOUT_MS = 60_000
SHOTS = Path(settings.VAR_DIR) / "e2e"


@pytest.fixture
def phone(chromium_path: str, monkeypatch: pytest.MonkeyPatch, e2e_site: Any) -> Iterator[Any]:
    """A phone-sized Chromium page that accepts downloads (see ``tests.e2e.browser.open_page``)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    with open_page(chromium_path, monkeypatch=monkeypatch, **PHONE, accept_downloads=True) as page:
        yield page


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"buyer-{name}.png"), full_page=True)


def no_horizontal_scroll(page: Any) -> None:
    """Nothing is wider than the phone's screen."""
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def pay_on_sandbox(page: Any, site: Any, product: Product) -> str:
    page.wait_for_url(re.compile(re.escape(f"{site.url}/sandbox/pay/") + r"pay_\w+$"))
    shot(page, f"{product.slug}-sandbox")
    page.click("#sandbox-pay")
    page.wait_for_url(re.compile(re.escape(f"{site.url}/c/{product.slug}/orders/") + r"ord_\w+$"))
    return str(page.url.rsplit("/", 1)[1])


@pytest.fixture
def gift_cards(transactional_db: None) -> Product:
    seller = SellerFactory(name="Ada's Shop")
    product = ProductFactory(
        seller=seller,
        slug="e2e-gift-card",
        title="Game Gift Card",
        currency="USD",
        delivery_type=DeliveryType.CODE_POOL,
        delivery_content="",
        redemption_instructions="Open the game's store, choose Redeem, and enter the code and PIN.",
    )
    variant = VariantFactory(product=product, name="$25 card", price=2500)
    codes_import(
        variant=variant,
        rows=[
            CodeRow(1, "GC-AAAA-1111-E2E", pin="1111"),
            CodeRow(2, "GC-BBBB-2222-E2E", pin="2222"),
            CodeRow(3, "GC-CCCC-3333-E2E", pin="3333"),
        ],
    )
    return product


@pytest.fixture
def guide(transactional_db: None) -> Iterator[Product]:
    seller = SellerFactory(name="Grace's Guides")
    storage = storages["private"]
    key = storage.save(f"uploads/e2e/{uuid.uuid4().hex}/field-guide.pdf", ContentFile(b"%PDF-1.4 the e2e guide"))
    Upload.objects.create(seller=seller, key=key, filename="field-guide.pdf", size=22, content_type="application/pdf")
    product = ProductFactory(
        seller=seller,
        slug="e2e-field-guide",
        title="The Field Guide",
        currency="USD",
        delivery_type=DeliveryType.FILE,
        delivery_content=key,
    )
    VariantFactory(product=product, name="PDF", price=900)
    yield product
    storage.delete(key)


def test_phone_buyer_buys_two_codes_and_sees_them(
    chromium_path: str, e2e_site: Any, gift_cards: Product, phone: Any
) -> None:
    from playwright.sync_api import expect

    page = phone
    page.goto(f"{e2e_site.url}/c/{gift_cards.slug}")
    expect(page.locator("h1")).to_have_text("Game Gift Card")
    expect(page.get_by_test_id("price")).to_have_text("$25.00")
    no_horizontal_scroll(page)
    shot(page, "1-checkout")

    # The live quote: two cards, then a code that does not exist — its reason shows by the field.
    page.fill("#id_quantity", "2")
    expect(page.get_by_test_id("total")).to_have_text("$50.00")
    expect(page.locator("#pay")).to_have_text("Pay $50.00")
    page.fill("#id_discount_code", "NOSUCHCODE")
    expect(page.get_by_test_id("discount_code-error")).to_have_text("This discount code is not valid.")
    expect(page.get_by_test_id("total")).to_have_text("$50.00")
    shot(page, "2-checkout-invalid-code")
    assert_accessible(page, where="the checkout with a refused discount code")
    page.fill("#id_discount_code", "")
    expect(page.get_by_test_id("discount_code-error")).to_be_hidden()

    page.fill("#id_buyer_email", "phone.buyer@example.com")
    page.click("#pay")
    order_id = pay_on_sandbox(page, e2e_site, gift_cards)

    expect(page.locator("#status")).to_have_text("Delivered", timeout=DELIVERY_TIMEOUT_MS)
    expect(page.locator("#headline")).to_have_text("Your purchase is ready")
    codes = page.get_by_test_id("code")
    expect(codes).to_have_count(2)
    shown = sorted(codes.all_inner_texts())
    order = Order.objects.get(pk=order_id)
    delivered = sorted(c.code for c in order.items.get().codes.all())
    assert shown == delivered
    assert len(set(shown)) == 2
    expect(page.get_by_test_id("pin")).to_have_count(2)
    expect(page.get_by_test_id("emailed")).to_contain_text("phone.buyer@example.com")
    expect(page.locator("button.copy").first).to_be_visible()
    no_horizontal_scroll(page)
    shot(page, "3-success")
    assert_accessible(page, where="the success page with two codes")

    assert (order.status, order.total_amount, order.items.get().quantity) == ("delivered", 5000, 2)


def test_phone_buyer_opens_the_library_by_email_link_downloads_and_loses_it_after_a_refund(
    chromium_path: str, e2e_site: Any, guide: Product, phone: Any
) -> None:
    from playwright.sync_api import expect

    from orders.services.refunds import order_refund_create

    page = phone
    page.goto(f"{e2e_site.url}/c/{guide.slug}")
    page.fill("#id_buyer_email", "reader@example.com")
    page.click("#pay")
    order_id = pay_on_sandbox(page, e2e_site, guide)
    expect(page.locator("#status")).to_have_text("Delivered", timeout=DELIVERY_TIMEOUT_MS)
    expect(page.get_by_test_id("download")).to_have_text("Download field-guide.pdf")

    # The library: ask for a link; the web process (the live server's thread) sends it.
    mail.outbox.clear()
    page.goto(f"{e2e_site.url}/library")
    shot(page, "4-library-request")
    page.fill("#id_email", "reader@example.com")
    page.click("#send-link")
    expect(page.get_by_test_id("link-sent")).to_contain_text("If there are purchases for reader@example.com")
    shot(page, "5-library-sent")
    [message] = mail.outbox
    assert message.to == ["reader@example.com"]
    link = re.search(r"http://\S+/library/signin/\S+", message.body)
    assert link is not None
    assert link.group(0).startswith(e2e_site.url)

    page.goto(link.group(0))
    expect(page.locator("h1")).to_have_text("Sign in to your purchases")
    shot(page, "6-library-signin")
    page.click("#sign-in")
    page.wait_for_url(f"{e2e_site.url}/library")
    expect(page.locator(f'[data-order="{order_id}"]')).to_be_visible()
    no_horizontal_scroll(page)
    shot(page, "7-library")

    with page.expect_download() as downloading:
        page.get_by_test_id("library-download").click()
    download = downloading.value
    assert download.suggested_filename == "field-guide.pdf"
    assert Path(download.path()).read_bytes() == b"%PDF-1.4 the e2e guide"
    signed_url = download.url
    assert signed_url.startswith(f"{e2e_site.url}/downloads/")

    # The link works until the order is refunded in full, then stops.
    assert page.request.get(signed_url).status == 200
    order_refund_create(order=Order.objects.get(pk=order_id), amount=None, reason="e2e refund")
    assert Order.objects.get(pk=order_id).status == "refunded"
    assert page.request.get(signed_url).status == 410
    page.goto(signed_url)
    expect(page.locator("h1")).to_have_text("This purchase was refunded")
    shot(page, "8-download-refunded")
    assert_accessible(page, where="a refunded download")
    page.goto(f"{e2e_site.url}/library")
    expect(page.get_by_test_id("library-download")).to_have_count(0)
    expect(page.locator(f'[data-order="{order_id}"]')).to_contain_text("Refunded")
    shot(page, "9-library-after-refund")
    assert_accessible(page, where="the library after a refund")
    # The link was single use.
    page.context.clear_cookies()
    page.goto(link.group(0))
    expect(page.get_by_test_id("link-error")).to_contain_text("already used")
