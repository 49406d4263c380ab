"""The seller's settings pages: profile, API keys and discount codes (the outgoing webhooks' pages,
also under Settings, are ``dashboard.webhooks.views``).

Thin views over the same services as the API (``marketplace.accounts.services``,
``catalog.discounts``); their ``ApplicationError`` messages are shown next to the field they name.
Secrets (API keys) are shown in the response that made them, never stored in the session, and the
page is sent with ``Cache-Control: no-store``.
"""

from datetime import datetime
from typing import Any, cast
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from catalog.discounts import discount_get, discount_save
from catalog.models import Discount, DiscountKind, Product, ProductStatus
from dashboard.auth import not_found as _not_found
from dashboard.auth import seller_required
from marketplace.accounts.models import APIKey, User
from marketplace.accounts.services import (
    api_key_create,
    api_key_revoke,
    seller_profile_update,
    seller_store_slug_ensure,
    seller_store_update,
)
from marketplace.core.errors import ApplicationError
from marketplace.core.money import currencies, exponent, parse_amount

DATETIME_LOCAL = "%Y-%m-%dT%H:%M"


# --- Shared --------------------------------------------------------------------------------------


def apply_error(form: forms.Form, exc: ApplicationError, rename: dict[str, str] | None = None) -> None:
    """Puts a service's field errors next to the form's fields (``rename`` maps service names to
    form names); what names no field of the form goes on top of the form."""
    rename = rename or {}
    placed = False
    for name, field_messages in (exc.fields or {}).items():
        target = rename.get(name, name)
        if target in form.fields:
            for message in field_messages:
                form.add_error(target, message)
            placed = True
    if not placed:
        form.add_error(None, exc.message)


def _secret_page(request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    """A page that shows a secret once: never cached, by the browser or anyone in between."""
    response = render(request, template, context)
    response["Cache-Control"] = "no-store"
    return response


def _seller(request: HttpRequest) -> User:
    """The signed-in seller (``seller_required`` has checked)."""
    return cast(User, request.user)


def _seller_zone(user: Any) -> ZoneInfo:
    return ZoneInfo(getattr(user, "time_zone", "") or "UTC")


# --- Profile -------------------------------------------------------------------------------------


def _time_zones() -> list[tuple[str, str]]:
    from zoneinfo import available_timezones

    return [(name, name) for name in sorted(available_timezones()) if "/" in name or name == "UTC"]


class ProfileForm(forms.Form):
    name = forms.CharField(label="Display name", max_length=150, help_text="Buyers see it on your checkout pages.")
    time_zone = forms.ChoiceField(
        label="Time zone",
        choices=_time_zones,
        initial="UTC",
        required=False,
        help_text="Decides what a day is in your analytics, order filters and exports.",
    )
    support_email = forms.EmailField(
        label="Support email",
        required=False,
        help_text="Where buyers write about their orders. Leave empty to use your sign-in email.",
    )
    store_slug = forms.CharField(
        label="Store address",
        required=False,
        max_length=60,
        help_text="Your store's page is /s/<address>: lowercase letters, digits and hyphens.",
    )
    store_bio = forms.CharField(
        label="About your store",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Shown on your store page. Markdown: **bold**, *italic*, [links](https://example.com).",
    )
    dispute_revokes_access = forms.BooleanField(
        label="A dispute suspends the buyer's access",
        required=False,
        help_text="When a buyer's bank disputes a payment, their downloads, links, codes and licence keys stop "
        "working until the dispute is won (then they work again).",
    )
    notify_on_sale = forms.BooleanField(
        label="Email me about each sale",
        required=False,
        help_text="A short email to your sign-in address when an order is paid: what sold, to whom, for how much.",
    )


@require_http_methods(["GET", "POST"])
@seller_required
def settings_profile(request: HttpRequest) -> HttpResponse:
    user = _seller(request)
    if request.method == "POST":
        form = ProfileForm(request.POST)
        if form.is_valid():
            try:
                with transaction.atomic():  # the profile and the store together, or neither
                    seller_profile_update(
                        user=user,
                        name=form.cleaned_data["name"],
                        support_email=form.cleaned_data["support_email"],
                        time_zone=form.cleaned_data["time_zone"] or None,
                        dispute_revokes_access=form.cleaned_data["dispute_revokes_access"],
                        notify_on_sale=form.cleaned_data["notify_on_sale"],
                    )
                    if form.cleaned_data["store_slug"] or "store_bio" in request.POST:
                        seller_store_update(
                            user=user,
                            store_slug=form.cleaned_data["store_slug"] or seller_store_slug_ensure(user),
                            store_bio=form.cleaned_data["store_bio"],
                        )
            except ApplicationError as exc:
                apply_error(form, exc)
            else:
                messages.success(request, "Settings saved.")
                return HttpResponseRedirect(reverse("dashboard-settings"))
    else:
        form = ProfileForm(
            initial={
                "name": user.name,
                "support_email": user.support_email,
                "time_zone": user.time_zone,
                "dispute_revokes_access": user.dispute_revokes_access,
                "store_slug": user.store_slug or "",
                "store_bio": user.store_bio,
                "notify_on_sale": user.notify_on_sale,
            }
        )
    return render(request, "dashboard/settings.html", {"form": form, "section": "profile"})


# --- API keys ------------------------------------------------------------------------------------


class APIKeyForm(forms.Form):
    name = forms.CharField(label="Key name", max_length=100, help_text='What uses it, e.g. "Shop backend".')


@require_http_methods(["GET", "POST"])
@seller_required
def api_keys(request: HttpRequest) -> HttpResponse:
    form = APIKeyForm(request.POST if request.method == "POST" else None)
    new_key: tuple[APIKey, str] | None = None
    if request.method == "POST" and form.is_valid():
        new_key = api_key_create(user=_seller(request), name=form.cleaned_data["name"].strip())
        form = APIKeyForm()
    keys = APIKey.objects.filter(user=_seller(request)).order_by("-created_at", "-id")
    context = {"form": form, "keys": keys, "new_key": new_key, "section": "api_keys"}
    return _secret_page(request, "dashboard/api_keys.html", context)


@require_POST
@seller_required
def api_key_revoke_view(request: HttpRequest, key_id: str) -> HttpResponse:
    key = APIKey.objects.filter(user=_seller(request), id=key_id).first()
    if key is None:
        return _not_found(request)
    try:
        api_key_revoke(user=_seller(request), key_id=key.id)
    except ApplicationError:
        messages.error(request, f"The key {key.name} was already revoked.")
    else:
        messages.success(request, f"The key {key.name} ({key.prefix}…) is revoked; requests with it now get a 401.")
    return HttpResponseRedirect(reverse("dashboard-api-keys"))


# --- Discount codes ------------------------------------------------------------------------------


class DiscountForm(forms.Form):
    """Shapes only: the rules are ``discount_save``'s. The value is typed the way people write it:
    a whole percent, or an amount of money in the chosen currency ("5.00" USD → 500 minor units)."""

    code = forms.CharField(label="Code", max_length=64, help_text="Letters, digits, - and _; buyers type it.")
    kind = forms.ChoiceField(label="Kind", choices=DiscountKind.choices, widget=forms.RadioSelect)
    value = forms.CharField(label="Value", max_length=30, help_text="A percent (e.g. 10) or an amount (e.g. 5.00).")
    currency = forms.ChoiceField(label="Currency (fixed amounts only)", required=False)
    products = forms.MultipleChoiceField(
        label="Products",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Leave every box empty for all your products.",
    )
    max_uses = forms.IntegerField(label="Maximum uses", required=False, min_value=1, help_text="Empty: no limit.")
    min_quantity = forms.IntegerField(label="Minimum quantity", min_value=1, initial=1)
    starts_at = forms.DateTimeField(
        label="Starts",
        required=False,
        input_formats=[DATETIME_LOCAL, "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL),
    )
    expires_at = forms.DateTimeField(
        label="Expires",
        required=False,
        input_formats=[DATETIME_LOCAL, "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL),
    )
    active = forms.BooleanField(label="Active", required=False, initial=True)

    def __init__(self, *args: Any, seller: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        products = Product.objects.filter(seller=seller).order_by("title", "id")
        selected = set(self.initial.get("products") or [])
        product_field: Any = self.fields["products"]
        product_field.choices = [
            (p.id, f"{p.title} ({p.currency})" + (" · archived" if p.status == ProductStatus.ARCHIVED else ""))
            for p in products
            if p.status != ProductStatus.ARCHIVED or p.id in selected
        ]
        own = sorted({p.currency for p in products})
        currency_field: Any = self.fields["currency"]
        currency_field.choices = (
            [("", "—")] + [(c, c) for c in own] + [(c, c) for c in sorted(currencies()) if c not in own]
        )

    def service_data(self) -> dict[str, Any]:
        """The cleaned form as ``discount_save`` takes it; a value that is not a number of the
        kind's shape is put next to the value field and ``ValueError`` raised."""
        data = self.cleaned_data
        kind, raw, currency = data["kind"], data["value"].strip(), data.get("currency") or ""
        if kind == DiscountKind.PERCENT:
            number = raw.removesuffix("%").strip()
            if not number.isdigit():
                self.add_error("value", "A percent is a whole number from 1 to 100.")
                raise ValueError
            value = int(number)
            currency = ""
        else:
            if not currency:
                self.add_error("currency", "Choose the currency the amount is in.")
                raise ValueError
            try:
                minor = parse_amount(raw, currency)
            except ValueError as exc:
                self.add_error("value", str(exc))
                raise
            if minor is None:
                self.add_error("value", "Enter the amount, e.g. 5.00.")
                raise ValueError
            value = minor
        return {
            "code": data["code"].strip(),
            "kind": kind,
            "value": value,
            "currency": currency,
            "product_ids": list(data["products"]),
            "max_uses": data["max_uses"],
            "min_quantity": data["min_quantity"],
            "starts_at": data["starts_at"],
            "expires_at": data["expires_at"],
            "active": data["active"],
        }


def _local_input(value: datetime | None, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime(DATETIME_LOCAL) if value else ""


def discount_value_text(discount: Discount) -> str:
    """What the form shows: "10" for 10 %, "5.00" for 500 USD minor units."""
    if discount.kind == DiscountKind.PERCENT or not discount.currency:
        return str(discount.value)
    digits = exponent(discount.currency)
    return f"{discount.value / 10**digits:.{digits}f}" if digits else str(discount.value)


@require_http_methods(["GET"])
@seller_required
def discounts_list(request: HttpRequest) -> HttpResponse:
    discounts = list(
        Discount.objects.filter(seller=_seller(request)).prefetch_related("products").order_by("-created_at", "-id")
    )
    active = list(
        Product.objects.filter(seller=_seller(request), status=ProductStatus.ACTIVE)
        .order_by("-created_at", "id")
        .only("id", "slug", "title")[: DISCOUNT_LINKS_SHOWN + 1]
    )
    for discount in discounts:
        discount.links = discount_links(discount, active)  # type: ignore[attr-defined]
    return render(
        request, "dashboard/discounts.html", {"discounts": discounts, "now": timezone.now(), "section": "discounts"}
    )


# A code for all products shows a link for this many of the seller's products (the newest).
DISCOUNT_LINKS_SHOWN = 3


def discount_links(discount: Discount, active_products: list[Product]) -> list[dict[str, str]]:
    """Links that open a checkout page with the code filled in and applied (``?discount=CODE``):
    one per product the code is for (its active ones), or for the newest active products when it
    is for all of them."""
    chosen = [p for p in discount.products.all() if p.status == ProductStatus.ACTIVE] or (
        [] if discount.products.all() else active_products[:DISCOUNT_LINKS_SHOWN]
    )
    query = urlencode({"discount": discount.code})
    return [
        {"title": product.title, "url": f"{settings.SITE_URL}{reverse('checkout:page', args=[product.slug])}?{query}"}
        for product in chosen
    ]


@require_http_methods(["GET", "POST"])
@seller_required
def discount_edit(request: HttpRequest, discount_id: str | None = None) -> HttpResponse:
    """Create (no ``discount_id``) or edit a discount code; dates are in the seller's time zone."""
    discount: Discount | None = None
    if discount_id is not None:
        try:
            discount = discount_get(seller=_seller(request), discount_id=discount_id)
        except ApplicationError:
            return _not_found(request)
    zone = _seller_zone(_seller(request))
    initial: dict[str, Any] = {"kind": DiscountKind.PERCENT, "min_quantity": 1, "active": True}
    if discount is not None:
        initial = {
            "code": discount.code,
            "kind": discount.kind,
            "value": discount_value_text(discount),
            "currency": discount.currency,
            "products": [p.id for p in discount.products.all()],
            "max_uses": discount.max_uses,
            "min_quantity": discount.min_quantity,
            "starts_at": _local_input(discount.starts_at, zone),
            "expires_at": _local_input(discount.expires_at, zone),
            "active": discount.active,
        }
    with timezone.override(zone):  # naive form dates are the seller's local time
        form = DiscountForm(
            request.POST if request.method == "POST" else None, initial=initial, seller=_seller(request)
        )
        if request.method == "POST" and form.is_valid():
            try:
                data = form.service_data()
                saved = discount_save(seller=_seller(request), data=data, discount=discount)
            except ValueError:
                pass
            except ApplicationError as exc:
                if exc.code == "discount_code_taken":
                    form.add_error("code", exc.message)
                else:
                    apply_error(form, exc, rename={"product_ids": "products"})
            else:
                verb = "created" if discount is None else "saved"
                messages.success(request, f"Discount {saved.code} {verb}.")
                return HttpResponseRedirect(reverse("dashboard-discounts"))
    context = {"form": form, "discount": discount, "zone": zone.key, "section": "discounts"}
    return render(request, "dashboard/discounts_form.html", context)


@require_POST
@seller_required
def discount_deactivate(request: HttpRequest, discount_id: str) -> HttpResponse:
    try:
        discount = discount_get(seller=_seller(request), discount_id=discount_id)
    except ApplicationError:
        return _not_found(request)
    discount_save(seller=_seller(request), data={"active": False}, discount=discount)
    messages.success(request, f"Discount {discount.code} deactivated: buyers can no longer use it.")
    return HttpResponseRedirect(reverse("dashboard-discounts"))


urlpatterns: list[URLPattern] = [
    path("dashboard/settings/", settings_profile, name="dashboard-settings"),
    path("dashboard/settings/api-keys/", api_keys, name="dashboard-api-keys"),
    path("dashboard/settings/api-keys/<str:key_id>/revoke/", api_key_revoke_view, name="dashboard-api-key-revoke"),
    path("dashboard/settings/discounts/", discounts_list, name="dashboard-discounts"),
    path("dashboard/settings/discounts/new/", discount_edit, name="dashboard-discount-new"),
    path("dashboard/settings/discounts/<str:discount_id>/", discount_edit, name="dashboard-discount"),
    path(
        "dashboard/settings/discounts/<str:discount_id>/deactivate/",
        discount_deactivate,
        name="dashboard-discount-deactivate",
    ),
]
