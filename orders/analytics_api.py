"""The seller's numbers over HTTP (a product's revenue, per-day series, my-sales, the CSV export) and
the buyer's purchases.

Thin: parse and validate, call ``orders.analytics`` or the order selectors, present.
"""

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Q, QuerySet
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTAuthentication

from catalog.models import Product
from marketplace.accounts.authentication import APIKeyAuthentication
from marketplace.accounts.models import validate_time_zone
from marketplace.core.api import Pagination
from marketplace.core.errors import NotFound
from marketplace.core.money import validate_currency
from marketplace.core.permissions import IsSeller, request_seller

from .analytics import (
    EXPORT_COLUMNS,
    day_range,
    export_csv_chunks,
    product_revenue,
    sales_summary,
    seller_daily_series,
    seller_paid_orders,
)
from .filters import OrderFilter, order_filter_parameters
from .presenters import order_summary_to_dict
from .schema import OrderDoc
from .selectors import buyer_owns_q, orders_for_list

_PAGE = [OpenApiParameter("page", OpenApiTypes.INT), OpenApiParameter("limit", OpenApiTypes.INT)]
_FILTER_PARAMS = order_filter_parameters()


def _filtered(request: Request, queryset: QuerySet[Any]) -> QuerySet[Any]:
    filterset = OrderFilter(request.query_params, queryset=queryset)
    if not filterset.is_valid():
        raise ValidationError(filterset.errors)
    return filterset.qs


# --- A product's revenue -------------------------------------------------------------------------


class ProductRevenueApi(APIView):
    """``GET /products/{id}/revenue``. Under the catalog's path, but orders' figures: it lives here so
    that the catalog never imports orders (the URL and its name are unchanged)."""

    permission_classes = [IsSeller]

    @extend_schema(
        operation_id="products_revenue",
        responses=inline_serializer(
            "ProductRevenue",
            {
                "product_id": serializers.CharField(),
                "currency": serializers.CharField(),
                "total_revenue": serializers.IntegerField(help_text="Paid orders, net of refunds (minor units)."),
                "order_count": serializers.IntegerField(help_text="Every order started, paid or not."),
                "paid_order_count": serializers.IntegerField(),
                "conversion_rate": serializers.FloatField(help_text="paid / all orders, 4 decimals; 0 without orders."),
            },
        ),
    )
    def get(self, request: Request, product_id: str) -> Response:
        product = Product.objects.filter(seller=request_seller(request), id=product_id).first()
        if product is None:
            raise NotFound("Product not found.")
        return Response(product_revenue(product=product))


# --- Per-day series ------------------------------------------------------------------------------


class DailyQuery(serializers.Serializer):
    start = serializers.DateField(required=False, help_text="First local day (YYYY-MM-DD); default: end − 29 days.")
    end = serializers.DateField(required=False, help_text="Last local day, included; default: today.")
    product = serializers.CharField(required=False, help_text="A product id (or slug) of the seller's.")
    currency = serializers.CharField(required=False, min_length=3, max_length=3)
    time_zone = serializers.CharField(
        required=False, max_length=64, help_text="IANA name; default: the seller's own time zone."
    )

    def validate_currency(self, value: str) -> str:
        value = value.upper()
        try:
            validate_currency(value)
        except Exception as exc:
            raise serializers.ValidationError(f"'{value}' is not an ISO 4217 currency code.") from exc
        return value

    def validate_time_zone(self, value: str) -> str:
        try:
            validate_time_zone(value)
        except Exception as exc:
            raise serializers.ValidationError(f"'{value}' is not a known IANA time zone.") from exc
        return value


_AMOUNTS: dict[str, serializers.Field] = {
    "orders": serializers.IntegerField(help_text="Orders started (created) that day."),
    "paid_orders": serializers.IntegerField(help_text="Orders paid that day."),
    "revenue": serializers.IntegerField(help_text="Paid that day, net of their refunds (minor units)."),
    "platform_fees": serializers.IntegerField(),
    "earnings": serializers.IntegerField(),
}
DailyDoc = inline_serializer(
    "DailySeries",
    {
        "start": serializers.DateField(),
        "end": serializers.DateField(),
        "time_zone": serializers.CharField(),
        "product_id": serializers.CharField(allow_null=True),
        "series": inline_serializer(
            "DailyCurrencySeries",
            {
                "currency": serializers.CharField(),
                "totals": inline_serializer("DailyTotals", _AMOUNTS),
                "days": inline_serializer("DailyRow", {"date": serializers.DateField(), **_AMOUNTS}, many=True),
            },
            many=True,
        ),
    },
)


class AnalyticsDailyApi(APIView):
    permission_classes = [IsSeller]

    @extend_schema(
        operation_id="analytics_daily",
        parameters=[DailyQuery],
        responses=DailyDoc,
        description=(
            "Orders and revenue per day in the seller's time zone (or `time_zone`), one series per "
            "currency, every day of the range present (zeros filled). At most 366 days."
        ),
    )
    def get(self, request: Request) -> Response:
        seller = request_seller(request)
        query = DailyQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        time_zone = params.get("time_zone") or seller.time_zone or "UTC"
        days = day_range(start=params.get("start"), end=params.get("end"), time_zone=time_zone)
        product = None
        if params.get("product"):
            ref = params["product"]
            product = Product.objects.filter(Q(id=ref) | Q(slug=ref), seller=seller).first()
            if product is None:
                raise NotFound("Product not found.")
        series = seller_daily_series(seller=seller, days=days, product=product, currency=params.get("currency"))
        return Response(
            {
                "start": days.start.isoformat(),
                "end": days.end.isoformat(),
                "time_zone": time_zone,
                "product_id": product.id if product else None,
                "series": series,
            }
        )


# --- my-sales ------------------------------------------------------------------------------------

_SUMMARY_FIELDS: dict[str, serializers.Field] = {
    "total_sales": serializers.IntegerField(help_text="Paid orders (every currency)."),
    "total_revenue": serializers.IntegerField(
        allow_null=True, help_text="Net of refunds; null with several currencies."
    ),
    "total_platform_fees": serializers.IntegerField(allow_null=True),
    "total_earnings": serializers.IntegerField(allow_null=True),
}
MySalesDoc = inline_serializer(
    "MySales",
    {
        "results": OrderDoc(many=True),
        "summary": inline_serializer(
            "SalesSummary",
            {
                "currency": serializers.CharField(allow_null=True, help_text="Null when the sales are in several."),
                **_SUMMARY_FIELDS,
                "by_currency": inline_serializer(
                    "SalesSummaryCurrency",
                    {"currency": serializers.CharField(), **_SUMMARY_FIELDS},
                    many=True,
                ),
            },
        ),
        "pagination": inline_serializer(
            "MySalesPagination",
            {name: serializers.IntegerField() for name in ("page", "limit", "total_items", "total_pages")},
        ),
    },
)


class MySalesApi(APIView):
    permission_classes = [IsSeller]

    @extend_schema(
        operation_id="orders_my_sales",
        parameters=[*_FILTER_PARAMS, *_PAGE],
        responses=MySalesDoc,
        description=(
            "The seller's paid orders (the order list's filters apply) and a summary over all of them, "
            "not only the page. With one currency the summary's amounts are that currency's; with "
            "several they are null and `by_currency` has each one. Like every list, the orders carry no "
            "codes, keys or delivery content; `GET /api/v1/orders/{id}` shows them (and records the read)."
        ),
    )
    def get(self, request: Request) -> Response:
        seller = request_seller(request)
        paid = _filtered(request, seller_paid_orders(seller=seller))
        paginator = Pagination()
        page = paginator.paginate_queryset(
            orders_for_list().filter(pk__in=paid.values("pk")).order_by("-created_at", "-id"), request, view=self
        )
        return Response(
            {
                "results": [order_summary_to_dict(order) for order in page],
                "summary": sales_summary(paid),
                "pagination": paginator.get_pagination(),
            }
        )


# --- my-orders -----------------------------------------------------------------------------------


def buyer_orders(*, user: Any) -> QuerySet[Any]:
    """The orders the user placed while signed in and, once the account's email is verified, those
    placed as a guest with it (``buyer_owns_q``). Registration alone does not prove the address, so
    before that they would hand an ``ord_`` capability and its codes to whoever registers first with
    someone else's email; the library's one-time email link reaches them meanwhile."""
    return orders_for_list().filter(buyer_owns_q(user)).order_by("-created_at", "-id")


class MyOrdersApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="orders_my_orders",
        parameters=[*_FILTER_PARAMS, *_PAGE],
        responses=OrderDoc(many=True),
        description=(
            "The signed-in user's purchases, newest first, as the buyer sees them, without codes, keys or "
            "delivery content (`voucher_codes` empty, `delivery` null): each order's own page shows those."
        ),
    )
    def get(self, request: Request) -> Response:
        paginator = Pagination()
        page = paginator.paginate_queryset(_filtered(request, buyer_orders(user=request.user)), request, view=self)
        return paginator.get_paginated_response([order_summary_to_dict(order, audience="buyer") for order in page])


# --- export.csv ----------------------------------------------------------------------------------


class JSONErrorsNegotiation(BaseContentNegotiation):
    """Success is a CSV stream that bypasses renderers; errors are always the JSON envelope, whatever
    ``Accept`` says (a client asking for ``text/csv`` must not get a 406 instead of its file)."""

    def select_parser(self, request: Any, parsers: Any) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Any, renderers: Any, format_suffix: str | None = None) -> Any:
        return renderers[0], renderers[0].media_type


class OrderExportCsvApi(APIView):
    # The dashboard's "Export CSV" link signs in with the session; integrations with JWT or sk_ keys.
    authentication_classes = [APIKeyAuthentication, JWTAuthentication, SessionAuthentication]
    permission_classes = [IsSeller]
    content_negotiation_class = JSONErrorsNegotiation

    @extend_schema(
        operation_id="orders_export_csv",
        parameters=_FILTER_PARAMS,
        responses={
            (200, "text/csv"): OpenApiResponse(
                response=OpenApiTypes.STR,
                description=(
                    "UTF-8 CSV (RFC 4180), one header row then one row per order, newest first: "
                    + ", ".join(EXPORT_COLUMNS)
                    + ". Times are ISO 8601 UTC. Money columns are decimal strings in the currency's major "
                    "unit with its ISO 4217 exponent (1999 USD → 19.99, 50000 UGX → 50000, 1234 KWD → "
                    "1.234). items: 'Title / Variant ×2; …'. Text cells starting with = + - @ get a "
                    "leading apostrophe so spreadsheets do not run them as formulas."
                ),
            )
        },
        description="Streams the seller's orders (the order list's filters apply) as CSV, in constant memory.",
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        seller = request_seller(request)
        orders = _filtered(request, seller.sales.all())
        today = datetime.now(ZoneInfo(seller.time_zone or "UTC")).date()
        response = StreamingHttpResponse(
            (chunk.encode() for chunk in export_csv_chunks(orders)), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="orders-{today.isoformat()}.csv"'
        response["Cache-Control"] = "no-store"
        return response
