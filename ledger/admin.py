"""Operators read the books here; nobody writes them by hand: a correction is an adjustment, made
with the form below through ``ledger_adjustment_record`` (who and why are kept). The payouts queue
moves payouts only through the payout services."""

import csv
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from marketplace.accounts.models import Role, User
from marketplace.core.csv_cells import csv_text
from marketplace.core.errors import ApplicationError
from marketplace.core.money import format_money, parse_amount, validate_currency

from .adjustments import ledger_adjustment_allowed, ledger_adjustment_clean, ledger_adjustment_record
from .api import major_units
from .models import (
    Adjustment,
    BalanceTransaction,
    LedgerLine,
    Payout,
    PayoutEvent,
    PayoutMethod,
    StripeConnectAccount,
)
from .payouts import payout_approve, payout_mark_failed, payout_mark_paid, payouts_mark_exported


class AmountAsMoney:
    """``amount_money``: the amount as people read it ($29.00), never in minor units (2900)."""

    @admin.display(description="Amount")
    def amount_money(self, obj: Any) -> str:
        return "" if obj is None or obj.amount is None else format_money(int(obj.amount), obj.currency)


class LedgerLineInline(AmountAsMoney, admin.TabularInline):
    model = LedgerLine
    extra = 0
    can_delete = False
    fields = readonly_fields = ("account", "seller", "currency", "amount_money", "available_on")

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(BalanceTransaction)
class BalanceTransactionAdmin(AmountAsMoney, admin.ModelAdmin):
    list_display = ("id", "created_at", "type", "seller", "amount_money", "order_id", "available_on")
    list_filter = ("type", "currency")
    search_fields = ("id", "order_id", "payout_id", "source_id", "seller__email")
    list_select_related = ("seller",)
    readonly_fields = (
        "id",
        "type",
        "seller",
        "currency",
        "amount_money",
        "source_id",
        "order_id",
        "payout_id",
        "description",
        "available_on",
        "created_at",
    )
    inlines = [LedgerLineInline]

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


# --- Payouts: the operators' queue ---------------------------------------------------------------------


class PayoutEventInline(admin.TabularInline):
    model = PayoutEvent
    extra = 0
    can_delete = False
    fields = readonly_fields = ("created_at", "kind", "actor", "note")

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False


class FailureForm(forms.Form):
    reason = forms.CharField(
        max_length=500, widget=forms.Textarea(attrs={"rows": 3}), help_text="The seller reads this in the email."
    )


BANK_FILE_COLUMNS = ["payout_id", "holder", "account_number", "bank", "country", "amount", "currency", "reference"]


@admin.register(Payout)
class PayoutAdmin(AmountAsMoney, admin.ModelAdmin):
    """The bank-transfer queue: approve (in transit), export the bank file, mark paid or failed. Every
    action goes through the payout services and leaves a ``PayoutEvent`` with who and when."""

    list_display = ("id", "created_at", "seller", "amount_money", "status", "method", "arrival_date")
    list_filter = ("status", "currency", "method")
    search_fields = ("id", "seller__email")
    list_select_related = ("seller",)
    readonly_fields = (
        "id",
        "seller",
        "amount_money",
        "currency",
        "status",
        "method",
        "period",
        "arrival_date",
        "failure_reason",
        "created_at",
        "transfer_id",
        "transfer_payment_id",
        "stripe_payout_id",
    )
    inlines = [PayoutEventInline]
    actions = ["approve", "export_bank_file", "mark_paid", "mark_failed"]

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def _each(self, request: Any, queryset: Any, move: Any, done: str, **kwargs: Any) -> None:
        moved, refused = 0, []
        for payout_id in queryset.values_list("id", flat=True):
            try:
                move(payout_id=payout_id, actor=request.user, **kwargs)
                moved += 1
            except ApplicationError as exc:
                refused.append(exc.message)
        if moved:
            self.message_user(request, f"{moved} payout(s) {done}.", messages.SUCCESS)
        for message in refused:
            self.message_user(request, message, messages.ERROR)

    @admin.action(description="Approve: send by bank transfer (in transit)")
    def approve(self, request: Any, queryset: Any) -> None:
        self._each(request, queryset, payout_approve, "approved")

    @admin.action(description="Mark paid")
    def mark_paid(self, request: Any, queryset: Any) -> None:
        self._each(request, queryset, payout_mark_paid, "marked paid")

    @admin.action(description="Mark failed (asks for the reason)")
    def mark_failed(self, request: Any, queryset: Any) -> Any:
        if "apply" in request.POST:
            form = FailureForm(request.POST)
            if form.is_valid():
                self._each(request, queryset, payout_mark_failed, "marked failed", reason=form.cleaned_data["reason"])
                return None
        else:
            form = FailureForm()
        context = {
            **self.admin_site.each_context(request),
            "title": "Mark payouts failed",
            "payouts": queryset,
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/ledger/payout/mark_failed.html", context)

    @admin.action(description="Export bank file (CSV, full account numbers)")
    def export_bank_file(self, request: Any, queryset: Any) -> HttpResponse:
        """The one place a full account number is decrypted: the file the bank needs."""
        chosen = queryset.select_related("seller__payout_settings").order_by("created_at", "id")
        payouts = list(chosen.filter(method=PayoutMethod.BANK_TRANSFER))
        skipped = len(chosen) - len(payouts)
        if skipped:  # Stripe Connect payouts go by their transfer: never also by the bank
            self.message_user(
                request, f"{skipped} Stripe Connect payout(s) left out of the bank file.", messages.WARNING
            )
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="payouts-{timezone.now():%Y%m%d-%H%M%S}.csv"'
        response["Cache-Control"] = "no-store"
        writer = csv.writer(response)
        writer.writerow(BANK_FILE_COLUMNS)
        for payout in payouts:
            config = getattr(payout.seller, "payout_settings", None)
            writer.writerow(
                [
                    payout.id,
                    _cell(config.bank_holder if config else ""),
                    (config.bank_number or "") if config else "",
                    _cell(config.bank_name if config else ""),
                    config.bank_country if config else "",
                    major_units(payout.amount, payout.currency),
                    payout.currency,
                    f"Payout {payout.id}",
                ]
            )
        payouts_mark_exported(payout_ids=[p.id for p in payouts], actor=request.user)
        return response


@admin.register(StripeConnectAccount)
class StripeConnectAccountAdmin(admin.ModelAdmin):
    """The sellers' Stripe Express accounts as Stripe last described them (read-only: Stripe's
    ``account.updated`` and the seller's return from onboarding refresh them)."""

    list_display = ("account_id", "seller", "status", "payouts_enabled", "refreshed_at")
    list_filter = ("status",)
    search_fields = ("account_id", "seller__email")
    list_select_related = ("seller",)
    fields = readonly_fields = (
        "seller",
        "account_id",
        "status",
        "charges_enabled",
        "payouts_enabled",
        "details_submitted",
        "requirements_due",
        "created_at",
        "refreshed_at",
    )

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


# A holder or bank name the seller typed never runs as a spreadsheet formula.
_cell = csv_text


# --- Adjustments --------------------------------------------------------------------------------------


class AdjustmentForm(forms.ModelForm):  # type: ignore[type-arg]
    """The amount is typed as people write money ("-12.50"), in the chosen currency; the service's
    rules decide the rest, and its refusals are put next to their fields."""

    amount_text = forms.CharField(
        label="Amount", max_length=30, help_text='Signed, in the currency\'s units: "25.00" credits, "-25.00" debits.'
    )

    class Meta:
        model = Adjustment
        fields = ("seller", "currency", "reason")
        widgets = {"reason": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        seller_field: Any = self.fields.get("seller")
        if seller_field is not None:  # the add form (the change view shows everything read-only)
            seller_field.queryset = User.objects.filter(role=Role.SELLER).order_by("email")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        currency = (data.get("currency") or "").strip().upper()
        raw = (data.get("amount_text") or "").strip()
        amount: Any = None
        if raw and currency and _known_currency(currency):
            negative = raw.startswith("-")
            try:
                minor = parse_amount(raw.lstrip("+-").strip(), currency)
            except ValueError as exc:
                self.add_error("amount_text", str(exc))
                return data
            amount = None if minor is None else (-minor if negative else minor)
        try:
            cleaned = ledger_adjustment_clean(
                seller=data.get("seller"), currency=currency, amount=amount, reason=data.get("reason")
            )
        except ApplicationError as exc:
            for name, errors in (exc.fields or {}).items():
                target = "amount_text" if name == "amount" else name
                for error in errors:
                    if target not in self.errors:
                        self.add_error(target if target in self.fields else None, error)
            return data
        data.update(currency=cleaned.currency, amount=cleaned.amount, reason=cleaned.reason)
        return data


def _known_currency(code: str) -> bool:
    try:
        validate_currency(code)
    except Exception:  # noqa: BLE001 - the service names the field
        return False
    return True


@admin.register(Adjustment)
class AdjustmentAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Adjustments: made here, through the service, never edited or deleted."""

    form = AdjustmentForm
    list_display = ("id", "created_at", "seller", "signed_amount", "reason", "actor_email")
    list_filter = ("currency",)
    search_fields = ("id", "seller__email", "reason", "actor_email")
    list_select_related = ("seller",)
    readonly_fields = ("id", "seller", "currency", "amount", "reason", "actor", "actor_email", "created_at")

    def get_fields(self, request: Any, obj: Any = None) -> Any:
        if obj is None:
            return ("seller", "currency", "amount_text", "reason")
        return self.readonly_fields

    def get_readonly_fields(self, request: Any, obj: Any = None) -> Any:
        return () if obj is None else self.readonly_fields

    def has_add_permission(self, request: Any) -> bool:
        return ledger_adjustment_allowed(request.user)

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    @admin.display(description="Amount")
    def signed_amount(self, obj: Adjustment) -> str:
        return f"{major_units(obj.amount, obj.currency)} {obj.currency}"

    def save_model(self, request: Any, obj: Any, form: Any, change: bool) -> None:
        data = form.cleaned_data
        made = ledger_adjustment_record(
            seller=data["seller"],
            currency=data["currency"],
            amount=data["amount"],
            reason=data["reason"],
            actor=request.user,
        )
        # The admin answers with the object it saved: the one the service made.
        obj.pk, obj.amount, obj.actor, obj.actor_email, obj.created_at = (
            made.pk,
            made.amount,
            made.actor,
            made.actor_email,
            made.created_at,
        )
        obj._state.adding = False
