"""The seller's customers: buyers by email with their orders and what they spent per currency,
a search, and a CSV export streamed in constant memory. Thin views over ``orders.customers``; a
seller only ever sees their own buyers."""

from datetime import datetime
from zoneinfo import ZoneInfo

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from dashboard.auth import seller_required
from orders.customers import customer_totals, customers_csv_chunks, customers_for_seller

CUSTOMERS_PER_PAGE = 50


def _query(request: HttpRequest) -> str:
    return request.GET.get("q", "").strip()[:254]


@require_GET
@seller_required
def customers(request: HttpRequest) -> HttpResponse:
    q = _query(request)
    page = Paginator(customers_for_seller(seller=request.user, q=q), CUSTOMERS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    rows = list(page.object_list)
    totals = customer_totals(seller=request.user, emails=[row["email"] for row in rows])
    for row in rows:
        row["totals"] = totals.get(row["email"], [])
    return render(
        request,
        "dashboard/customers.html",
        {
            "customers": rows,
            "page": page,
            "q": q,
            "query_string": urlencode({"q": q}) if q else "",
            "section": "customers",
        },
    )


@require_GET
@seller_required
def customers_export(request: HttpRequest) -> StreamingHttpResponse:
    q = _query(request)
    today = datetime.now(ZoneInfo(getattr(request.user, "time_zone", "") or "UTC")).date()
    response = StreamingHttpResponse(
        (chunk.encode() for chunk in customers_csv_chunks(seller=request.user, q=q)),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="customers-{today.isoformat()}.csv"'
    response["Cache-Control"] = "no-store"
    return response
