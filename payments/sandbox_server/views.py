"""The sandbox gateway's hosted payment page and status API (its 'external' side).

Both exist only where the sandbox is an enabled gateway (``sandbox_only``); elsewhere they answer 404
like any unknown address. Every page says that no money moves (``sandbox/_notice.html``).
"""

import hmac
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods

from marketplace.core.api import error_body
from marketplace.core.errors import ApplicationError
from marketplace.core.money import format_money
from payments.models import SandboxPayment

from .server import OUTCOMES, sandbox_complete, sandbox_enabled, sandbox_payment_status

View = TypeVar("View", bound=Callable[..., HttpResponse])


def sandbox_only(view: View) -> View:
    """A 404, before anything else, wherever the sandbox is not enabled: the page as any unknown
    page, the status API as the envelope's ``not_found``."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not sandbox_enabled():
            if request.path.startswith("/sandbox/api/"):
                return JsonResponse(error_body("not_found", "Not found."), status=404)
            raise Http404("The sandbox gateway is not enabled.")
        return view(request, *args, **kwargs)

    return cast(View, wrapped)


@sandbox_only
@require_http_methods(["GET", "POST"])
def sandbox_pay(request: HttpRequest, payment_id: str) -> HttpResponse:
    payment = SandboxPayment.objects.filter(id=payment_id).first()
    if payment is None:
        return render(request, "sandbox/not_found.html", status=404)
    if request.method == "POST":
        outcome = request.POST.get("outcome", "")
        if outcome not in OUTCOMES:
            return render(
                request,
                "sandbox/pay.html",
                {"payment": payment, "amount": _amount(payment), "error": "Choose Pay or Decline."},
                status=400,
            )
        try:
            payment = sandbox_complete(payment_id=payment.id, outcome=outcome)
        except ApplicationError as exc:
            return render(
                request,
                "sandbox/pay.html",
                {"payment": payment, "amount": _amount(payment), "error": exc.message},
                status=exc.status_code,
            )
        return HttpResponseRedirect(payment.return_url)
    return render(request, "sandbox/pay.html", {"payment": payment, "amount": _amount(payment)})


def _amount(payment: SandboxPayment) -> str:
    return format_money(payment.amount, payment.currency)


@sandbox_only
@require_GET
def sandbox_payment_api(request: HttpRequest, payment_id: str) -> JsonResponse:
    """What the marketplace asks to re-verify a payment; authenticated with the sandbox secret."""
    supplied = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    expected = settings.SANDBOX_WEBHOOK_SECRET
    if not expected or not hmac.compare_digest(supplied.encode(), expected.encode()):
        return JsonResponse(error_body("not_authenticated", "A valid sandbox secret is required."), status=401)
    data = sandbox_payment_status(payment_id)
    if data is None:
        return JsonResponse(error_body("not_found", "No such payment."), status=404)
    return JsonResponse({"success": True, "data": data})
