"""Server-rendered pages for buyers: the hosted checkout, the success page, the library, downloads.

Every page works without JavaScript (plain form posts; the server recomputes every amount). The
scripts in ``static/js/`` only add a live total, polling and copy buttons on top.
"""

import mimetypes
from typing import Any

from django.core import signing
from django.core.paginator import Paginator
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from marketplace.core.errors import ApplicationError, Gone
from marketplace.core.money import format_money
from marketplace.core.ratelimit import client_address

from .forms import LibraryRequestForm
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


def _download_unavailable(request: HttpRequest, *, title: str, message: str, status: int) -> HttpResponse:
    response = render(
        request, "checkout/download_unavailable.html", {"title": title, "message": message}, status=status
    )
    response["Cache-Control"] = "private, no-store"
    return response


def _blocked_page(order: Any) -> dict[str, str]:
    if order.status == OrderStatus.REFUNDED:
        return {"title": "This purchase was refunded", "message": "Its download is no longer available."}
    return {
        "title": "This purchase is disputed",
        "message": "The payment is disputed with your bank; its download is unavailable until the dispute closes.",
    }


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
    if item.order.access_blocked:
        return _download_unavailable(request, **_blocked_page(item.order), status=410)
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
        for_recipient = bool(order.recipient_email) and order.recipient_email.lower() == email
        # A gift's codes are the recipient's, once its e-mail has gone out (not the buyer's, not before).
        audience = "recipient" if for_recipient and order.gift_sent_at is not None else "buyer"
        data = order_to_dict(order, audience=audience)
        for item, raw in zip(data["items"], order.items.all(), strict=True):
            limit = getattr(raw.product, "download_limit", None)
            item["downloads_left"] = None if limit is None else max(0, limit - raw.download_count)
        entries.append(
            {
                "order": order,
                "data": data,
                "total": format_money(order.total_amount, order.currency),
                "order_url": reverse("checkout:success", args=[order.product.slug, order.id]),
                "gift": for_recipient,
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
    if order.access_blocked:
        return _download_unavailable(request, **_blocked_page(order), status=410)
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
