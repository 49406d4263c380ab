"""The seller's outgoing-webhook API: endpoints, their deliveries, resends, and the secret that
signs what goes to orders' own ``webhook_urls``. Thin: parse, call ``endpoints`` and ``delivery``, serialize."""

import json
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.core.api import Pagination
from marketplace.core.errors import NotFound, ValidationFailed
from marketplace.core.parsers import JSONParser
from marketplace.core.permissions import IsSeller, request_seller
from orders.models import WebhookDelivery, WebhookEndpoint

from . import endpoints
from .delivery import (
    WebhookTestRateLimited,
    webhook_delivery_get,
    webhook_delivery_list,
    webhook_delivery_resend,
    webhook_endpoint_test,
)

EVENTS_HELP = "Event types to send; empty: every event. One of: " + ", ".join(endpoints.EVENT_TYPES) + "."


class WebhookEndpointInput(serializers.Serializer):  # type: ignore[type-arg]
    url = serializers.CharField(max_length=2000, help_text="https:// URL with a public address.")
    events = serializers.ListField(
        child=serializers.CharField(max_length=60), required=False, allow_empty=True, help_text=EVENTS_HELP
    )
    active = serializers.BooleanField(required=False, default=True)


class WebhookEndpointPatchInput(serializers.Serializer):  # type: ignore[type-arg]
    url = serializers.CharField(max_length=2000, required=False)
    events = serializers.ListField(
        child=serializers.CharField(max_length=60), required=False, allow_empty=True, help_text=EVENTS_HELP
    )
    active = serializers.BooleanField(required=False, help_text="true also clears a disabled endpoint's failures.")


class WebhookEndpointOutput(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.CharField()
    url = serializers.CharField()
    events = serializers.ListField(child=serializers.CharField())
    active = serializers.BooleanField()
    disabled_reason = serializers.CharField()
    consecutive_failures = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class WebhookEndpointCreatedOutput(WebhookEndpointOutput):
    secret = serializers.CharField(help_text="whsec_...: shown this once. Verify signatures with it.")


class OrderUrlsOutput(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.CharField(help_text="List this id's deliveries to see what went to orders' webhook_urls.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class OrderUrlsSecretOutput(OrderUrlsOutput):
    secret = serializers.CharField(help_text="whsec_...: shown this once; the previous secret signs nothing more.")


class WebhookAttemptOutput(serializers.Serializer):  # type: ignore[type-arg]
    at = serializers.CharField()
    status_code = serializers.IntegerField(allow_null=True)
    duration_ms = serializers.IntegerField()
    response = serializers.CharField(help_text="The first 1 KB of the answer.")
    error = serializers.CharField()


class WebhookDeliveryOutput(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.CharField()
    event_id = serializers.CharField()
    event_type = serializers.CharField(source="event.type")
    url = serializers.CharField()
    webhook_id = serializers.CharField(help_text="The webhook-id header: the same on every attempt.")
    status = serializers.CharField(help_text="pending, succeeded, failed or disabled.")
    attempts = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    last_attempt_at = serializers.DateTimeField(allow_null=True)
    last_status_code = serializers.IntegerField(allow_null=True)
    last_duration_ms = serializers.IntegerField(allow_null=True)
    last_response = serializers.CharField()
    last_error = serializers.CharField()
    attempt_log = WebhookAttemptOutput(many=True)
    payload = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_payload(self, obj: WebhookDelivery) -> Any:
        return json.loads(obj.body)


def _endpoint(request: Request, endpoint_id: str, *, any_kind: bool = False) -> WebhookEndpoint:
    return endpoints.webhook_endpoint_get(seller=request_seller(request), endpoint_id=endpoint_id, any_kind=any_kind)


class WebhookEndpointListApi(APIView):
    permission_classes = [IsSeller]
    parser_classes = [JSONParser]

    @extend_schema(
        parameters=[OpenApiParameter("page", OpenApiTypes.INT), OpenApiParameter("limit", OpenApiTypes.INT)],
        responses=WebhookEndpointOutput(many=True),
    )
    def get(self, request: Request) -> Response:
        paginator = Pagination()
        page = paginator.paginate_queryset(
            endpoints.webhook_endpoint_list(seller=request_seller(request)), request, self
        )
        return paginator.get_paginated_response(WebhookEndpointOutput(page, many=True).data)

    @extend_schema(request=WebhookEndpointInput, responses={201: WebhookEndpointCreatedOutput})
    def post(self, request: Request) -> Response:
        data = WebhookEndpointInput(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = endpoints.webhook_endpoint_create(seller=request_seller(request), **data.validated_data)
        return Response(WebhookEndpointCreatedOutput(endpoint).data, status=status.HTTP_201_CREATED)


class WebhookEndpointDetailApi(APIView):
    permission_classes = [IsSeller]
    parser_classes = [JSONParser]

    @extend_schema(responses=WebhookEndpointOutput)
    def get(self, request: Request, endpoint_id: str) -> Response:
        return Response(WebhookEndpointOutput(_endpoint(request, endpoint_id)).data)

    @extend_schema(request=WebhookEndpointPatchInput, responses=WebhookEndpointOutput)
    def patch(self, request: Request, endpoint_id: str) -> Response:
        endpoint = _endpoint(request, endpoint_id)
        data = WebhookEndpointPatchInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        endpoint = endpoints.webhook_endpoint_update(endpoint=endpoint, data=data.validated_data)
        return Response(WebhookEndpointOutput(endpoint).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, endpoint_id: str) -> Response:
        endpoints.webhook_endpoint_delete(endpoint=_endpoint(request, endpoint_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class OrderUrlsSecretApi(APIView):
    """The secret that signs what is sent to orders' own ``webhook_urls``."""

    permission_classes = [IsSeller]

    @extend_schema(responses=OrderUrlsOutput)
    def get(self, request: Request) -> Response:
        endpoint = WebhookEndpoint.objects.filter(
            seller=request_seller(request), kind=WebhookEndpoint.Kind.ORDER_URLS
        ).first()
        if endpoint is None:
            raise NotFound("No secret for orders' webhook URLs yet: POST to make one.")
        return Response(OrderUrlsOutput(endpoint).data)

    @extend_schema(request=None, responses={201: OrderUrlsSecretOutput})
    def post(self, request: Request) -> Response:
        endpoint = endpoints.order_urls_secret_roll(seller=request_seller(request))
        return Response(OrderUrlsSecretOutput(endpoint).data, status=status.HTTP_201_CREATED)


class WebhookDeliveryListApi(APIView):
    permission_classes = [IsSeller]

    @extend_schema(
        parameters=[OpenApiParameter("page", OpenApiTypes.INT), OpenApiParameter("limit", OpenApiTypes.INT)],
        responses=WebhookDeliveryOutput(many=True),
    )
    def get(self, request: Request, endpoint_id: str) -> Response:
        endpoint = _endpoint(request, endpoint_id, any_kind=True)
        paginator = Pagination()
        page = paginator.paginate_queryset(webhook_delivery_list(endpoint=endpoint), request, self)
        return paginator.get_paginated_response(WebhookDeliveryOutput(page, many=True).data)


class WebhookDeliveryResendApi(APIView):
    permission_classes = [IsSeller]

    @extend_schema(request=None, responses={202: WebhookDeliveryOutput})
    def post(self, request: Request, endpoint_id: str, delivery_id: str) -> Response:
        endpoint = _endpoint(request, endpoint_id, any_kind=True)
        delivery = webhook_delivery_get(endpoint=endpoint, delivery_id=delivery_id)
        delivery = webhook_delivery_resend(delivery=delivery)
        return Response(WebhookDeliveryOutput(delivery).data, status=status.HTTP_202_ACCEPTED)


class WebhookEndpointTestApi(APIView):
    """Sends a signed ``ping`` to the endpoint now and answers what it said."""

    permission_classes = [IsSeller]

    @extend_schema(request=None, responses={200: WebhookDeliveryOutput})
    def post(self, request: Request, endpoint_id: str) -> Response:
        if request.query_params or request.data:
            keys = [*request.query_params, *(request.data or {})]
            raise ValidationFailed(fields={key: ["Unknown parameter."] for key in keys})
        endpoint = _endpoint(request, endpoint_id)
        try:
            delivery = webhook_endpoint_test(endpoint=endpoint)
        except WebhookTestRateLimited as exc:
            raise Throttled(wait=exc.retry_after) from None
        return Response(WebhookDeliveryOutput(delivery).data)
