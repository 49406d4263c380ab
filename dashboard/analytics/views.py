"""The seller's Analytics page: revenue and orders per day as inline SVG charts, conversion, top
products and earnings after the platform fee, over a range of days in the seller's time zone.

Thin: the form validates the range (``orders.analytics.day_range``, at most 366 days) and the
product; the numbers come from ``orders.analytics`` (database aggregates, a constant number of
queries whatever the range or the number of orders); this module only lays them out as charts.
The charts are drawn here, server-side, so the page needs no charting library and no JavaScript.
"""

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date
from babel.numbers import format_compact_currency, format_percent
from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from catalog.models import Product
from dashboard.auth import seller_required
from marketplace.core.errors import ValidationFailed
from marketplace.core.money import exponent, format_money
from orders.analytics import (
    MAX_RANGE_DAYS,
    DayRange,
    day_range,
    seller_conversion,
    seller_daily_series,
    top_products,
)

LOCALE = "en_US"
TOP_PRODUCTS = 5
PRESETS = ((7, "Last 7 days"), (30, "Last 30 days"), (90, "Last 90 days"), (365, "Last 365 days"))

# Chart geometry, in SVG user units (the SVG scales to the card's width).
WIDTH, HEIGHT = 880, 240
LEFT, RIGHT, TOP, BOTTOM = 88, 16, 16, 36
MAX_X_LABELS = 8


# --- The range and the product -------------------------------------------------------------------


class AnalyticsForm(forms.Form):
    start = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    product = forms.ChoiceField(label="Product", required=False)

    def __init__(self, data: Any, *, products: list[Product], time_zone: str) -> None:
        super().__init__(data)
        self.time_zone = time_zone
        self.products = {product.id: product for product in products}
        product_field: Any = self.fields["product"]
        product_field.choices = [("", "All products"), *((p.id, p.title) for p in products)]
        product_field.error_messages["invalid_choice"] = "Choose one of your products."

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if "start" in self.errors or "end" in self.errors:
            return data
        try:
            data["days"] = day_range(start=data.get("start"), end=data.get("end"), time_zone=self.time_zone)
        except ValidationFailed as exc:
            for name, field_messages in (exc.fields or {"end": [exc.message]}).items():
                for message in field_messages:
                    self.add_error(name, message)
        return data

    @property
    def selected_product(self) -> Product | None:
        return self.products.get(self.cleaned_data.get("product") or "")


# --- Charts --------------------------------------------------------------------------------------


@dataclass
class Tick:
    y: float
    label: str


@dataclass
class XLabel:
    x: float
    label: str


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: int
    title: str


@dataclass
class Point:
    x: float
    y: float
    value: int
    title: str


@dataclass
class Line:
    key: str
    label: str
    points: list[Point]

    @property
    def path(self) -> str:
        return " ".join(f"{point.x:.1f},{point.y:.1f}" for point in self.points)

    @property
    def area(self) -> str:
        """The polygon between the line and the x axis."""
        base = HEIGHT - BOTTOM
        return f"{self.points[0].x:.1f},{base} {self.path} {self.points[-1].x:.1f},{base}"


@dataclass
class Chart:
    id: str
    title: str
    description: str
    ticks: list[Tick]
    x_labels: list[XLabel]
    bars: list[Bar] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM


def nice_ticks(maximum: int) -> list[int]:
    """0 and four or five round steps (1, 2, 2.5 or 5 × 10ⁿ, whole numbers) up to at least ``maximum``."""
    if maximum <= 0:
        return [0, 1]
    raw = maximum / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    multiples = (1, 2, 2.5, 5, 10) if magnitude >= 10 else (1, 2, 5, 10)
    step = next(m * magnitude for m in multiples if m * magnitude >= raw)
    step = max(1, math.ceil(step))
    top = math.ceil(maximum / step) * step
    return list(range(0, top + 1, step))


def _day_label(day: date) -> str:
    return format_date(day, "MMM d", locale=LOCALE)


def _plot(days: list[date], maximum: int, label: Any) -> tuple[float, Any, list[Tick], list[XLabel]]:
    """The slot width, a value → y function, the y-axis ticks and the x-axis labels."""
    ticks = nice_ticks(maximum)
    plot_height = HEIGHT - BOTTOM - TOP
    slot = (WIDTH - LEFT - RIGHT) / len(days)

    def y(value: int) -> float:
        return HEIGHT - BOTTOM - plot_height * value / ticks[-1]

    every = math.ceil(len(days) / MAX_X_LABELS)
    x_labels = [XLabel(LEFT + slot * (n + 0.5), _day_label(day)) for n, day in enumerate(days) if n % every == 0]
    return slot, y, [Tick(y(tick), label(tick)) for tick in ticks], x_labels


def _span(days: list[date]) -> str:
    first, last = days[0], days[-1]
    return f"{format_date(first, 'MMM d, y', locale=LOCALE)} to {format_date(last, 'MMM d, y', locale=LOCALE)}"


def _tick_money(amount: int, currency: str) -> str:
    """A y-axis label, short enough to stay readable when the chart shrinks to a phone: "$2.5K",
    "$10K", "€1.25M" (the bars' titles and the summary keep the exact amounts)."""
    digits = exponent(currency)
    value = Decimal(amount).scaleb(-digits)
    return str(format_compact_currency(value, currency, locale=LOCALE, fraction_digits=digits))


def revenue_chart(currency: str, rows: list[dict[str, Any]], days: list[date]) -> Chart:
    """One bar per day: revenue net of refunds of the orders paid that day."""
    values = [row["revenue"] for row in rows]
    slot, y, ticks, x_labels = _plot(days, max(values), lambda tick: _tick_money(tick, currency))
    width = max(1.0, slot * 0.7)
    bars = []
    for n, (day, value) in enumerate(zip(days, values, strict=True)):
        top = y(value)
        title = f"{_day_label(day)}: {format_money(value, currency, LOCALE)}"
        bars.append(Bar(LEFT + slot * n + (slot - width) / 2, top, width, HEIGHT - BOTTOM - top, value, title))
    best = max(range(len(values)), key=lambda n: values[n])
    summary = f"Revenue per day in {currency}, {_span(days)}: {format_money(sum(values), currency, LOCALE)} in total"
    if values[best]:
        summary += f"; the best day was {_day_label(days[best])} with {format_money(values[best], currency, LOCALE)}"
    return Chart(
        id=f"revenue-{currency}",
        title=f"Revenue per day ({currency})",
        description=summary + ".",
        ticks=ticks,
        x_labels=x_labels,
        bars=bars,
    )


def orders_chart(currency: str, rows: list[dict[str, Any]], days: list[date]) -> Chart:
    """Two lines: orders started each day and orders paid each day."""
    started = [row["orders"] for row in rows]
    paid = [row["paid_orders"] for row in rows]
    slot, y, ticks, x_labels = _plot(days, max(started + paid), str)

    def line(key: str, label: str, values: list[int]) -> Line:
        return Line(
            key,
            label,
            [
                Point(LEFT + slot * (n + 0.5), y(value), value, f"{_day_label(day)}: {value} {label.lower()}")
                for n, (day, value) in enumerate(zip(days, values, strict=True))
            ],
        )

    busiest = max(range(len(started)), key=lambda n: started[n])
    summary = (
        f"Orders per day in {currency}, {_span(days)}: {sum(started)} started and {sum(paid)} paid"
        + (
            f"; the busiest day was {_day_label(days[busiest])} with {started[busiest]} started"
            if started[busiest]
            else ""
        )
        + "."
    )
    return Chart(
        id=f"orders-{currency}",
        title=f"Orders per day ({currency})",
        description=summary,
        ticks=ticks,
        x_labels=x_labels,
        lines=[line("started", "Orders started", started), line("paid", "Paid orders", paid)],
    )


# --- The page ------------------------------------------------------------------------------------


def _percent(rate: float) -> str:
    return str(format_percent(rate, format="#,##0.#%", locale=LOCALE))


def _sections(
    *, seller: Any, days: DayRange, product: Product | None, product_count: int, show_all: bool = False
) -> list[dict[str, Any]]:
    """One section per currency: totals, conversion, both charts, the daily rows and top products
    (the first TOP_PRODUCTS, or all of them with ``show_all``; every product sold is fetched in the
    same one query, at most one row per product of the seller, so the page can say how many there are)."""
    series = seller_daily_series(seller=seller, days=days, product=product)
    conversion = seller_conversion(seller=seller, start=days.start, end=days.end, tz=days.zone, product=product)
    limit = max(product_count, TOP_PRODUCTS)
    top = top_products(seller=seller, start=days.start, end=days.end, tz=days.zone, limit=limit, product=product)
    day_list = days.days
    sections = []
    for block in series:
        currency, rows = block["currency"], block["days"]
        cohort = conversion.get(currency, {"started": 0, "converted": 0, "rate": 0.0})
        products = [
            dict(row, conversion=_percent(row["conversion_rate"])) for row in top if row["currency"] == currency
        ]
        sections.append(
            {
                "currency": currency,
                "totals": block["totals"],
                "conversion": dict(cohort, percent=_percent(cohort["rate"])),
                "charts": [revenue_chart(currency, rows, day_list), orders_chart(currency, rows, day_list)],
                "rows": [
                    dict(row, label=format_date(day, "EEE, MMM d, y", locale=LOCALE))
                    for row, day in zip(rows, day_list, strict=True)
                ],
                "top_products": products if show_all else products[:TOP_PRODUCTS],
                "top_products_count": len(products),
                "top_products_more": len(products) > TOP_PRODUCTS,
                "empty": not (block["totals"]["orders"] or block["totals"]["paid_orders"]),
            }
        )
    return sections


@require_GET
@seller_required
def analytics(request: HttpRequest) -> HttpResponse:
    seller: Any = request.user  # a signed-in seller (seller_required)
    time_zone = getattr(seller, "time_zone", "") or "UTC"
    products = list(Product.objects.filter(seller=seller).order_by("title", "id").only("id", "title", "currency"))
    form = AnalyticsForm(request.GET, products=products, time_zone=time_zone)
    today = datetime.now(ZoneInfo(time_zone)).date()
    context: dict[str, Any] = {"form": form, "time_zone": time_zone, "has_products": bool(products)}
    if not form.is_valid():
        context["presets"] = _presets(today, "")
        return render(request, "dashboard/analytics.html", context, status=400)

    days: DayRange = form.cleaned_data["days"]
    shown = request.GET.copy()  # the date fields show the range in effect, defaults included
    shown["start"], shown["end"] = days.start.isoformat(), days.end.isoformat()
    form.data = shown
    product = form.selected_product
    show_all = request.GET.get("top") == "all"
    sections = _sections(seller=seller, days=days, product=product, product_count=len(products), show_all=show_all)
    context.update(
        {
            "days": days,
            "day_count": len(days.days),
            "span": _span(days.days),
            "product": product,
            "sections": sections,
            "empty": all(section["empty"] for section in sections),
            "presets": _presets(today, product.id if product else "", current=days),
            "all_products_query": urlencode({"start": days.start.isoformat(), "end": days.end.isoformat()}),
            "max_days": MAX_RANGE_DAYS,
            "show_all": show_all,
            "top_limit": TOP_PRODUCTS,
        }
    )
    return render(request, "dashboard/analytics.html", context)


def _presets(today: date, product_id: str, current: DayRange | None = None) -> list[dict[str, Any]]:
    presets = []
    for count, label in PRESETS:
        start = today - timedelta(days=count - 1)
        query = {"start": start.isoformat(), "end": today.isoformat()}
        if product_id:
            query["product"] = product_id
        selected = current is not None and (current.start, current.end) == (start, today)
        presets.append({"label": label, "query": urlencode(query), "current": selected})
    return presets
