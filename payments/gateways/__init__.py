from django.conf import settings

from marketplace.core.errors import ValidationFailed

from .base import Checkout, GatewayStatus, GatewayUnavailable, InvalidSignature, PaymentGateway, WebhookMessage
from .sandbox import SandboxGateway
from .sslcommerz import SSLCommerzGateway
from .stripe import StripeGateway

# Every gateway there is, by the name orders use as payment_method. A new gateway is one module
# and one line here; settings.ENABLED_PAYMENT_GATEWAYS decides which ones buyers may use.
GATEWAYS: dict[str, type[PaymentGateway]] = {
    "sandbox": SandboxGateway,
    "stripe": StripeGateway,
    "sslcommerz": SSLCommerzGateway,
}


def _gateways() -> dict[str, PaymentGateway]:
    enabled = settings.ENABLED_PAYMENT_GATEWAYS
    return {name: gateway() for name, gateway in GATEWAYS.items() if name in enabled}


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
    "GATEWAYS",
    "Checkout",
    "GatewayStatus",
    "GatewayUnavailable",
    "InvalidSignature",
    "PaymentGateway",
    "WebhookMessage",
    "available_gateways",
    "get_gateway",
]
