"""The seller's licence keys of one product: keys listed by their hint (never in full), their
buyers, activations and status; disable, enable and reset activations.

Thin views over the same services as the API (``orders.license_seller``): each change is written to
the order's timeline there, and another seller's product or key is the dashboard's 404 page.
"""

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from catalog.models import DeliveryType, Product
from catalog.selectors import product_get
from dashboard.auth import not_found as _not_found
from dashboard.auth import seller_required
from marketplace.core.errors import ApplicationError
from orders.license_seller import (
    SELLER_STATUSES,
    license_get_for_seller,
    license_reset_activations,
    license_set_status,
    licenses_for_seller,
)
from orders.models import License, LicenseActivation

KEYS_PER_PAGE = 50
ACTIONS = {
    "disable": ("Disable", "The key stops working in your app at its next check, until you enable it again."),
    "enable": ("Enable", "The key works again."),
    "reset": ("Reset activations", "Every device using this key is signed off; the buyer can activate it afresh."),
}


def _product(request: HttpRequest, product_id: str) -> Product | None:
    try:
        return product_get(seller=request.user, product_id=product_id)
    except ApplicationError:
        return None


@require_GET
@seller_required
def licenses(request: HttpRequest, product_id: str) -> HttpResponse:
    product = _product(request, product_id)
    if product is None:
        return _not_found(request)
    status = request.GET.get("status", "").lower()
    if status not in SELLER_STATUSES:
        status = ""
    q = request.GET.get("q", "").strip()[:200]
    listed = licenses_for_seller(
        seller=request.user, product_id=product.id, statuses=[status] if status else None, q=q
    ).prefetch_related(
        Prefetch(
            "activations",
            queryset=LicenseActivation.objects.filter(deactivated_at__isnull=True).order_by("created_at", "id"),
            to_attr="active_list",
        )
    )
    page = Paginator(listed, KEYS_PER_PAGE).get_page(request.GET.get("page"))
    query = {key: value for key, value in (("status", status), ("q", q)) if value}
    return render(
        request,
        "dashboard/licenses.html",
        {
            "product": product,
            "is_license_product": product.delivery_type == DeliveryType.LICENSE_KEY,
            "page": page,
            "keys": page.object_list,
            "status": status,
            "statuses": License.Status.choices,
            "q": q,
            "query_string": urlencode(query),
        },
    )


@require_POST
@seller_required
def license_action(request: HttpRequest, product_id: str, license_id: str, action: str) -> HttpResponse:
    """Disable, enable or reset one key, after a confirmation (a page when JavaScript is off)."""
    product = _product(request, product_id)
    if product is None or action not in ACTIONS:
        return _not_found(request)
    try:
        lic = license_get_for_seller(seller=request.user, license_id=license_id)
    except ApplicationError:
        return _not_found(request)
    if lic.product_id != product.id:
        return _not_found(request)
    back = reverse("dashboard-licenses", args=[product.id])
    wanted = {key: request.POST.get(key, "")[:200] for key in ("status", "q", "page")}
    query = urlencode({key: value for key, value in wanted.items() if value})
    if query:
        back = f"{back}?{query}"
    verb, consequence = ACTIONS[action]
    if request.POST.get("confirm") != "yes":
        return render(
            request,
            "dashboard/products_confirm.html",
            {
                "heading": f"{verb} the key ending in {lic.key_hint}?",
                "explanation": consequence,
                "action": request.path,
                "button": verb,
                "cancel": back,
                "hidden": wanted,
            },
        )
    try:
        if action == "reset":
            license_reset_activations(seller=request.user, license_id=lic.id, user=request.user)
            messages.success(request, f"Activations of the key ending in {lic.key_hint} were reset.")
        else:
            to_status = License.Status.DISABLED if action == "disable" else License.Status.ACTIVE
            license_set_status(seller=request.user, license_id=lic.id, to_status=to_status, user=request.user)
            messages.success(request, f"The key ending in {lic.key_hint} is {action}d.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return HttpResponseRedirect(back)
