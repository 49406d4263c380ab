from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.core.errors import DependencyUnavailable, NotFound

from .gateway_events import headers_from_request, webhook_receive
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
