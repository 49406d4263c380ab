"""Public licence-key endpoints for sellers' apps: verify, activate, deactivate. Rate limited per
client; every unusable key gets the same 404."""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.core.api import Pagination
from marketplace.core.errors import ValidationFailed
from marketplace.core.permissions import IsSeller, request_seller
from marketplace.core.ratelimit import ClientRateThrottle

from .license_seller import (
    SELLER_STATUSES,
    license_get_for_seller,
    license_reset_activations,
    license_seller_view,
    license_set_status,
    licenses_for_seller,
)
from .licensing import license_activate, license_deactivate, license_verify
from .models import License
from .serializers import LicenseActivateInput, LicenseDeactivateInput, LicenseVerifyInput

_LICENSE_VIEW = inline_serializer(
    "LicenseStatus",
    {
        "valid": serializers.BooleanField(),
        "status": serializers.CharField(),
        "uses": serializers.IntegerField(),
        "activation_limit": serializers.IntegerField(allow_null=True),
        "activations": serializers.IntegerField(),
        "license_id": serializers.CharField(),
        "product_id": serializers.CharField(),
        "variant_id": serializers.CharField(),
        "expires_at": serializers.DateTimeField(allow_null=True),
        "activation_id": serializers.CharField(required=False),
    },
)


class LicenseApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []
    throttle_classes = [ClientRateThrottle]
    throttle_scope = "licenses"


class LicenseVerifyApi(LicenseApi):
    @extend_schema(request=LicenseVerifyInput, responses=_LICENSE_VIEW)
    def post(self, request: Request) -> Response:
        data = LicenseVerifyInput(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(license_verify(**data.validated_data))


class LicenseActivateApi(LicenseApi):
    @extend_schema(request=LicenseActivateInput, responses={201: _LICENSE_VIEW})
    def post(self, request: Request) -> Response:
        data = LicenseActivateInput(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(license_activate(**data.validated_data), status=201)


class LicenseDeactivateApi(LicenseApi):
    @extend_schema(request=LicenseDeactivateInput, responses=_LICENSE_VIEW)
    def post(self, request: Request) -> Response:
        data = LicenseDeactivateInput(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(license_deactivate(**data.validated_data))


# --- The seller's keys ---------------------------------------------------------------------------

_LIST_PARAMS = ("product", "status", "q", "page", "limit")


class LicenseSellerOutput(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.CharField()
    key_hint = serializers.CharField(help_text="The last 4 characters of the key; the key itself is never listed.")
    status = serializers.CharField(help_text="active, disabled or refunded.")
    product_id = serializers.CharField()
    product_title = serializers.CharField()
    variant_id = serializers.CharField()
    order_number = serializers.CharField()
    buyer_email = serializers.EmailField()
    uses = serializers.IntegerField()
    activation_limit = serializers.IntegerField(allow_null=True)
    activations = serializers.IntegerField(help_text="Active activations.")
    expires_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class LicenseActivationOutput(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.CharField()
    instance_name = serializers.CharField()
    created_at = serializers.DateTimeField()
    deactivated_at = serializers.DateTimeField(allow_null=True)


class LicenseSellerDetailOutput(LicenseSellerOutput):
    activation_list = LicenseActivationOutput(many=True)


def _no_query(request: Request) -> None:
    if request.query_params:
        raise ValidationFailed(fields={key: ["Unknown parameter."] for key in request.query_params})


class LicenseListApi(APIView):
    permission_classes = [IsSeller]

    @extend_schema(
        operation_id="licenses_list",
        parameters=[
            OpenApiParameter("product", OpenApiTypes.STR, description="A product id or slug."),
            OpenApiParameter("status", OpenApiTypes.STR, description="active, disabled, refunded; a comma list."),
            OpenApiParameter(
                "q",
                OpenApiTypes.STR,
                description="A whole key, its last 4 characters, an order number or a buyer's email.",
            ),
            OpenApiParameter("page", OpenApiTypes.INT),
            OpenApiParameter("limit", OpenApiTypes.INT),
        ],
        responses=LicenseSellerOutput(many=True),
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        unknown = sorted(set(params) - set(_LIST_PARAMS))
        repeated = sorted(key for key in params if key in _LIST_PARAMS and len(params.getlist(key)) > 1)
        if unknown or repeated:
            fields = {key: ["Unknown parameter."] for key in unknown}
            fields.update({key: ["Give this parameter once."] for key in repeated})
            raise ValidationFailed(fields=fields)
        statuses = None
        if params.get("status"):
            statuses = [s.strip().lower() for s in params["status"].split(",") if s.strip()]
            bad = [s for s in statuses if s not in SELLER_STATUSES]
            if bad:
                raise ValidationFailed(fields={"status": [f"Unknown status: {', '.join(bad)}."]})
        q = params.get("q", "")
        if len(q) > 200:
            raise ValidationFailed(fields={"q": ["At most 200 characters."]})
        queryset = licenses_for_seller(
            seller=request_seller(request), product_id=params.get("product") or None, statuses=statuses, q=q
        )
        paginator = Pagination()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response([license_seller_view(lic) for lic in page])


class LicenseDetailApi(APIView):
    permission_classes = [IsSeller]

    @extend_schema(operation_id="licenses_retrieve", responses=LicenseSellerDetailOutput)
    def get(self, request: Request, license_id: str) -> Response:
        _no_query(request)
        lic = license_get_for_seller(seller=request_seller(request), license_id=license_id)
        return Response(license_seller_view(lic, with_activations=True))


class LicenseActionApi(APIView):
    permission_classes = [IsSeller]
    action = ""

    @extend_schema(request=None, responses=LicenseSellerDetailOutput)
    def post(self, request: Request, license_id: str) -> Response:
        _no_query(request)
        if request.data:
            raise ValidationFailed(fields={key: ["Unknown field."] for key in request.data})
        seller = request_seller(request)
        if self.action == "reset-activations":
            license_reset_activations(seller=seller, license_id=license_id, user=request.user)
        else:
            to_status = License.Status.DISABLED if self.action == "disable" else License.Status.ACTIVE
            license_set_status(seller=seller, license_id=license_id, to_status=to_status, user=request.user)
        lic = license_get_for_seller(seller=seller, license_id=license_id)
        return Response(license_seller_view(lic, with_activations=True))


class LicenseDisableApi(LicenseActionApi):
    action = "disable"


class LicenseEnableApi(LicenseActionApi):
    action = "enable"


class LicenseResetActivationsApi(LicenseActionApi):
    action = "reset-activations"
