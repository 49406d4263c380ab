"""Issue 14: a screenshot of every main page, on a laptop (1280×800) and a phone (390×844).

A realistic seller is seeded in this process (eager tasks, no worker): a store with a bio, products
with a cover image and a Markdown description, a licence-key app, paid and delivered orders from
several buyers, sales whose hold has passed (available) and sales still held (pending), bank details
and a payout that an operator has paid. Real Chromium then visits the buyer's pages (front page,
store, checkout, success page with its delivery, library) and the seller's (orders, an order,
products, customers, licence keys, analytics, Balance, statement, payouts, a payout, payout
settings) at both sizes, asserting each answered 200 with its own heading (not an error or the sign-in
page) and, at 390 px, no sideways scroll.

The full-page PNGs go to ``var/e2e/screens/<page>-<desktop|phone>.png``; ``scripts/docs_screens.py``
picks a few of them for ``docs/tour.md``.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from PIL import Image, ImageDraw

from catalog.covers import cover_image_make
from catalog.models import DeliveryType, Upload
from catalog.tests.factories import ProductFactory, VariantFactory
from ledger.payouts import BankAccountInput, payout_approve, payout_create, payout_mark_paid, payout_settings_update
from marketplace.accounts.services import seller_store_update
from marketplace.accounts.tests.factories import DEFAULT_PASSWORD, SellerFactory, UserFactory
from orders.tests.helpers import make_order, pay
from tests.e2e.browser import new_page, open_browser

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SCREENS = Path(settings.VAR_DIR) / "e2e" / "screens"
SIZES: dict[str, dict[str, Any]] = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
    },
}


@pytest.fixture
def media_root(tmp_path: Path, settings: Any) -> Path:
    """Public and private storage in a throwaway folder (the live server runs in this process)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "public")},
        },
        "private": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "private")},
        },
    }
    return tmp_path


def cover(seller: Any, name: str, colours: tuple[tuple[int, int, int], tuple[int, int, int]]) -> tuple[str, str]:
    """A 1600×900 cover (two colours, a few shapes) uploaded privately and made public as the
    product's cover; returns (upload key, public cover path)."""
    image = Image.new("RGB", (1600, 900), colours[0])
    draw = ImageDraw.Draw(image)
    for i in range(6):
        x = 120 + i * 240
        draw.rounded_rectangle((x, 250 + (i % 2) * 120, x + 180, 530 + (i % 2) * 120), radius=30, fill=colours[1])
    out = io.BytesIO()
    image.save(out, format="PNG")
    key = storages["private"].save(f"uploads/{seller.id}/screens/{name}", ContentFile(out.getvalue()))
    Upload.objects.create(seller=seller, key=key, filename=name, size=out.tell(), content_type="image/png")
    return str(key), cover_image_make(seller=seller, upload_key=key)


@pytest.fixture
def shop(media_root: Path, django_capture_on_commit_callbacks: Any) -> dict[str, Any]:
    seller = SellerFactory(name="Ada Games", email="ada@ada.example", support_email="help@ada.example")
    seller_store_update(
        user=seller,
        store_slug="ada-games",
        store_bio="Handmade **puzzle** games and printables since 2019. Instant delivery, lifetime updates.",
    )
    key, path = cover(seller, "puzzle.png", ((37, 87, 214), (250, 204, 21)))
    puzzle = ProductFactory(
        seller=seller,
        slug="puzzle-pack",
        title="Puzzle Pack — 40 printable logic puzzles",
        currency="USD",
        featured=True,
        description=(
            "Forty hand-drawn logic puzzles, from a gentle warm-up to fiendish.\n\n"
            "- printable A4 and US Letter PDFs\n- **solutions** on a separate sheet\n- free updates\n\n"
            "[See a sample page](https://example.com/sample)"
        ),
        delivery_content="Download: https://files.example.com/puzzle-pack-v3.zip\nThank you for your purchase!",
        cover_image=key,
        cover_image_path=path,
    )
    VariantFactory(product=puzzle, name="Standard", price=2000)
    key, path = cover(seller, "icons.png", ((16, 122, 87), (255, 255, 255)))
    icons = ProductFactory(
        seller=seller,
        slug="pixel-icons",
        title="Pixel Icons (600 SVG icons)",
        currency="USD",
        description="Six hundred crisp icons in SVG and PNG, on a 24 px grid.\n\n- MIT licence\n- Figma file",
        delivery_content="Download: https://files.example.com/pixel-icons.zip",
        cover_image=key,
        cover_image_path=path,
    )
    VariantFactory(product=icons, name="Personal", price=1500)
    app = ProductFactory(
        seller=seller,
        slug="solver-pro",
        title="Solver Pro (desktop app)",
        currency="USD",
        description="Solves any puzzle from the pack, step by step. One key works on **two** computers.",
        delivery_type=DeliveryType.LICENSE_KEY,
        delivery_content="",
        delivery_options={"license": {"activation_limit": 2, "prefix": "SOLVER"}},
    )
    VariantFactory(product=app, name="Single user", price=4900)

    # Sales whose hold has passed (available), a payout of them, then sales still held (pending).
    seller.payout_hold_days = 0
    seller.save(update_fields=["payout_hold_days"])
    early = [
        pay(make_order(puzzle, email="grace@example.com"), django_capture_on_commit_callbacks),
        pay(make_order(app, email="linus@example.com"), django_capture_on_commit_callbacks),
        pay(make_order(icons, email="margaret@example.com"), django_capture_on_commit_callbacks),
    ]
    payout_settings_update(
        seller=seller,
        method="bank_transfer",
        schedule="manual",
        minimum_amount=0,
        bank_account=BankAccountInput(
            holder="Ada Games Ltd", number="GB29NWBK60161331926819", bank="NatWest", country="GB"
        ),
    )
    with django_capture_on_commit_callbacks(execute=True):
        payout = payout_create(seller=seller, currency="USD")
        operator = UserFactory(email="ops@marketplace.example", is_staff=True)
        payout_approve(payout_id=payout.id, actor=operator)
        payout = payout_mark_paid(payout_id=payout.id, actor=operator)
    pay(make_order(puzzle, email="alan@example.com"), django_capture_on_commit_callbacks)
    seller.payout_hold_days = 7
    seller.save(update_fields=["payout_hold_days"])
    late = [
        pay(make_order(app, email="grace@example.com"), django_capture_on_commit_callbacks),
        pay(make_order(puzzle, email="barbara@example.com", quantity=2), django_capture_on_commit_callbacks),
        pay(make_order(icons, email="ken@example.com"), django_capture_on_commit_callbacks),
    ]
    make_order(icons, email="dennis@example.com")  # not paid: an open order in the list
    for order in [*early, *late]:
        assert order.status == "delivered", order.status
    return {"seller": seller, "puzzle": puzzle, "app": app, "order": early[0], "payout": payout}


# What each page's first heading says: the page itself, not an error or the sign-in page.
HEADINGS = {
    "front": "Marketplace",
    "store": "Ada Games",
    "checkout": "Puzzle Pack",
    "success": "Your purchase is ready",
    "library": "Your purchases",
    "orders": "Orders",
    "order": "Order #",
    "products": "Products",
    "customers": "Customers",
    "licenses": "Solver Pro",
    "analytics": "Analytics",
    "balance": "Balance",
    "statement": "Statement",
    "payouts": "Payouts",
    "payout": "Payout $79.80",
    "payout-settings": "Payout settings",
}


def pages(shop: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """(buyer pages, seller pages): name -> path."""
    order = shop["order"]
    buyer = {
        "front": "/",
        "store": "/s/ada-games",
        "checkout": f"/c/{shop['puzzle'].slug}",
        "success": f"/c/{order.product.slug}/orders/{order.id}",
    }
    seller = {
        "orders": "/dashboard/",
        "order": f"/dashboard/orders/{order.order_number}/",
        "products": "/dashboard/products/",
        "customers": "/dashboard/customers/",
        "licenses": f"/dashboard/products/{shop['app'].id}/licenses/",
        "analytics": "/dashboard/analytics/",
        "balance": "/dashboard/balance/",
        "statement": "/dashboard/balance/statement/",
        "payouts": "/dashboard/balance/payouts/",
        "payout": f"/dashboard/balance/payouts/{shop['payout'].id}/",
        "payout-settings": "/dashboard/balance/settings/",
    }
    return buyer, seller


def library_sign_in(page: Any, url: str, email: str) -> None:
    """Asks for a sign-in link by email, as a buyer does, and follows it."""
    from django.core import mail

    mail.outbox.clear()
    page.goto(f"{url}/library")
    page.fill("input[name=email]", email)
    page.click("button[type=submit]")
    page.wait_for_load_state("load")
    link = re.search(r"https?://[^\s\"<]+/library/signin/[^\s\"<]+", mail.outbox[-1].body)
    assert link, mail.outbox[-1].body
    page.goto(link.group(0).replace(settings.SITE_URL, url))
    page.wait_for_load_state("load")
    if "/library/signin/" in page.url and page.locator("form button[type=submit]").count():
        page.click("form button[type=submit]")
    page.wait_for_url(f"{url}/library")


def test_screenshots_of_every_main_page_at_both_sizes(
    chromium_path: str, live_server: Any, shop: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    SCREENS.mkdir(parents=True, exist_ok=True)
    url = live_server.url
    buyer, seller = pages(shop)
    problems: list[str] = []
    taken: list[str] = []

    def shoot(page: Any, name: str, size: str, path: str | None = None) -> None:
        if path is not None:
            response = page.goto(f"{url}{path}")
            if response is None or response.status != 200:
                problems.append(f"{name} ({path}) answered {response and response.status}")
                return
        page.wait_for_load_state("load")
        if "/accounts/login/" in page.url:
            problems.append(f"{name} ({path}) went to the sign-in page")
            return
        heading = page.locator("h1").first.inner_text()
        if HEADINGS[name] not in heading:
            problems.append(f"{name} ({page.url}): the heading is {heading!r}, not {HEADINGS[name]!r}")
        width = page.evaluate("document.documentElement.scrollWidth")
        if size == "phone" and width > 390:
            problems.append(f"{name} ({page.url}) is {width}px wide on a 390px phone")
        page.screenshot(path=str(SCREENS / f"{name}-{size}.png"), full_page=True)
        taken.append(f"{name}-{size}")

    with open_browser(chromium_path, monkeypatch=monkeypatch) as browser:
        for size, options in SIZES.items():
            with new_page(browser, **options) as page:
                for name, path in buyer.items():
                    shoot(page, name, size, path)
                library_sign_in(page, url, "grace@example.com")
                shoot(page, "library", size)
            with new_page(browser, **options) as page:
                page.goto(f"{url}/accounts/login/")
                page.fill("#id_email", shop["seller"].email)
                page.fill("#id_password", DEFAULT_PASSWORD)
                page.click('button[type=submit]:has-text("Sign in")')
                page.wait_for_url(f"{url}/dashboard/")
                for name, path in seller.items():
                    shoot(page, name, size, path)
    assert not problems, "\n".join(problems)
    expected = {f"{name}-{size}" for size in SIZES for name in [*buyer, "library", *seller]}
    assert set(taken) == expected
    for name in expected:
        assert (SCREENS / f"{name}.png").stat().st_size > 10_000, f"{name}.png is nearly empty"
