"""Public licence-key endpoints for sellers' apps: verify, activate, deactivate. Rate limited per
client; every unusable key gets the same 404."""

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.core.ratelimit import ClientRateThrottle

from .licensing import license_activate, license_deactivate, license_verify
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
