from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.core.errors import DependencyUnavailable, NotFound
from marketplace.core.ratelimit import ClientRateThrottle
from orders.presenters import payment_to_dict
from orders.schema import PaymentRedirectDoc
from orders.selectors import order_get_for_buyer
from orders.serializers import InitiateInput

from .gateway_events import headers_from_request, webhook_receive
from .gateways import available_gateways
from .models import WebhookEvent
from .schema import WebhookAckDoc
from .services import payment_open


class WebhookApi(APIView):
    """Incoming gateway webhooks: signature over the raw body first, then stored once, then acted on."""

    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    @extend_schema(request=None, responses={200: WebhookAckDoc})
    def post(self, request: Request, gateway: str) -> Response:
        if gateway not in available_gateways():
            raise NotFound("Unknown gateway.", code="unknown_gateway")
        event, processed = webhook_receive(
            gateway_name=gateway, body=request._request.body, headers=headers_from_request(request)
        )
        if event.status == WebhookEvent.Status.FAILED:
            # Stored, but not done (its payment is unknown yet, or the gateway did not answer the
            # re-check): a non-2xx answer makes the gateway send it again.
            raise DependencyUnavailable(f"The event was stored but could not be processed yet: {event.error}")
        return Response(
            {"received": True, "event_id": event.event_id, "status": event.status, "duplicate": not processed}
        )


class PaymentInitiateApi(APIView):
    """A payment for an order created with ``init_payment: false``, or a new attempt after a failure.
    201 with the payment it opened; 200 with the order's open payment when it already has one."""

    permission_classes = [AllowAny]
    throttle_classes = [ClientRateThrottle]
    throttle_scope = "pay"

    @extend_schema(request=InitiateInput, responses={201: PaymentRedirectDoc, 200: PaymentRedirectDoc})
    def post(self, request: Request, order_id: str) -> Response:
        order = order_get_for_buyer(order_id=order_id)
        data = InitiateInput(data=request.data)
        data.is_valid(raise_exception=True)
        from orders.emails import success_page_url

        return_url = success_page_url(order)
        opened = payment_open(
            order=order, gateway_name=data.validated_data["payment_method"] or None, return_url=return_url
        )
        return Response(
            {**payment_to_dict(opened.payment), "redirect_url": opened.payment.redirect_url},
            status=status.HTTP_201_CREATED if opened.created else status.HTTP_200_OK,
        )
