import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from marketplace.core.crypto import mask
from marketplace.core.errors import ApplicationError, ValidationFailed

from .delivery import partner_secret
from .inventory import code_set_status
from .models import Code, Product, ProductStatus, Upload, Variant
from .services import product_update, validate_download_limit, validate_slug


class ProductAdminForm(forms.ModelForm):
    class Meta:
        model = Product
        fields = ["title", "slug", "description", "status", "featured", "download_limit"]

    def clean_slug(self) -> str:
        slug = self.cleaned_data["slug"]
        try:
            return validate_slug(slug)
        except ValidationFailed as exc:
            raise forms.ValidationError((exc.fields or {}).get("slug", [exc.message])) from None

    def clean_download_limit(self) -> int | None:
        try:
            return validate_download_limit(self.cleaned_data.get("download_limit"))
        except ValidationFailed as exc:
            raise forms.ValidationError((exc.fields or {}).get("download_limit", [exc.message])) from None


class VariantInline(admin.TabularInline):
    model = Variant
    extra = 0
    fields = ["id", "name", "price", "stock", "position", "created_at"]
    readonly_fields = ["id", "created_at"]
    ordering = ["position", "created_at"]


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    """Operators look products up and fix their text or status. Sellers create them (through the API
    and the dashboard, where the delivery settings are validated), so the delivery is read-only here."""

    form = ProductAdminForm
    list_display = ["title", "slug", "seller", "status", "featured", "currency", "delivery_type", "created_at"]
    list_filter = ["status", "featured", "delivery_type", "currency", "created_at"]
    search_fields = ["id", "title", "slug", "seller__email", "seller__name"]
    list_select_related = ["seller"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    inlines = [VariantInline]
    actions = ["archive_products"]
    fieldsets = [
        (None, {"fields": ["id", "seller", "title", "slug", "description", "status", "featured", "currency"]}),
        (
            "Delivery",
            {
                "fields": [
                    "delivery_type",
                    "delivery_content",
                    "redemption_instructions",
                    "delivery_settings",
                    "download_limit",
                ]
            },
        ),
        ("Dates", {"fields": ["created_at", "updated_at"]}),
    ]
    readonly_fields = [
        "id",
        "seller",
        "currency",
        "delivery_type",
        "delivery_content",
        "redemption_instructions",
        "delivery_settings",
        "created_at",
        "updated_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="Delivery options")
    def delivery_settings(self, obj: Product) -> str:
        """The per-type settings, with a partner's signing secret masked: only the seller needs it."""
        options = json.loads(json.dumps(obj.delivery_options or {}))
        partner = options.get("partner")
        if isinstance(partner, dict) and partner.get("secret"):
            partner["secret"] = mask(partner_secret(obj.delivery_options))
        return json.dumps(options, ensure_ascii=False, sort_keys=True) if options else "—"

    @admin.action(description="Archive selected products", permissions=["change"])
    def archive_products(self, request: HttpRequest, queryset: QuerySet[Product]) -> None:
        count = 0
        for product in queryset.exclude(status=ProductStatus.ARCHIVED):
            product_update(product=product, data={"status": ProductStatus.ARCHIVED})
            count += 1
        self.message_user(request, f"Archived {count} product(s).", messages.SUCCESS)


@admin.register(Upload)
class UploadAdmin(admin.ModelAdmin):
    """Uploads are records of files in private storage: read-only."""

    list_display = ["filename", "seller", "size", "content_type", "created_at"]
    list_filter = ["content_type", "created_at"]
    search_fields = ["id", "filename", "key", "seller__email"]
    list_select_related = ["seller"]
    ordering = ["-created_at"]
    fields = readonly_fields = ("id", "seller", "key", "filename", "size", "content_type", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting the row would leave products pointing at a file nobody can account for.
        return False


@admin.register(Code)
class CodeAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Codes are shown by their last 4 characters only; the code and PIN never reach the page.
    Block, unblock and revoke go through the same service as the API."""

    list_display = [
        "id",
        "masked_code",
        "status",
        "variant",
        "seller",
        "serial",
        "expires_at",
        "order_item",
        "created_at",
    ]
    list_filter = ["status", "source", ("expires_at", admin.EmptyFieldListFilter), "created_at"]
    search_fields = ["id", "code_hint", "serial", "variant__id", "variant__product__title", "seller__email"]
    list_select_related = ["variant__product", "seller"]
    fields = [
        "id",
        "masked_code",
        "status",
        "source",
        "variant",
        "seller",
        "serial",
        "expires_at",
        "order_item",
        "allocated_at",
        "delivered_at",
        "created_at",
    ]
    readonly_fields = list(fields)  # type: ignore[arg-type]
    actions = ["block_codes", "unblock_codes", "revoke_codes"]
    date_hierarchy = "created_at"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Code]:
        # Never even load the ciphertext: the admin has no use for it.
        return super().get_queryset(request).defer("code", "pin")

    @admin.display(description="Code")
    def masked_code(self, obj: Code) -> str:
        return f"••••{obj.code_hint}"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def _apply(self, request: HttpRequest, queryset: QuerySet[Code], action: str) -> None:
        done, failed = 0, []
        for code in queryset.select_related("variant"):
            try:
                code_set_status(variant=code.variant, code_id=code.id, action=action)
                done += 1
            except ApplicationError as exc:
                failed.append(f"••••{code.code_hint}: {exc.message}")
        if done:
            self.message_user(request, f"{done} code(s) {action}ed.", messages.SUCCESS)
        for message in failed:
            self.message_user(request, message, messages.ERROR)

    @admin.action(description="Block selected codes")
    def block_codes(self, request: HttpRequest, queryset: QuerySet[Code]) -> None:
        self._apply(request, queryset, "block")

    @admin.action(description="Unblock selected codes")
    def unblock_codes(self, request: HttpRequest, queryset: QuerySet[Code]) -> None:
        self._apply(request, queryset, "unblock")

    @admin.action(description="Revoke selected codes")
    def revoke_codes(self, request: HttpRequest, queryset: QuerySet[Code]) -> None:
        self._apply(request, queryset, "revoke")
