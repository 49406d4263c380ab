from typing import Any

from django.http import HttpResponseRedirect
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.core.errors import DependencyUnavailable, NotFound, ValidationFailed
from marketplace.core.ratelimit import ClientRateThrottle

from .connect_events import connect_webhook_receive
from .gateway_events import RETURN_OUTCOMES, gateway_return_receive, headers_from_request, webhook_receive
from .gateways import available_gateways
from .models import WebhookEvent
from .schema import WebhookAckDoc


class WebhookApi(APIView):
    """Incoming gateway webhooks: signature over the raw body first, then stored once, then acted on."""

    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []
    # The body is the gateway's event, in its own format: the signature decides, not our schema.
    strict_body = False

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


# --- Stripe Connect ------------------------------------------------------------------------------


class ConnectWebhookApi(APIView):
    """Stripe Connect's webhooks (events of the sellers' connected accounts): signed with
    ``STRIPE_CONNECT_WEBHOOK_SECRET``, stored once, then acted on after Stripe confirms."""

    strict_body = False  # Stripe's event format, checked by its signature and parser, not by our schema

    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    @extend_schema(operation_id="payments_webhooks_stripe_connect", request=None, responses={200: WebhookAckDoc})
    def post(self, request: Request) -> Response:
        event, processed = connect_webhook_receive(body=request._request.body, headers=headers_from_request(request))
        if event.status == WebhookEvent.Status.FAILED:
            raise DependencyUnavailable(f"The event was stored but could not be processed yet: {event.error}")
        return Response(
            {"received": True, "event_id": event.event_id, "status": event.status, "duplicate": not processed}
        )


# What bKash appends to our callbackURL: ``paymentID`` and ``status``, and on newer API versions a
# ``signature`` and the ``apiVersion`` (accepted, never trusted). Anything else is refused, as every
# unknown parameter is.
_BKASH_CALLBACK_PARAMS = frozenset({"paymentID", "status", "signature", "apiVersion"})


class BkashCallbackApi(APIView):
    """``GET /api/v1/payments/callbacks/bkash?paymentID=…&status=success|failure|cancel``: the buyer's
    browser, sent back by bKash. Unsigned: ``paymentID`` only finds our payment; the server then
    executes and queries it at bKash and settles it on bKash's word. The buyer is redirected to the
    order's page, which shows it paid, failed or cancelled. bKash not answering is a 503 (nothing
    changed; a reload asks again, and the sweeper asks meanwhile)."""

    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []
    throttle_classes = [ClientRateThrottle]
    throttle_scope = "pay"

    @extend_schema(
        request=None,
        responses={302: None},
        parameters=[
            OpenApiParameter("paymentID", str, required=True, description="bKash's payment id."),
            OpenApiParameter("status", str, required=True, enum=["success", "failure", "cancel"]),
            OpenApiParameter("signature", str, description="Sent by newer bKash API versions; never trusted."),
            OpenApiParameter("apiVersion", str, description="Sent by newer bKash API versions; never trusted."),
        ],
    )
    def get(self, request: Request) -> HttpResponseRedirect:
        params = request.query_params
        errors: dict[str, list[str]] = {}
        for name in params:
            if name not in _BKASH_CALLBACK_PARAMS:
                errors[name] = ["Unknown parameter."]
            elif len(params.getlist(name)) > 1:
                errors[name] = ["Give it once."]
        payment_ref, outcome = params.get("paymentID", ""), params.get("status", "")
        if not payment_ref or len(payment_ref) > 200:
            errors["paymentID"] = ["Required: bKash's payment id."]
        if outcome not in RETURN_OUTCOMES:
            errors["status"] = [f"Must be one of: {', '.join(RETURN_OUTCOMES)}."]
        if errors:
            raise ValidationFailed(fields=errors)
        if "bkash" not in available_gateways():
            raise NotFound("Unknown gateway.", code="unknown_gateway")
        payment = gateway_return_receive(gateway_name="bkash", reference=payment_ref, outcome=outcome)
        order = payment.order
        response = HttpResponseRedirect(reverse("checkout:success", args=[order.product.slug, order.id]))
        response["Cache-Control"] = "private, no-store"
        response["Referrer-Policy"] = "no-referrer"
        return response
