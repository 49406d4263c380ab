"""The seller's Analytics page: exact totals and conversion, charts, top products, narrowing to one
product, the seller's time zone, validation of the range, isolation between sellers, query count."""

import html
import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from dashboard.analytics.views import nice_ticks
from marketplace.accounts.tests.factories import SellerFactory, UserFactory
from orders.tests.test_analytics import S, order, product_for

pytestmark = pytest.mark.django_db

URL = "/dashboard/analytics/"
MARCH = {"start": "2026-03-01", "end": "2026-03-31"}


def at(day: int, hour: int = 12, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=UTC)


def value(page: str, testid: str, scope: str | None = None) -> str:
    """The text of the element with ``data-testid`` (inside the ``data-testid`` ``scope`` if given)."""
    if scope is not None:
        start = page.index(f'data-testid="{scope}"')
        page = page[start : page.index("</ul>", start)]
    match = re.search(rf'data-testid="{re.escape(testid)}"[^>]*>([^<]*)<', page)
    assert match, f"no {testid!r} on the page"
    return html.unescape(match.group(1)).strip()


def totals(page: str, currency: str = "USD") -> dict[str, str]:
    names = ("orders", "paid-orders", "conversion", "revenue", "platform-fees", "earnings")
    return {name: value(page, name, scope=f"totals-{currency}") for name in names}


def chart_svg(page: str, chart_id: str) -> str:
    start = page.index(f'<svg id="{chart_id}"')
    return page[start : page.index("</svg>", start)]


@pytest.fixture
def seller():
    return SellerFactory(name="Ada's Shop", time_zone="UTC")


@pytest.fixture
def web(seller) -> Client:
    client = Client()
    client.force_login(seller)
    return client


@pytest.fixture
def ebook(seller):
    return product_for(seller, title="Night Ebook")


@pytest.fixture
def course(seller):
    return product_for(seller, title="Day Course", price=5000)


@pytest.fixture
def march_orders(ebook, course):
    """Five orders started in March: four paid (one partly and one fully refunded), one unpaid."""
    order(ebook, total=1999, fee=100, created=at(2))  # delivered
    order(ebook, total=3998, fee=200, refunded=1000, status=S.PARTIALLY_REFUNDED, created=at(2), paid=at(4))
    order(ebook, total=1999, fee=0, refunded=1999, status=S.REFUNDED, created=at(5))
    order(ebook, total=1999, status=S.PENDING, created=at(6))
    order(course, total=5000, fee=250, created=at(6))


@pytest.fixture
def rival():
    """Another seller's orders in the same currency and days: they must never show up."""
    other = SellerFactory(time_zone="UTC")
    product = product_for(other, title="Rival Product")
    order(product, total=77_777, fee=3_888, created=at(3))
    order(product, total=5_555, status=S.PENDING, created=at(3))
    return product


# --- Totals, conversion, top products ------------------------------------------------------------


def test_exact_totals_conversion_and_earnings(web, march_orders, rival):
    response = web.get(URL, MARCH)

    assert response.status_code == 200
    page = response.content.decode()
    assert totals(page) == {
        "orders": "5",
        "paid-orders": "4",
        "conversion": "80%",  # 4 of the 5 orders started in March were paid
        "revenue": "$99.97",  # 19.99 + (39.98 − 10.00) + (19.99 − 19.99) + 50.00
        "platform-fees": "$5.50",
        "earnings": "$94.47",  # 18.99 + 27.98 + 0 + 47.50
    }
    assert "4 of 5 started paid" in page
    section = response.context["sections"][0]
    assert section["totals"] == {"orders": 5, "paid_orders": 4, "revenue": 9997, "platform_fees": 550, "earnings": 9447}
    assert section["conversion"]["started"] == 5 and section["conversion"]["converted"] == 4


def test_top_products_by_revenue_with_paid_orders(web, march_orders, ebook, course):
    response = web.get(URL, MARCH)

    top = response.context["sections"][0]["top_products"]
    assert [(row["title"], row["paid_orders"], row["revenue"], row["earnings"]) for row in top] == [
        ("Day Course", 1, 5000, 4750),
        ("Night Ebook", 3, 4997, 4697),
    ]
    assert [(row["started"], row["converted"], row["conversion"]) for row in top] == [(1, 1, "100%"), (4, 3, "75%")]
    page = response.content.decode()
    table = page[page.index('data-testid="top-products-USD"') : page.index("</table>", page.index("top-products-USD"))]
    assert table.index("Day Course") < table.index("Night Ebook")
    assert "$50.00" in table and "$49.97" in table
    assert f"product={ebook.id}" in table  # each row narrows the page to its product


def test_top_products_are_limited_per_currency(web, seller):
    for n in range(7):
        order(product_for(seller, title=f"Product {n}"), total=100 * (n + 1), created=at(10))

    top = web.get(URL, MARCH).context["sections"][0]["top_products"]

    assert [row["title"] for row in top] == ["Product 6", "Product 5", "Product 4", "Product 3", "Product 2"]


def test_each_currency_has_its_own_section(web, seller, march_orders):
    ugx = product_for(seller, currency="UGX", title="Airtime", price=50000)
    order(ugx, total=150_000, fee=7_500, refunded=50_000, status=S.PARTIALLY_REFUNDED, created=at(7))

    page = web.get(URL, MARCH).content.decode()

    assert totals(page, "UGX") == {
        "orders": "1",
        "paid-orders": "1",
        "conversion": "100%",
        "revenue": "UGX100,000",
        "platform-fees": "UGX7,500",
        "earnings": "UGX92,500",
    }
    assert totals(page)["revenue"] == "$99.97"


# --- Charts --------------------------------------------------------------------------------------


def test_charts_have_a_bar_and_points_per_day_and_an_accessible_summary(web, march_orders):
    page = web.get(URL, {"start": "2026-03-01", "end": "2026-03-10"}).content.decode()

    revenue = chart_svg(page, "revenue-USD")
    assert 'role="img"' in revenue and 'aria-labelledby="revenue-USD-title revenue-USD-desc"' in revenue
    assert revenue.count('<rect class="bar"') == 10
    bars = re.findall(r'<rect class="bar"[^>]*data-value="(\d+)"', revenue)
    assert bars == ["0", "1999", "0", "2998", "0", "5000", "0", "0", "0", "0"]
    assert "<title>Mar 4: $29.98</title>" in revenue
    assert "$99.97 in total; the best day was Mar 6 with $50.00." in html.unescape(revenue)
    assert "Mar 1" in revenue and "$0.00" in revenue  # axis labels

    orders = chart_svg(page, "orders-USD")
    assert 'role="img"' in orders
    started = re.findall(r'<circle class="point"[^>]*data-value="(\d+)"', orders.split('data-series="paid"')[0])
    paid = re.findall(r'<circle class="point"[^>]*data-value="(\d+)"', orders.split('data-series="paid"')[1])
    assert started == ["0", "2", "0", "0", "1", "2", "0", "0", "0", "0"]
    assert paid == ["0", "1", "0", "1", "1", "1", "0", "0", "0", "0"]
    assert "5 started and 4 paid; the busiest day was Mar 2 with 2 started." in orders

    table = page[page.index('data-testid="daily-USD"') : page.index("</table>", page.index('data-testid="daily-USD"'))]
    assert 'class="visually-hidden"' in page[page.index("<table", page.index("orders-USD")) :][:80]
    assert table.count('<th scope="row">') == 10
    assert "Wed, Mar 4, 2026" in table and "$29.98" in table


def test_bars_are_scaled_to_round_ticks():
    assert nice_ticks(0) == [0, 1]
    assert nice_ticks(3) == [0, 1, 2, 3]
    assert nice_ticks(5000) == [0, 2000, 4000, 6000]
    assert nice_ticks(9997) == [0, 2500, 5000, 7500, 10000]
    assert nice_ticks(7) == [0, 2, 4, 6, 8]


# --- The seller's time zone and the default range ------------------------------------------------


@pytest.mark.parametrize(("time_zone", "orders"), [("UTC", "1"), ("Asia/Dhaka", "0")])
def test_days_end_at_midnight_in_the_sellers_time_zone(web, seller, ebook, time_zone, orders):
    seller.time_zone = time_zone
    seller.save(update_fields=["time_zone"])
    order(ebook, total=1999, created=datetime(2026, 3, 31, 20, 0, tzinfo=UTC))  # Dhaka: 02:00 on April 1

    response = web.get(URL, {"start": "2026-03-01", "end": "2026-03-31"})

    sections = response.context["sections"]
    assert str(sum(s["totals"]["orders"] for s in sections)) == orders
    assert time_zone in response.content.decode()


def test_default_range_is_the_last_30_days_in_the_sellers_time_zone(web, seller, ebook):
    seller.time_zone = "Pacific/Kiritimati"
    seller.save(update_fields=["time_zone"])
    today = datetime.now(ZoneInfo("Pacific/Kiritimati")).date()
    order(ebook, total=1999, created=datetime.now(UTC))
    order(ebook, total=2999, created=datetime.now(UTC) - timedelta(days=40))

    response = web.get(URL)

    assert response.status_code == 200
    days = response.context["days"]
    assert (days.start, days.end) == (today - timedelta(days=29), today)
    assert chart_svg(response.content.decode(), "revenue-USD").count('<rect class="bar"') == 30
    assert response.context["sections"][0]["totals"]["revenue"] == 1999
    page = response.content.decode()
    assert f'name="start" value="{today - timedelta(days=29)}"' in page
    assert f'name="end" value="{today}"' in page


# --- One product ---------------------------------------------------------------------------------


def test_a_product_narrows_every_figure(web, march_orders, ebook, course):
    response = web.get(URL, {**MARCH, "product": ebook.id})

    assert response.status_code == 200
    page = response.content.decode()
    assert totals(page) == {
        "orders": "4",
        "paid-orders": "3",
        "conversion": "75%",
        "revenue": "$49.97",
        "platform-fees": "$3.00",
        "earnings": "$46.97",
    }
    assert "Showing <strong>Night Ebook</strong> only." in page
    assert "top-products-USD" not in page  # one product: no ranking
    assert "Day Course" not in page.split("</select>")[1]
    bars = re.findall(r'data-value="(\d+)"', chart_svg(page, "revenue-USD"))
    assert sum(int(v) for v in bars) == 4997
    assert f'<option value="{ebook.id}" selected>' in page


def test_a_product_without_orders_shows_the_empty_state(web, march_orders, seller):
    quiet = product_for(seller, title="Quiet Product")

    response = web.get(URL, {**MARCH, "product": quiet.id})

    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-testid="empty"' in page
    assert "<svg" not in page
    assert "$99.97" not in page


def test_nothing_in_the_range_shows_the_empty_state(web, march_orders):
    response = web.get(URL, {"start": "2026-04-01", "end": "2026-04-30"})

    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-testid="empty"' in page and "No orders between Apr 1, 2026 and Apr 30, 2026" in page
    assert "<svg" not in page
    assert "Go to your products" in page


def test_a_seller_without_products_is_told_to_create_one(web):
    page = web.get(URL).content.decode()
    assert 'data-testid="empty"' in page and "Create a product" in page


# --- Isolation and access ------------------------------------------------------------------------


def test_another_sellers_data_never_appears(web, march_orders, rival):
    page = web.get(URL, MARCH).content.decode()

    assert "Rival Product" not in page
    assert "777.77" not in page and "55.55" not in page and "38.88" not in page
    assert rival.id not in page


def test_another_sellers_product_is_refused_and_shows_nothing_of_theirs(web, march_orders, rival):
    response = web.get(URL, {**MARCH, "product": rival.id})

    assert response.status_code == 400
    page = response.content.decode()
    assert value(page, "error-product") == "Choose one of your products."
    assert "Rival Product" not in page and "777.77" not in page
    assert "<svg" not in page and "sections" not in response.context


def test_anonymous_visitors_sign_in_and_buyers_are_refused(client):
    response = client.get(URL)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    client.force_login(UserFactory())
    assert client.get(URL).status_code == 403


def test_the_nav_links_to_analytics(web):
    page = web.get("/dashboard/").content.decode()
    assert 'href="/dashboard/analytics/" data-testid="nav-analytics"' in page


# --- Validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"start": "2026-03-10", "end": "2026-03-01"}, "start", "Must not be after end."),
        ({"start": "2025-01-01", "end": "2026-01-02"}, "end", "A range covers at most 366 days."),
        ({"start": "2026-13-01", "end": "2026-03-01"}, "start", "Enter a valid date."),
        ({"start": "2026-03-01", "end": "soon"}, "end", "Enter a valid date."),
        (
            {"start": "2026-03-01", "end": "2026-03-31", "product": "prd_missing"},
            "product",
            "Choose one of your products.",
        ),
    ],
)
def test_an_invalid_range_shows_the_error_next_to_the_field(web, march_orders, params, field, message):
    response = web.get(URL, params)

    assert response.status_code == 400
    page = response.content.decode()
    assert value(page, f"error-{field}") == message
    error_at = page.index(f'data-testid="error-{field}"')
    assert page.rindex(f'name="{field}"', 0, error_at) > page.rindex("<label", 0, error_at)  # under its own field
    assert "<svg" not in page and 'data-testid="invalid-range"' in page
    assert "$99.97" not in page


def test_366_days_is_the_longest_range(web, march_orders):
    response = web.get(URL, {"start": "2025-04-01", "end": "2026-04-01"})

    assert response.status_code == 200
    assert chart_svg(response.content.decode(), "revenue-USD").count('<rect class="bar"') == 366


# --- Queries -------------------------------------------------------------------------------------


def test_constant_number_of_queries_whatever_the_orders_and_days(web, seller, ebook, course):
    def count(params: dict[str, str]) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert web.get(URL, params).status_code == 200
        return len(queries.captured_queries)

    order(ebook, total=1999, created=at(2))
    small = count({"start": "2026-03-01", "end": "2026-03-03"})

    extra = [product_for(seller, title=f"Extra {n}") for n in range(4)]
    for n in range(40):
        product = [ebook, course, *extra][n % 6]
        status = S.PENDING if n % 5 == 0 else S.DELIVERED
        order(product, total=1000 + n, fee=50, refunded=n % 3, created=at(1 + n % 28), status=status)
    large = count({"start": "2025-04-01", "end": "2026-04-01"})
    narrowed = count({"start": "2025-04-01", "end": "2026-04-01", "product": ebook.id})

    assert small == large == narrowed
    # session, user, products, two daily series, conversion, top products
    assert large <= 7


def test_the_day_after_the_range_is_not_counted(web, ebook):
    order(ebook, total=1999, created=datetime(2026, 3, 31, 23, 59, 59, tzinfo=UTC))
    order(ebook, total=2999, created=datetime(2026, 4, 1, 0, 0, tzinfo=UTC))

    section = web.get(URL, MARCH).context["sections"][0]

    assert (section["totals"]["orders"], section["totals"]["revenue"]) == (1, 1999)
    assert section["rows"][-1]["date"] == date(2026, 3, 31).isoformat()


def test_top_products_can_show_all(web, seller):
    """Issue 14: the ranking stops at five, with a "Show all" link that lists every product sold."""
    for n in range(7):
        order(product_for(seller, title=f"Product {n}"), total=100 * (n + 1), created=at(10))

    page = web.get(URL, MARCH).content.decode()
    link = re.search(r'<a href="\?([^"]*)" data-testid="top-products-all-USD">([^<]*)</a>', page)
    assert link, "no Show all link"
    assert html.unescape(link.group(2)) == "Show all 7 products"
    query = html.unescape(link.group(1))
    assert "top=all" in query and "start=2026-03-01" in query and "end=2026-03-31" in query

    response = web.get(URL + "?" + query)
    assert response.status_code == 200
    top = response.context["sections"][0]["top_products"]
    assert [row["title"] for row in top] == [f"Product {n}" for n in range(6, -1, -1)]
    page = response.content.decode()
    assert 'data-testid="top-products-all-USD"' not in page
    assert 'data-testid="top-products-fewer-USD"' in page  # and back to the top five
    # Anything else than "all" is the usual top five.
    assert len(web.get(URL, {**MARCH, "top": "everything"}).context["sections"][0]["top_products"]) == 5


def test_no_show_all_link_when_everything_is_shown(web, seller):
    for n in range(5):
        order(product_for(seller, title=f"Product {n}"), total=100 * (n + 1), created=at(10))
    page = web.get(URL, MARCH).content.decode()
    assert 'data-testid="top-products-all-USD"' not in page
