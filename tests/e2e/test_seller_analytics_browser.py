"""A seller in real Chromium opens Analytics: the totals, the revenue and orders charts (one bar and
one point per day, drawn as SVG by the server), the top products, then narrows the page to one
product and tries a range that is not valid. Screenshots are kept under ``var/e2e/``.

One order is paid the way a buyer pays (the sandbox gateway's signed webhook over HTTP to the live
server, fulfillment by the real worker); the others are written with exact amounts on earlier days.
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings

from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import DEFAULT_PASSWORD
from orders.tests.test_analytics import S, order
from tests.e2e.test_seller_orders_browser import paid_order, seller_page  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_seller_sees_charts_and_top_products(e2e_site: Any, text_product: Any, request: pytest.FixtureRequest) -> None:
    from playwright.sync_api import expect

    page = request.getfixturevalue("seller_page")  # Chromium at 1200x900, from the orders browser test
    shots = Path(settings.VAR_DIR) / "e2e"
    shots.mkdir(parents=True, exist_ok=True)
    seller = text_product.seller
    seller.time_zone = "Europe/Berlin"
    seller.save(update_fields=["time_zone"])
    course = ProductFactory(seller=seller, title="Watercolour Course", currency="USD")
    VariantFactory(product=course, name="Lifetime", price=4900)

    paid_order(text_product, "paying.buyer@example.com")  # $19.99 today, through the sandbox and the worker
    now = datetime.now(UTC)
    for days_ago, total, fee in ((2, 4900, 245), (5, 4900, 245), (9, 9800, 490), (16, 4900, 245), (23, 4900, 245)):
        order(course, total=total, fee=fee, created=now - timedelta(days=days_ago))
    order(text_product, total=1999, fee=100, created=now - timedelta(days=5))
    order(
        text_product, total=3998, fee=200, refunded=1999, status=S.PARTIALLY_REFUNDED, created=now - timedelta(days=12)
    )
    order(text_product, total=1999, status=S.PENDING, created=now - timedelta(days=3))  # started, never paid

    # Sign in and follow the nav link.
    page.goto(f"{e2e_site.url}/accounts/login/")
    page.fill("#id_email", seller.email)
    page.fill("#id_password", DEFAULT_PASSWORD)
    page.click('button[type=submit]:has-text("Sign in")')
    page.wait_for_url(f"{e2e_site.url}/dashboard/")
    page.get_by_test_id("nav-analytics").click()
    page.wait_for_url(f"{e2e_site.url}/dashboard/analytics/")
    expect(page.locator("h1")).to_have_text("Analytics")
    expect(page.get_by_test_id("range")).to_contain_text("30 days in Europe/Berlin")
    today = datetime.now(ZoneInfo("Europe/Berlin")).date()
    expect(page.locator("#id_start")).to_have_value((today - timedelta(days=29)).isoformat())
    expect(page.locator("#id_end")).to_have_value(today.isoformat())

    # Totals: 9 orders started, 8 paid; revenue net of the refund, fees and earnings.
    totals = page.get_by_test_id("totals-USD")
    expect(totals.get_by_test_id("orders")).to_have_text("9")
    expect(totals.get_by_test_id("paid-orders")).to_have_text("8")
    expect(totals.get_by_test_id("conversion")).to_have_text("88.9%")
    expect(totals.get_by_test_id("revenue")).to_have_text("$353.97")  # 19.99 + 294.00 + 19.99 + (39.98 − 19.99)
    paid_today = text_product.orders.get(buyer_email="paying.buyer@example.com")
    fees = 1470 + 100 + 200 + paid_today.platform_fee
    expect(totals.get_by_test_id("platform-fees")).to_have_text(f"${fees // 100}.{fees % 100:02d}")

    # Charts: an SVG image each, with a name, a bar per day and a point per day per line.
    revenue = page.locator("svg#revenue-USD")
    expect(revenue).to_be_visible()
    expect(revenue).to_have_attribute("role", "img")
    expect(revenue.locator("rect.bar")).to_have_count(30)
    assert revenue.locator("rect.bar").last.get_attribute("data-value") == "1999"  # today's sale
    expect(page.locator("#revenue-USD-desc")).to_contain_text("$353.97 in total")
    orders_chart = page.locator("svg#orders-USD")
    expect(orders_chart).to_be_visible()
    expect(orders_chart.locator('[data-series="started"] circle.point')).to_have_count(30)
    expect(orders_chart.locator('[data-series="paid"] circle.point')).to_have_count(30)
    expect(page.get_by_role("img", name="Revenue per day (USD)")).to_have_count(1)

    # Top products: the course first, by revenue.
    top = page.locator('[data-testid="top-products-USD"] tbody tr')
    expect(top).to_have_count(2)
    expect(top.first).to_contain_text("Watercolour Course")
    expect(top.first).to_contain_text("$294.00")
    expect(top.nth(1)).to_contain_text("Secret Text")
    page.screenshot(path=str(shots / "seller-analytics-1-overview.png"), full_page=True)

    # Narrow to one product with the select.
    page.select_option("#id_product", label="Secret Text")
    page.click("#apply-range")
    page.wait_for_url("**/dashboard/analytics/?**")
    expect(page.get_by_test_id("narrowed")).to_contain_text("Secret Text")
    expect(totals.get_by_test_id("orders")).to_have_text("4")
    expect(totals.get_by_test_id("revenue")).to_have_text("$59.97")
    expect(page.locator("svg#revenue-USD rect.bar")).to_have_count(30)
    expect(page.locator('[data-testid="top-products-USD"]')).to_have_count(0)
    page.screenshot(path=str(shots / "seller-analytics-2-one-product.png"), full_page=True)

    # A range that ends before it starts: the error next to the field, no charts.
    page.fill("#id_start", today.isoformat())
    page.fill("#id_end", (today - timedelta(days=3)).isoformat())
    page.click("#apply-range")
    expect(page.get_by_test_id("error-start")).to_have_text("Must not be after end.")
    expect(page.locator("svg")).to_have_count(0)
    page.screenshot(path=str(shots / "seller-analytics-3-invalid.png"), full_page=True)
