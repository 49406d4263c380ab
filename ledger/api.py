"""The seller's money over HTTP: ``GET /balance``, ``GET /balance/transactions`` and its CSV statement.
A seller (JWT or ``sk_`` key) sees only their own books."""

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.core.api import Pagination
from marketplace.core.csv_cells import csv_text
from marketplace.core.errors import NotFound
from marketplace.core.money import exponent
from marketplace.core.permissions import IsSeller, request_seller

from .filters import transaction_filters_parse, transactions_filter
from .models import BalanceTransaction, Payout
from .payouts import (
    BankAccountInput,
    payout_create,
    payout_settings_get,
    payout_settings_to_dict,
    payout_settings_update,
    payout_to_dict,
)
from .selectors import balance_for_seller, transaction_to_dict, transactions_after, transactions_for_seller
from .serializers import (
    BalanceDoc,
    BalanceTransactionDoc,
    PayoutCreateInput,
    PayoutDoc,
    PayoutSettingsDoc,
    PayoutSettingsInput,
)
from .stripe_connect import stripe_account_get

_FILTER_PARAMS = [
    OpenApiParameter("type", str, required=False, description="Comma list of transaction types."),
    OpenApiParameter("currency", str, required=False, description="Comma list of ISO 4217 codes."),
    OpenApiParameter("order", str, required=False, description="An ord_ id (comma list)."),
    OpenApiParameter("payout", str, required=False, description="A po_ id (comma list)."),
    # The operator spelling of the same fields (``$eq:`` or ``$in:`` then the value; camelCase too).
    *(
        OpenApiParameter(f"filter.{name}", str, required=False, description="`$eq:value` or `$in:a,b`.")
        for name in ("type", "currency", "order", "order_id", "payout", "payout_id")
    ),
]
_PAGE_PARAMS = [OpenApiParameter("page", int, required=False), OpenApiParameter("limit", int, required=False)]


class BalanceApi(APIView):
    permission_classes = [IsSeller]

    @extend_schema(
        operation_id="balance_retrieve",
        responses=BalanceDoc,
        description=(
            "The seller's balances per currency, sums of the ledger's lines: `pending` until each sale's "
            "`available_on` (paid_at + hold_days), then `available`; `reserved` for disputes."
        ),
    )
    def get(self, request: Request) -> Response:
        if request.query_params:  # strict input: the balance takes no parameters
            raise ValidationError({key: ["Unknown parameter."] for key in request.query_params})
        return Response(balance_for_seller(seller=request_seller(request)))


def _statement(request: Request, *, keyset: bool = False) -> QuerySet[BalanceTransaction]:
    wanted = transaction_filters_parse(request.query_params, keyset=keyset)
    return transactions_filter(transactions_for_seller(seller=request_seller(request)), wanted)


_STARTING_AFTER = OpenApiParameter(
    "starting_after",
    str,
    required=False,
    description=(
        "Keyset paging: a btx_ id from the statement; the answer is then the `limit` transactions after it "
        "(older), filtered as asked, with `pagination: {limit, has_more}` (nothing is counted: the same cost "
        "at any depth, unlike a deep `page`). Pass the last result's id to go on. Not with `page`."
    ),
)


class BalanceTransactionListApi(APIView):
    permission_classes = [IsSeller]

    @extend_schema(
        operation_id="balance_transactions_list",
        parameters=_FILTER_PARAMS + _PAGE_PARAMS + [_STARTING_AFTER],
        responses=BalanceTransactionDoc(many=True),
        description=(
            "The seller's statement, newest first: every ledger transaction with its reason, order and "
            "payout. Filters also in the operator spelling (`filter.type=$in:sale,refund`)."
        ),
    )
    def get(self, request: Request) -> Response:
        queryset = _statement(request, keyset=True)
        after = request.query_params.get("starting_after")
        if after is not None:
            if "page" in request.query_params:
                raise ValidationError({"starting_after": ["Give page or starting_after, not both."]})
            found = None
            if after.startswith("btx_") and len(after) <= 40:
                found = transactions_after(queryset, seller=request_seller(request), btx_id=after)
            if found is None:  # another seller's id is "no such" too: nothing tells it exists
                raise ValidationError({"starting_after": ["No such transaction in your statement."]})
            limit = _keyset_limit(request)
            rows = list(found[: limit + 1])
            now = timezone.now()
            return Response(
                {
                    "results": [transaction_to_dict(btx, now=now) for btx in rows[:limit]],
                    "pagination": {"limit": limit, "has_more": len(rows) > limit},
                }
            )
        paginator = Pagination()
        page = paginator.paginate_queryset(queryset, request, view=self)
        now = timezone.now()
        return paginator.get_paginated_response([transaction_to_dict(btx, now=now) for btx in page])


def _keyset_limit(request: Request) -> int:
    """``limit`` as the page-numbered list takes it: 1 to 100, 20 by default."""
    raw = request.query_params.get("limit")
    if raw is None:
        return Pagination.page_size
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({"limit": ["Must be a whole number."]}) from None
    if not 1 <= value <= Pagination.max_page_size:
        raise ValidationError({"limit": [f"Must be between 1 and {Pagination.max_page_size}."]})
    return value


class JSONErrorsNegotiation(BaseContentNegotiation):
    """Success is a CSV stream that bypasses renderers; errors are always the JSON envelope."""

    def select_parser(self, request: Any, parsers: Any) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Any, renderers: Any, format_suffix: str | None = None) -> Any:
        return renderers[0], renderers[0].media_type


CSV_COLUMNS = [
    "id",
    "created_at",
    "type",
    "description",
    "order_id",
    "payout_id",
    "currency",
    "amount",
    "status",
    "available_on",
]


class BalanceTransactionCsvApi(APIView):
    permission_classes = [IsSeller]
    content_negotiation_class = JSONErrorsNegotiation

    @extend_schema(
        operation_id="balance_transactions_csv",
        parameters=_FILTER_PARAMS,
        responses={
            (200, "text/csv"): OpenApiResponse(
                response=OpenApiTypes.STR,
                description=(
                    "UTF-8 CSV, a header row then one row per transaction, newest first: "
                    + ", ".join(CSV_COLUMNS)
                    + ". amount is a signed decimal in the currency's major unit (1999 USD → 19.99)."
                ),
            )
        },
        description="The statement as CSV, streamed in constant memory; the list's filters apply.",
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        queryset = _statement(request)
        response = StreamingHttpResponse(
            (chunk.encode() for chunk in statement_csv_chunks(queryset)), content_type="text/csv; charset=utf-8"
        )
        today = timezone.now().date().isoformat()
        response["Content-Disposition"] = f'attachment; filename="statement-{today}.csv"'
        response["Cache-Control"] = "no-store"
        return response


def major_units(amount: int, currency: str) -> str:
    """1999 USD → "19.99", -50 USD → "-0.50", 50000 UGX → "50000"."""
    places = exponent(currency)
    sign = "-" if amount < 0 else ""
    whole, part = divmod(abs(amount), 10**places)
    return f"{sign}{whole}.{part:0{places}d}" if places else f"{sign}{whole}"


def _utc(value: datetime) -> str:
    return value.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")


def statement_csv_chunks(queryset: QuerySet[BalanceTransaction], *, rows_per_chunk: int = 500) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    now = timezone.now()
    for count, btx in enumerate(queryset.iterator(chunk_size=rows_per_chunk), start=1):
        description = csv_text(btx.description)
        writer.writerow(
            [
                btx.id,
                _utc(btx.created_at),
                btx.type,
                description,
                btx.order_id,
                btx.payout_id,
                btx.currency,
                major_units(btx.amount, btx.currency),
                "pending" if btx.available_on > now else "available",
                _utc(btx.available_on),
            ]
        )
        if count % rows_per_chunk == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


# --- Payouts -----------------------------------------------------------------------------------------


def _strict(serializer_class: Any, request: Request) -> dict[str, Any]:
    if request.query_params:
        raise ValidationError({key: ["Unknown parameter."] for key in request.query_params})
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class PayoutSettingsApi(APIView):
    permission_classes = [IsSeller]

    @extend_schema(operation_id="payout_settings_retrieve", responses=PayoutSettingsDoc)
    def get(self, request: Request) -> Response:
        seller = request_seller(request)
        return Response(
            payout_settings_to_dict(
                payout_settings_get(seller=seller), stripe_account=stripe_account_get(seller=seller)
            )
        )

    @extend_schema(
        operation_id="payout_settings_update",
        request=PayoutSettingsInput,
        responses=PayoutSettingsDoc,
        description=(
            "Replaces the settings. `bank_transfer` needs `bank_account`; `stripe_connect` needs the "
            "seller's connected account to have finished Stripe's onboarding (else 409 "
            "`stripe_onboarding_incomplete`). `minimum_amount` is one figure in minor units for every "
            "currency. The account number is stored encrypted and never shown again (only `number_hint`); "
            "leave it out to keep it."
        ),
    )
    def put(self, request: Request) -> Response:
        data = _strict(PayoutSettingsInput, request)
        bank = data.get("bank_account")
        seller = request_seller(request)
        row = payout_settings_update(
            seller=seller,
            method=data["method"],
            schedule=data["schedule"],
            minimum_amount=data["minimum_amount"],
            bank_account=BankAccountInput(
                holder=bank["holder"], number=bank.get("number"), bank=bank["bank"], country=bank["country"]
            )
            if bank
            else None,
        )
        return Response(payout_settings_to_dict(row, stripe_account=stripe_account_get(seller=seller)))


class PayoutListApi(APIView):
    permission_classes = [IsSeller]

    @extend_schema(operation_id="payouts_list", parameters=_PAGE_PARAMS, responses=PayoutDoc(many=True))
    def get(self, request: Request) -> Response:
        unknown = sorted(set(request.query_params) - {"page", "limit"})
        if unknown:  # strict input: a typo is a 400, never an unfiltered list
            raise ValidationError({key: ["Unknown parameter."] for key in unknown})
        paginator = Pagination()
        page = paginator.paginate_queryset(
            Payout.objects.filter(seller=request_seller(request)).order_by("-created_at", "-id"), request, view=self
        )
        return paginator.get_paginated_response([payout_to_dict(payout) for payout in page])

    @extend_schema(
        operation_id="payouts_create",
        request=PayoutCreateInput,
        responses={201: PayoutDoc},
        description=(
            "Pays out the whole available balance in `currency` now. 409 `payout_settings_missing` "
            "without a bank account, `stripe_onboarding_incomplete` by Stripe Connect without an account "
            "that can receive payouts, `below_minimum` under the minimum. Two at once never overdraw. "
            "By Stripe Connect the transfer is made just after (the payout goes `in_transit`)."
        ),
    )
    def post(self, request: Request) -> Response:
        data = _strict(PayoutCreateInput, request)
        payout = payout_create(seller=request_seller(request), currency=data["currency"].upper(), actor=request.user)
        return Response(payout_to_dict(payout), status=201)


class PayoutDetailApi(APIView):
    permission_classes = [IsSeller]

    @extend_schema(operation_id="payouts_retrieve", responses=PayoutDoc)
    def get(self, request: Request, payout_id: str) -> Response:
        payout = Payout.objects.filter(seller=request_seller(request), pk=payout_id).first()
        if payout is None:
            raise NotFound("No such payout.")
        return Response(payout_to_dict(payout))
