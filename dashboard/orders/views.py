"""The seller's orders pages: the orders list and one order's page (thin views over the orders
selectors and services)."""

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from catalog.models import DeliveryType, Product
from dashboard.auth import not_found as _not_found
from dashboard.auth import seller_required
from marketplace.core.bounds import validate_day
from marketplace.core.errors import ApplicationError
from marketplace.core.money import format_money, parse_amount
from orders.analytics import seller_balance
from orders.filters import OrderFilter
from orders.fulfillment import available_types
from orders.lifecycle import CLOSED, FULFILLABLE, MANUAL, REFUNDABLE
from orders.models import Order, OrderStatus
from orders.selectors import order_get_for_seller
from orders.services import (
    order_item_override_delivery,
    order_item_replace_and_deliver,
    order_retry_delivery,
    order_seller_read,
    order_set_status,
)
from orders.services.gifts import order_gift_reschedule, order_gift_send_now
from orders.services.receipts import order_receipt_resend
from orders.services.refunds import order_refund_create

ORDERS_PER_PAGE = 20


# --- Orders --------------------------------------------------------------------------------------


class OrdersFilterForm(forms.Form):
    """The orders list's filters as people type them; ``api_params`` turns them into the order
    API's filters (``orders.filters.OrderFilter``), which the list and the CSV export both apply.

    Dates are whole days in the seller's time zone; amounts are money in one currency ("12.50"),
    since minor units differ between currencies (with one currency in the shop it is implied).
    """

    q = forms.CharField(label="Search", required=False, max_length=200)
    status = forms.MultipleChoiceField(
        label="Status", required=False, choices=OrderStatus.choices, widget=forms.CheckboxSelectMultiple
    )
    product = forms.ChoiceField(label="Product", required=False)
    buyer_email = forms.CharField(label="Buyer email", required=False, max_length=254)
    created_from = forms.DateField(
        label="From", required=False, validators=[validate_day], widget=forms.DateInput(attrs={"type": "date"})
    )
    created_to = forms.DateField(
        label="To", required=False, validators=[validate_day], widget=forms.DateInput(attrs={"type": "date"})
    )
    currency = forms.ChoiceField(label="Currency", required=False)
    min_amount = forms.CharField(label="Min total", required=False, max_length=30)
    max_amount = forms.CharField(label="Max total", required=False, max_length=30)

    def __init__(self, data: Any, *, seller: Any) -> None:
        super().__init__(data)
        self.zone = ZoneInfo(getattr(seller, "time_zone", "") or "UTC")
        products = list(Product.objects.filter(seller=seller).order_by("title", "id").values_list("id", "title"))
        product_field: Any = self.fields["product"]
        product_field.choices = [("", "All products"), *products]
        self.currencies = sorted(
            set(Order.objects.filter(seller=seller).values_list("currency", flat=True).distinct())
            | set(Product.objects.filter(seller=seller).values_list("currency", flat=True).distinct())
        )
        currency_field: Any = self.fields["currency"]
        currency_field.choices = [("", "Any")] + [(c, c) for c in self.currencies]

    def _day_start(self, day: date) -> str:
        start = datetime.combine(day, time.min, tzinfo=self.zone).astimezone(UTC)
        return start.strftime("%Y-%m-%dT%H:%M:%SZ")

    def api_params(self) -> dict[str, str]:
        """The valid filters as the order API takes them; a field that is not valid gets its error
        and is left out (the rest still apply)."""
        self.is_valid()
        data = self.cleaned_data
        params: dict[str, str] = {}
        for name in ("q", "product", "buyer_email"):
            if data.get(name, "").strip():
                params[name] = data[name].strip()
        if data.get("status"):
            params["status"] = ",".join(data["status"])
        start, end = data.get("created_from"), data.get("created_to")
        if start and end and end < start:
            self.add_error("created_to", "Must be on or after the start date.")
        else:
            if start:
                params["created_after"] = self._day_start(start)
            if end:
                params["created_before"] = self._day_start(end + timedelta(days=1))
        currency = data.get("currency") or ""
        wants_amount = any((data.get(name) or "").strip() for name in ("min_amount", "max_amount"))
        if wants_amount and not currency:
            if len(self.currencies) == 1:
                currency = self.currencies[0]
            else:
                self.add_error("currency", "Choose the currency the amounts are in.")
        if currency:
            params["currency"] = currency
            for name in ("min_amount", "max_amount"):
                try:
                    amount = parse_amount(data.get(name) or "", currency)
                except ValueError as exc:
                    self.add_error(name, str(exc))
                else:
                    if amount is not None:
                        params[name] = str(amount)
        return params


def _filter_data(query: QueryDict) -> QueryDict:
    """``status`` as repeated values or the API's comma list (``?status=paid,delivered``)."""
    data = query.copy()
    data.setlist("status", [s.strip() for value in query.getlist("status") for s in value.split(",") if s.strip()])
    return data


def seller_orders_summary(*, seller: Any, balance: list[dict[str, Any]]) -> dict[str, Any]:
    """The number of orders, and paid revenue per currency read from the seller's ``balance`` rows
    (``orders.analytics.seller_balance``), so the summary and the balance card count "paid" the one
    way ``orders.lifecycle`` defines it, net of refunds."""
    return {
        "order_count": Order.objects.filter(seller=seller).count(),
        "revenue": [{"currency": r["currency"], "total": r["revenue"], "count": r["orders"]} for r in balance],
    }


def seller_orders(*, seller: Any, filters: dict[str, str] | None = None) -> QuerySet[Order]:
    """The seller's orders, newest first, with the order API's filters."""
    queryset = Order.objects.filter(seller=seller).select_related("product").order_by("-created_at", "-id")
    return OrderFilter(data=filters or {}, queryset=queryset).qs


@require_GET
@seller_required
def orders_list(request: HttpRequest) -> HttpResponse:
    form = OrdersFilterForm(_filter_data(request.GET), seller=request.user)
    params = form.api_params()
    paginator = Paginator(seller_orders(seller=request.user, filters=params), ORDERS_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    keep = request.GET.copy()
    keep.pop("page", None)
    for key in [key for key, values in keep.lists() if not any(v.strip() for v in values)]:
        del keep[key]
    balance = seller_balance(seller=request.user)
    return render(
        request,
        "dashboard/orders.html",
        {
            "page": page,
            "orders": page.object_list,
            "summary": seller_orders_summary(seller=request.user, balance=balance),
            "balance": balance,
            "export_query": urlencode(params),
            "form": form,
            "filtered": bool(params) or bool(form.errors),
            "query_string": keep.urlencode(),
        },
    )


class OverrideDeliveryForm(forms.Form):
    """What one item delivers from now on (``order_item_override_delivery`` validates the content
    the way a product's delivery is validated)."""

    item_id = forms.CharField(widget=forms.HiddenInput)
    content_type = forms.ChoiceField(label="Delivery type", choices=[])
    content = forms.CharField(
        label="Content", required=False, max_length=20000, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field: Any = self.fields["content_type"]
        field.choices = [(t, DeliveryType(t).label if t in DeliveryType.values else t) for t in available_types()]


def _order_page(
    request: HttpRequest, order: Order, *, override: OverrideDeliveryForm | None = None, status: int = 200
) -> HttpResponse:
    """The order page; ``override`` is a bound form with errors for the item it names. Showing its
    codes is recorded like an API read (``order_seller_read``)."""
    data, viewed = order_seller_read(order=order, user=request.user, via="dashboard")
    items = []
    for item, view in zip(order.items.all(), data["items"], strict=True):
        if override is not None and override.data.get("item_id") == item.id:
            form = override
        else:
            form = OverrideDeliveryForm(
                initial={"item_id": item.id, "content_type": item.content_type, "content": item.delivery_content},
                auto_id=f"id_{item.id}_%s",
            )
        items.append((item, view, form))
    moves = sorted(MANUAL.get(order.status, frozenset()))
    return render(
        request,
        "dashboard/order_detail.html",
        {
            "order": order,
            "data": data,
            "items": items,
            "payments": list(order.payments.all()),
            "refunds": list(order.refunds.all()),
            "events": [*order.events.all(), *([viewed] if viewed else [])],
            "can_retry": order.status in FULFILLABLE,
            "can_refund": order.status in REFUNDABLE,
            "can_override": order.status not in CLOSED,
            "refundable": order.total_amount - order.refunded_amount,
            "refundable_text": format_money(order.total_amount - order.refunded_amount, order.currency),
            "moves": [(move, OrderStatus(move).label) for move in moves],
        },
        status=status,
    )


def _seller_order(request: HttpRequest, ref: str) -> Order | None:
    try:
        return order_get_for_seller(seller=request.user, ref=ref)
    except ApplicationError:
        return None


@require_GET
@seller_required
def order_detail(request: HttpRequest, ref: str) -> HttpResponse:
    order = _seller_order(request, ref)
    if order is None:
        return _not_found(request)
    return _order_page(request, order)


@require_POST
@seller_required
def order_change_status(request: HttpRequest, ref: str) -> HttpResponse:
    """A manual move of ``orders.lifecycle.MANUAL``; anything else is refused by the service."""
    order = _seller_order(request, ref)
    if order is None:
        return _not_found(request)
    to_status = request.POST.get("status", "")
    try:
        order_set_status(order=order, to_status=to_status, user=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Status set to {OrderStatus(to_status).label}.")
    return HttpResponseRedirect(reverse("dashboard-order", args=[order.order_number]))


@require_POST
@seller_required
def order_override_delivery(request: HttpRequest, ref: str) -> HttpResponse:
    order = _seller_order(request, ref)
    if order is None:
        return _not_found(request)
    item_ref = "".join(ch for ch in request.POST.get("item_id", "") if ch.isalnum() or ch == "_")[:40]
    form = OverrideDeliveryForm(request.POST, auto_id=f"id_{item_ref}_%s")
    if form.is_valid():
        deliver = request.POST.get("deliver") == "1"
        replace = order_item_replace_and_deliver if deliver else order_item_override_delivery
        try:
            item = replace(
                order=order,
                item_id=form.cleaned_data["item_id"],
                content_type=form.cleaned_data["content_type"],
                content=form.cleaned_data["content"],
                user=request.user,
            )
        except ApplicationError as exc:
            if exc.status_code == 404:
                return _not_found(request)
            placed = False
            for name, field_messages in (exc.fields or {}).items():
                target = name.removeprefix("delivery.").split(".")[0]
                if target in form.fields:
                    for message in field_messages:
                        form.add_error(target, message)
                    placed = True
            if not placed:
                form.add_error(None, exc.message)
        else:
            if deliver:
                done = "delivered" if item.fulfilled else "being delivered"
                messages.success(request, f"Delivery of {item.title} replaced and {done}.")
            else:
                messages.success(
                    request,
                    f"Delivery of {item.title} replaced."
                    + ("" if item.fulfilled else " Retry delivery to send it to the buyer."),
                )
            return HttpResponseRedirect(reverse("dashboard-order", args=[order.order_number]))
    order = _seller_order(request, ref) or order
    return _order_page(request, order, override=form, status=400)


@require_POST
@seller_required
def order_retry(request: HttpRequest, ref: str) -> HttpResponse:
    order = _seller_order(request, ref)
    if order is None:
        return _not_found(request)
    try:
        order_retry_delivery(order=order, user=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Delivery retry requested. Items not yet delivered are being fulfilled again.")
    return HttpResponseRedirect(reverse("dashboard-order", args=[order.order_number]))


class GiftDateForm(forms.Form):
    deliver_at = forms.DateTimeField(input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"])


@require_POST
@seller_required
def order_gift(request: HttpRequest, ref: str) -> HttpResponse:
    """A gift's e-mail to its recipient: "Send now", or a new date (UTC), through the API's services."""
    order = _seller_order(request, ref)
    if order is None:
        return _not_found(request)
    try:
        if request.POST.get("action") == "send":
            order_gift_send_now(order=order, user=request.user)
            messages.success(request, f"The gift was sent to {order.recipient_email}.")
        else:
            form = GiftDateForm(request.POST)
            if not form.is_valid():
                messages.error(request, "Enter the new delivery date and time (UTC).")
            else:
                when = form.cleaned_data["deliver_at"].replace(tzinfo=UTC)
                if when > datetime.now(UTC) + timedelta(days=366):
                    messages.error(request, "The delivery date can be at most a year ahead.")
                else:
                    order_gift_reschedule(order=order, deliver_at=when, user=request.user)
                    messages.success(request, f"The gift will be sent on {when:%b %-d, %Y %H:%M} UTC.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    except Exception:  # noqa: BLE001 - a mail outage: the seller may try again
        messages.error(request, "The gift e-mail could not be sent; try again in a moment.")
    return HttpResponseRedirect(reverse("dashboard-order", args=[order.order_number]))


@require_POST
@seller_required
def order_resend_receipt(request: HttpRequest, ref: str) -> HttpResponse:
    order = _seller_order(request, ref)
    if order is None:
        return _not_found(request)
    try:
        event = order_receipt_resend(order=order, user=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, event.message)
    return HttpResponseRedirect(reverse("dashboard-order", args=[order.order_number]))


@require_POST
@seller_required
def order_refund(request: HttpRequest, ref: str) -> HttpResponse:
    """The same refund service as the API; the amount is typed the way people write money."""
    try:
        order = order_get_for_seller(seller=request.user, ref=ref)
    except ApplicationError:
        return _not_found(request)
    try:
        amount = parse_amount(request.POST.get("amount", ""), order.currency)
        order_refund_create(order=order, amount=amount, reason=request.POST.get("reason", "")[:500], user=request.user)
    except ValueError as exc:
        messages.error(request, str(exc))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Refund sent through the payment gateway.")
    return HttpResponseRedirect(reverse("dashboard-order", args=[order.order_number]))
