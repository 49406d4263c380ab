"""The seller's catalog pages: products (list, create, edit, archive), file uploads and code pools.

Thin views over the same services and selectors as the API (``catalog.services``,
``catalog.selectors``, ``catalog.inventory``): a form turns what people type ("19.99") into what the
services take (1999 minor units), and an ``ApplicationError`` comes back as a message next to the
field it names. Nothing here writes a model directly.
"""

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import IO, Any, cast

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, F, Sum
from django.forms import formset_factory
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from catalog.covers import COVER_MAX_BYTES, cover_image_url
from catalog.delivery import partner_for_seller, partner_secret_of
from catalog.inventory import available_counts, code_set_status, codes_import, rows_from_csv
from catalog.models import Code, CodeStatus, DeliveryType, Product, ProductStatus, Upload, Variant
from catalog.selectors import product_get, product_list
from catalog.services import MAX_VARIANTS, product_archive_or_delete, product_create, product_update, upload_create
from dashboard.auth import seller_required
from marketplace.core.api import error_body
from marketplace.core.bounds import MAX_COUNT
from marketplace.core.errors import ApplicationError, PayloadTooLarge, ValidationFailed
from marketplace.core.money import currencies, exponent, parse_amount
from orders.lifecycle import paid_q
from orders.models import Order

PRODUCTS_PER_PAGE = 20
CODES_PER_PAGE = 50
# Multipart framing around a file (boundary, part headers) is small; more than this is refused unread.
MULTIPART_OVERHEAD = 64 * 1024
CODE_ACTIONS = {
    "block": ("Block", "It cannot be sold until you unblock it."),
    "unblock": ("Unblock", "It goes back on sale."),
    "revoke": ("Revoke", "It can never be sold again. This cannot be undone."),
}
COMMON_CURRENCIES = [
    "USD", "EUR", "GBP", "CAD", "AUD", "NZD", "JPY", "CHF", "SEK", "NOK", "DKK", "PLN", "INR", "BDT",
    "PKR", "IDR", "SGD", "HKD", "KRW", "CNY", "BRL", "MXN", "ARS", "ZAR", "NGN", "KES", "UGX", "GHS",
    "EGP", "AED", "SAR", "KWD", "BHD", "TRY",
]  # fmt: skip
OTHER_CURRENCY = "other"
# Where the service's ``delivery.content`` message goes, per delivery type.
CONTENT_FIELD = {"text": "delivery_text", "link": "delivery_link", "file": "delivery_file"}
DELIVERY_FIELDS = {
    "delivery.content_type": "delivery_type",
    "delivery.redemption_instructions": "redemption_instructions",
    "delivery.license": "license_activation_limit",
    "delivery.license.activation_limit": "license_activation_limit",
    "delivery.license.expires_in_days": "license_expires_in_days",
    "delivery.license.prefix": "license_prefix",
    "delivery.partner": "partner_url",
    "delivery.partner.url": "partner_url",
    "delivery.partner.input_label": "partner_input_label",
    "delivery.partner.input_help": "partner_input_help",
}


def _not_found(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/products_not_found.html", status=404)


def _json_ok(data: dict[str, Any], status: int = 200) -> JsonResponse:
    return JsonResponse({"success": True, "data": data}, status=status)


def _json_error(exc: ApplicationError) -> JsonResponse:
    return JsonResponse(error_body(exc.code, exc.message, exc.fields), status=exc.status_code)


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "") or (
        request.headers.get("X-Requested-With") == "XMLHttpRequest"
    )


def _too_large(request: HttpRequest) -> bool:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return length > settings.MAX_UPLOAD_SIZE + MULTIPART_OVERHEAD


def money_to_minor(raw: str, currency: str) -> int:
    """What a seller types ("19.99", "1,234.5", "0") in the currency's minor units, exactly.

    Raises ValueError with a sentence for the field. Zero is a price (a free product)."""
    text = raw.strip().replace(",", "")
    if not text:
        raise ValueError("A price is required.")
    try:
        if Decimal(text) == 0:
            return 0
    except InvalidOperation:
        pass
    amount = parse_amount(text, currency)
    if amount is None:  # pragma: no cover - empty input is handled above
        raise ValueError("A price is required.")
    return amount


def minor_to_text(amount: int, currency: str) -> str:
    """1999 USD → "19.99"; 1234 KWD → "1.234"; 50000 UGX → "50000" (what the form shows back)."""
    return f"{Decimal(amount).scaleb(-exponent(currency)):f}"


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"  # pragma: no cover


# --- Forms ---------------------------------------------------------------------------------------


class ProductForm(forms.Form):
    """Shapes and the currency choice; every rule of the product itself is the service's."""

    title = forms.CharField(max_length=200)
    slug = forms.CharField(label="Page address", required=False, max_length=80)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}), max_length=20000)
    cover_image = forms.CharField(label="Cover image", required=False, widget=forms.HiddenInput, max_length=500)
    cover_remove = forms.BooleanField(label="Remove the cover image", required=False)
    status = forms.ChoiceField(choices=ProductStatus.choices, initial=ProductStatus.DRAFT)
    currency = forms.ChoiceField(
        choices=[(code, code) for code in COMMON_CURRENCIES] + [(OTHER_CURRENCY, "Other…")], initial="USD"
    )
    currency_other = forms.CharField(label="Other currency (ISO 4217 code)", required=False, max_length=3)
    delivery_type = forms.ChoiceField(label="Delivery", choices=DeliveryType.choices, initial=DeliveryType.FILE)
    delivery_text = forms.CharField(
        label="Text delivered to the buyer", required=False, widget=forms.Textarea(attrs={"rows": 4})
    )
    delivery_link = forms.CharField(label="Link (https://)", required=False, max_length=2000)
    delivery_file = forms.CharField(label="File", required=False, widget=forms.HiddenInput, max_length=500)
    license_activation_limit = forms.IntegerField(label="Activations per key", required=False, min_value=1)
    license_expires_in_days = forms.IntegerField(label="Keys expire after (days)", required=False, min_value=1)
    license_prefix = forms.CharField(label="Key prefix", required=False, max_length=12)
    partner_url = forms.CharField(label="Fulfillment URL (https://)", required=False, max_length=2000)
    download_limit = forms.IntegerField(
        label="Downloads per purchase",
        required=False,
        min_value=1,
        max_value=MAX_COUNT,
        help_text="How many times each buyer may download the file. Leave empty for no limit.",
    )
    partner_input_label = forms.CharField(label="Buyer's input: label", required=False, max_length=80)
    partner_input_help = forms.CharField(label="Buyer's input: help text", required=False, max_length=300)
    redemption_instructions = forms.CharField(
        label="Redemption instructions", required=False, widget=forms.Textarea(attrs={"rows": 3}), max_length=5000
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("currency") == OTHER_CURRENCY:
            other = (cleaned.get("currency_other") or "").strip().upper()
            if not other:
                self.add_error("currency_other", "Enter a three-letter ISO 4217 code, such as NOK.")
            elif other not in currencies():
                self.add_error("currency_other", f"'{other}' is not an ISO 4217 currency code.")
            else:
                cleaned["currency"] = other
        return cleaned

    def delivery(self, *, current: Product | None) -> dict[str, Any]:
        """The ``delivery`` object of the API for the chosen type."""
        data = self.cleaned_data
        kind = data["delivery_type"]
        content = {"text": data["delivery_text"], "link": data["delivery_link"].strip(), "file": data["delivery_file"]}
        delivery: dict[str, Any] = {
            "content_type": kind,
            "content": content.get(kind, ""),
            "redemption_instructions": data["redemption_instructions"],
        }
        if kind == DeliveryType.LICENSE_KEY:
            delivery["license"] = {
                "activation_limit": data["license_activation_limit"],
                "expires_in_days": data["license_expires_in_days"],
                "prefix": (data["license_prefix"] or "").strip().upper() or None,
            }
        elif kind == DeliveryType.PARTNER_API:
            partner: dict[str, Any] = {
                "url": data["partner_url"].strip(),
                "input_label": data["partner_input_label"].strip(),
                "input_help": data["partner_input_help"].strip(),
            }
            if current is not None and current.delivery_type == DeliveryType.PARTNER_API:
                # Keep the signing secret the seller's fulfillment server already verifies with.
                secret = ((current.delivery_options or {}).get("partner") or {}).get("secret")
                if secret:
                    partner["secret"] = secret
            delivery["partner"] = partner
        return delivery


class VariantForm(forms.Form):
    id = forms.CharField(required=False, widget=forms.HiddenInput, max_length=40)
    name = forms.CharField(required=False, max_length=120)
    price = forms.CharField(required=False, max_length=40, widget=forms.TextInput(attrs={"inputmode": "decimal"}))
    stock = forms.IntegerField(required=False, min_value=0)

    def is_blank(self) -> bool:
        data = getattr(self, "cleaned_data", {})
        return not (data.get("id") or (data.get("name") or "").strip() or (data.get("price") or "").strip())


VariantFormSet = formset_factory(
    VariantForm, extra=0, can_delete=True, max_num=MAX_VARIANTS, validate_max=True, absolute_max=MAX_VARIANTS + 10
)


def _product_initial(product: Product) -> dict[str, Any]:
    options = product.delivery_options or {}
    license_options = options.get("license") or {}
    partner = options.get("partner") or {}
    content = product.delivery_content
    return {
        "title": product.title,
        "slug": product.slug,
        "cover_image": product.cover_image,
        "description": product.description,
        "status": product.status,
        "currency": product.currency if product.currency in COMMON_CURRENCIES else OTHER_CURRENCY,
        "currency_other": "" if product.currency in COMMON_CURRENCIES else product.currency,
        "delivery_type": product.delivery_type,
        "delivery_text": content if product.delivery_type == DeliveryType.TEXT else "",
        "delivery_link": content if product.delivery_type == DeliveryType.LINK else "",
        "delivery_file": content if product.delivery_type == DeliveryType.FILE else "",
        "license_activation_limit": license_options.get("activation_limit"),
        "license_expires_in_days": license_options.get("expires_in_days"),
        "license_prefix": license_options.get("prefix") or "",
        "partner_url": partner.get("url", ""),
        "partner_input_label": partner.get("input_label", ""),
        "partner_input_help": partner.get("input_help", ""),
        "redemption_instructions": product.redemption_instructions,
        "download_limit": product.download_limit,
    }


def _variants_initial(product: Product) -> list[dict[str, Any]]:
    return [
        {"id": v.id, "name": v.name, "price": minor_to_text(v.price, product.currency), "stock": v.stock}
        for v in product.variants.all()
    ]


@dataclass
class ProductSubmission:
    """A product form and its variant rows, bound to a POST, turned into the service's input."""

    form: ProductForm
    formset: Any
    variants: list[dict[str, Any]]
    rows: list[int]  # position in ``variants`` → index of the form it came from

    @classmethod
    def bind(cls, data: Any) -> "ProductSubmission":
        return cls(form=ProductForm(data), formset=VariantFormSet(data, prefix="variants"), variants=[], rows=[])

    def is_valid(self) -> bool:
        form_ok = self.form.is_valid()
        formset_ok = self.formset.is_valid()
        if not (form_ok and formset_ok):
            return False
        currency = self.form.cleaned_data["currency"]
        code_pool = self.form.cleaned_data["delivery_type"] == DeliveryType.CODE_POOL
        for index, row in enumerate(self.formset.forms):
            if row.cleaned_data.get("DELETE") or row.is_blank():
                continue
            item: dict[str, Any] = {"name": row.cleaned_data["name"]}
            if row.cleaned_data.get("id"):
                item["id"] = row.cleaned_data["id"]
            try:
                item["price"] = money_to_minor(row.cleaned_data["price"] or "", currency)
            except ValueError as exc:
                row.add_error("price", str(exc))
                continue
            if not code_pool:  # a code pool counts its codes; a stock typed there would mean nothing
                item["stock"] = row.cleaned_data.get("stock")
            self.variants.append(item)
            self.rows.append(index)
        if not self.rows and not any(row.errors for row in self.formset.forms):
            self._variants_error(["Add at least one variant with a name and a price."])
        return not self.formset.total_error_count()

    def _variants_error(self, errors: list[str]) -> None:
        """A message about the variants as a whole, above the rows (the formset's non-form errors)."""
        self.formset._non_form_errors = self.formset.error_class(errors)

    def apply_error(self, exc: ApplicationError) -> None:
        """Puts each of the service's field messages next to the field it names."""
        placed = False
        kind = self.form.cleaned_data.get("delivery_type", "")
        for name, field_messages in (exc.fields or {}).items():
            target_form: forms.Form = self.form
            target = None
            if name in ("title", "slug", "cover_image", "description", "status", "download_limit"):
                target = name
            elif name == "currency":
                target = "currency_other" if self.form.data.get("currency") == OTHER_CURRENCY else "currency"
            elif name in ("variants", "price"):
                self._variants_error(field_messages)
                placed = True
                continue
            elif name.startswith("variants."):
                parts = name.split(".")
                if len(parts) >= 2 and parts[1].isdigit() and int(parts[1]) < len(self.rows):
                    target_form = self.formset.forms[self.rows[int(parts[1])]]
                    field = parts[2] if len(parts) > 2 else "name"
                    target = field if field in ("name", "price", "stock") else "name"
            elif name == "delivery.content":
                target = CONTENT_FIELD.get(kind, "delivery_type")
            else:
                target = DELIVERY_FIELDS.get(name)
            if target is None:
                continue
            for message in field_messages:
                target_form.add_error(target, message)
            placed = True
        if not placed:
            self.form.add_error(None, exc.message)


# --- Products ------------------------------------------------------------------------------------


def product_sales(*, seller: Any, product_ids: list[str]) -> dict[str, dict[str, int]]:
    """Paid orders and revenue net of refunds per product, for the given products, in one query."""
    rows = (
        Order.objects.filter(seller=seller, product_id__in=product_ids)
        .filter(paid_q())
        .values("product_id")
        .annotate(paid_orders=Count("id"), revenue=Sum(F("total_amount") - F("refunded_amount")))
        .order_by()
    )
    return {row["product_id"]: {"paid_orders": row["paid_orders"], "revenue": row["revenue"] or 0} for row in rows}


def product_stock(product: Product) -> int | None:
    """Units left over all variants: available codes for a code pool; None when any is unlimited."""
    variants = list(product.variants.all())
    if product.delivery_type == DeliveryType.CODE_POOL:
        return sum(int(getattr(v, "available_codes", 0) or 0) for v in variants)
    if any(v.stock is None for v in variants):
        return None
    return sum(int(v.stock or 0) for v in variants)


@require_GET
@seller_required
def products_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    if status not in ProductStatus.values:
        status = ""
    paginator = Paginator(product_list(seller=request.user, status=status or None), PRODUCTS_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    products = list(page.object_list)
    sales = product_sales(seller=request.user, product_ids=[p.id for p in products])
    rows = [
        {
            "product": product,
            "variants": list(product.variants.all()),
            "stock": product_stock(product),
            "sales": sales.get(product.id, {"paid_orders": 0, "revenue": 0}),
            "code_pool": product.delivery_type == DeliveryType.CODE_POOL,
        }
        for product in products
    ]
    return render(
        request,
        "dashboard/products.html",
        {
            "page": page,
            "rows": rows,
            "status": status,
            "statuses": ProductStatus.choices,
            "query_string": urlencode({"status": status}) if status else "",
        },
    )


def _form_context(submission: ProductSubmission, *, product: Product | None, seller: Any) -> dict[str, Any]:
    reference = submission.form["delivery_file"].value() or ""
    upload = Upload.objects.filter(seller=seller, key=reference).first() if reference else None
    partner_hint = None
    if product is not None and product.delivery_type == DeliveryType.PARTNER_API:
        partner_hint = (partner_for_seller(product.delivery_options) or {}).get("secret_hint")
    return {
        "form": submission.form,
        "formset": submission.formset,
        "product": product,
        "upload": upload,
        "upload_size": human_size(upload.size) if upload else "",
        "cover_url": cover_image_url(product.cover_image_path) if product is not None else "",
        "cover_max_bytes": COVER_MAX_BYTES,
        "max_upload": human_size(settings.MAX_UPLOAD_SIZE),
        "max_upload_bytes": settings.MAX_UPLOAD_SIZE,
        "partner_hint": partner_hint,
        "new_partner_secret": None,
        "has_orders": product.orders.exists() if product is not None else False,
        "variants": list(product.variants.all()) if product is not None else [],
    }


@require_http_methods(["GET", "POST"])
@seller_required
def product_new(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        submission = ProductSubmission.bind(request.POST)
        if submission.is_valid():
            data = submission.form.cleaned_data
            try:
                product = product_create(
                    seller=request.user,
                    title=data["title"],
                    slug=(data["slug"] or "").strip() or None,
                    cover_image=(data["cover_image"] or "").strip() or None,
                    description=data["description"],
                    status=data["status"],
                    currency=data["currency"],
                    delivery=submission.form.delivery(current=None),
                    variants=submission.variants,
                    download_limit=data.get("download_limit"),
                )
            except ApplicationError as exc:
                submission.apply_error(exc)
            else:
                return _after_save(request, product, created=True)
    else:
        submission = ProductSubmission(
            form=ProductForm(),
            formset=VariantFormSet(prefix="variants", initial=[{"name": "Standard"}, {}]),
            variants=[],
            rows=[],
        )
    return render(request, "dashboard/product_form.html", _form_context(submission, product=None, seller=request.user))


@require_http_methods(["GET", "POST"])
@seller_required
def product_edit(request: HttpRequest, product_id: str) -> HttpResponse:
    try:
        product = product_get(seller=request.user, product_id=product_id)
    except ApplicationError:
        return _not_found(request)
    if request.method == "POST":
        submission = ProductSubmission.bind(request.POST)
        if submission.is_valid():
            data = submission.form.cleaned_data
            secret_before = partner_secret_of(product)
            try:
                product = product_update(
                    product=product,
                    data={
                        "title": data["title"],
                        **({"slug": data["slug"].strip()} if (data["slug"] or "").strip() else {}),
                        "cover_image": None if data["cover_remove"] else (data["cover_image"] or "").strip(),
                        "description": data["description"],
                        "status": data["status"],
                        "currency": data["currency"],
                        "delivery": submission.form.delivery(current=product),
                        "variants": submission.variants,
                        "download_limit": data.get("download_limit"),
                    },
                )
            except ApplicationError as exc:
                submission.apply_error(exc)
            else:
                return _after_save(request, product, created=False, secret_before=secret_before)
    else:
        submission = _edit_submission(product)
    return render(
        request, "dashboard/product_form.html", _form_context(submission, product=product, seller=request.user)
    )


def _edit_submission(product: Product) -> ProductSubmission:
    """The edit form filled with the product as it is."""
    return ProductSubmission(
        form=ProductForm(initial=_product_initial(product)),
        formset=VariantFormSet(prefix="variants", initial=[*_variants_initial(product), {}]),
        variants=[],
        rows=[],
    )


def _after_save(request: HttpRequest, product: Product, *, created: bool, secret_before: str = "") -> HttpResponse:
    verb = "created" if created else "saved"
    secret = partner_secret_of(product)
    if secret and secret != secret_before:
        # A new partner signing secret is shown on this page only (never stored in the session,
        # never cached), like API keys; the product's page shows its last 4 characters after.
        context = _form_context(_edit_submission(product), product=product, seller=request.user)
        context["new_partner_secret"] = secret
        messages.success(request, f"“{product.title}” {verb}. Copy its signing secret now: it is shown only once.")
        response = render(request, "dashboard/product_form.html", context)
        response["Cache-Control"] = "no-store"
        return response
    if product.delivery_type == DeliveryType.CODE_POOL:
        variant = product.variants.first()
        if created and variant is not None:
            messages.success(request, f"“{product.title}” {verb}. Next: upload the codes buyers will receive.")
            return HttpResponseRedirect(reverse("dashboard-codes", args=[product.id, variant.id]))
    messages.success(request, f"“{product.title}” {verb}.")
    return HttpResponseRedirect(reverse("dashboard-products"))


@require_http_methods(["GET", "POST"])
@seller_required
def product_archive(request: HttpRequest, product_id: str) -> HttpResponse:
    """Archives a product with orders, deletes one without; asks first (a page without JavaScript)."""
    try:
        product = product_get(seller=request.user, product_id=product_id)
    except ApplicationError:
        return _not_found(request)
    has_orders = product.orders.exists()
    if request.method == "GET" or request.POST.get("confirm") != "yes":
        verb = "Archive" if has_orders else "Delete"
        return render(
            request,
            "dashboard/products_confirm.html",
            {
                "heading": f"{verb} “{product.title}”?",
                "explanation": (
                    "It has orders, so it is archived: its checkout page stops selling and its orders stay."
                    if has_orders
                    else "Nobody has ordered it yet, so it is deleted for good, with its variants and codes."
                ),
                "action": reverse("dashboard-product-archive", args=[product.id]),
                "button": verb,
                "cancel": reverse("dashboard-product-edit", args=[product.id]),
            },
        )
    try:
        archived = product_archive_or_delete(product=product)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return HttpResponseRedirect(reverse("dashboard-product-edit", args=[product.id]))
    if archived is None:
        messages.success(request, f"“{product.title}” deleted.")
    else:
        messages.success(request, f"“{product.title}” archived. Its orders stay in your dashboard.")
    return HttpResponseRedirect(reverse("dashboard-products"))


@require_POST
@seller_required
def upload(request: HttpRequest) -> HttpResponse:
    """The file input's XMLHttpRequest target (session and CSRF): the same ``upload_create`` as the
    API, answered as ``{url, filename, size, content_type}`` in the API's envelope."""
    try:
        if _too_large(request):
            raise PayloadTooLarge(f"The file is larger than the limit of {human_size(settings.MAX_UPLOAD_SIZE)}.")
        file = request.FILES.get("file")
        if file is None:
            raise ValidationFailed("Choose a file to upload.", fields={"file": ["Choose a file to upload."]})
        stored = upload_create(seller=request.user, file=file)
    except ApplicationError as exc:
        return _json_error(exc)
    return _json_ok(
        {
            "url": stored.key,
            "filename": stored.filename,
            "size": stored.size,
            "size_display": human_size(stored.size),
            "content_type": stored.content_type,
        },
        status=201,
    )


# --- Code pools ----------------------------------------------------------------------------------


def _variant(request: HttpRequest, product_id: str, variant_id: str) -> Variant | None:
    try:
        product = product_get(seller=request.user, product_id=product_id)
    except ApplicationError:
        return None
    return Variant.objects.select_related("product").filter(product=product, id=variant_id).first()


def code_counts(variant: Variant) -> dict[str, int]:
    counts = {status: 0 for status in CodeStatus.values}
    for row in Code.objects.filter(variant=variant).values("status").annotate(n=Count("id")).order_by():
        counts[row["status"]] = row["n"]
    return counts


def _report_key(variant: Variant) -> str:
    return f"codes-import:{variant.id}"


@require_GET
@seller_required
def codes(request: HttpRequest, product_id: str, variant_id: str) -> HttpResponse:
    variant = _variant(request, product_id, variant_id)
    if variant is None:
        return _not_found(request)
    status = request.GET.get("status", "").upper()
    if status not in CodeStatus.values:
        status = ""
    listed = (
        Code.objects.filter(variant=variant)
        .select_related("order_item__order")  # a delivered code links to its order
        .defer("code", "pin")
        .order_by("created_at", "id")
    )
    if status:
        listed = listed.filter(status=status)
    page = Paginator(listed, CODES_PER_PAGE).get_page(request.GET.get("page"))
    counts = code_counts(variant)
    last_import = request.session.pop(_report_key(variant), None)
    query = {"status": status} if status else {}
    return render(
        request,
        "dashboard/codes.html",
        {
            "product": variant.product,
            "variant": variant,
            "siblings": list(variant.product.variants.all()),
            "code_pool": variant.product.delivery_type == DeliveryType.CODE_POOL,
            "counts": [(value, label, counts[value]) for value, label in CodeStatus.choices],
            "total": sum(counts.values()),
            "sellable": available_counts([variant.id])[variant.id],
            "page": page,
            "codes": page.object_list,
            "status": status,
            "query_string": urlencode(query),
            "report": (last_import or {}).get("report"),
            "import_error": (last_import or {}).get("error"),
            "max_upload": human_size(settings.MAX_UPLOAD_SIZE),
        },
    )


@require_POST
@seller_required
def codes_upload(request: HttpRequest, product_id: str, variant_id: str) -> HttpResponse:
    """A CSV of codes into the variant's pool. JSON for the page's XMLHttpRequest (with the new
    counts); a redirect back to the page, which shows the report, for a plain form post."""
    variant = _variant(request, product_id, variant_id)
    if variant is None:
        if _wants_json(request):
            return JsonResponse(error_body("not_found", "Variant not found."), status=404)
        return _not_found(request)
    try:
        if _too_large(request):
            raise PayloadTooLarge(f"The file is larger than the limit of {human_size(settings.MAX_UPLOAD_SIZE)}.")
        file = request.FILES.get("file")
        if file is None:
            message = "Choose a CSV file with a header line `code` (and optional pin, serial, expires_at)."
            raise ValidationFailed(message, fields={"file": [message]})
        result = codes_import(variant=variant, rows=rows_from_csv(cast(IO[bytes], file.file))).as_dict()
    except ApplicationError as exc:
        if _wants_json(request):
            return _json_error(exc)
        request.session[_report_key(variant)] = {"error": exc.message}
    else:
        if _wants_json(request):
            counts = code_counts(variant)
            return _json_ok(
                {
                    **result,
                    "counts": counts,
                    "total": sum(counts.values()),
                    "sellable": available_counts([variant.id])[variant.id],
                }
            )
        request.session[_report_key(variant)] = {"report": result}
    return HttpResponseRedirect(reverse("dashboard-codes", args=[variant.product_id, variant.id]))


@require_POST
@seller_required
def code_action(request: HttpRequest, product_id: str, variant_id: str, code_id: str, action: str) -> HttpResponse:
    """Block, unblock or revoke one code, after a confirmation (a page when JavaScript is off)."""
    variant = _variant(request, product_id, variant_id)
    if variant is None or action not in CODE_ACTIONS:
        return _not_found(request)
    code = Code.objects.filter(variant=variant, id=code_id).defer("code", "pin").first()
    if code is None:
        return _not_found(request)
    back = reverse("dashboard-codes", args=[variant.product_id, variant.id])
    wanted = {key: request.POST.get(key, "") for key in ("status", "page")}
    query = urlencode({key: value for key, value in wanted.items() if value and value.isalnum()})
    if query:
        back = f"{back}?{query}"
    verb, consequence = CODE_ACTIONS[action]
    if request.POST.get("confirm") != "yes":
        return render(
            request,
            "dashboard/products_confirm.html",
            {
                "heading": f"{verb} the code ending in {code.code_hint}?",
                "explanation": consequence,
                "action": request.path,
                "button": verb,
                "cancel": back,
                "hidden": wanted,
            },
        )
    try:
        code_set_status(variant=variant, code_id=code.id, action=action)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        done = {"block": "blocked", "unblock": "unblocked", "revoke": "revoked"}[action]
        messages.success(request, f"The code ending in {code.code_hint} is {done}.")
    return HttpResponseRedirect(back)
