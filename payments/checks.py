"""System checks for the payment gateways (``manage.py check --deploy``)."""

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Tags, register
from django.core.checks import Warning as CheckWarning

from .sandbox_server.server import sandbox_in_production

SANDBOX_IN_PRODUCTION_ID = "payments.W001"


@register(Tags.security, deploy=True)
def check_sandbox_in_production(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Production settings start with the sandbox only when SANDBOX_IN_PRODUCTION says so on purpose;
    the deploy check still says it every time, so that a real shop never ships with it unnoticed."""
    if not sandbox_in_production():
        return []
    return [
        CheckWarning(
            "The sandbox payment gateway is enabled (SANDBOX_IN_PRODUCTION=true): anyone can 'pay' with a "
            "click and receive the goods; no money moves.",
            hint="Fine for a staging or demo site. For a shop taking real money, enable a real gateway "
            "(STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET) and remove sandbox and SANDBOX_IN_PRODUCTION.",
            id=SANDBOX_IN_PRODUCTION_ID,
        )
    ]


SSLCOMMERZ_SANDBOX_IN_PRODUCTION_ID = "payments.W002"


@register(Tags.security, deploy=True)
def check_sslcommerz_sandbox_in_production(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Production talks to SSLCommerz's sandbox only when SSLCOMMERZ_SANDBOX_IN_PRODUCTION says so on
    purpose; the deploy check says it every time, as it does for the built-in sandbox."""
    if not getattr(settings, "SSLCOMMERZ_SANDBOX_IN_PRODUCTION", False):
        return []
    if "sslcommerz" not in settings.ENABLED_PAYMENT_GATEWAYS or not settings.SSLCOMMERZ_SANDBOX:
        return []
    return [
        CheckWarning(
            "SSLCommerz is enabled against its sandbox (SSLCOMMERZ_SANDBOX_IN_PRODUCTION=true): buyers 'pay' with "
            "test cards and receive the goods; no money moves.",
            hint="Fine for a staging site. For a shop taking real money set SSLCOMMERZ_SANDBOX=false with the "
            "live store's credentials, and remove SSLCOMMERZ_SANDBOX_IN_PRODUCTION.",
            id=SSLCOMMERZ_SANDBOX_IN_PRODUCTION_ID,
        )
    ]
