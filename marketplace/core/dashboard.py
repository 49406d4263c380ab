"""The seller's dashboard: session sign-in, the orders list and one order's page (thin views over
the orders selectors and services)."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.core.paginator import Paginator
from django.db.models import Count, Q, QuerySet, Sum
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from marketplace.core.errors import ApplicationError
from orders.analytics import seller_balance
from orders.filters import OrderFilter
from orders.models import Order, OrderStatus
from orders.presenters import order_to_dict
from orders.selectors import order_get_for_seller
from orders.services import FULFILLABLE, order_retry_delivery
from payments.services import REFUNDABLE

ORDERS_PER_PAGE = 20

View = Callable[..., HttpResponse]


# --- Sign-in -------------------------------------------------------------------------------------


class EmailAuthenticationForm(AuthenticationForm):
    """Django's sign-in form with the email address as the user name.

    The page posts ``email``; ``username`` (what Django's own forms and tests post) works too.
    """

    username = forms.EmailField(
        label="Email",
        max_length=254,
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )

    def __init__(self, request: HttpRequest | None = None, *args: Any, **kwargs: Any) -> None:
        data = kwargs.get("data")
        if data is not None and "username" not in data and "email" in data:
            data = data.copy()
            data["username"] = data["email"]
            kwargs["data"] = data
        super().__init__(request, *args, **kwargs)

    def clean_username(self) -> str:
        # Addresses are stored in lower case (UserManager); sign-in should not depend on case.
        return str(self.cleaned_data["username"]).strip().lower()


class LoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    authentication_form = EmailAuthenticationForm
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    """POST only (Django's default since 5.0); goes to ``LOGOUT_REDIRECT_URL``."""


# --- Access --------------------------------------------------------------------------------------


def seller_required(view: View) -> View:
    """Signed-in sellers only: anonymous visitors go to the sign-in page, anyone else gets a 403."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not getattr(request.user, "is_seller", False):
            return render(request, "dashboard/forbidden.html", status=403)
        return view(request, *args, **kwargs)

    return login_required(wrapper)


def _not_found(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/not_found.html", status=404)


# --- Orders --------------------------------------------------------------------------------------


def _status_filter(raw: str) -> str:
    """A comma list of known statuses, or "" (an unknown status is ignored, not an error page)."""
    wanted = [s.strip() for s in raw.split(",") if s.strip()]
    if not wanted or any(s not in OrderStatus.values for s in wanted):
        return ""
    return ",".join(wanted)


def seller_orders_summary(*, seller: Any) -> dict[str, Any]:
    """Number of orders, and paid revenue per currency (orders paid and not refunded), in one query."""
    paid = Q(paid_at__isnull=False) & ~Q(status=OrderStatus.REFUNDED)
    rows = list(
        Order.objects.filter(seller=seller)
        .values("currency")
        .annotate(orders=Count("id"), total=Sum("total_amount", filter=paid), count=Count("id", filter=paid))
        .order_by("currency")
    )
    return {
        "order_count": sum(row["orders"] for row in rows),
        "revenue": [{"currency": r["currency"], "total": r["total"], "count": r["count"]} for r in rows if r["count"]],
    }


def seller_orders(*, seller: Any, status: str = "", q: str = "") -> QuerySet[Order]:
    queryset = Order.objects.filter(seller=seller).select_related("product").order_by("-created_at", "-id")
    return OrderFilter(data={"status": status, "q": q}, queryset=queryset).qs


@require_GET
@seller_required
def orders_list(request: HttpRequest) -> HttpResponse:
    status = _status_filter(request.GET.get("status", ""))
    q = request.GET.get("q", "").strip()[:200]
    paginator = Paginator(seller_orders(seller=request.user, status=status, q=q), ORDERS_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    keep = {key: value for key, value in (("status", status), ("q", q)) if value}
    return render(
        request,
        "dashboard/orders.html",
        {
            "page": page,
            "orders": page.object_list,
            "summary": seller_orders_summary(seller=request.user),
            "balance": seller_balance(seller=request.user),
            "export_query": urlencode({key: value for key, value in (("status", status), ("q", q)) if value}),
            "status": status,
            "q": q,
            "statuses": OrderStatus.choices,
            "filtered": bool(keep),
            "query_string": urlencode(keep),
        },
    )


@require_GET
@seller_required
def order_detail(request: HttpRequest, ref: str) -> HttpResponse:
    try:
        order = order_get_for_seller(seller=request.user, ref=ref)
    except ApplicationError:
        return _not_found(request)
    data = order_to_dict(order, audience="seller")
    return render(
        request,
        "dashboard/order_detail.html",
        {
            "order": order,
            "data": data,
            "items": list(zip(order.items.all(), data["items"], strict=True)),
            "payments": list(order.payments.all()),
            "events": list(order.events.all()),
            "can_retry": order.status in FULFILLABLE,
            "can_refund": order.status in REFUNDABLE,
            "refundable": order.total_amount - order.refunded_amount,
        },
    )


@require_POST
@seller_required
def order_retry(request: HttpRequest, ref: str) -> HttpResponse:
    try:
        order = order_get_for_seller(seller=request.user, ref=ref)
    except ApplicationError:
        return _not_found(request)
    try:
        order_retry_delivery(order=order, user=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Delivery retry requested. Items not yet delivered are being fulfilled again.")
    return HttpResponseRedirect(reverse("dashboard-order", args=[order.order_number]))


def _minor_units(raw: str, currency: str) -> int | None:
    """'12.50' USD → 1250; '' → None (the whole remaining amount). Raises ValueError when not exact."""
    from decimal import Decimal, InvalidOperation

    from marketplace.core.money import exponent

    raw = raw.strip().replace(",", "")
    if not raw:
        return None
    try:
        value = Decimal(raw).scaleb(exponent(currency))
    except InvalidOperation:
        raise ValueError("Enter an amount such as 12.50.") from None
    if value != value.to_integral_value() or value <= 0:
        raise ValueError(f"Enter a positive amount with at most {exponent(currency)} decimal places.")
    return int(value)


@require_POST
@seller_required
def order_refund(request: HttpRequest, ref: str) -> HttpResponse:
    """The same refund service as the API; the amount is typed the way people write money."""
    from payments.services import refund_create

    try:
        order = order_get_for_seller(seller=request.user, ref=ref)
    except ApplicationError:
        return _not_found(request)
    try:
        amount = _minor_units(request.POST.get("amount", ""), order.currency)
        refund_create(order=order, amount=amount, reason=request.POST.get("reason", "")[:500], user=request.user)
    except ValueError as exc:
        messages.error(request, str(exc))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Refund sent through the payment gateway.")
    return HttpResponseRedirect(reverse("dashboard-order", args=[order.order_number]))
