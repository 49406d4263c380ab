"""Stripe Connect onboarding from the dashboard: a "Connect with Stripe" button posts to ``start``,
which makes (once) the seller's Express account and sends them to Stripe's hosted onboarding; Stripe
sends them back to ``return`` when they are done or leave, or to ``refresh`` when the link expired or
was already used. Both refresh the account's state from Stripe and go back to the dashboard with a
message saying where the seller stands.

Thin views over ``ledger.stripe_connect``; Stripe's link is a bearer URL made per click, never stored
or shown anywhere but in the redirect.
"""

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from dashboard.auth import seller_required
from ledger.models import StripeAccountStatus
from ledger.stripe_connect import stripe_account_refresh_for, stripe_connect_onboarding_link
from marketplace.core.errors import ApplicationError
from payments.gateways import GatewayUnavailable

# Where the seller lands after Stripe: the payout settings, which show the account's state and offer
# Stripe Connect as a method once it can receive payouts.
AFTER_ONBOARDING_URL_NAME = "dashboard-payout-settings"

_STATUS_MESSAGES = {
    StripeAccountStatus.ENABLED: (
        messages.SUCCESS,
        "Your Stripe account is ready: you can choose Stripe Connect payouts.",
    ),
    StripeAccountStatus.RESTRICTED: (
        messages.WARNING,
        "Stripe needs more information before it can pay you out. Continue the onboarding to finish.",
    ),
    StripeAccountStatus.PENDING: (
        messages.INFO,
        "Your Stripe onboarding is not finished yet. Continue it whenever you are ready.",
    ),
}


def _back(request: HttpRequest) -> HttpResponse:
    return HttpResponseRedirect(reverse(AFTER_ONBOARDING_URL_NAME))


@seller_required
@require_POST
def start(request: HttpRequest) -> HttpResponse:
    try:
        url = stripe_connect_onboarding_link(
            seller=request.user,
            return_url=settings.SITE_URL + reverse("dashboard-stripe-connect-return"),
            refresh_url=settings.SITE_URL + reverse("dashboard-stripe-connect-refresh"),
        )
    except (ApplicationError, GatewayUnavailable):
        messages.error(request, "Stripe could not be reached to start the onboarding. Please try again in a minute.")
        return _back(request)
    return HttpResponseRedirect(url)


def _refreshed(request: HttpRequest, *, expired: bool) -> HttpResponse:
    try:
        account = stripe_account_refresh_for(seller=request.user)
    except (ApplicationError, GatewayUnavailable):
        messages.warning(request, "Stripe could not be reached to check your account; it will update shortly.")
        return _back(request)
    if account is None:
        messages.info(request, "You have not started the Stripe onboarding yet.")
        return _back(request)
    if expired and account.status != StripeAccountStatus.ENABLED:
        messages.info(request, "The Stripe onboarding link expired. Start it again to continue where you left off.")
        return _back(request)
    level, text = _STATUS_MESSAGES[StripeAccountStatus(account.status)]
    messages.add_message(request, level, text)
    return _back(request)


@seller_required
@require_GET
@never_cache
def onboarding_return(request: HttpRequest) -> HttpResponse:
    return _refreshed(request, expired=False)


@seller_required
@require_GET
@never_cache
def onboarding_refresh(request: HttpRequest) -> HttpResponse:
    return _refreshed(request, expired=True)


urlpatterns: list[URLPattern] = [
    path("dashboard/payouts/stripe/start/", start, name="dashboard-stripe-connect-start"),
    path("dashboard/payouts/stripe/return/", onboarding_return, name="dashboard-stripe-connect-return"),
    path("dashboard/payouts/stripe/refresh/", onboarding_refresh, name="dashboard-stripe-connect-refresh"),
]
