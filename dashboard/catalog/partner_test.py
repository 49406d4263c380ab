"""The "Test the partner URL" button of a partner product: one signed test call through the one
outbound client (``orders.fulfillment.partner.partner_url_test``), and a page that shows what the
partner answered and whether a real sale would accept it."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from catalog.selectors import product_get
from dashboard.auth import not_found as _not_found
from dashboard.auth import seller_required
from marketplace.core.errors import ApplicationError
from orders.fulfillment.partner import partner_url_test


@require_POST
@seller_required
def partner_test(request: HttpRequest, product_id: str) -> HttpResponse:
    try:
        product = product_get(seller=request.user, product_id=product_id)
    except ApplicationError:
        return _not_found(request)
    try:
        result = partner_url_test(product=product)
    except ApplicationError as exc:
        return render(
            request,
            "dashboard/partner_test.html",
            {"product": product, "error": exc.message},
            status=exc.status_code,
        )
    url = ((product.delivery_options or {}).get("partner") or {}).get("url", "")
    return render(request, "dashboard/partner_test.html", {"product": product, "result": result, "url": url})
