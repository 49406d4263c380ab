from django.conf import settings
from django.db import models
from django.db.models import Q

from marketplace.core.ids import PrefixedIdField
from marketplace.core.money import format_money


class PaymentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    REFUNDED = "refunded", "Refunded"
    PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"


class Payment(models.Model):
    """One attempt to collect an order's money through a gateway."""

    id = PrefixedIdField(prefix="pay")
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="payments")
    gateway = models.CharField(max_length=20)
    status = models.CharField(max_length=20, choices=PaymentStatus.choices, default=PaymentStatus.PENDING)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    transaction_id = models.CharField(max_length=200, blank=True, db_index=True)
    payment_method = models.CharField(max_length=40, blank=True)
    redirect_url = models.URLField(max_length=2000, blank=True)
    failure_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            # At most one open payment per order, whatever its gateway: two open payments are two
            # pages a buyer can pay, i.e. a double charge. The database holds this, not only a lock.
            models.UniqueConstraint(fields=["order"], condition=Q(status="pending"), name="payment_one_open_per_order"),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.gateway}, {self.status})"


class WebhookEvent(models.Model):
    """An incoming gateway webhook, stored once before it is acted on."""

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSED = "processed", "Processed"
        REJECTED = "rejected", "Rejected (not confirmed by the gateway)"
        IGNORED = "ignored", "Ignored"
        FAILED = "failed", "Failed"

    id = PrefixedIdField(prefix="whe")
    gateway = models.CharField(max_length=20)
    event_id = models.CharField(max_length=200)
    type = models.CharField(max_length=100)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RECEIVED)
    error = models.CharField(max_length=500, blank=True)
    payment = models.ForeignKey(
        Payment, null=True, blank=True, on_delete=models.SET_NULL, related_name="webhook_events"
    )
    # What the event named, kept so that a stored event can be replayed exactly.
    payment_ref = models.CharField(max_length=200, blank=True)
    refunded_total = models.BigIntegerField(null=True, blank=True)
    dispute_ref = models.CharField(max_length=200, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [models.UniqueConstraint(fields=["gateway", "event_id"], name="webhook_event_once_per_gateway")]

    def __str__(self) -> str:
        return f"{self.gateway} {self.type} {self.event_id}"


class SandboxPayment(models.Model):
    """The sandbox gateway's own ledger: what an external gateway would hold on its side.

    The marketplace never trusts a webhook; it asks this ledger (through the sandbox's status API)
    whether a payment really succeeded.
    """

    id = models.CharField(primary_key=True, max_length=40, help_text="The payment id it was opened for (pay_...).")
    order_id = models.CharField(max_length=40)
    charge_id = models.CharField(max_length=40, blank=True, help_text="The gateway's transaction id, once charged.")
    refunded_amount = models.BigIntegerField(default=0)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    description = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=20, default="requires_payment")
    return_url = models.URLField(max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"


class Refund(models.Model):
    """Money returned for an order, through its gateway — asked by the seller or an operator, or
    reported by the gateway itself."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    class Source(models.TextChoices):
        SELLER = "seller", "Seller"
        OPERATOR = "operator", "Operator"
        GATEWAY = "gateway", "Gateway"
        SYSTEM = "system", "System (automatic)"

    id = PrefixedIdField(prefix="rfd")
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="refunds")
    # The order's seller, kept here so that idempotency keys are unique per seller (a constraint
    # cannot reach through the order).
    seller = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.SELLER)
    gateway_refund_id = models.CharField(max_length=200, blank=True)
    failure_reason = models.CharField(max_length=500, blank=True)
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # A seller's Idempotency-Key names one of their refunds; another seller's same key is theirs.
            models.UniqueConstraint(
                fields=["seller", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="refund_idempotency_key_per_seller",
            ),
            # A payment that succeeded for an order that could not take it is refunded once.
            models.UniqueConstraint(
                fields=["payment"], condition=Q(source="system"), name="refund_one_automatic_per_payment"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} {format_money(self.amount, self.currency)} ({self.status})"


class SandboxRefund(models.Model):
    """The sandbox gateway's own record of a refund (its side of the ledger)."""

    id = models.CharField(primary_key=True, max_length=40)
    payment = models.ForeignKey(SandboxPayment, on_delete=models.PROTECT, related_name="refunds")
    amount = models.BigIntegerField()
    idempotency_key = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.id


class Dispute(models.Model):
    """A buyer's bank disputing a payment (a chargeback), as the gateway holds it.

    Written and moved only by ``payments.disputes.dispute_apply`` from the gateway's own word (the
    dispute retrieved server-side, never a webhook's body). ``reserved_amount`` and ``fee_amount``
    are what the order side decided when it opened: the seller's part of the disputed money (moved
    to the seller's reserve) and the platform fee's part (borne by the platform if the dispute is
    lost), following the refunds' fee rule; they never change after that."""

    class Status(models.TextChoices):
        WARNING_NEEDS_RESPONSE = "warning_needs_response", "Inquiry: needs response"
        WARNING_UNDER_REVIEW = "warning_under_review", "Inquiry: under review"
        WARNING_CLOSED = "warning_closed", "Inquiry closed"
        NEEDS_RESPONSE = "needs_response", "Needs response"
        UNDER_REVIEW = "under_review", "Under review"
        WON = "won", "Won"
        LOST = "lost", "Lost"

    OPEN = frozenset({"warning_needs_response", "warning_under_review", "needs_response", "under_review"})
    WON_STATUSES = frozenset({"won", "warning_closed"})

    id = PrefixedIdField(prefix="dsp")
    gateway = models.CharField(max_length=20)
    gateway_dispute_id = models.CharField(max_length=200)
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="disputes")
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="disputes")
    seller = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    amount = models.BigIntegerField(help_text="What the buyer's bank disputes, minor units.")
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=24, choices=Status.choices)
    reason = models.CharField(max_length=64, blank=True)
    evidence_due_by = models.DateTimeField(null=True, blank=True)
    reserved_amount = models.BigIntegerField(default=0, help_text="The seller's part, moved to reserved.")
    fee_amount = models.BigIntegerField(default=0, help_text="The platform fee's part (the platform's if lost).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["gateway", "gateway_dispute_id"], name="dispute_once_per_gateway"),
            models.CheckConstraint(
                condition=Q(amount__gte=0) & Q(reserved_amount__gte=0) & Q(fee_amount__gte=0),
                name="dispute_amounts_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} {format_money(self.amount, self.currency)} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN

    @property
    def outcome(self) -> str:
        """open, won or lost (an inquiry closed without a chargeback is won)."""
        if self.status in self.WON_STATUSES:
            return "won"
        return "lost" if self.status == self.Status.LOST else "open"
