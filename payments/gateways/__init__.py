from django.conf import settings

from marketplace.core.errors import ValidationFailed

from .base import Checkout, GatewayStatus, GatewayUnavailable, InvalidSignature, PaymentGateway, WebhookMessage
from .sandbox import SandboxGateway


def _gateways() -> dict[str, PaymentGateway]:
    return {"sandbox": SandboxGateway()}


def available_gateways() -> list[str]:
    return list(_gateways())


def get_gateway(name: str | None = None) -> PaymentGateway:
    name = name or settings.DEFAULT_PAYMENT_GATEWAY
    gateways = _gateways()
    if name not in gateways:
        message = f"Must be one of: {', '.join(gateways)}."
        raise ValidationFailed(message, fields={"payment_method": [message]})
    return gateways[name]


__all__ = [
    "Checkout",
    "GatewayStatus",
    "GatewayUnavailable",
    "InvalidSignature",
    "PaymentGateway",
    "WebhookMessage",
    "available_gateways",
    "get_gateway",
]
