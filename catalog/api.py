"""The seller's catalog API. Thin: parse, call a service or selector, serialize."""

from typing import Any, cast

from django.conf import settings
from django.db.models import Count
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.accounts.models import User
from marketplace.core.api import Pagination
from marketplace.core.errors import NotFound, PayloadTooLarge, ValidationFailed
from marketplace.core.parsers import JSONParser
from marketplace.core.permissions import IsSeller
from marketplace.core.ratelimit import ClientRateThrottle

from .delivery import partner_secret_of
from .discounts import discount_get, discount_preview, discount_save, preview_items_parse
from .inventory import code_set_status, codes_import, rows_from_csv, rows_from_json
from .models import Code, CodeStatus, Discount, Variant
from .selectors import product_get, product_list, public_products, public_variant_stock
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


# --- Public: the catalogue and a discount preview ------------------------------------------------


def _strict_query(request: Request, allowed: set[str]) -> dict[str, str]:
    """The query's single values; an unknown or repeated parameter is a 400 naming it."""
    problems: dict[str, list[str]] = {}
    for name in request.query_params:
        if name not in allowed:
            problems[name] = ["Unknown query parameter."]
        elif len(request.query_params.getlist(name)) > 1:
            problems[name] = ["Give this parameter once."]
    if problems:
        raise ValidationFailed(fields=problems)
    return {name: request.query_params[name] for name in request.query_params}


class PublicVariantOutput(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    price = serializers.IntegerField()
    available = serializers.BooleanField()
    stock = serializers.IntegerField(allow_null=True, help_text="Units left; null = unlimited.")


class PublicProductOutput(serializers.Serializer):
    id = serializers.CharField()
    slug = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    seller_id = serializers.CharField()
    seller_name = serializers.CharField()
    currency = serializers.CharField()
    checkout_url = serializers.URLField()
    variants = PublicVariantOutput(many=True)


def _public_product(product: Any) -> dict[str, Any]:
    variants = []
    for variant in product.variants.all():
        stock = public_variant_stock(product, variant)
        variants.append(
            {
                "id": variant.id,
                "name": variant.name,
                "price": variant.price,
                "available": stock is None or stock > 0,
                "stock": stock,
            }
        )
    return {
        "id": product.id,
        "slug": product.slug,
        "title": product.title,
        "description": product.description,
        "seller_id": product.seller_id,
        "seller_name": product.seller.name,
        "currency": product.currency,
        "checkout_url": f"{settings.SITE_URL}/c/{product.slug}",
        "variants": variants,
    }


class PublicProductListApi(APIView):
    """The public catalogue for integrators and resellers: active products only, never a draft."""

    permission_classes = [AllowAny]
    throttle_classes = [ClientRateThrottle]
    throttle_scope = "checkout"

    @extend_schema(
        operation_id="public_products_list",
        parameters=[
            OpenApiParameter("seller", OpenApiTypes.STR, description="A seller's id (usr_...)."),
            OpenApiParameter("q", OpenApiTypes.STR, description="Searches titles and descriptions."),
            OpenApiParameter("page", OpenApiTypes.INT),
            OpenApiParameter("limit", OpenApiTypes.INT),
        ],
        responses=PublicProductOutput(many=True),
    )
    def get(self, request: Request) -> Response:
        query = _strict_query(request, {"seller", "q", "page", "limit"})
        q = query.get("q", "").strip()
        if len(q) > 200:
            raise ValidationFailed(fields={"q": ["At most 200 characters."]})
        products = public_products(seller_id=query.get("seller", "").strip(), q=q)
        paginator = Pagination()
        page = paginator.paginate_queryset(products, request, view=self)
        return paginator.get_paginated_response([_public_product(product) for product in page])


class DiscountPreviewOutput(serializers.Serializer):
    valid = serializers.BooleanField()
    code = serializers.CharField()
    kind = serializers.CharField()
    value = serializers.IntegerField()
    currency = serializers.CharField()
    subtotal = serializers.IntegerField()
    discount_amount = serializers.IntegerField()
    total_amount = serializers.IntegerField()


class DiscountValidateApi(APIView):
    """A preview of what a code takes off a set of items; public and rate limited. Nothing is counted."""

    permission_classes = [AllowAny]
    throttle_classes = [ClientRateThrottle]
    throttle_scope = "checkout"

    @extend_schema(
        operation_id="discounts_validate",
        parameters=[
            OpenApiParameter("code", OpenApiTypes.STR, required=True),
            OpenApiParameter("items", OpenApiTypes.STR, required=True, description="var_x:2,var_y:1"),
        ],
        responses=DiscountPreviewOutput,
    )
    def get(self, request: Request) -> Response:
        query = _strict_query(request, {"code", "items"})
        missing = {
            name: ["This parameter is required."] for name in ("code", "items") if not query.get(name, "").strip()
        }
        if missing:
            raise ValidationFailed(fields=missing)
        code = query["code"].strip()
        if len(code) > 64:
            raise ValidationFailed(fields={"code": ["At most 64 characters."]})
        return Response(discount_preview(code=code, items=preview_items_parse(query["items"])))
