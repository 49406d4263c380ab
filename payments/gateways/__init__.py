from django.conf import settings

from marketplace.core.errors import ValidationFailed

from .base import Checkout, GatewayStatus, GatewayUnavailable, InvalidSignature, PaymentGateway, WebhookMessage
from .bkash import BkashGateway
from .sandbox import SandboxGateway
from .sslcommerz import SSLCommerzGateway
from .stripe import StripeGateway

# Every gateway there is, by the name orders use as payment_method. A new gateway is one module
# and one line here; settings.ENABLED_PAYMENT_GATEWAYS decides which ones buyers may use.
GATEWAYS: dict[str, type[PaymentGateway]] = {
    "sandbox": SandboxGateway,
    "stripe": StripeGateway,
    "bkash": BkashGateway,
    "sslcommerz": SSLCommerzGateway,
}


def _gateways() -> dict[str, PaymentGateway]:
    enabled = settings.ENABLED_PAYMENT_GATEWAYS
    return {name: gateway() for name, gateway in GATEWAYS.items() if name in enabled}


def available_gateways() -> list[str]:
    return list(_gateways())


def get_gateway(name: str | None = None, *, currency: str | None = None) -> PaymentGateway:
    """The enabled gateway of that name (the default when none is named), or 400 on ``payment_method``.
    With ``currency``: also 400 when the gateway does not take that currency (bKash: BDT only)."""
    name = name or settings.DEFAULT_PAYMENT_GATEWAY
    gateways = _gateways()
    if name not in gateways:
        message = f"Must be one of: {', '.join(gateways)}."
        raise ValidationFailed(message, fields={"payment_method": [message]})
    gateway = gateways[name]
    if currency is not None and gateway.currencies and currency not in gateway.currencies:
        message = f"{name} takes {', '.join(sorted(gateway.currencies))} only; this order is in {currency}."
        raise ValidationFailed(message, fields={"payment_method": [message]})
    return gateway


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
