"""The operators' view of orders.

Nothing here writes an order directly: status moves only through the lifecycle (the admin actions
call the same services as the API and the dashboard), and the timeline is an audit log, so it is
read-only.
"""

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from marketplace.core.errors import ApplicationError
from marketplace.core.money import format_money
from payments.models import Payment, Refund

from . import services
from .models import License, Order, OrderEvent, OrderItem, SellerEvent, WebhookDelivery, WebhookEndpoint
from .seller_events.delivery import webhook_delivery_resend
from .services.refunds import order_refund_create


def _money(obj: Any, field: str) -> str:
    amount = getattr(obj, field)
    return "" if amount is None else format_money(int(amount), obj.currency)


class ReadOnlyInline(admin.TabularInline):  # type: ignore[type-arg]
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OrderItemInline(ReadOnlyInline):
    model = OrderItem
    fields = (
        "id",
        "title",
        "variant_name",
        "quantity",
        "unit_price_display",
        "content_type",
        "fulfillment_status",
        "fulfilled_at",
        "attempts",
        "last_error",
        "download_count",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[OrderItem]:
        return super().get_queryset(request).select_related("order")

    @admin.display(description="Unit price")
    def unit_price_display(self, obj: OrderItem) -> str:
        return format_money(obj.unit_price, obj.order.currency)


class OrderEventInline(ReadOnlyInline):
    model = OrderEvent
    verbose_name = "timeline event"
    verbose_name_plural = "timeline"
    fields = ("created_at", "type", "from_status", "to_status", "actor", "actor_user", "message")
    readonly_fields = fields
    ordering = ("created_at", "id")


class PaymentInline(ReadOnlyInline):
    model = Payment
    fields = (
        "id",
        "gateway",
        "status",
        "amount_display",
        "transaction_id",
        "payment_method",
        "failure_reason",
        "created_at",
    )
    readonly_fields = fields
    show_change_link = True

    @admin.display(description="Amount")
    def amount_display(self, obj: Payment) -> str:
        return _money(obj, "amount")


MONEY_FIELDS = ("subtotal", "discount_amount", "total_amount", "platform_fee", "seller_earnings", "refunded_amount")


def _money_display(field: str, description: str) -> Callable[[Any, Order], str]:
    @admin.display(description=description, ordering=field)
    def display(self: Any, obj: Order) -> str:
        return _money(obj, field)

    display.__name__ = f"{field}_display"
    return display


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "order_number",
        "id",
        "created_at",
        "seller",
        "product",
        "buyer_email",
        "total_amount_display",
        "currency",
        "status",
        "paid_at",
    )
    list_display_links = ("order_number", "id")
    list_filter = ("status", "currency", "created_at")
    search_fields = ("=id", "=order_number", "buyer_email")
    date_hierarchy = "created_at"
    list_select_related = ("seller", "product")
    list_per_page = 50
    ordering = ("-created_at",)
    show_full_result_count = False
    actions = ("retry_delivery", "mark_delivered", "refund_in_full")
    inlines = (OrderItemInline, PaymentInline, OrderEventInline)

    subtotal_display = _money_display("subtotal", "Subtotal")
    discount_amount_display = _money_display("discount_amount", "Discount")
    total_amount_display = _money_display("total_amount", "Total")
    platform_fee_display = _money_display("platform_fee", "Platform fee")
    seller_earnings_display = _money_display("seller_earnings", "Seller earnings")
    refunded_amount_display = _money_display("refunded_amount", "Refunded")

    fieldsets = (
        (None, {"fields": ("id", "order_number", "status", "status_message", "seller", "product")}),
        ("Buyer", {"fields": ("buyer", "buyer_email", "recipient_email")}),
        (
            "Money",
            {
                "fields": (
                    "currency",
                    "subtotal_display",
                    "discount_code",
                    "discount_amount_display",
                    "total_amount_display",
                    "platform_fee_display",
                    "seller_earnings_display",
                    "refunded_amount_display",
                )
            },
        ),
        ("Delivery", {"fields": ("dispatched_email", "email_sent_at", "delivered_at")}),
        (
            "Integration",
            {"classes": ("collapse",), "fields": ("payment_reference", "idempotency_key", "meta", "webhook_urls")},
        ),
        ("Dates", {"fields": ("created_at", "updated_at", "paid_at", "expires_at")}),
    )
    # Every field is read-only: the status moves only through the lifecycle (see the actions), the
    # money is what the buyer was charged, and other corrections go through the services.
    readonly_fields = (
        "id",
        "order_number",
        "status",
        "status_message",
        "seller",
        "product",
        "buyer",
        "buyer_email",
        "recipient_email",
        "currency",
        "subtotal_display",
        "discount_code",
        "discount_amount_display",
        "total_amount_display",
        "platform_fee_display",
        "seller_earnings_display",
        "refunded_amount_display",
        "dispatched_email",
        "email_sent_at",
        "delivered_at",
        "payment_reference",
        "idempotency_key",
        "meta",
        "webhook_urls",
        "created_at",
        "updated_at",
        "paid_at",
        "expires_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # orders are made by checkout

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the order and its timeline are the audit trail

    def _run(self, request: HttpRequest, queryset: QuerySet[Order], verb: str, action: Callable[[Order], Any]) -> None:
        done: list[str] = []
        failed: list[str] = []
        for order in queryset.order_by("created_at"):
            try:
                action(order)
            except ApplicationError as exc:
                failed.append(f"#{order.order_number}: {exc.message}")
            else:
                done.append(f"#{order.order_number}")
        if done:
            self.message_user(request, f"{verb}: {', '.join(done)}.", messages.SUCCESS)
        if failed:
            self.message_user(request, f"Not {verb.lower()}: {'; '.join(failed)}", messages.ERROR)

    @admin.action(description="Retry delivery", permissions=["change"])
    def retry_delivery(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        self._run(
            request,
            queryset,
            "Delivery retried",
            lambda order: services.order_retry_delivery(
                order=order, user=request.user, actor=OrderEvent.Actor.OPERATOR
            ),
        )

    @admin.action(description="Mark delivered", permissions=["change"])
    def mark_delivered(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        self._run(
            request,
            queryset,
            "Marked delivered",
            lambda order: services.order_mark_delivered(
                order=order, user=request.user, actor=OrderEvent.Actor.OPERATOR
            ),
        )

    @admin.action(description="Refund in full (through the gateway)", permissions=["change"])
    def refund_in_full(self, request: HttpRequest, queryset: QuerySet[Order]) -> TemplateResponse | None:
        """Money leaves through the gateway and cannot be taken back: like ``delete_selected``, the
        first POST only shows each order's number and the amount it would return; the refunds run
        when that page is confirmed (``post=yes``), through the same service as the API."""
        if request.POST.get("post") != "yes":
            return self._refund_confirmation(request, queryset)
        self._run(
            request,
            queryset,
            "Refunded",
            lambda order: order_refund_create(
                order=order,
                amount=None,
                reason="Refunded by an operator.",
                user=request.user,
                source=Refund.Source.OPERATOR,
            ),
        )
        return None

    def _refund_confirmation(self, request: HttpRequest, queryset: QuerySet[Order]) -> TemplateResponse:
        orders = list(queryset.select_related("seller").order_by("created_at"))
        rows = [
            {
                "order": order,
                "amount": format_money(order.total_amount - order.refunded_amount, order.currency),
                "status": order.get_status_display(),
            }
            for order in orders
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": "Refund these orders in full?",
            "subtitle": None,
            "opts": self.model._meta,
            "rows": rows,
            "orders": orders,
            "action_name": "refund_in_full",
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        return TemplateResponse(request, "admin/orders/order/refund_in_full_confirmation.html", context)


@admin.register(OrderEvent)
class OrderEventAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("created_at", "order", "type", "from_status", "to_status", "actor", "actor_user", "message")
    list_filter = ("type", "actor", "to_status", "created_at")
    search_fields = ("=id", "=order__id", "=order__order_number", "order__buyer_email", "message")
    date_hierarchy = "created_at"
    list_select_related = ("order", "actor_user")
    show_full_result_count = False
    fields = ("id", "order", "created_at", "type", "from_status", "to_status", "actor", "actor_user", "message", "data")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(License)
class LicenseAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Licence keys by their last 4 characters only."""

    list_display = ["id", "masked_key", "status", "product", "uses", "activation_limit", "expires_at", "created_at"]
    list_filter = ["status", "created_at"]
    search_fields = ["id", "key_hint", "product__title", "order_item__order__order_number"]
    list_select_related = ["product"]
    fields = [
        "id",
        "masked_key",
        "status",
        "product",
        "order_item",
        "uses",
        "activation_limit",
        "expires_at",
        "created_at",
    ]
    readonly_fields = ["id", "masked_key", "product", "order_item", "uses", "created_at"]

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).defer("key")

    @admin.display(description="Key")
    def masked_key(self, obj: License) -> str:
        return f"••••{obj.key_hint}"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(SellerEvent)
class SellerEventAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["id", "type", "seller", "created_at", "dispatched_at"]
    list_filter = ["type", "created_at"]
    search_fields = ["id", "type", "seller__email"]
    readonly_fields = ["id", "type", "seller", "data", "created_at", "dispatched_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Sellers' webhook endpoints. The secret is never shown here."""

    list_display = ["id", "seller", "kind", "url", "active", "consecutive_failures", "disabled_reason", "created_at"]
    list_filter = ["kind", "active", "created_at"]
    search_fields = ["=id", "url", "seller__email"]
    list_select_related = ["seller"]
    fields = (
        "id",
        "seller",
        "kind",
        "url",
        "events",
        "active",
        "consecutive_failures",
        "disabled_reason",
        "disabled_at",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).defer("secret")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["id", "webhook_id", "event", "url", "status", "attempts", "last_status_code", "created_at"]
    list_filter = ["status", "created_at"]
    search_fields = ["=id", "=webhook_id", "=event__id", "url"]
    list_select_related = ["event"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    readonly_fields = [
        "id",
        "endpoint",
        "event",
        "url",
        "webhook_id",
        "status",
        "attempts",
        "next_attempt_at",
        "last_attempt_at",
        "last_status_code",
        "last_duration_ms",
        "last_response",
        "last_error",
        "attempt_log",
        "body",
        "created_at",
        "updated_at",
    ]
    actions = ["resend"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Resend", permissions=["view"])
    def resend(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        done, failed = 0, []
        for delivery in queryset.select_related("endpoint"):
            try:
                webhook_delivery_resend(delivery=delivery)
            except ApplicationError as exc:
                failed.append(f"{delivery.id}: {exc.message}")
            else:
                done += 1
        if done:
            self.message_user(request, f"Resent {done} deliveries.", messages.SUCCESS)
        if failed:
            self.message_user(request, f"Not resent: {'; '.join(failed)}", messages.ERROR)
