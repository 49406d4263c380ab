"""Issue 14: every seller page fits a 390 px phone with no sideways scroll.

Real Chromium at 390×844 visits each dashboard page (orders, an order with its timeline, refunds and
codes, analytics, products, the product form new and filled, a code pool, settings, API keys, discounts
and a discount, webhooks and an endpoint, and the Balance pages: overview, statement, payouts, a payout,
payout settings) and asserts ``document.documentElement.scrollWidth <= 390``; a failure names each
page that is too wide, how wide, and the widest elements. Screenshots go to ``var/e2e/phone-*.png``.
No Celery worker: the orders are paid in this process (eager tasks) before the browser opens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from catalog.discounts import discount_save
from catalog.inventory import CodeRow, codes_import
from catalog.models import DeliveryType
from catalog.tests.factories import ProductFactory, VariantFactory
from ledger.models import Payout, PayoutMethod
from marketplace.accounts.tests.factories import DEFAULT_PASSWORD, SellerFactory
from orders.seller_events.endpoints import webhook_endpoint_create
from orders.tests.helpers import make_order, pay
from tests.e2e.browser import open_page

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WIDTH = 390
PHONE = {"viewport": {"width": WIDTH, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
SHOTS = Path(settings.VAR_DIR) / "e2e"

# The widest elements of a page that scrolls sideways: what to fix.
WIDEST = """() => {
  const limit = 390;
  const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
    + (typeof el.className === 'string' && el.className.trim()
       ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
  return [...document.querySelectorAll('body *')]
    .filter(el => !el.parentElement.closest(".table-scroll") || getComputedStyle(el).position === "absolute")
    .map(el => ({el, rect: el.getBoundingClientRect()}))
    .filter(x => x.rect.right > limit + 1 || x.rect.left < -1)
    .sort((a, b) => b.rect.right - a.rect.right).slice(0, 4)
    .map(x => `${name(x.el)}: ${Math.round(x.rect.left)}..${Math.round(x.rect.right)}px`);
}"""


@pytest.fixture
def shop(django_capture_on_commit_callbacks: Any) -> dict[str, Any]:
    """A seller with every kind of thing their pages list: products of several kinds, a code pool,
    paid and refunded orders with long emails, a discount, a webhook endpoint and a payout."""
    seller = SellerFactory(name="Ada's Extraordinarily Long Shop Name Ltd", email="ada.phone@example.com")
    text = ProductFactory(
        seller=seller,
        slug="phone-a-rather-long-product-slug-for-testing",
        title="The Complete Guide To Building Very Long Product Titles That Wrap",
        currency="USD",
        delivery_content="The secret is OPEN-SESAME",
    )
    VariantFactory(product=text, name="Standard edition with a long name", price=5800)
    pool = ProductFactory(
        seller=seller,
        slug="phone-gift-card",
        title="Gift card",
        currency="USD",
        delivery_type=DeliveryType.CODE_POOL,
        delivery_content="",
    )
    variant = VariantFactory(product=pool, name="$25", price=2500)
    codes_import(variant=variant, rows=[CodeRow(i, f"GIFT-{i:04d}-ABCDEFGHIJKLMNOP", pin="1234") for i in range(5)])
    order = pay(
        make_order(text, email="a.buyer.with.a.very.long.address@subdomain.example.com"),
        django_capture_on_commit_callbacks,
    )
    pay(make_order(pool, email="gift.buyer@example.com"), django_capture_on_commit_callbacks)
    from orders.services.refunds import order_refund_create

    with django_capture_on_commit_callbacks(execute=True):
        order_refund_create(order=order, amount=2900, reason="The buyer asked for half back, a long reason.")
    discount = discount_save(seller=seller, data={"code": "SPRINGSALE2026", "kind": "percent", "value": 15})
    endpoint = webhook_endpoint_create(seller=seller, url="https://hooks.example.com/a/very/long/path/for/webhooks")
    payout = Payout.objects.create(seller=seller, amount=12345, currency="USD", method=PayoutMethod.BANK_TRANSFER)
    return {
        "seller": seller,
        "order": order,
        "text": text,
        "pool": pool,
        "variant": variant,
        "discount": discount,
        "endpoint": endpoint,
        "payout": payout,
    }


def seller_pages(shop: dict[str, Any]) -> dict[str, str]:
    order, text, pool = shop["order"], shop["text"], shop["pool"]
    return {
        "orders": "/dashboard/",
        "order": f"/dashboard/orders/{order.order_number}/",
        "analytics": "/dashboard/analytics/",
        "products": "/dashboard/products/",
        "product-new": "/dashboard/products/new/",
        "product-edit": f"/dashboard/products/{text.id}/edit/",
        "codes": f"/dashboard/products/{pool.id}/variants/{shop['variant'].id}/codes/",
        "settings": "/dashboard/settings/",
        "api-keys": "/dashboard/settings/api-keys/",
        "discounts": "/dashboard/settings/discounts/",
        "discount-new": "/dashboard/settings/discounts/new/",
        "discount": f"/dashboard/settings/discounts/{shop['discount'].id}/",
        "webhooks": "/dashboard/settings/webhooks/",
        "webhook": f"/dashboard/settings/webhooks/{shop['endpoint'].id}/",
        "balance": "/dashboard/balance/",
        "statement": "/dashboard/balance/statement/",
        "payouts": "/dashboard/balance/payouts/",
        "payout": f"/dashboard/balance/payouts/{shop['payout'].id}/",
        "payout-settings": "/dashboard/balance/settings/",
    }


def test_every_seller_page_fits_a_390px_phone(
    chromium_path: str, live_server: Any, shop: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    too_wide: list[str] = []
    with open_page(chromium_path, monkeypatch=monkeypatch, **PHONE) as page:
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_email", shop["seller"].email)
        page.fill("#id_password", DEFAULT_PASSWORD)
        page.click('button[type=submit]:has-text("Sign in")')
        page.wait_for_url(f"{live_server.url}/dashboard/")
        for name, path in seller_pages(shop).items():
            response = page.goto(f"{live_server.url}{path}")
            assert response is not None and response.status == 200, (
                f"{name}: {path} answered {response and response.status}"
            )
            page.wait_for_load_state("load")
            page.screenshot(path=str(SHOTS / f"phone-seller-{name}.png"), full_page=True)
            width = page.evaluate("document.documentElement.scrollWidth")
            if width > WIDTH:
                too_wide.append(f"{name} ({path}): {width}px wide; widest: {page.evaluate(WIDEST)}")
    assert not too_wide, "\n".join(too_wide)


def test_the_refund_dialog_names_the_amount_as_money(
    chromium_path: str, live_server: Any, shop: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14: the refund confirmation said "Refund 29"; it says "Refund $29.00", and nothing is
    refunded when the seller answers Cancel."""
    order = shop["order"]
    asked: list[str] = []
    with open_page(chromium_path, monkeypatch=monkeypatch, **PHONE) as page:
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_email", shop["seller"].email)
        page.fill("#id_password", DEFAULT_PASSWORD)
        page.click('button[type=submit]:has-text("Sign in")')
        page.wait_for_url(f"{live_server.url}/dashboard/")
        page.goto(f"{live_server.url}/dashboard/orders/{order.order_number}/")

        def answer(dialog: Any) -> None:
            asked.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", answer)
        page.fill("#refund-amount", "29")
        page.click("#refund")
        page.fill("#refund-amount", "")
        page.click("#refund")
    assert asked == [
        "Refund $29.00 to the buyer? This cannot be undone.",
        "Refund the whole remaining $29.00 to the buyer? This cannot be undone.",
    ]
    order.refresh_from_db()
    assert order.refunded_amount == 2900  # the earlier half only: both dialogs were cancelled


def test_the_buyer_pages_fit_a_390px_phone(
    chromium_path: str, live_server: Any, shop: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checkout, the success page with its receipt and codes, and the library (signed in)."""
    import re

    from django.core import mail

    order, pool = shop["order"], shop["pool"]
    too_wide: list[str] = []
    with open_page(chromium_path, monkeypatch=monkeypatch, **PHONE) as page:

        def check(name: str) -> None:
            page.wait_for_load_state("load")
            page.screenshot(path=str(SHOTS / f"phone-buyer-{name}.png"), full_page=True)
            width = page.evaluate("document.documentElement.scrollWidth")
            if width > WIDTH:
                too_wide.append(f"{name} ({page.url}): {width}px wide; widest: {page.evaluate(WIDEST)}")

        page.goto(f"{live_server.url}/c/{order.product.slug}")
        check("checkout")
        page.goto(f"{live_server.url}/c/{order.product.slug}/orders/{order.id}")
        check("success")
        gift = pool.orders.get()
        page.goto(f"{live_server.url}/c/{pool.slug}/orders/{gift.id}")
        check("success-codes")
        mail.outbox.clear()
        page.goto(f"{live_server.url}/library")
        page.fill("input[name=email]", order.buyer_email)
        page.click("button[type=submit]")
        page.wait_for_load_state("load")
        link = re.search(r"http://[^\s\"<]+/library/signin/[^\s\"<]+", mail.outbox[0].body).group(0)
        page.goto(link.replace(settings.SITE_URL, live_server.url))
        page.wait_for_load_state("load")
        if page.locator("form button[type=submit]").count() and "/library/signin/" in page.url:
            page.click("form button[type=submit]")
        page.wait_for_url(f"{live_server.url}/library")
        check("library")
    assert not too_wide, "\n".join(too_wide)
