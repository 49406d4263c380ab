from datetime import timedelta
from typing import Any, cast

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.signals import user_logged_in
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.core.errors import ApplicationError
from marketplace.core.ratelimit import ClientRateThrottle

from .models import APIKey, User
from .serializers import (
    APIKeyCreatedOutput,
    APIKeyInput,
    APIKeyOutput,
    EmailVerificationOutput,
    EmailVerifyInput,
    RefreshInput,
    RefreshOutput,
    RegisterInput,
    TokenInput,
    TokenOutput,
    UserOutput,
)
from .services import (
    api_key_create,
    api_key_revoke,
    email_verification_request,
    email_verify,
    user_register,
    user_tokens_issue,
    user_tokens_refresh,
)


class RegisterApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []
    throttle_classes = [ClientRateThrottle]
    throttle_scope = "auth"

    @extend_schema(request=RegisterInput, responses={201: UserOutput})
    def post(self, request: Request) -> Response:
        """201 ``{id, email, name, role}`` for a new address and for one that already has an account
        alike (that account's owner is emailed instead): see ``user_register``."""
        data = RegisterInput(data=request.data)
        data.is_valid(raise_exception=True)
        registration = user_register(**data.validated_data)
        return Response(
            {"id": registration.id, "email": registration.email, "name": registration.name, "role": registration.role},
            status=status.HTTP_201_CREATED,
        )


def _expires_in() -> int:
    lifetime = cast(timedelta, settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"])
    return int(lifetime.total_seconds())


class TokenApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []
    throttle_classes = [ClientRateThrottle]
    throttle_scope = "auth"

    @extend_schema(request=TokenInput, responses=TokenOutput)
    def post(self, request: Request) -> Response:
        data = TokenInput(data=request.data)
        data.is_valid(raise_exception=True)
        # The Django request, not DRF's wrapper: the lock-out check marks it for its middleware.
        user = authenticate(
            request._request, email=data.validated_data["email"].lower(), password=data.validated_data["password"]
        )
        if user is None or not user.is_active:
            raise ApplicationError("Email or password is incorrect.", code="invalid_credentials", status_code=401)
        # A token is a sign-in: last_login moves, and the count of failed attempts starts again.
        user_logged_in.send(sender=user.__class__, request=request._request, user=user)
        pair = user_tokens_issue(user=user)
        return Response(
            {"access": pair.access, "refresh": pair.refresh, "token_type": "Bearer", "expires_in": _expires_in()}
        )


class TokenRefreshApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []
    throttle_classes = [ClientRateThrottle]
    throttle_scope = "auth"

    @extend_schema(request=RefreshInput, responses=RefreshOutput)
    def post(self, request: Request) -> Response:
        """A new access token and a new refresh token: the one sent is used up (a replay is 401)."""
        data = RefreshInput(data=request.data)
        data.is_valid(raise_exception=True)
        pair = user_tokens_refresh(refresh=data.validated_data["refresh"])
        return Response({"access": pair.access, "refresh": pair.refresh, "expires_in": _expires_in()})


class APIKeyListApi(APIView):
    """A seller's keys for its integrations, or a buyer's (a reseller's backend, an app): a buyer's
    key acts as the buyer (``POST /api/v1/orders``, its own orders), never as a seller."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=APIKeyOutput(many=True))
    def get(self, request: Request) -> Response:
        keys = APIKey.objects.filter(user=cast(User, request.user), revoked_at__isnull=True)
        return Response(APIKeyOutput(keys, many=True).data)

    @extend_schema(request=APIKeyInput, responses={201: APIKeyCreatedOutput})
    def post(self, request: Request) -> Response:
        data = APIKeyInput(data=request.data)
        data.is_valid(raise_exception=True)
        key, raw = api_key_create(user=request.user, name=data.validated_data["name"])  # type: ignore[arg-type]
        body = dict(APIKeyOutput(key).data)
        body["key"] = raw
        return Response(body, status=status.HTTP_201_CREATED)


class APIKeyDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={204: None})
    def delete(self, request: Request, key_id: str) -> Response:
        api_key_revoke(user=request.user, key_id=key_id)  # type: ignore[arg-type]
        return Response(status=status.HTTP_204_NO_CONTENT)


class EmailVerifyRequestApi(APIView):
    """Sends the signed-in user a code that proves the account's email (at most once a minute)."""

    permission_classes = [IsAuthenticated]
    throttle_classes = [ClientRateThrottle]
    throttle_scope = "auth"

    @extend_schema(request=None, responses={202: EmailVerificationOutput})
    def post(self, request: Request) -> Response:
        user = cast(User, request.user)
        email_verification_request(user=user)
        return Response({"email": user.email, "email_verified": user.email_verified}, status=status.HTTP_202_ACCEPTED)


class EmailVerifyConfirmApi(APIView):
    """The code from the email: the address is the account's verified email from now on."""

    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []
    throttle_classes = [ClientRateThrottle]
    throttle_scope = "auth"

    @extend_schema(request=EmailVerifyInput, responses=EmailVerificationOutput)
    def post(self, request: Request) -> Response:
        data = EmailVerifyInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = email_verify(token=data.validated_data["token"])
        return Response({"email": user.email, "email_verified": True})
