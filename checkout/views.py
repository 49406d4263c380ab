"""The hosted checkout pages: ``/c/{slug}`` (the checkout form) and its success page.

Every page works without JavaScript (plain form posts; the server recomputes every amount). The
scripts in ``static/js/`` only add a live total, polling and copy buttons on top.
"""

import hashlib
import json
import logging
import secrets
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from catalog.covers import cover_image_url
from catalog.delivery import partner_input_field
from catalog.rendering import markdown_to_plain_text, markdown_to_safe_html
from catalog.selectors import variant_stock
from catalog.serializers import absolute_url
from marketplace.core.errors import ApplicationError, IdempotencyConflict, OutOfStock
from marketplace.core.money import exponent, format_money
from marketplace.core.ratelimit import client_address, throttle_page
from orders.fulfillment import TransientDeliveryError, get_strategy
from orders.lifecycle import SETTLED
from orders.models import OrderStatus
from orders.presenters import order_to_dict
from orders.pricing import CheckoutLine, Quote, checkout_quote, checkout_stock_check
from orders.selectors import order_get_for_buyer
from orders.serializers import MAX_QUANTITY
from orders.services.gifts import order_gift_claim, order_gift_lookup, order_gift_resend
from payments.services import payment_reconcile_throttled

from .forms import CheckoutForm
from .services import (
    checkout_pay,
    payment_methods_for,
    product_for_checkout,
    product_for_preview,
    sslcommerz_browser_return,
)

logger = logging.getLogger(__name__)

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
    "payment_method": "payment_method",
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


def _discount_link_error(product: Any, variant: Any, code: str) -> str:
    """Why a discount link's code does not apply to the option shown first ('' when it does)."""
    if len(code) > 64:
        return "This discount code is not valid."
    if variant is None:
        return ""
    try:
        checkout_quote(product=product, lines=[CheckoutLine(variant.id, 1)], discount_code=code)
    except ApplicationError as exc:
        return exc.message
    return ""


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
    preview = False
    try:
        product = product_for_checkout(slug)
    except ApplicationError:
        # The seller's own draft opens as a preview: shown as buyers would see it, not payable.
        try:
            product = product_for_preview(slug, seller=request.user)
        except ApplicationError:
            return render(request, "checkout/not_found.html", status=404)
        preview = True
    variants = list(product.variants.all())
    # The page says only "sold out" or "N left" up to LOW_STOCK_SHOWN: a probe of that many codes, not a count.
    stock = variant_stock(product, at_most=LOW_STOCK_SHOWN + 1)
    available = {v.id: stock[v.id] is None or (stock[v.id] or 0) > 0 for v in variants}
    asks_player_id = product.delivery_type == "partner_api"
    data = request.POST.copy() if request.method == "POST" else None
    if data is not None and not data.get("idempotency_key"):
        data["idempotency_key"] = "page-" + secrets.token_urlsafe(18)
    methods = payment_methods_for(product.currency)
    player_id_label, player_id_help = partner_input_field(product.delivery_options) if asks_player_id else ("", "")
    form = CheckoutForm(
        data,
        variants=variants,
        asks_player_id=asks_player_id,
        payment_methods=methods,
        player_id_label=player_id_label,
        player_id_help=player_id_help,
    )
    discount_link_error = ""
    if data is None:
        first = next((v for v in variants if available[v.id]), variants[0] if variants else None)
        form.initial = {
            "variant_id": first.id if first else "",
            "idempotency_key": "page-" + secrets.token_urlsafe(18),
            "payment_method": methods[0]["name"] if methods else "",
        }
        # A discount link (``?discount=CODE``) fills the code in and applies it.
        linked_code = str(request.GET.get("discount") or "").strip()
        if linked_code:
            form.initial["discount_code"] = linked_code[:64]
            discount_link_error = _discount_link_error(product, first, linked_code)
    quote: Quote | None = None
    status = 200
    if request.method == "POST" and preview:
        form.add_error(None, "This is a preview of a draft: it cannot be bought. Publish the product to sell it.")
        status = 403
    elif request.method == "POST":
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
                            "payment_method": cleaned.get("payment_method") or "",
                            "init_payment": True,
                            "meta": {},
                            "webhook_urls": [],
                            "payment_reference": "",
                        },
                        idempotency_key=cleaned.get("idempotency_key") or None,
                        client_ip=client_address(request),
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
    response = render(
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
            "preview": preview,
            "discount_link_error": discount_link_error,
            "free": quote is not None and quote.total_amount == 0,
            "description_html": markdown_to_safe_html(product.description),
            "cover_url": cover_image_url(product.cover_image_path),
            "og_image": absolute_url(cover_image_url(product.cover_image_path)),
            "meta_description": markdown_to_plain_text(product.description) or f"Buy {product.title}.",
            "canonical_url": settings.SITE_URL + reverse("checkout:page", args=[product.slug]),
            "form": form,
            "selected_variant": str(form["variant_id"].value() or ""),
            "quote": _quote_context(quote, product.currency),
            "exponent": exponent(product.currency),
            "quote_url": reverse("checkout-api:quote", args=[product.slug]),
            "payment_methods": methods,
            "selected_method": str(form["payment_method"].value() or ""),
        },
        status=status,
    )
    if preview:  # the seller's eyes only: never cached, never indexed
        response["Cache-Control"] = "private, no-store"
        response["X-Robots-Tag"] = "noindex"
    return response


def _success_context(order: Any) -> dict[str, Any]:
    data = order_to_dict(order, audience="buyer")
    poll_seconds = _poll_seconds(order)
    return {
        "order": order,
        "data": data,
        "total": format_money(order.total_amount, order.currency),
        "discount": format_money(order.discount_amount, order.currency) if order.discount_amount else "",
        "receipt_lines": [
            {
                "title": item.title,
                "variant_name": item.variant_name,
                "quantity": item.quantity,
                "line_total": format_money(item.line_total, order.currency),
            }
            for item in order.items.all()
        ],
        "subtotal": format_money(order.subtotal, order.currency),
        "refunded": format_money(order.refunded_amount, order.currency) if order.refunded_amount else "",
        "emailed_to": order.recipient_email or order.buyer_email,
        "finished": data["status"] in SETTLED,
        "poll_seconds": poll_seconds,
        "version": _page_version(data, poll_seconds),
        "retry_fields": _retry_fields(order) if data["status"] == OrderStatus.FAILED else [],
    }


def _retry_fields(order: Any) -> list[tuple[str, str]]:
    """What "Try again" after a declined payment posts back to the checkout page: the buyer's own
    form as they sent it, with ``action=quote`` so the page recomputes the total and creates nothing.
    No idempotency key: the next Pay is a fresh attempt."""
    items = list(order.items.all())
    if len(items) != 1:  # the hosted checkout makes one line; anything else starts afresh
        return []
    item = items[0]
    fields = [
        ("action", "quote"),
        ("variant_id", str(item.variant_id)),
        ("quantity", str(item.quantity)),
        ("buyer_email", order.buyer_email),
        ("recipient_email", order.recipient_email or ""),
        ("discount_code", order.discount_code or ""),
    ]
    player_id = (item.fulfillment_input or {}).get("player_id")
    if player_id:
        fields.append(("player_id", str(player_id)))
    last = order.payments.order_by("-created_at").first()
    if last is not None and any(m["name"] == last.gateway for m in payment_methods_for(order.currency)):
        fields.append(("payment_method", last.gateway))
    return fields


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


@csrf_exempt  # posted by SSLCommerz's page, from its origin: nothing in it is believed
@require_POST
@throttle_page("polling", methods=("POST",))
def sslcommerz_return(request: HttpRequest, payment_id: str, outcome: str) -> HttpResponse:
    """``/c/payments/sslcommerz/{payment_id}/{success|fail|cancel}``: SSLCommerz sends the buyer
    back here. The post is unsigned and ignored; the payment in the URL is re-checked with SSLCommerz
    (the validation API), and the buyer goes on to the order's page, which shows what really happened."""
    order = sslcommerz_browser_return(payment_id=payment_id) if outcome in ("success", "fail", "cancel") else None
    if order is None:
        return render(request, "checkout/not_found.html", status=404)
    return HttpResponseRedirect(reverse("checkout:success", args=[order.product.slug, order.id]), status=303)


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


@csrf_exempt
@require_http_methods(["GET", "POST"])
@throttle_page("polling", methods=("GET", "POST"))
def gift_claim_page(request: HttpRequest, token: str) -> HttpResponse:
    """``/gift/{token}``: the recipient's claim link. GET shows the gift unopened (a mail scanner
    that follows links claims nothing); POST opens it: the claim is recorded and the codes shown.

    No CSRF check: the token in the path is the whole capability (a forged POST needs it, and
    then could simply open the link), and a refused check would log the path, token included."""
    order = order_gift_lookup(token=token)
    if order is None:
        response = render(request, "checkout/not_found.html", status=404)
    elif request.method == "POST":
        try:
            order = order_gift_claim(token=token)
        except ApplicationError as error:
            response = render(request, "checkout/gift.html", {"order": order, "unavailable": error.message})
        else:
            items = [
                {"item": item, "delivery": get_strategy(item.content_type).delivery_view(item)}
                for item in order.items.all()
                if item.fulfilled
            ]
            response = render(request, "checkout/gift.html", {"order": order, "opened": True, "items": items})
    else:
        response = render(request, "checkout/gift.html", {"order": order, "opened": False})
    response["Cache-Control"] = "private, no-store"
    # The link is the secret: no link on the page may carry it to another site.
    response["Referrer-Policy"] = "same-origin"
    return response


@require_http_methods(["POST"])
@throttle_page("pay", methods=("POST",))
def gift_resend(request: HttpRequest, slug: str, order_id: str) -> HttpResponse:
    """The buyer's "send it to them again" on the order page (a claim link is replaced by a new one)."""
    try:
        order = order_get_for_buyer(order_id=order_id, slug=slug)
    except ApplicationError:
        return render(request, "checkout/not_found.html", status=404)
    try:
        order_gift_resend(order=order)
    except (ApplicationError, TransientDeliveryError) as exc:
        # Not sent yet, not a gift, or the mail server refused: the page shows the gift as it is.
        logger.info("gift resend of order %s refused: %s", order.order_number, type(exc).__name__)
    return HttpResponseRedirect(reverse("checkout:success", args=[slug, order_id]))
