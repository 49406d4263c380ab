"""The hosted checkout pages: ``/c/{slug}`` (the checkout form) and its success page.

Every page works without JavaScript (plain form posts; the server recomputes every amount). The
scripts in ``static/js/`` only add a live total, polling and copy buttons on top.
"""

import hashlib
import json
import secrets
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from catalog.delivery import partner_input_field
from catalog.selectors import variant_stock
from marketplace.core.errors import ApplicationError, IdempotencyConflict, OutOfStock
from marketplace.core.money import exponent, format_money
from marketplace.core.ratelimit import throttle_page
from orders.lifecycle import SETTLED
from orders.models import OrderStatus
from orders.presenters import order_to_dict
from orders.pricing import CheckoutLine, Quote, checkout_quote, checkout_stock_check
from orders.selectors import order_get_for_buyer
from orders.serializers import MAX_QUANTITY
from payments.services import payment_reconcile_throttled

from .forms import CheckoutForm
from .services import checkout_pay, product_for_checkout

# The checkout page shows "N left" from this many units down (templates/checkout/checkout.html).
LOW_STOCK_SHOWN = 5

# Where an error from the services is shown on the checkout form.
_FIELD_FOR = {
    "discount_code": "discount_code",
    "buyer_email": "buyer_email",
    "recipient_email": "recipient_email",
    "variant_id": "variant_id",
    "items.0.variant_id": "variant_id",
    "quantity": "quantity",
    "items.0.quantity": "quantity",
    "items": "variant_id",
}


def _quote_context(quote: Quote | None, currency: str) -> dict[str, Any] | None:
    if quote is None:
        return None
    return {
        "subtotal": format_money(quote.subtotal, currency),
        "discount_amount": format_money(quote.discount_amount, currency) if quote.discount_amount else "",
        "discount_code": quote.discount_code,
        "total": format_money(quote.total_amount, currency),
    }


def _quote_for_display(product: Any, form: CheckoutForm, variants: list[Any]) -> Quote | None:
    """The summary shown with the form: what was chosen, with the discount code if it is valid."""
    chosen = str(form["variant_id"].value() or "")
    if chosen not in {v.id for v in variants}:
        return None
    try:
        quantity = min(max(int(form["quantity"].value() or 1), 1), MAX_QUANTITY)
    except (TypeError, ValueError):
        quantity = 1
    code = str(form["discount_code"].value() or "").strip() if not form.has_error("discount_code") else ""
    for discount_code in dict.fromkeys([code, ""]):
        try:
            return checkout_quote(product=product, lines=[CheckoutLine(chosen, quantity)], discount_code=discount_code)
        except ApplicationError:
            continue
    return None


def _show_error(form: CheckoutForm, exc: ApplicationError) -> None:
    """Puts a service's error next to the field it is about (or above the form)."""
    placed = False
    for key, messages in (exc.fields or {}).items():
        field = _FIELD_FOR.get(key)
        if field and field in form.fields:
            for message in messages:
                form.add_error(field, message)
            placed = True
    if isinstance(exc, OutOfStock):
        form.add_error("quantity", exc.message)
        placed = True
    if not placed:
        form.add_error(None, exc.message)


@require_http_methods(["GET", "POST"])
@throttle_page("checkout", methods=("GET", "POST"))
@throttle_page("pay", methods=("POST",))
def checkout_page(request: HttpRequest, slug: str) -> HttpResponse:
    """``/c/{slug}``. ``action=quote`` (the "Update total" button, for browsers without
    JavaScript) recomputes the total and creates nothing; any other post pays."""
    try:
        product = product_for_checkout(slug)
    except ApplicationError:
        return render(request, "checkout/not_found.html", status=404)
    variants = list(product.variants.all())
    # The page says only "sold out" or "N left" up to LOW_STOCK_SHOWN: a probe of that many codes, not a count.
    stock = variant_stock(product, at_most=LOW_STOCK_SHOWN + 1)
    available = {v.id: stock[v.id] is None or (stock[v.id] or 0) > 0 for v in variants}
    asks_player_id = product.delivery_type == "partner_api"
    data = request.POST.copy() if request.method == "POST" else None
    if data is not None and not data.get("idempotency_key"):
        data["idempotency_key"] = "page-" + secrets.token_urlsafe(18)
    player_id_label, player_id_help = partner_input_field(product.delivery_options) if asks_player_id else ("", "")
    form = CheckoutForm(
        data,
        variants=variants,
        asks_player_id=asks_player_id,
        player_id_label=player_id_label,
        player_id_help=player_id_help,
    )
    if data is None:
        first = next((v for v in variants if available[v.id]), variants[0] if variants else None)
        form.initial = {"variant_id": first.id if first else "", "idempotency_key": "page-" + secrets.token_urlsafe(18)}
    quote: Quote | None = None
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            cleaned = form.cleaned_data
            fulfillment_input = {"player_id": cleaned["player_id"]} if cleaned.get("player_id") else {}
            lines = [CheckoutLine(cleaned["variant_id"], cleaned["quantity"], fulfillment_input)]
            try:
                if request.POST.get("action") == "quote":
                    quote = checkout_quote(product=product, lines=lines, discount_code=cleaned["discount_code"])
                    checkout_stock_check(quote=quote)
                    status = 200
                else:
                    order, payment, _ = checkout_pay(
                        buyer=request.user,
                        product=product,
                        validated={
                            "buyer_email": cleaned["buyer_email"],
                            "recipient_email": cleaned["recipient_email"] or "",
                            "items": [
                                {
                                    "variant_id": cleaned["variant_id"],
                                    "quantity": cleaned["quantity"],
                                    "fulfillment_input": fulfillment_input,
                                }
                            ],
                            "discount_code": cleaned["discount_code"],
                            "payment_method": "",
                            "init_payment": True,
                            "meta": {},
                            "webhook_urls": [],
                            "payment_reference": "",
                        },
                        idempotency_key=cleaned.get("idempotency_key") or None,
                    )
                    if payment is not None and payment.redirect_url:
                        return HttpResponseRedirect(payment.redirect_url)
                    return HttpResponseRedirect(reverse("checkout:success", args=[product.slug, order.id]))
            except IdempotencyConflict:
                # The buyer came back and changed the form after paying once: a fresh attempt.
                assert data is not None  # noqa: S101 - only a post gets here
                data["idempotency_key"] = "page-" + secrets.token_urlsafe(18)  # form.data is this dict
                form.add_error(None, "Your details changed since you last pressed Pay. Check them and pay again.")
            except ApplicationError as exc:
                _show_error(form, exc)
    if quote is None:
        quote = _quote_for_display(product, form, variants)
    return render(
        request,
        "checkout/checkout.html",
        {
            "product": product,
            "variants": [
                {
                    "variant": v,
                    "price": format_money(v.price, product.currency),
                    "available": available[v.id],
                    # A probe of LOW_STOCK_SHOWN + 1 codes: past the threshold it says "more", not how many.
                    "left": stock[v.id] if (stock[v.id] or 0) <= LOW_STOCK_SHOWN else None,
                }
                for v in variants
            ],
            "sold_out": not any(available.values()),
            "form": form,
            "selected_variant": str(form["variant_id"].value() or ""),
            "quote": _quote_context(quote, product.currency),
            "exponent": exponent(product.currency),
            "quote_url": reverse("checkout-api:quote", args=[product.slug]),
        },
        status=status,
    )


def _success_context(order: Any) -> dict[str, Any]:
    data = order_to_dict(order, audience="buyer")
    poll_seconds = _poll_seconds(order)
    return {
        "order": order,
        "data": data,
        "total": format_money(order.total_amount, order.currency),
        "discount": format_money(order.discount_amount, order.currency) if order.discount_amount else "",
        "emailed_to": order.recipient_email or order.buyer_email,
        "finished": data["status"] in SETTLED,
        "poll_seconds": poll_seconds,
        "version": _page_version(data, poll_seconds),
    }


def _page_version(data: dict[str, Any], poll_seconds: int) -> str:
    """Changes whenever anything the buyer sees changes (or the page should poll at another pace)."""
    digest = hashlib.sha256(json.dumps([data, poll_seconds], sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def _poll_seconds(order: Any) -> int:
    """How long the success page waits before it asks again: often at first, when delivery is
    seconds away, then less and less, so a tab left open on a stuck order costs little."""
    age = (timezone.now() - order.created_at).total_seconds()
    if age < 60:
        return 1
    if age < 600:
        return 5
    return 30




@require_GET
@throttle_page("polling", methods=("GET",))
def success_page(request: HttpRequest, slug: str, order_id: str) -> HttpResponse:
    """``/c/{slug}/orders/{order_id}``; with ``?partial=1`` only the part that polling replaces."""
    try:
        order = order_get_for_buyer(order_id=order_id, slug=slug)
    except ApplicationError:
        return render(request, "checkout/not_found.html", status=404)
    if order.status == OrderStatus.PENDING:
        payment_reconcile_throttled(order=order)
        order = order_get_for_buyer(order_id=order_id, slug=slug)
    context = _success_context(order)
    partial = bool(request.GET.get("partial"))
    if partial and request.GET.get("since") == context["version"]:
        response = HttpResponse(status=204)  # nothing new: the poller keeps what it shows
        response["Cache-Control"] = "private, no-store"
        return response
    template = "checkout/_order_body.html" if partial else "checkout/success.html"
    response = render(request, template, context)
    response["Cache-Control"] = "private, no-store"
    return response
