"""A demo fulfillment endpoint for the embedded default: the seller's side of ``partner_api``.

It behaves the way a seller's own service should: it verifies the marketplace's Standard Webhooks
signature with the product's partner secret and answers the same code for the same unit (the
``webhook-id`` is stable per unit), so a retried request never hands out a second code.
Enabled only where ``DEMO_PARTNER_ENABLED`` is true (the embedded default), never in production.
"""

import hashlib
import json

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from catalog.delivery import partner_secret
from catalog.models import Product


@csrf_exempt
@require_POST
def demo_partner_fulfill(request: HttpRequest) -> JsonResponse:
    if not settings.DEMO_PARTNER_ENABLED:
        return JsonResponse({"error": "not found"}, status=404)
    try:
        body = json.loads(request.body)
        product = Product.objects.get(id=body["product_id"], delivery_type="partner_api")
        secret = partner_secret(product.delivery_options)
        Webhook(secret).verify(request.body, {k.lower(): v for k, v in request.headers.items()}, json_parse=False)
    except (ValueError, KeyError, TypeError, Product.DoesNotExist, WebhookVerificationError):
        return JsonResponse({"error": "unauthorized"}, status=401)
    digest = hashlib.sha256(f"{secret}:{request.headers['webhook-id']}".encode()).hexdigest().upper()
    player = (body.get("fulfillment_input") or {}).get("player_id") or "guest"
    return JsonResponse(
        {"code": f"DEMO-{digest[:4]}-{digest[4:8]}-{digest[8:12]}", "pin": digest[12:16], "serial": f"player {player}"}
    )
