"""Server-rendered pages for buyers: the hosted checkout, the success page, downloads."""

import mimetypes

from django.core import signing
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods

from marketplace.core.errors import ApplicationError
from marketplace.core.money import format_money

from .api import checkout_pay
from .forms import CheckoutForm
from .fulfillment.file import private_storage, unsign_download_token
from .models import OrderStatus
from .presenters import order_to_dict
from .selectors import order_get_for_buyer
from .services import product_for_checkout, variant_stock


@require_http_methods(["GET", "POST"])
def checkout_page(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        product = product_for_checkout(slug)
    except ApplicationError:
        return render(request, "checkout/not_found.html", status=404)
    variants = list(product.variants.all())
    stock = variant_stock(product)
    form = CheckoutForm(request.POST or None, variants=variants)
    error = None
    if request.method == "POST" and form.is_valid():
        validated = {
            "buyer_email": form.cleaned_data["buyer_email"],
            "recipient_email": "",
            "items": [
                {
                    "variant_id": form.cleaned_data["variant_id"],
                    "quantity": form.cleaned_data["quantity"],
                    "fulfillment_input": {},
                }
            ],
            "discount_code": "",
            "payment_method": "",
            "init_payment": True,
            "meta": {},
            "webhook_urls": [],
            "payment_reference": "",
        }
        try:
            order, payment, _ = checkout_pay(
                request=request,
                product=product,
                validated=validated,
                idempotency_key=form.cleaned_data.get("idempotency_key") or None,
            )
        except ApplicationError as exc:
            error = exc.message
        else:
            if payment is not None:
                return HttpResponseRedirect(payment.redirect_url)
            return HttpResponseRedirect(f"/c/{product.slug}/orders/{order.id}")
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "checkout/checkout.html",
        {
            "product": product,
            "variants": [
                {
                    "variant": v,
                    "price": format_money(v.price, product.currency),
                    "available": stock[v.id] is None or (stock[v.id] or 0) > 0,
                }
                for v in variants
            ],
            "form": form,
            "error": error,
        },
        status=status,
    )


@require_GET
def success_page(request: HttpRequest, slug: str, order_id: str) -> HttpResponse:
    try:
        order = order_get_for_buyer(order_id=order_id, slug=slug)
    except ApplicationError:
        return render(request, "checkout/not_found.html", status=404)
    if order.status == OrderStatus.PENDING:
        from payments.services import payment_reconcile_throttled

        payment_reconcile_throttled(order=order)
        order = order_get_for_buyer(order_id=order_id, slug=slug)
    data = order_to_dict(order, audience="buyer")
    return render(
        request,
        "checkout/success.html",
        {
            "order": order,
            "data": data,
            "total": format_money(order.total_amount, order.currency),
            "poll_url": f"/api/v1/public/checkout/{slug}/order/{order.id}",
        },
    )


@require_GET
def download(request: HttpRequest, token: str) -> FileResponse:
    """Local storage's signed, expiring download link (S3 signs its own)."""
    try:
        payload = unsign_download_token(token)
    except signing.SignatureExpired:
        raise Http404("This download link has expired. Open your order page for a fresh one.") from None
    except signing.BadSignature:
        raise Http404("Invalid download link.") from None
    storage = private_storage()
    if not storage.exists(payload["k"]):
        raise Http404("File not found.")
    content_type = mimetypes.guess_type(payload["f"])[0] or "application/octet-stream"
    response = FileResponse(
        storage.open(payload["k"], "rb"), as_attachment=True, filename=payload["f"], content_type=content_type
    )
    response["Cache-Control"] = "private, no-store"
    return response
