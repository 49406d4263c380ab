"""The operators' view of payments, incoming webhook events and the sandbox gateway's ledger.

All three are read-only: a payment changes only through the gateway services, a webhook event is
the record of what a gateway sent us, and the sandbox ledger stands for an external gateway — editing
it would let anyone fake the confirmation that re-verification relies on.
"""

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from marketplace.core.money import format_money

from .connect_events import CONNECT_GATEWAY, connect_event_process
from .gateway_events import webhook_replay
from .models import Dispute, Payment, Refund, SandboxPayment, WebhookEvent


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "created_at",
        "order",
        "gateway",
        "status",
        "amount_display",
        "currency",
        "transaction_id",
        "payment_method",
    )
    list_filter = ("status", "gateway", "currency", "created_at")
    search_fields = ("=id", "=order__id", "=order__order_number", "order__buyer_email", "=transaction_id")
    date_hierarchy = "created_at"
    list_select_related = ("order",)
    fields = (
        "id",
        "order",
        "gateway",
        "status",
        "amount_display",
        "currency",
        "transaction_id",
        "payment_method",
        "redirect_url",
        "failure_reason",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj: Payment) -> str:
        return format_money(obj.amount, obj.currency)


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "received_at", "gateway", "type", "event_id", "status", "payment", "processed_at")
    list_filter = ("status", "gateway", "type", "received_at")
    search_fields = ("=id", "=event_id", "=payment__id", "=payment__order__id", "=payment__order__order_number")
    date_hierarchy = "received_at"
    list_select_related = ("payment",)
    fields = (
        "id",
        "gateway",
        "event_id",
        "type",
        "status",
        "error",
        "payment",
        "received_at",
        "processed_at",
        "payload_pretty",
    )
    readonly_fields = fields
    actions = ("replay",)

    def has_replay_permission(self, request: HttpRequest) -> bool:
        # The event itself stays immutable; replaying it only runs the same, re-verifying handler.
        return bool(request.user.is_superuser or request.user.has_perm("payments.change_webhookevent"))

    @admin.action(description="Replay (re-verified with the gateway)", permissions=["replay"])
    def replay(self, request: HttpRequest, queryset: QuerySet[WebhookEvent]) -> None:
        outcomes = []
        for event in queryset.order_by("received_at"):
            if event.gateway == CONNECT_GATEWAY:  # Stripe Connect's events go to the payouts side
                event = connect_event_process(event=event)
            else:
                event = webhook_replay(event=event)
            outcomes.append(f"{event.event_id}: {event.status}")
        self.message_user(request, "Replayed — " + "; ".join(outcomes), messages.SUCCESS)

    @admin.display(description="Payload")
    def payload_pretty(self, obj: WebhookEvent) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, sort_keys=True, default=str))


@admin.register(SandboxPayment)
class SandboxPaymentAdmin(ReadOnlyAdmin):
    list_display = ("id", "created_at", "order_id", "amount_display", "currency", "status", "charge_id", "completed_at")
    list_filter = ("status", "currency", "created_at")
    search_fields = ("=id", "=order_id", "=charge_id")
    date_hierarchy = "created_at"
    fields = (
        "id",
        "order_id",
        "charge_id",
        "amount_display",
        "currency",
        "description",
        "status",
        "return_url",
        "created_at",
        "completed_at",
    )
    readonly_fields = fields

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj: SandboxPayment) -> str:
        return format_money(obj.amount, obj.currency)


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ("id", "created_at", "order", "amount_display", "status", "source", "reason", "gateway_refund_id")
    list_filter = ("status", "source", "currency", "created_at")
    search_fields = ("=id", "=order__id", "=order__order_number", "=gateway_refund_id")
    list_select_related = ("order",)
    date_hierarchy = "created_at"

    @admin.display(description="Amount")
    def amount_display(self, obj: Refund) -> str:
        return format_money(obj.amount, obj.currency)


@admin.register(Dispute)
class DisputeAdmin(ReadOnlyAdmin):
    """Disputes as the gateway reported them (and what the seller's books hold for them); they move
    only through the gateway's word (its webhooks, re-verified)."""

    list_display = (
        "id",
        "created_at",
        "order",
        "seller",
        "status",
        "reason",
        "money",
        "reserved",
        "evidence_due_by",
        "closed_at",
    )
    list_filter = ("status", "gateway", "currency")
    search_fields = ("id", "gateway_dispute_id", "order__id", "order__order_number", "seller__email")
    list_select_related = ("order", "seller")
    readonly_fields = (
        "id",
        "gateway",
        "gateway_dispute_id",
        "payment",
        "order",
        "seller",
        "amount",
        "currency",
        "status",
        "reason",
        "evidence_due_by",
        "reserved_amount",
        "fee_amount",
        "created_at",
        "updated_at",
        "closed_at",
    )

    @admin.display(description="Amount")
    def money(self, obj: Dispute) -> str:
        return format_money(obj.amount, obj.currency)

    @admin.display(description="Seller's part reserved")
    def reserved(self, obj: Dispute) -> str:
        return format_money(obj.reserved_amount, obj.currency)
