"""Issue 14, "Friction and polish", in real Chromium: the analytics charts' labels are readable on a
390 px phone and "top products" shows all; "Try again" after a declined payment brings the buyer's
form back filled; a sold-out product has no form. axe finds no serious or critical violation on each.

No Celery worker: orders are written in this process before the browser opens.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import DEFAULT_PASSWORD, SellerFactory
from orders.models import Order, OrderStatus
from orders.pricing import CheckoutLine
from orders.services import order_create
from orders.tests.test_analytics import order
from tests.e2e.accessibility import assert_accessible
from tests.e2e.browser import open_page

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WIDTH = 390
PHONE = {"viewport": {"width": WIDTH, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
SHOTS = Path(settings.VAR_DIR) / "e2e"
MIN_LABEL_PX = 11  # the smallest text the dashboard uses elsewhere (.small) is about 12 px

# Every axis label of every chart: its size on screen (font size × the SVG's scale) and its box.
LABELS = """() => [...document.querySelectorAll('svg.chart-svg text')].map(t => {
  const r = t.getBoundingClientRect();
  const shown = getComputedStyle(t).display !== 'none' && r.width > 0;
  return {chart: t.closest('svg').id, axis: t.closest('g').classList.contains('x-axis') ? 'x' : 'y',
          text: t.textContent, shown, px: t.getScreenCTM().a * parseFloat(getComputedStyle(t).fontSize),
          left: r.left, right: r.right, top: r.top, bottom: r.bottom};
})"""


def _sign_in(page: Any, url: str, email: str) -> None:
    page.goto(f"{url}/accounts/login/")
    page.fill("#id_email", email)
    page.fill("#id_password", DEFAULT_PASSWORD)
    page.click('button[type=submit]:has-text("Sign in")')
    page.wait_for_url(f"{url}/dashboard/")


def test_analytics_chart_labels_are_readable_on_a_phone_and_top_products_show_all(
    chromium_path: str, live_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import expect

    SHOTS.mkdir(parents=True, exist_ok=True)
    seller = SellerFactory(name="Ada's Shop", time_zone="UTC", email="ada.charts@example.com")
    now = datetime.now(UTC)
    for n in range(7):
        product = ProductFactory(seller=seller, title=f"Product {n}", currency="USD")
        VariantFactory(product=product, price=125_000)
        order(product, total=125_000 * (n + 1), created=now - timedelta(days=2 + 3 * n))

    with open_page(chromium_path, monkeypatch=monkeypatch, **PHONE) as page:
        _sign_in(page, live_server.url, seller.email)
        page.goto(f"{live_server.url}/dashboard/analytics/")
        expect(page.locator("svg#revenue-USD")).to_be_visible()
        page.screenshot(path=str(SHOTS / "phone-analytics-charts.png"), full_page=True)
        labels = [label for label in page.evaluate(LABELS) if label["shown"]]
        assert {label["chart"] for label in labels} == {"revenue-USD", "orders-USD"}
        small = [f"{x['chart']} {x['text']!r}: {x['px']:.1f}px" for x in labels if x["px"] < MIN_LABEL_PX]
        assert not small, f"labels too small to read on a phone: {small}"
        outside = [f"{x['chart']} {x['text']!r}" for x in labels if x["left"] < 0 or x["right"] > WIDTH]
        assert not outside, f"labels outside the screen: {outside}"
        for chart in ("revenue-USD", "orders-USD"):
            mine = [x for x in labels if x["chart"] == chart]
            collide = [
                (a["text"], b["text"])
                for n, a in enumerate(mine)
                for b in mine[n + 1 :]
                if a["left"] < b["right"]
                and b["left"] < a["right"]
                and a["top"] < b["bottom"]
                and b["top"] < a["bottom"]
            ]
            assert not collide, f"{chart}: labels drawn over each other: {collide}"
            xs = sorted((x for x in labels if x["chart"] == chart and x["axis"] == "x"), key=lambda x: x["left"])
            assert len(xs) >= 3, f"{chart}: too few day labels left: {[x['text'] for x in xs]}"
            overlapping = [(a["text"], b["text"]) for a, b in zip(xs, xs[1:], strict=False) if a["right"] > b["left"]]
            assert not overlapping, f"{chart}: day labels overlap: {overlapping}"
        assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
        assert_accessible(page, where="analytics on a phone")

        top = page.locator('[data-testid="top-products-USD"] tbody tr')
        expect(top).to_have_count(5)
        page.get_by_test_id("top-products-all-USD").click()
        expect(top).to_have_count(7)
        expect(top.last).to_contain_text("Product 0")
        assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
        assert_accessible(page, where="analytics, all top products")


def test_try_again_brings_the_form_back_filled_and_sold_out_has_no_form(
    chromium_path: str, live_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import expect

    seller = SellerFactory(name="Ada's Shop")
    product = ProductFactory(seller=seller, slug="polish-two-options", title="Two options", currency="USD")
    VariantFactory(product=product, name="Standard", price=1000, position=0)
    deluxe = VariantFactory(product=product, name="Deluxe", price=3000, position=1)
    failed = order_create(product=product, buyer_email="declined@example.com", lines=[CheckoutLine(deluxe.id, 3)]).order
    Order.objects.filter(pk=failed.pk).update(status=OrderStatus.FAILED)
    gone = ProductFactory(seller=seller, slug="polish-sold-out", title="Limited print", currency="USD")
    VariantFactory(product=gone, stock=0)

    with open_page(chromium_path, monkeypatch=monkeypatch, viewport={"width": 1280, "height": 800}) as page:
        page.goto(f"{live_server.url}/c/{product.slug}/orders/{failed.pk}")
        expect(page.locator("#headline")).to_have_text("Payment failed")
        assert_accessible(page, where="failed order")
        page.get_by_test_id("try-again").click()
        page.wait_for_url(f"{live_server.url}/c/{product.slug}")
        expect(page.locator("#id_buyer_email")).to_have_value("declined@example.com")
        expect(page.locator("#id_quantity")).to_have_value("3")
        expect(page.locator(f'input[name="variant_id"][value="{deluxe.id}"]')).to_be_checked()
        expect(page.get_by_test_id("total")).to_have_text("$90.00")
        expect(page.locator("#pay")).to_be_enabled()
        assert_accessible(page, where="checkout after Try again")
        assert Order.objects.count() == 1  # nothing new until the buyer presses Pay

        page.goto(f"{live_server.url}/c/{gone.slug}")
        expect(page.get_by_test_id("sold-out")).to_contain_text("Sold out")
        expect(page.locator("form, input, #pay")).to_have_count(0)
        assert_accessible(page, where="sold-out checkout")
