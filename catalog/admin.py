from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from marketplace.core.errors import ValidationFailed

from .models import Product, ProductStatus, Upload, Variant
from .services import product_update, validate_slug


class ProductAdminForm(forms.ModelForm):
    class Meta:
        model = Product
        fields = ["title", "slug", "description", "status"]

    def clean_slug(self) -> str:
        slug = self.cleaned_data["slug"]
        try:
            return validate_slug(slug)
        except ValidationFailed as exc:
            raise forms.ValidationError((exc.fields or {}).get("slug", [exc.message])) from None


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
    list_display = ["title", "slug", "seller", "status", "currency", "delivery_type", "created_at"]
    list_filter = ["status", "delivery_type", "currency", "created_at"]
    search_fields = ["id", "title", "slug", "seller__email", "seller__name"]
    list_select_related = ["seller"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    inlines = [VariantInline]
    actions = ["archive_products"]
    fieldsets = [
        (None, {"fields": ["id", "seller", "title", "slug", "description", "status", "currency"]}),
        ("Delivery", {"fields": ["delivery_type", "delivery_content", "redemption_instructions", "delivery_options"]}),
        ("Dates", {"fields": ["created_at", "updated_at"]}),
    ]
    readonly_fields = [
        "id",
        "seller",
        "currency",
        "delivery_type",
        "delivery_content",
        "redemption_instructions",
        "delivery_options",
        "created_at",
        "updated_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

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
