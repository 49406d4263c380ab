"""The seller's catalog API. Thin: parse, call a service or selector, serialize."""

from typing import Any, cast

from django.conf import settings
from django.db.models import Count
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.accounts.models import User
from marketplace.core.api import Pagination
from marketplace.core.errors import NotFound, PayloadTooLarge, ValidationFailed
from marketplace.core.parsers import JSONParser
from marketplace.core.permissions import IsSeller

from .delivery import partner_secret_of
from .discounts import discount_get, discount_save
from .inventory import code_set_status, codes_import, rows_from_csv, rows_from_json
from .models import Code, CodeStatus, Discount, Variant
from .selectors import product_get, product_list
from .serializers import (
    CodeImportResultOutput,
    CodeOutput,
    CodesImportInput,
    DiscountInput,
    DiscountOutput,
    ProductInput,
    ProductOutput,
    UploadInput,
    UploadOutput,
)
from .services import product_archive_or_delete, product_create, product_update, upload_create

# Multipart framing around the file itself (boundaries, part headers) is small; anything beyond the
# limit plus this much is refused before a single byte of it is read.
_MULTIPART_OVERHEAD = 64 * 1024


def _seller(request: Request) -> User:
    return cast(User, request.user)


class ProductListApi(APIView):
    permission_classes = [IsSeller]
    parser_classes = [JSONParser]

    @extend_schema(
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, enum=["draft", "active", "archived"]),
            OpenApiParameter("page", OpenApiTypes.INT),
            OpenApiParameter("limit", OpenApiTypes.INT),
        ],
        responses=ProductOutput(many=True),
    )
    def get(self, request: Request) -> Response:
        products = product_list(seller=_seller(request), status=request.query_params.get("status") or None)
        paginator = Pagination()
        page = paginator.paginate_queryset(products, request, view=self)
        return paginator.get_paginated_response(ProductOutput(page, many=True).data)

    @extend_schema(request=ProductInput, responses={201: ProductOutput})
    def post(self, request: Request) -> Response:
        data = ProductInput(data=request.data)
        data.is_valid(raise_exception=True)
        product = product_create(seller=_seller(request), **data.validated_data)
        # A partner signing secret is shown here, once; afterwards only its hint.
        return Response(
            ProductOutput(product, context={"reveal_partner_secret": True}).data, status=status.HTTP_201_CREATED
        )


class ProductDetailApi(APIView):
    permission_classes = [IsSeller]
    parser_classes = [JSONParser]

    @extend_schema(responses=ProductOutput)
    def get(self, request: Request, product_id: str) -> Response:
        product = product_get(seller=_seller(request), product_id=product_id)
        return Response(ProductOutput(product).data)

    @extend_schema(request=ProductInput(partial=True), responses=ProductOutput)
    def patch(self, request: Request, product_id: str) -> Response:
        product = product_get(seller=_seller(request), product_id=product_id)
        data = ProductInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        secret_before = partner_secret_of(product)
        product = product_update(product=product, data=data.validated_data)
        # A new signing secret (asked for, or made when the product became partner_api) is shown
        # in this answer, once; a kept one never again.
        replaced = partner_secret_of(product) not in ("", secret_before)
        return Response(ProductOutput(product, context={"reveal_partner_secret": replaced}).data)

    @extend_schema(responses={200: ProductOutput, 204: None})
    def delete(self, request: Request, product_id: str) -> Response:
        product = product_get(seller=_seller(request), product_id=product_id)
        archived = product_archive_or_delete(product=product)
        if archived is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(ProductOutput(archived).data)


class UploadApi(APIView):
    permission_classes = [IsSeller]
    parser_classes = [MultiPartParser]

    @extend_schema(request={"multipart/form-data": UploadInput}, responses={201: UploadOutput})
    def post(self, request: Request) -> Response:
        limit = settings.MAX_UPLOAD_SIZE
        if _content_length(request) > limit + _MULTIPART_OVERHEAD:
            raise PayloadTooLarge(f"The file is larger than the limit of {limit} bytes.")
        data = UploadInput(data=request.data)
        data.is_valid(raise_exception=True)
        upload = upload_create(seller=_seller(request), file=data.validated_data["file"])
        return Response(UploadOutput(upload).data, status=status.HTTP_201_CREATED)


def _content_length(request: Request) -> int:
    raw: Any = request.META.get("CONTENT_LENGTH") or 0
    try:
        return int(raw)
    except (TypeError, ValueError):
        return 0


# --- Code pools ----------------------------------------------------------------------------------


def _variant_of(request: Request, product_id: str, variant_id: str) -> Any:
    product = product_get(seller=_seller(request), product_id=product_id)
    variant = Variant.objects.select_related("product").filter(product=product, id=variant_id).first()
    if variant is None:
        raise NotFound("Variant not found.", code="variant_not_found")
    return variant


class CodeListApi(APIView):
    """Import codes into a variant's pool (JSON or CSV) and list them — hints only, never codes."""

    permission_classes = [IsSeller]
    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "status", OpenApiTypes.STR, enum=["AVAILABLE", "ALLOCATED", "DELIVERED", "BLOCKED", "REVOKED"]
            ),
            OpenApiParameter("page", OpenApiTypes.INT),
            OpenApiParameter("limit", OpenApiTypes.INT),
        ],
        responses=CodeOutput(many=True),
    )
    def get(self, request: Request, product_id: str, variant_id: str) -> Response:
        variant = _variant_of(request, product_id, variant_id)
        codes = Code.objects.filter(variant=variant).order_by("created_at", "id").defer("code", "pin")
        wanted = request.query_params.get("status")
        if wanted:
            statuses = [s.strip().upper() for s in wanted.split(",") if s.strip()]
            unknown = [s for s in statuses if s not in CodeStatus.values]
            if unknown:
                raise ValidationFailed(fields={"status": [f"Unknown status: {', '.join(unknown)}."]})
            codes = codes.filter(status__in=statuses)
        counts = {status: 0 for status in CodeStatus.values}
        for row in Code.objects.filter(variant=variant).values("status").annotate(n=Count("id")):
            counts[row["status"]] = row["n"]
        paginator = Pagination()
        page = paginator.paginate_queryset(codes, request, view=self)
        return Response(
            {
                "results": CodeOutput(page, many=True).data,
                "counts": counts,
                "pagination": paginator.get_pagination(),
            }
        )

    @extend_schema(
        request=CodesImportInput,
        responses={
            201: CodeImportResultOutput,
            200: OpenApiResponse(CodeImportResultOutput, description="Nothing new was imported."),
        },
    )
    def post(self, request: Request, product_id: str, variant_id: str) -> Response:
        variant = _variant_of(request, product_id, variant_id)
        upload = request.FILES.get("file")
        if upload is not None:
            result = codes_import(variant=variant, rows=rows_from_csv(upload.file))
        elif isinstance(request.data, dict) and "codes" in request.data:
            result = codes_import(variant=variant, rows=rows_from_json(request.data["codes"]))
        else:
            message = 'Send JSON {"codes": [{"code": ...}]} or a multipart CSV `file`.'
            raise ValidationFailed(message, fields={"codes": [message]})
        return Response(result.as_dict(), status=status.HTTP_201_CREATED if result.imported else status.HTTP_200_OK)


class CodeActionApi(APIView):
    permission_classes = [IsSeller]

    @extend_schema(
        operation_id="codes_action",
        request=None,
        responses=CodeOutput,
        parameters=[
            OpenApiParameter("action", OpenApiTypes.STR, OpenApiParameter.PATH, enum=["block", "unblock", "revoke"])
        ],
    )
    def post(self, request: Request, product_id: str, variant_id: str, code_id: str, action: str) -> Response:
        if action not in ("block", "unblock", "revoke"):
            raise NotFound("Unknown action: use block, unblock or revoke.")
        variant = _variant_of(request, product_id, variant_id)
        code = code_set_status(variant=variant, code_id=code_id, action=action)
        return Response(CodeOutput(code).data)


# --- Discounts -----------------------------------------------------------------------------------


def _body(request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise ValidationFailed("Send a JSON object.")
    return dict(request.data)


class DiscountListApi(APIView):
    permission_classes = [IsSeller]
    parser_classes = [JSONParser]

    @extend_schema(
        parameters=[OpenApiParameter("page", OpenApiTypes.INT), OpenApiParameter("limit", OpenApiTypes.INT)],
        responses=DiscountOutput(many=True),
    )
    def get(self, request: Request) -> Response:
        discounts = (
            Discount.objects.filter(seller=_seller(request)).prefetch_related("products").order_by("-created_at")
        )
        paginator = Pagination()
        page = paginator.paginate_queryset(discounts, request, view=self)
        return paginator.get_paginated_response(DiscountOutput(page, many=True).data)

    @extend_schema(request=DiscountInput, responses={201: DiscountOutput})
    def post(self, request: Request) -> Response:
        discount = discount_save(seller=_seller(request), data=_body(request))
        discount = discount_get(seller=_seller(request), discount_id=discount.id)
        return Response(DiscountOutput(discount).data, status=status.HTTP_201_CREATED)


class DiscountDetailApi(APIView):
    permission_classes = [IsSeller]
    parser_classes = [JSONParser]

    @extend_schema(responses=DiscountOutput)
    def get(self, request: Request, discount_id: str) -> Response:
        return Response(DiscountOutput(discount_get(seller=_seller(request), discount_id=discount_id)).data)

    @extend_schema(request=DiscountInput, responses=DiscountOutput)
    def patch(self, request: Request, discount_id: str) -> Response:
        discount = discount_get(seller=_seller(request), discount_id=discount_id)
        discount_save(seller=_seller(request), data=_body(request), discount=discount)
        return Response(DiscountOutput(discount_get(seller=_seller(request), discount_id=discount_id)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, discount_id: str) -> Response:
        discount_get(seller=_seller(request), discount_id=discount_id).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
