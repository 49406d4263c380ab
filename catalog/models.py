from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from marketplace.core.crypto import EncryptedTextField
from marketplace.core.ids import PrefixedIdField
from marketplace.core.money import MAX_AMOUNT, validate_currency


class ProductStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    ARCHIVED = "archived", "Archived"


class DeliveryType(models.TextChoices):
    FILE = "file", "File"
    LINK = "link", "Link"
    TEXT = "text", "Text"
    CODE_POOL = "code_pool", "Code pool"
    LICENSE_KEY = "license_key", "License key"
    PARTNER_API = "partner_api", "Partner API"


class Product(models.Model):
    id = PrefixedIdField(prefix="prd")
    seller = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="products")
    slug = models.SlugField(max_length=80, unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, max_length=20000)
    status = models.CharField(max_length=10, choices=ProductStatus.choices, default=ProductStatus.DRAFT)
    currency = models.CharField(max_length=3, validators=[validate_currency])
    # What every unit sold delivers; see orders/fulfillment/ for each type.
    delivery_type = models.CharField(max_length=20, choices=DeliveryType.choices)
    delivery_content = models.TextField(blank=True, max_length=20000)
    redemption_instructions = models.TextField(blank=True, max_length=5000)
    delivery_options = models.JSONField(default=dict, blank=True, help_text="Per-type settings (license, partner).")
    # Files only: how many times each item bought may be downloaded (empty: no limit).
    download_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Downloads allowed per purchase of a file; empty: unlimited."
    )
    # The seller's upload the cover was made from (``cover_image`` in the API), and the resized copy
    # in public storage (the default storage) that pages show.
    cover_image = models.CharField(max_length=500, blank=True, help_text="The upload the cover was made from.")
    cover_image_path = models.CharField(max_length=500, blank=True, help_text="The resized cover, in public storage.")
    # Set by operators: shown first on the marketplace's front page.
    featured = models.BooleanField(default=False, help_text="Shown in the front page's featured products.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["seller", "status"]),
            models.Index(fields=["status", "featured", "-created_at"], name="product_front_page"),
        ]

    def __str__(self) -> str:
        return self.title


class Variant(models.Model):
    id = PrefixedIdField(prefix="var")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="variants")
    name = models.CharField(max_length=120)
    price = models.BigIntegerField(validators=[MinValueValidator(0), MaxValueValidator(MAX_AMOUNT)])
    # Units left to sell; null means unlimited. Code pools count their available codes instead.
    stock = models.PositiveIntegerField(null=True, blank=True)
    position = models.PositiveIntegerField(default=0)
    # A file of this variant's own ("Deluxe" delivers another file than "Standard"); empty: the
    # product's file. Only file products have one (``variants[].delivery`` in the API).
    delivery_content = models.CharField(max_length=500, blank=True, help_text="This variant's own file, if any.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "created_at"]

    def __str__(self) -> str:
        return f"{self.product.title} — {self.name}"


class Upload(models.Model):
    """A file a seller uploaded to private storage; ``key`` is the storage reference."""

    id = PrefixedIdField(prefix="upl")
    seller = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="uploads")
    key = models.CharField(max_length=500, unique=True)
    filename = models.CharField(max_length=255)
    size = models.BigIntegerField()
    content_type = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.filename


class CodeStatus(models.TextChoices):
    AVAILABLE = "AVAILABLE", "Available"
    ALLOCATED = "ALLOCATED", "Allocated (reserved for an unpaid order)"
    DELIVERED = "DELIVERED", "Delivered"
    BLOCKED = "BLOCKED", "Blocked"
    REVOKED = "REVOKED", "Revoked"


class Code(models.Model):
    """One preloaded code (a gift card, voucher or serial) of a variant's pool, or a code a partner
    returned for an item. The code and PIN are encrypted; ``code_hash`` (a keyed hash, the blind
    index) finds duplicates across the seller's pools without decrypting anything. The serial
    number and the redemption URL are encrypted too."""

    class Source(models.TextChoices):
        POOL = "pool", "Preloaded pool"
        PARTNER = "partner", "Partner API"

    id = PrefixedIdField(prefix="cod")
    # No single-column indexes on the foreign keys: each is the first column of a composite index
    # below (seller: code_unique_per_seller; variant: code_pool_fifo; order_item: order_item+status),
    # which serves the same look-ups, so an import writes 5 index entries per code instead of 11.
    seller = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="codes", db_index=False)
    variant = models.ForeignKey(Variant, on_delete=models.PROTECT, related_name="codes", db_index=False)
    code = EncryptedTextField()
    pin = EncryptedTextField(null=True, blank=True)
    code_hash = models.CharField(max_length=64)
    code_hint = models.CharField(max_length=8)
    # Encrypted like the code and the PIN: a serial or a redemption URL can be enough to redeem a card.
    serial = EncryptedTextField(null=True, blank=True)
    redemption_url = EncryptedTextField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=CodeStatus.choices, default=CodeStatus.AVAILABLE)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.POOL)
    order_item = models.ForeignKey(
        "orders.OrderItem", null=True, blank=True, on_delete=models.PROTECT, related_name="codes", db_index=False
    )
    allocated_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # For partner codes: which unit of the item this code is (1..quantity); one code per unit, ever.
    unit = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["seller", "code_hash"], name="code_unique_per_seller"),
            models.UniqueConstraint(
                fields=["order_item", "unit"], condition=models.Q(unit__isnull=False), name="code_one_per_item_unit"
            ),
        ]
        indexes = [
            # Reservations read it in order and stop after LIMIT quantity (no sort); stock counts
            # read it alone (PostgreSQL: an index-only scan, ``expires_at`` carried in the index).
            models.Index(
                fields=["variant", "status", "created_at", "id"], include=["expires_at"], name="code_pool_fifo"
            ),
            models.Index(fields=["order_item", "status"]),
        ]

    def __str__(self) -> str:
        return f"{self.id} ••••{self.code_hint} ({self.status})"


class DiscountKind(models.TextChoices):
    PERCENT = "percent", "Percent"
    FIXED = "fixed", "Fixed amount"


class Discount(models.Model):
    """A seller's discount code. Codes are case-insensitive (stored upper-case), unique per seller."""

    id = PrefixedIdField(prefix="dsc")
    seller = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="discounts")
    code = models.CharField(max_length=64)
    kind = models.CharField(max_length=10, choices=DiscountKind.choices)
    # percent: whole percent 1–100; fixed: minor units of ``currency``.
    value = models.BigIntegerField()
    currency = models.CharField(max_length=3, blank=True, help_text="Required for fixed discounts.")
    products = models.ManyToManyField(Product, blank=True, related_name="discounts")
    max_uses = models.PositiveIntegerField(null=True, blank=True)
    uses = models.PositiveIntegerField(default=0)
    starts_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    min_quantity = models.PositiveIntegerField(default=1)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["seller", "code"], name="discount_code_unique_per_seller")]

    def __str__(self) -> str:
        return self.code
