"""Server-rendered pages for buyers: the hosted checkout, the success page, the library, downloads.

Every page works without JavaScript (plain form posts; the server recomputes every amount). The
scripts in ``static/js/`` only add a live total, polling and copy buttons on top.
"""

import hashlib
import json
import mimetypes
import secrets
from typing import Any

from django.core import signing
from django.core.paginator import Paginator
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from marketplace.core.errors import ApplicationError, Gone, IdempotencyConflict, OutOfStock
from marketplace.core.money import exponent, format_money
from marketplace.core.ratelimit import client_address, throttle_page

from .forms import CheckoutForm, LibraryRequestForm
from .fulfillment import get_strategy
from .fulfillment.file import private_storage, unsign_download_token
from .library import (
    LINK_TTL_SECONDS,
    LibraryLinkInvalid,
    LibraryRateLimited,
    library_email,
    library_item_get,
    library_link_check,
    library_link_redeem,
    library_link_request,
    library_orders,
    library_sign_out,
)
from .models import OrderItem, OrderStatus
from .presenters import order_to_dict
from .selectors import order_get_for_buyer
from .serializers import MAX_QUANTITY
from .services import (
    CheckoutLine,
    Quote,
    checkout_pay,
    checkout_quote,
    checkout_stock_check,
    product_for_checkout,
    variant_stock,
)

# Where an error from the services is shown on the checkout form.
# The checkout page shows "N left" from this many units down (templates/checkout/checkout.html).
LOW_STOCK_SHOWN = 5

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
    form = CheckoutForm(data, variants=variants, asks_player_id=asks_player_id)
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
            "quote_url": reverse("orders-api:checkout-quote", args=[product.slug]),
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
        "finished": data["status"] in FINISHED,
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


FINISHED = ("delivered", "failed", "cancelled", "refunded", "partially_refunded", "needs_attention")


@require_GET
@throttle_page("polling", methods=("GET",))
def success_page(request: HttpRequest, slug: str, order_id: str) -> HttpResponse:
    """``/c/{slug}/orders/{order_id}``; with ``?partial=1`` only the part that polling replaces."""
    try:
        order = order_get_for_buyer(order_id=order_id, slug=slug)
    except ApplicationError:
        return render(request, "checkout/not_found.html", status=404)
    if order.status == OrderStatus.PENDING:
        from payments.services import payment_reconcile_throttled

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


def _download_unavailable(request: HttpRequest, *, title: str, message: str, status: int) -> HttpResponse:
    response = render(
        request, "checkout/download_unavailable.html", {"title": title, "message": message}, status=status
    )
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
def download(request: HttpRequest, token: str) -> HttpResponseBase:
    """Local storage's signed, expiring download link (S3 signs its own and serves the file).

    The token names the order item: a link made before a full refund stops working with it."""
    try:
        payload = unsign_download_token(token)
    except signing.SignatureExpired:
        return _download_unavailable(
            request,
            title="This download link has expired",
            message="Open your order page or your library for a fresh one.",
            status=404,
        )
    except signing.BadSignature:
        return _download_unavailable(
            request, title="Invalid download link", message="Check that you copied the whole link.", status=404
        )
    item = OrderItem.objects.select_related("order").filter(pk=payload.get("i") or "").first()
    if item is None:
        return _download_unavailable(
            request, title="Invalid download link", message="Open your order page for a fresh one.", status=404
        )
    if item.order.status == OrderStatus.REFUNDED:
        return _download_unavailable(
            request,
            title="This purchase was refunded",
            message="Its download is no longer available.",
            status=410,
        )
    storage = private_storage()
    if not storage.exists(payload["k"]):
        return _download_unavailable(
            request, title="File not found", message="The seller has been told; try again later.", status=404
        )
    content_type = mimetypes.guess_type(payload["f"])[0] or "application/octet-stream"
    response = FileResponse(
        storage.open(payload["k"], "rb"), as_attachment=True, filename=payload["f"], content_type=content_type
    )
    response["Cache-Control"] = "private, no-store"
    return response


# --- The library -----------------------------------------------------------------------------------


def _library_entries(email: str, page_number: Any) -> tuple[list[dict[str, Any]], Any]:
    paginator = Paginator(library_orders(email=email), 20)
    page = paginator.get_page(page_number)
    entries = []
    for order in page.object_list:
        data = order_to_dict(order, audience="buyer")
        for item, raw in zip(data["items"], order.items.all(), strict=True):
            limit = getattr(raw.product, "download_limit", None)
            item["downloads_left"] = None if limit is None else max(0, limit - raw.download_count)
        entries.append(
            {
                "order": order,
                "data": data,
                "total": format_money(order.total_amount, order.currency),
                "order_url": reverse("checkout:success", args=[order.product.slug, order.id]),
                "gift": bool(order.recipient_email) and order.recipient_email.lower() == email,
            }
        )
    return entries, page


@require_http_methods(["GET", "POST"])
def library_page(request: HttpRequest) -> HttpResponse:
    """``/library``: the purchases of the signed-in email, or the form that emails a sign-in link."""
    email = library_email(request.session)
    if request.method == "GET" and email:
        entries, page = _library_entries(email, request.GET.get("page"))
        response = render(request, "library/library.html", {"email": email, "entries": entries, "page": page})
        response["Cache-Control"] = "private, no-store"
        return response
    form = LibraryRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            library_link_request(email=form.cleaned_data["email"], ip=client_address(request) or "unknown")
        except LibraryRateLimited as exc:
            form.add_error("email", exc.message)
            response = render(request, "library/request.html", {"form": form}, status=429)
            response["Retry-After"] = str(exc.retry_after)
            return response
        return render(
            request,
            "library/sent.html",
            {"email": form.cleaned_data["email"], "minutes": LINK_TTL_SECONDS // 60},
        )
    return render(request, "library/request.html", {"form": form}, status=400 if request.method == "POST" else 200)


@require_http_methods(["GET", "POST"])
def library_signin(request: HttpRequest, token: str) -> HttpResponse:
    """The emailed link. GET only asks to confirm (mail scanners that open links must not use it
    up); the button POSTs, which uses the link and signs the browser in."""
    try:
        if request.method == "POST":
            library_link_redeem(token=token, session=request.session)
            return HttpResponseRedirect(reverse("checkout:library"))
        email = library_link_check(token)
    except LibraryLinkInvalid as exc:
        return render(
            request, "library/request.html", {"form": LibraryRequestForm(), "link_error": exc.message}, status=400
        )
    return render(request, "library/signin.html", {"email": email})


@require_POST
def library_signout(request: HttpRequest) -> HttpResponse:
    library_sign_out(request.session)
    return HttpResponseRedirect(reverse("checkout:library"))


@require_GET
def library_download(request: HttpRequest, item_id: str) -> HttpResponse:
    """A re-download from the library: a fresh signed link, counted against the download limit."""
    email = library_email(request.session)
    if not email:
        return HttpResponseRedirect(reverse("checkout:library"))
    try:
        item = library_item_get(email=email, item_id=item_id)
    except ApplicationError:
        return render(request, "checkout/not_found.html", status=404)
    order = item.order
    if order.status == OrderStatus.REFUNDED:
        return _download_unavailable(
            request, title="This purchase was refunded", message="Its download is no longer available.", status=410
        )
    if not item.fulfilled or order.paid_at is None:
        return _download_unavailable(
            request,
            title="Not ready yet",
            message="This purchase is still being delivered. Open the order page to follow it.",
            status=409,
        )
    try:
        resource = get_strategy(item.content_type).resource(item, request=request)
    except Gone as exc:
        title = "Download limit reached" if exc.code == "download_limit_reached" else "No longer available"
        return _download_unavailable(request, title=title, message=exc.message, status=410)
    if not resource.redirect_url:
        return HttpResponseRedirect(reverse("checkout:success", args=[order.product.slug, order.id]))
    return HttpResponseRedirect(resource.redirect_url)
