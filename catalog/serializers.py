"""The shapes of the catalog API: what a request may contain (types only) and what a product looks
like in a response. The rules (slugs, variants, delivery) are in ``services``."""

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from marketplace.core.bounds import MAX_COUNT
from marketplace.core.crypto import mask
from marketplace.core.money import MAX_AMOUNT

from .covers import cover_image_url
from .delivery import partner_for_seller
from .inventory import available_codes
from .models import Product, ProductStatus, Upload, Variant


@extend_schema_field(OpenApiTypes.INT)
class MinorUnitsField(serializers.Field):
    """An amount in the currency's minor unit: a JSON integer, never a float, string or boolean."""

    default_error_messages = {
        "invalid": "Must be a whole number of the currency's minor unit (e.g. 1999 for $19.99), "
        "not a decimal, a string or a boolean.",
        "range": f"Must be between 0 and {MAX_AMOUNT}.",
    }

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        if data < 0 or data > MAX_AMOUNT:
            self.fail("range")
        return int(data)

    def to_representation(self, value: Any) -> int:
        return int(value)


@extend_schema_field(OpenApiTypes.INT)
class StockField(serializers.Field):
    default_error_messages = {"invalid": f"Must be a whole number from 0 to {MAX_COUNT}, or null for unlimited."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int) or not 0 <= data <= MAX_COUNT:
            self.fail("invalid")
        return int(data)

    def to_representation(self, value: Any) -> int:
        return int(value)


@extend_schema_field({"type": "integer", "nullable": True, "minimum": 1})
class DownloadLimitField(serializers.Field):
    """How many times each purchase of a file may be downloaded: a whole number from 1, or null for
    unlimited. The rule itself is the service's (``validate_download_limit``)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        return data

    def to_representation(self, value: Any) -> int:
        return int(value)


class StrictInput(serializers.Serializer):
    """Rejects keys it does not know, so that a typo (``varients``, ``prices``) is a 400 rather
    than a silently ignored field. ``ignored`` names read-only keys a client may echo back."""

    ignored: tuple[str, ...] = ()

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields) - set(self.ignored))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class VariantDeliveryInput(StrictInput):
    """A variant's own file: ``{"content_type": "file", "content": <upload reference>}``."""

    content_type = serializers.CharField(required=False, max_length=20)
    content = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=500)


class VariantInput(StrictInput):
    id = serializers.CharField(required=False, allow_null=True, max_length=40)
    name = serializers.CharField(required=False, max_length=120)
    price = MinorUnitsField(required=False)
    stock = StockField(required=False)
    delivery = VariantDeliveryInput(required=False, allow_null=True)


class DeliveryInput(StrictInput):
    content_type = serializers.CharField(required=False, max_length=20)
    content = serializers.CharField(required=False, allow_blank=True, allow_null=True, trim_whitespace=False)
    redemption_instructions = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=5000)
    license = serializers.DictField(required=False, allow_null=True)
    partner = serializers.DictField(required=False, allow_null=True)


class ProductInput(StrictInput):
    """``POST /products`` (title, currency and delivery required) and, with ``partial=True``, ``PATCH``."""

    ignored = ("id", "checkout_url", "cover_image_url", "created_at", "updated_at")

    title = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, max_length=20000)
    status = serializers.ChoiceField(choices=ProductStatus.choices, required=False)
    slug = serializers.CharField(required=False, max_length=80, allow_blank=False)
    currency = serializers.CharField(max_length=3, min_length=3)
    price = MinorUnitsField(required=False)
    variants = VariantInput(many=True, required=False)
    delivery = DeliveryInput()
    cover_image = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        max_length=500,
        help_text="An upload reference (the `url` of POST /uploads) of a JPEG, PNG, GIF or WebP; null removes it.",
    )
    download_limit = DownloadLimitField(required=False)


class VariantOutput(serializers.ModelSerializer):
    stock = serializers.SerializerMethodField(help_text="Units left: available codes for code pools; null = unlimited.")
    delivery = serializers.SerializerMethodField(
        help_text="This variant's own file ({content_type: file, content}), or null: the product's delivery."
    )

    class Meta:
        model = Variant
        fields = ["id", "name", "price", "stock", "delivery"]

    @extend_schema_field(
        {
            "type": "object",
            "nullable": True,
            "properties": {"content_type": {"type": "string"}, "content": {"type": "string"}},
        }
    )
    def get_delivery(self, variant: Variant) -> dict[str, str] | None:
        if not variant.delivery_content:
            return None
        return {"content_type": "file", "content": variant.delivery_content}

    @extend_schema_field(OpenApiTypes.INT)
    def get_stock(self, variant: Variant) -> int | None:
        if variant.product.delivery_type == "code_pool":
            # Annotated by the selectors; a variant loaded otherwise is counted on demand.
            count = getattr(variant, "available_codes", None)
            if count is None:
                count = available_codes(variant.id).count()
            return int(count)
        return variant.stock


class CodeInput(serializers.Serializer):
    code = serializers.CharField(max_length=500, trim_whitespace=False)
    pin = serializers.CharField(max_length=100, required=False, allow_null=True, allow_blank=True)
    serial = serializers.CharField(max_length=120, required=False, allow_null=True, allow_blank=True)
    expires_at = serializers.CharField(max_length=40, required=False, allow_null=True, allow_blank=True)
    redemption_url = serializers.CharField(
        max_length=2000, required=False, allow_null=True, allow_blank=True, help_text="Where the code is redeemed."
    )


class CodesImportInput(serializers.Serializer):
    codes = CodeInput(many=True, required=False)
    file = serializers.FileField(
        required=False, help_text="CSV with a header: code[,pin,serial,expires_at,redemption_url]"
    )


class CodeImportResultOutput(serializers.Serializer):
    imported = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = serializers.ListField(child=serializers.DictField())
    rejected_count = serializers.IntegerField()


class CodeOutput(serializers.Serializer):
    id = serializers.CharField()
    code_hint = serializers.CharField(help_text="The last 4 characters only.")
    status = serializers.CharField()
    serial = serializers.SerializerMethodField(help_text="The serial's last 4 characters only (it is a secret too).")
    expires_at = serializers.DateTimeField(allow_null=True)
    order_item_id = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    delivered_at = serializers.DateTimeField(allow_null=True)

    def get_serial(self, code: Any) -> str:
        return mask(code.serial) if code.serial else ""


class DeliveryOutput(serializers.Serializer):
    content_type = serializers.CharField(source="delivery_type")
    content = serializers.CharField(source="delivery_content")
    redemption_instructions = serializers.CharField()
    license = serializers.SerializerMethodField()
    partner = serializers.SerializerMethodField()

    @extend_schema_field(
        {
            "type": "object",
            "nullable": True,
            "description": "license_key products: {activation_limit, expires_in_days}; null otherwise.",
            "properties": {
                "activation_limit": {"type": "integer", "nullable": True},
                "expires_in_days": {"type": "integer", "nullable": True},
            },
        }
    )
    def get_license(self, product: Product) -> dict[str, Any] | None:
        return (product.delivery_options or {}).get("license")

    @extend_schema_field(
        {
            "type": "object",
            "nullable": True,
            "description": (
                "partner_api products: {url, secret_hint}; null otherwise. The signing secret itself "
                "(`secret`, `whsec_...`) is in the answer that made it only: the product's creation, "
                "or an update that replaced it (`partner: {secret: null}` makes a new one)."
            ),
            "properties": {
                "url": {"type": "string"},
                "secret_hint": {"type": "string", "nullable": True, "description": "The last 4 characters."},
                "secret": {"type": "string", "description": "Only in the answer that made the secret."},
            },
        }
    )
    def get_partner(self, product: Product) -> dict[str, Any] | None:
        return partner_for_seller(product.delivery_options, reveal=self.context.get("reveal_partner_secret", False))


class ProductOutput(serializers.ModelSerializer):
    price = serializers.SerializerMethodField()
    variants = VariantOutput(many=True, read_only=True)
    delivery = DeliveryOutput(source="*", read_only=True)
    checkout_url = serializers.SerializerMethodField()
    cover_image_url = serializers.SerializerMethodField(help_text="The resized cover as pages show it ('' if none).")

    class Meta:
        model = Product
        fields = [
            "id",
            "slug",
            "title",
            "description",
            "status",
            "currency",
            "price",
            "variants",
            "delivery",
            "cover_image",
            "cover_image_url",
            "download_limit",
            "checkout_url",
            "created_at",
            "updated_at",
        ]

    @extend_schema_field(OpenApiTypes.STR)
    def get_cover_image_url(self, product: Product) -> str:
        return absolute_url(cover_image_url(product.cover_image_path))

    @extend_schema_field(OpenApiTypes.INT)
    def get_price(self, product: Product) -> int | None:
        # The default variant is the first one; ``.all()`` reads the prefetched list.
        variants = list(product.variants.all())
        return variants[0].price if variants else None

    def get_checkout_url(self, product: Product) -> str:
        return f"{settings.SITE_URL}/c/{product.slug}"


def absolute_url(url: str) -> str:
    """``/media/...`` on this site as a full URL; a storage's own URL (S3) as it is."""
    if url.startswith("/"):
        return f"{settings.SITE_URL}{url}"
    return url


class UploadInput(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=False, use_url=False)


class UploadOutput(serializers.ModelSerializer):
    url = serializers.CharField(
        source="key", help_text="The storage reference to use as a file product's delivery.content."
    )

    class Meta:
        model = Upload
        fields = ["url", "filename", "size", "content_type"]


class DiscountOutput(serializers.Serializer):
    id = serializers.CharField()
    code = serializers.CharField()
    kind = serializers.CharField()
    value = serializers.IntegerField()
    currency = serializers.CharField(allow_blank=True)
    product_ids = serializers.SerializerMethodField()
    max_uses = serializers.IntegerField(allow_null=True)
    uses = serializers.IntegerField()
    starts_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    min_quantity = serializers.IntegerField()
    active = serializers.BooleanField()
    created_at = serializers.DateTimeField()

    def get_product_ids(self, discount: Any) -> list[str]:
        return sorted(p.id for p in discount.products.all())


class DiscountInput(serializers.Serializer):
    """Documents the body; the service validates it (strictly: unknown fields are refused)."""

    code = serializers.CharField(max_length=64)
    kind = serializers.ChoiceField(choices=["percent", "fixed"])
    value = serializers.IntegerField()
    currency = serializers.CharField(required=False, max_length=3)
    product_ids = serializers.ListField(child=serializers.CharField(), required=False)
    max_uses = serializers.IntegerField(required=False, allow_null=True)
    starts_at = serializers.DateTimeField(required=False, allow_null=True)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    min_quantity = serializers.IntegerField(required=False)
    active = serializers.BooleanField(required=False)
