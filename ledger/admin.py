"""Operators read the books here; nobody writes them by hand (a correction is an adjustment through
the services, in a later step)."""

from typing import Any

from django.contrib import admin

from .models import BalanceTransaction, LedgerLine


class LedgerLineInline(admin.TabularInline):
    model = LedgerLine
    extra = 0
    can_delete = False
    fields = readonly_fields = ("account", "seller", "currency", "amount", "available_on")

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(BalanceTransaction)
class BalanceTransactionAdmin(admin.ModelAdmin):
    list_display = ("id", "created_at", "type", "seller", "amount", "currency", "order_id", "available_on")
    list_filter = ("type", "currency")
    search_fields = ("id", "order_id", "payout_id", "source_id", "seller__email")
    list_select_related = ("seller",)
    readonly_fields = (
        "id", "type", "seller", "currency", "amount", "source_id", "order_id", "payout_id", "description",
        "available_on", "created_at",
    )
    inlines = [LedgerLineInline]

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False
