"""The seller's customers: buyers by email (case-insensitive), with their paid orders, first and last
purchase, and what they spent per currency (net of refunds) — and the same as a streamed CSV.

Amounts in different currencies never add up: totals are per currency, always."""

import csv
import io
from collections.abc import Iterator
from typing import Any

from django.db.models import Count, F, Max, Min, QuerySet, Sum
from django.db.models.functions import Coalesce, Lower

from marketplace.core.csv_cells import csv_text

from .analytics import major_units
from .lifecycle import paid_q
from .models import Order

CSV_COLUMNS = ("email", "currency", "orders", "total_spent", "refunded", "first_order_at", "last_order_at")


def _paid_orders(*, seller: Any, q: str = "") -> Any:  # QuerySet[Order] annotated with email
    orders = Order.objects.filter(paid_q(), seller=seller)
    q = (q or "").strip()
    if q:
        orders = orders.filter(buyer_email__icontains=q)
    return orders.annotate(email=Lower("buyer_email"))


def customers_for_seller(*, seller: Any, q: str = "") -> QuerySet[Any]:
    """One row per buyer email, the most recent buyer first: ``{email, orders, first_order_at,
    last_order_at}`` (one grouped query; paginate it, then ask ``customer_totals`` for the page)."""
    return (
        _paid_orders(seller=seller, q=q)
        .values("email")
        .annotate(orders=Count("id"), first_order_at=Min("paid_at"), last_order_at=Max("paid_at"))
        .order_by("-last_order_at", "email")
    )


def customer_totals(*, seller: Any, emails: list[str]) -> dict[str, list[dict[str, Any]]]:
    """What each of ``emails`` spent, per currency: ``{email: [{currency, orders, spent, refunded}]}``."""
    if not emails:
        return {}
    rows = (
        _paid_orders(seller=seller)
        .filter(email__in=emails)
        .values("email", "currency")
        .annotate(
            orders=Count("id"),
            spent=Coalesce(Sum(F("total_amount") - F("refunded_amount")), 0),
            refunded=Coalesce(Sum("refunded_amount"), 0),
        )
        .order_by("email", "currency")
    )
    totals: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        totals.setdefault(row["email"], []).append(row)
    return totals


def _utc(moment: Any) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else ""


def customers_csv_chunks(*, seller: Any, q: str = "", rows_per_chunk: int = 500) -> Iterator[str]:
    """The CSV (RFC 4180), header first: one row per buyer and currency, by email, streamed from
    one query in constant memory. Emails are made safe for spreadsheets (``csv_text``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    rows = (
        _paid_orders(seller=seller, q=q)
        .values("email", "currency")
        .annotate(
            orders=Count("id"),
            spent=Coalesce(Sum(F("total_amount") - F("refunded_amount")), 0),
            refunded=Coalesce(Sum("refunded_amount"), 0),
            first_order_at=Min("paid_at"),
            last_order_at=Max("paid_at"),
        )
        .order_by("email", "currency")
        .iterator(chunk_size=2000)
    )
    for count, row in enumerate(rows, 1):
        writer.writerow(
            [
                csv_text(row["email"]),
                row["currency"],
                row["orders"],
                major_units(row["spent"], row["currency"]),
                major_units(row["refunded"], row["currency"]),
                _utc(row["first_order_at"]),
                _utc(row["last_order_at"]),
            ]
        )
        if count % rows_per_chunk == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
