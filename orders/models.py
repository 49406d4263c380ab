from django.conf import settings
from django.db import models

from marketplace.core.crypto import EncryptedTextField
from marketplace.core.ids import PrefixedIdField


class OrderStatus(models.TextChoices):
    PENDING = "pending", "Awaiting payment"
    PAID = "paid", "Paid — delivering"
    DELIVERED = "delivered", "Delivered"
    PARTIALLY_DELIVERED = "partially_delivered", "Partially delivered"
    NEEDS_ATTENTION = "needs_attention", "Needs attention"
    FAILED = "failed", "Payment failed"
    CANCELLED = "cancelled", "Cancelled"
    REFUNDED = "refunded", "Refunded"
    PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"


class FulfillmentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    DISPATCH_FAILED = "dispatch_failed", "Dispatch failed"
    PARTNER_FAILED = "partner_failed", "Partner failed"
    OUT_OF_STOCK = "out_of_stock", "Out of stock"


class Order(models.Model):
    id = PrefixedIdField(prefix="ord")
    order_number = models.CharField(max_length=8, unique=True)
    seller = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="sales")
    product = models.ForeignKey("catalog.Product", on_delete=models.PROTECT, related_name="orders")
    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="purchases"
    )
    buyer_email = models.EmailField()
    recipient_email = models.EmailField(blank=True)
    status = models.CharField(max_length=24, choices=OrderStatus.choices, default=OrderStatus.PENDING)
    status_message = models.CharField(max_length=500, blank=True)
    currency = models.CharField(max_length=3)
    subtotal = models.BigIntegerField()
    discount_code = models.CharField(max_length=64, blank=True)
    discount_amount = models.BigIntegerField(default=0)
    total_amount = models.BigIntegerField()
    platform_fee = models.BigIntegerField(default=0)
    seller_earnings = models.BigIntegerField(default=0)
    refunded_amount = models.BigIntegerField(default=0)
    meta = models.JSONField(default=dict, blank=True)
    webhook_urls = models.JSONField(default=list, blank=True)
    payment_reference = models.CharField(max_length=200, blank=True)
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    # Whose key space ``idempotency_key`` lives in, within the seller's: "" for the public checkout
    # (one key space per seller: the same key on two of its products is one order), the calling
    # user's id for ``POST /api/v1/orders`` (two integrations never collide on a key).
    idempotency_scope = models.CharField(max_length=40, blank=True, default="")
    request_fingerprint = models.CharField(max_length=64, blank=True)
    # Whether the order holds its stock (limited units, reserved codes): from creation until it
    # fails, is cancelled or expires; taken again by a new payment attempt.
    reservation_held = models.BooleanField(default=True)
    dispatched_email = models.BooleanField(default=False)
    # An open dispute took the buyer's access away (the seller's ``dispute_revokes_access``): its
    # downloads, links, codes and licence keys are not served until the dispute is won.
    access_suspended = models.BooleanField(default=False)
    email_sent_at = models.DateTimeField(null=True, blank=True)
    # Gifting (``recipient_email`` with ``deliver_at`` and/or ``claim_link``): the buyer's receipt goes
    # out when the order is delivered; the recipient's e-mail at ``deliver_at`` (``gift_sent_at`` once
    # it went). With a claim link it carries a link instead of the codes; only the link token's hash
    # is stored, and ``gift_claimed_at`` records the first opening.
    deliver_at = models.DateTimeField(null=True, blank=True)
    gift_claim_link = models.BooleanField(default=False)
    gift_sent_at = models.DateTimeField(null=True, blank=True)
    gift_claim_token_hash = models.CharField(max_length=64, blank=True, db_index=True)
    gift_claimed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["seller", "idempotency_scope", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="order_idempotency_key_per_seller_scope",
            )
        ]
        indexes = [
            # The seller's list filtered by status (and a date range), newest first: the page and its
            # count are index range scans (the count index-only). It also serves (seller, status).
            models.Index(fields=["seller", "status", "created_at"]),
            models.Index(fields=["seller", "created_at"]),
            models.Index(fields=["status", "updated_at"]),
            models.Index(fields=["buyer_email"]),
            # The gifts still to send, for the beat task that sends them when they are due.
            models.Index(
                fields=["deliver_at"],
                condition=models.Q(gift_sent_at__isnull=True, deliver_at__isnull=False),
                name="order_gift_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.order_number}"

    @property
    def is_gift(self) -> bool:
        """A gift whose recipient gets an e-mail of their own (delayed, or with a claim link), apart
        from the buyer's receipt. A plain ``recipient_email`` keeps the one e-mail, buyer in copy."""
        return bool(self.recipient_email) and (self.deliver_at is not None or self.gift_claim_link)

    @property
    def access_blocked(self) -> bool:
        """Whether the buyer may no longer use what was delivered: refunded in full, or disputed
        (and the seller chose that a dispute suspends access)."""
        return self.status == OrderStatus.REFUNDED or self.access_suspended


class OrderItem(models.Model):
    id = PrefixedIdField(prefix="itm")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey("catalog.Product", on_delete=models.PROTECT, related_name="+")
    variant = models.ForeignKey("catalog.Variant", on_delete=models.PROTECT, related_name="+")
    title = models.CharField(max_length=200)
    variant_name = models.CharField(max_length=120)
    quantity = models.PositiveIntegerField()
    unit_price = models.BigIntegerField()
    fulfillment_input = models.JSONField(default=dict, blank=True)
    # What the item delivers, copied from the product when the order is made (and overridable by the
    # seller), so that a later edit of the product never changes what a past buyer received.
    content_type = models.CharField(max_length=20)
    delivery_content = models.TextField(blank=True)
    redemption_instructions = models.TextField(blank=True)
    fulfillment_status = models.CharField(
        max_length=20, choices=FulfillmentStatus.choices, default=FulfillmentStatus.PENDING
    )
    fulfilled_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    download_count = models.PositiveIntegerField(default=0)
    position = models.PositiveIntegerField(default=0, help_text="The item's place in the buyer's order.")

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return f"{self.title} × {self.quantity}"

    @property
    def fulfilled(self) -> bool:
        return self.fulfillment_status == FulfillmentStatus.SUCCEEDED

    @property
    def line_total(self) -> int:
        return self.unit_price * self.quantity


class OrderEvent(models.Model):
    """The order's timeline, and its audit log: every status change and every action on it."""

    class Actor(models.TextChoices):
        SYSTEM = "system", "System"
        BUYER = "buyer", "Buyer"
        SELLER = "seller", "Seller"
        OPERATOR = "operator", "Operator"
        GATEWAY = "gateway", "Payment gateway"

    id = PrefixedIdField(prefix="evt")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=40)
    from_status = models.CharField(max_length=24, blank=True)
    to_status = models.CharField(max_length=24, blank=True)
    message = models.CharField(max_length=500, blank=True)
    actor = models.CharField(max_length=10, choices=Actor.choices, default=Actor.SYSTEM)
    actor_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.type} {self.from_status}→{self.to_status}"


class License(models.Model):
    """A licence key generated for one unit sold. The key is encrypted; ``key_hash`` finds it."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        DISABLED = "disabled", "Disabled"
        REFUNDED = "refunded", "Refunded"

    id = PrefixedIdField(prefix="lic")
    order_item = models.ForeignKey(OrderItem, on_delete=models.PROTECT, related_name="licenses")
    product = models.ForeignKey("catalog.Product", on_delete=models.PROTECT, related_name="licenses")
    key = EncryptedTextField()
    key_hash = models.CharField(max_length=64, unique=True)
    key_hint = models.CharField(max_length=8)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    activation_limit = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: unlimited.")
    uses = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.id} ••••{self.key_hint}"


class LicenseActivation(models.Model):
    id = PrefixedIdField(prefix="act")
    license = models.ForeignKey(License, on_delete=models.CASCADE, related_name="activations")
    instance_name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    deactivated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.instance_name


class SellerEvent(models.Model):
    """An event for the seller's outgoing webhooks (``product.out_of_stock``, ``order.paid``, …),
    written in the transaction that caused it, delivered afterwards (an outbox)."""

    id = PrefixedIdField(prefix="evt")
    seller = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="seller_events")
    type = models.CharField(max_length=60)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.type


class WebhookEndpoint(models.Model):
    """Where a seller receives their events, with the ``whsec_`` secret that signs them.

    Each seller also has at most one ``order_urls`` row: not an endpoint of its own but the secret
    that signs what is sent to the ``webhook_urls`` given with an order, and the home of those
    deliveries. It is never listed with the endpoints.
    """

    class Kind(models.TextChoices):
        ENDPOINT = "endpoint", "Endpoint"
        ORDER_URLS = "order_urls", "Orders' own webhook URLs"

    id = PrefixedIdField(prefix="wep")
    seller = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_endpoints")
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.ENDPOINT)
    url = models.URLField(max_length=2000, blank=True)
    events = models.JSONField(default=list, blank=True, help_text="Event types; empty: every event.")
    active = models.BooleanField(default=True)
    secret = EncryptedTextField()
    consecutive_failures = models.PositiveIntegerField(
        default=0, help_text="Deliveries in a row that failed after every retry."
    )
    disabled_reason = models.CharField(max_length=300, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["seller"], condition=models.Q(kind="order_urls"), name="one_order_urls_secret_per_seller"
            )
        ]

    def __str__(self) -> str:
        return self.url or self.get_kind_display()

    def wants(self, event_type: str) -> bool:
        return not self.events or event_type in self.events


class WebhookDelivery(models.Model):
    """One event for one URL: the body frozen when the event happened, the same ``webhook-id`` on
    every attempt, and the outcome of each attempt."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        DISABLED = "disabled", "Endpoint disabled"

    id = PrefixedIdField(prefix="whd")
    endpoint = models.ForeignKey(
        WebhookEndpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    url = models.URLField(max_length=2000)
    event = models.ForeignKey(SellerEvent, on_delete=models.CASCADE, related_name="deliveries")
    webhook_id = models.CharField(max_length=64, db_index=True)
    body = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # When the next attempt is due; empty while an attempt is under way (or when none is due).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    last_response = models.TextField(blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    # Every attempt: {"at", "status_code", "duration_ms", "response", "error"}, the newest last.
    attempt_log = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint", "url"], name="one_delivery_per_event_and_url")
        ]
        indexes = [
            models.Index(fields=["endpoint", "created_at"]),
            models.Index(fields=["status", "next_attempt_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.webhook_id} → {self.url}"
