"""The seller's numbers: revenue, per-day series, sales summaries, balances and the CSV export.

Every figure is an integer in the currency's minor unit, computed by the database (``Count``/``Sum``
with ``GROUP BY``), never by looping over orders in Python.

An order is *paid* when ``paid_at`` is set and its status is one of ``lifecycle.PAID_STATUSES`` (a refunded
order was paid; its refunds are subtracted). Revenue is ``total_amount - refunded_amount`` summed
over paid orders; ``platform_fee`` and ``seller_earnings`` are stored per order and already adjusted
by refunds, so they are summed as they are.
"""

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
    Window,
)
from django.db.models.functions import Coalesce, RowNumber, TruncDate

from marketplace.core.bounds import DAY_RANGE_MESSAGE, day_in_bounds
from marketplace.core.csv_cells import csv_text
from marketplace.core.errors import ValidationFailed
from marketplace.core.money import exponent

from .lifecycle import paid_q
from .models import Order, OrderItem

MAX_RANGE_DAYS = 366


def _net(prefix: str = "") -> Any:
    return F(f"{prefix}total_amount") - F(f"{prefix}refunded_amount")


def _sum(expression: Any, **kwargs: Any) -> Coalesce:
    return Coalesce(Sum(expression, **kwargs), 0)


# --- Attribution by item ---------------------------------------------------------------------------
# An order may hold items of several of the seller's products. It counts (an order started, an order
# paid) for each product it has an item of, and its money is shared between those products in
# proportion to their lines' value before the discount: a product's part of an amount (the net
# revenue, the fee, the earnings) is ``amount * product's lines / subtotal``, rounded down. For an
# order of one product the part is the whole amount, exactly; the parts of a mixed order may add up
# to a unit or two less than the order's amount (each is rounded down, never up).


def _has_item_of(product: Any, order_ref: str = "pk") -> Exists:
    return Exists(OrderItem.objects.filter(order=OuterRef(order_ref), product=product))


def _lines_value(product: Any, order_ref: str = "pk") -> Subquery:
    """The value before the discount of an order's lines of ``product`` (a correlated subquery)."""
    value = (
        OrderItem.objects.filter(order=OuterRef(order_ref), product=product)
        .order_by()
        .values("order")
        .annotate(v=Sum(F("unit_price") * F("quantity")))
        .values("v")
    )
    return Subquery(value, output_field=BigIntegerField())


def _part(amount: Any, lines_value: Any, prefix: str = "") -> Any:
    """``amount``'s part for the lines worth ``lines_value``: ``amount * lines_value / subtotal``."""
    return Case(
        When(**{f"{prefix}subtotal__lte": 0}, then=Value(0)),
        default=ExpressionWrapper(amount * lines_value / F(f"{prefix}subtotal"), output_field=BigIntegerField()),
        output_field=BigIntegerField(),
    )


# --- One product ---------------------------------------------------------------------------------


def product_revenue(*, product: Any) -> dict[str, Any]:
    """``GET /products/{id}/revenue``: one aggregate query over the orders with an item of the
    product, each counted once and its revenue attributed by item (see "Attribution by item").

    A product's currency cannot change once it has orders, and an order is in one currency.
    """
    paid = paid_q()
    row = Order.objects.filter(_has_item_of(product)).aggregate(
        order_count=Count("id"),
        paid_order_count=Count("id", filter=paid),
        total_revenue=_sum(_part(_net(), _lines_value(product)), filter=paid),
    )
    orders, paid_orders = row["order_count"], row["paid_order_count"]
    return {
        "product_id": product.id,
        "currency": product.currency,
        "total_revenue": row["total_revenue"],
        "order_count": orders,
        "paid_order_count": paid_orders,
        "conversion_rate": round(paid_orders / orders, 4) if orders else 0.0,
    }


# --- Per day -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DayRange:
    start: date
    end: date
    zone: ZoneInfo

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        """From the first day's local midnight to the midnight after the last day (exclusive)."""
        first = datetime.combine(self.start, time.min, tzinfo=self.zone)
        after = datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=self.zone)
        return first, after


def day_range(*, start: date | None, end: date | None, time_zone: str, today: date | None = None) -> DayRange:
    """Validates a range of local days; both ends included. Defaults: the last 30 days.

    Each day given must be in ``marketplace.core.bounds`` (the range's bounds add a day to its end,
    which overflows at 9999-12-31)."""
    zone = ZoneInfo(time_zone)
    out_of_bounds = {
        name: [DAY_RANGE_MESSAGE] for name, day in (("start", start), ("end", end)) if day and not day_in_bounds(day)
    }
    if out_of_bounds:
        raise ValidationFailed(f"{next(iter(out_of_bounds))}: {DAY_RANGE_MESSAGE}", fields=out_of_bounds)
    if end is None:
        end = today or datetime.now(zone).date()
    if start is None:
        start = end - timedelta(days=29)
    if start > end:
        raise ValidationFailed("start must not be after end.", fields={"start": ["Must not be after end."]})
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        message = f"A range covers at most {MAX_RANGE_DAYS} days."
        raise ValidationFailed(message, fields={"end": [message]})
    return DayRange(start, end, zone)


_ZERO_DAY = {"orders": 0, "paid_orders": 0, "revenue": 0, "platform_fees": 0, "earnings": 0}


def seller_daily_series(
    *, seller: Any, days: DayRange, product: Any = None, currency: str | None = None
) -> list[dict[str, Any]]:
    """Orders started and paid revenue per local day, one series per currency, every day present.

    ``orders`` counts orders created that day; ``paid_orders``, ``revenue``, ``platform_fees`` and
    ``earnings`` belong to the day the order was paid (its refunds, whenever they happened, are
    subtracted there). Two grouped queries, whatever the range.
    """
    first, after = days.bounds
    orders = Order.objects.filter(seller=seller)
    revenue, fees, earnings = _net(), F("platform_fee"), F("seller_earnings")
    if product is not None:  # the orders with an item of it, their money attributed by item
        orders = orders.filter(_has_item_of(product))
        revenue, fees, earnings = (_part(x, _lines_value(product)) for x in (revenue, fees, earnings))
    if currency:
        orders = orders.filter(currency=currency)

    created = (
        orders.filter(created_at__gte=first, created_at__lt=after)
        .annotate(day=TruncDate("created_at", tzinfo=days.zone))
        .values("currency", "day")
        .annotate(orders=Count("id"))
        .order_by()
    )
    paid = (
        orders.filter(paid_q(), paid_at__gte=first, paid_at__lt=after)
        .annotate(day=TruncDate("paid_at", tzinfo=days.zone))
        .values("currency", "day")
        .annotate(
            paid_orders=Count("id"),
            revenue=_sum(revenue),
            platform_fees=_sum(fees),
            earnings=_sum(earnings),
        )
        .order_by()
    )
    cells: dict[tuple[str, date], dict[str, int]] = {}
    for row in created:
        cells.setdefault((row["currency"], row["day"]), dict(_ZERO_DAY))["orders"] = row["orders"]
    for row in paid:
        cell = cells.setdefault((row["currency"], row["day"]), dict(_ZERO_DAY))
        for key in ("paid_orders", "revenue", "platform_fees", "earnings"):
            cell[key] = row[key]

    currencies = {key[0] for key in cells}
    if currency:
        currencies.add(currency)
    if not currencies:  # nothing sold in the range: zero series in the currencies the seller sells in
        products = product.__class__.objects.filter(pk=product.pk) if product is not None else seller.products.all()
        currencies = set(products.values_list("currency", flat=True).distinct())

    series = []
    for code in sorted(currencies):
        rows = [{"date": day.isoformat(), **cells.get((code, day), _ZERO_DAY)} for day in days.days]
        totals = {key: sum(row[key] for row in rows) for key in _ZERO_DAY}  # type: ignore[misc]
        series.append({"currency": code, "totals": totals, "days": rows})
    return series


# --- Conversion and top products over a range of local days -------------------------------------


def conversion_rate(converted: int, started: int) -> float:
    """``converted / started`` to four places; 0.0 when nothing was started."""
    return round(converted / started, 4) if started else 0.0


def _range_orders(
    *, seller: Any, start: date, end: date, tz: str | ZoneInfo, product: Any = None
) -> tuple[QuerySet[Order], Q, Q]:
    """The seller's orders started or paid in the range, and the two conditions that tell which."""
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    first, after = DayRange(start, end, zone).bounds
    started = Q(created_at__gte=first, created_at__lt=after)
    paid = paid_q() & Q(paid_at__gte=first, paid_at__lt=after)
    orders = Order.objects.filter(seller=seller).filter(started | paid)
    if product is not None:
        orders = orders.filter(_has_item_of(product))
    return orders, started, paid


def seller_conversion(
    *, seller: Any, start: date, end: date, tz: str | ZoneInfo, product: Any = None
) -> dict[str, dict[str, Any]]:
    """Per currency: ``started`` (orders created in the range), ``converted`` (those of them that are
    paid, whenever they were paid) and their ``rate``. A cohort, so the rate never exceeds 100 %.
    One grouped query."""
    orders, started, _ = _range_orders(seller=seller, start=start, end=end, tz=tz, product=product)
    rows = (
        orders.filter(started)
        .order_by()
        .values("currency")
        .annotate(started=Count("id"), converted=Count("id", filter=paid_q()))
        .order_by("currency")
    )
    return {
        row["currency"]: {
            "started": row["started"],
            "converted": row["converted"],
            "rate": conversion_rate(row["converted"], row["started"]),
        }
        for row in rows
    }


def top_products(
    *, seller: Any, start: date, end: date, tz: str | ZoneInfo, limit: int = 5, product: Any = None
) -> list[dict[str, Any]]:
    """The seller's best products in the range, by revenue, at most ``limit`` per currency.

    Like ``seller_daily_series``: ``paid_orders``, ``revenue`` (net of refunds), ``platform_fees``
    and ``earnings`` belong to the day an order was paid; ``started`` and ``converted`` (and so
    ``conversion_rate``) to the orders created in the range. An order counts for each product it has
    an item of, its money attributed by item (see "Attribution by item"), as in ``product_revenue``.
    One grouped query over the orders' items — one row per order and product: the product's first
    item in the order — with a window ranking the products of each currency; sorted by currency,
    then revenue, paid orders and title.
    """
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    first, after = DayRange(start, end, zone).bounds
    started = Q(order__created_at__gte=first, order__created_at__lt=after)
    paid = paid_q("order__") & Q(order__paid_at__gte=first, order__paid_at__lt=after)
    earlier_of_product = OrderItem.objects.filter(order=OuterRef("order"), product=OuterRef("product")).filter(
        Q(position__lt=OuterRef("position")) | Q(position=OuterRef("position"), id__lt=OuterRef("id"))
    )
    lines_value = Subquery(
        OrderItem.objects.filter(order=OuterRef("order"), product=OuterRef("product"))
        .order_by()
        .values("order")
        .annotate(v=Sum(F("unit_price") * F("quantity")))
        .values("v"),
        output_field=BigIntegerField(),
    )
    items = OrderItem.objects.filter(order__seller=seller).filter(started | paid).filter(~Exists(earlier_of_product))
    if product is not None:
        items = items.filter(product=product)
    rows = (
        items.order_by()
        .values("order__currency", "product_id", "product__title")
        .annotate(
            started=Count("id", filter=started),
            converted=Count("id", filter=started & paid_q("order__")),
            paid_orders=Count("id", filter=paid),
            revenue=_sum(_part(_net("order__"), lines_value, "order__"), filter=paid),
            platform_fees=_sum(_part(F("order__platform_fee"), lines_value, "order__"), filter=paid),
            earnings=_sum(_part(F("order__seller_earnings"), lines_value, "order__"), filter=paid),
        )
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("order__currency")],
                order_by=[
                    F("revenue").desc(),
                    F("paid_orders").desc(),
                    F("product__title").asc(),
                    F("product_id").asc(),
                ],
            ),
        )
        .filter(rank__lte=limit)
        .order_by("order__currency", "rank")
    )
    return [
        {
            "currency": row["order__currency"],
            "product_id": row["product_id"],
            "title": row["product__title"],
            "started": row["started"],
            "converted": row["converted"],
            "conversion_rate": conversion_rate(row["converted"], row["started"]),
            "paid_orders": row["paid_orders"],
            "revenue": row["revenue"],
            "platform_fees": row["platform_fees"],
            "earnings": row["earnings"],
        }
        for row in rows
    ]


# --- Sales summary and balance -------------------------------------------------------------------


def seller_paid_orders(*, seller: Any) -> QuerySet[Order]:
    return Order.objects.filter(paid_q(), seller=seller)


def sales_summary(orders: QuerySet[Order]) -> dict[str, Any]:
    """``my-sales``' summary over ``orders`` (already the seller's paid, filtered orders).

    One grouped query. ``by_currency`` always lists every currency; the flat amounts are those of
    the one currency, or ``null`` when the orders are in several (amounts in different currencies
    do not add up). ``total_sales`` counts orders in every currency.
    """
    rows = list(
        orders.order_by()
        .values("currency")
        .annotate(
            total_sales=Count("id"),
            total_revenue=_sum(_net()),
            total_platform_fees=_sum("platform_fee"),
            total_earnings=_sum("seller_earnings"),
        )
        .order_by("currency")
    )
    by_currency = [
        {
            "currency": row["currency"],
            "total_sales": row["total_sales"],
            "total_revenue": row["total_revenue"],
            "total_platform_fees": row["total_platform_fees"],
            "total_earnings": row["total_earnings"],
        }
        for row in rows
    ]
    summary: dict[str, Any] = {
        "currency": None,
        "total_sales": sum(row["total_sales"] for row in by_currency),
        "total_revenue": 0 if not by_currency else None,
        "total_platform_fees": 0 if not by_currency else None,
        "total_earnings": 0 if not by_currency else None,
    }
    if len(by_currency) == 1:
        summary.update(by_currency[0])
    summary["by_currency"] = by_currency
    return summary


def seller_balance(*, seller: Any) -> list[dict[str, Any]]:
    """What the seller has earned per currency: paid orders, net of refunds and platform fees."""
    rows = (
        seller_paid_orders(seller=seller)
        .order_by()
        .values("currency")
        .annotate(
            orders=Count("id"),
            revenue=_sum(_net()),
            platform_fees=_sum("platform_fee"),
            refunded=_sum("refunded_amount"),
            earnings=_sum("seller_earnings"),
        )
        .order_by("currency")
    )
    return list(rows)


# --- CSV export ----------------------------------------------------------------------------------

EXPORT_COLUMNS = (
    "order_number",
    "order_id",
    "created_at",
    "paid_at",
    "status",
    "buyer_email",
    "items",
    "currency",
    "subtotal",
    "discount_code",
    "discount_amount",
    "total_amount",
    "platform_fee",
    "seller_earnings",
    "refunded_amount",
    "payment_reference",
)
MONEY_COLUMNS = ("subtotal", "discount_amount", "total_amount", "platform_fee", "seller_earnings", "refunded_amount")
_ORDER_FIELDS = ("id", "created_at", *(c for c in EXPORT_COLUMNS if c not in ("order_id", "items", "created_at")))
EXPORT_CHUNK = 2000
# Cells that a spreadsheet would read as a formula are prefixed with an apostrophe (OWASP's advice
# for CSV injection): buyer emails, discount codes, payment references and titles come from outside.


@cache
def _scale(currency: str) -> int:
    return exponent(currency)


def major_units(amount: int, currency: str) -> str:
    """1999 USD → "19.99"; 50000 UGX → "50000"; 1234 KWD → "1.234". Exact (integers, no floats)."""
    digits = _scale(currency)
    if digits == 0:
        return str(amount)
    return format(Decimal(amount).scaleb(-digits), "f")


_text = csv_text


def _utc(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")


def _item_label(title: str, variant_name: str, quantity: int) -> str:
    label = f"{title} / {variant_name}" if variant_name else title
    return f"{label} ×{quantity}"


def _item_blocks(items: Iterable[tuple[Any, ...]]) -> Iterator[tuple[datetime, dict[str, list[str]]]]:
    """Groups the item stream (sorted like the orders) by the order's ``created_at``:
    ``(created_at, {order_id: labels})``. A block holds the orders created in the same microsecond —
    normally one."""
    current: datetime | None = None
    block: dict[str, list[str]] = {}
    for created_at, order_id, title, variant_name, quantity in items:
        if created_at != current:
            if current is not None:
                yield current, block
            current, block = created_at, {}
        block.setdefault(order_id, []).append(_item_label(title, variant_name, quantity))
    if current is not None:
        yield current, block


def export_rows(orders: QuerySet[Order], *, chunk_size: int = EXPORT_CHUNK) -> Iterator[list[str]]:
    """One row per order, newest first, in constant memory.

    Two streamed queries in the same order — the orders, and their items sorted by the order's
    ``created_at`` then position — merged like a merge join: no query per order, and only the items
    of the orders created in the current microsecond in memory. The streams are matched on
    ``created_at`` and the order id (never on how the database collates ids), so an order created
    between the two queries (its items but not itself in the streams) is skipped, not misaligned.
    """
    orders = orders.order_by("-created_at", "-id")
    order_rows = orders.values(*_ORDER_FIELDS).iterator(chunk_size=chunk_size)
    item_rows = (
        OrderItem.objects.filter(order__in=orders.order_by().values("pk"))
        .order_by("-order__created_at", "-order_id", "position", "id")
        .values_list("order__created_at", "order_id", "title", "variant_name", "quantity")
        .iterator(chunk_size=chunk_size)
    )
    blocks = _item_blocks(item_rows)
    block = next(blocks, None)
    for row in order_rows:
        while block is not None and block[0] > row["created_at"]:  # orders that are not in the stream
            block = next(blocks, None)
        labels: list[str] = []
        if block is not None and block[0] == row["created_at"]:
            labels = block[1].pop(row["id"], [])
        currency = row["currency"]
        yield [
            row["order_number"],
            row["id"],
            _utc(row["created_at"]),
            _utc(row["paid_at"]),
            row["status"],
            _text(row["buyer_email"]),
            _text("; ".join(labels)),
            currency,
            *(major_units(row[column], currency) for column in MONEY_COLUMNS[:1]),
            _text(row["discount_code"]),
            *(major_units(row[column], currency) for column in MONEY_COLUMNS[1:]),
            _text(row["payment_reference"]),
        ]


def export_csv_chunks(orders: QuerySet[Order], *, rows_per_chunk: int = 500) -> Iterator[str]:
    """The CSV text, header first, in chunks of ``rows_per_chunk`` rows (RFC 4180, CRLF lines)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    for row in export_rows(orders):
        writer.writerow(row)
        count += 1
        if count % rows_per_chunk == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
