"""The Balance pages' forms: the statement's filters and the payout settings. Shapes only: the
statement's rules are ``ledger.filters``' (the API's), the settings' rules ``payout_settings_update``'s."""

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.http import QueryDict
from rest_framework.exceptions import ValidationError as ApiValidationError

from ledger.filters import transaction_filters_parse
from ledger.models import PayoutMethod, PayoutSchedule, TransactionType
from marketplace.core.bounds import validate_day
from marketplace.core.money import MAX_AMOUNT
from orders.models import Order

# The filter fields of ``ledger.filters`` and the form field each one's errors belong to.
_API_FIELD = {"type": "type", "currency": "currency", "order": "order", "payout": "payout"}


class StatementFilterForm(forms.Form):
    """The statement's filters as people type them. ``wanted()`` gives ``ledger.filters``' parsed
    filters (the API's, and the CSV's) and the date range; an order is typed as its order number
    (or ``ord_`` id) and looked up among the seller's own orders."""

    type = forms.MultipleChoiceField(
        label="Type", required=False, choices=TransactionType.choices, widget=forms.CheckboxSelectMultiple
    )
    currency = forms.CharField(label="Currency", required=False, max_length=3, help_text="e.g. USD")
    order = forms.CharField(label="Order", required=False, max_length=40, help_text="Order number, e.g. 12345678")
    payout = forms.CharField(label="Payout", required=False, max_length=40, help_text="e.g. po_…")
    created_from = forms.DateField(
        label="From", required=False, validators=[validate_day], widget=forms.DateInput(attrs={"type": "date"})
    )
    created_to = forms.DateField(
        label="To", required=False, validators=[validate_day], widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, data: Any, *, seller: Any) -> None:
        super().__init__(data)
        self.seller = seller
        self.zone = ZoneInfo(getattr(seller, "time_zone", "") or "UTC")

    def _day_start(self, day: date) -> datetime:
        return datetime.combine(day, time.min, tzinfo=self.zone).astimezone(UTC)

    def wanted(self) -> tuple[dict[str, list[str]], datetime | None, datetime | None]:
        """(``ledger.filters`` filters, created on or after, created before). A field that is not
        valid gets its error and is left out; the others still apply."""
        self.is_valid()
        data = self.cleaned_data
        params = QueryDict(mutable=True)
        if data.get("type"):
            params["type"] = ",".join(data["type"])
        for name in ("currency", "payout"):
            if (data.get(name) or "").strip():
                params[name] = data[name].strip()
        ref = (data.get("order") or "").strip().lstrip("#")
        if ref:
            lookup = {"id": ref} if ref.startswith("ord_") else {"order_number": ref}
            order_id = Order.objects.filter(seller=self.seller, **lookup).values_list("id", flat=True).first()
            if order_id is None:
                self.add_error("order", f"No order {ref} in your shop.")
            else:
                params["order"] = order_id
        wanted: dict[str, list[str]] = {}
        try:
            wanted = transaction_filters_parse(params)
        except ApiValidationError as exc:
            detail = exc.detail if isinstance(exc.detail, dict) else {}
            for key, problems in detail.items():
                field = _API_FIELD.get(str(key))
                for problem in problems if isinstance(problems, list) else [problems]:
                    self.add_error(field if field in self.fields else None, str(problem))
                params.pop(key, None)
            wanted = transaction_filters_parse(params)
        start, end = data.get("created_from"), data.get("created_to")
        if start and end and end < start:
            self.add_error("created_to", "Must be on or after the start date.")
            return wanted, None, None
        return (
            wanted,
            self._day_start(start) if start else None,
            self._day_start(end + timedelta(days=1)) if end else None,
        )


class PayoutSettingsForm(forms.Form):
    method = forms.ChoiceField(
        label="Payout method",
        choices=[(PayoutMethod.BANK_TRANSFER.value, PayoutMethod.BANK_TRANSFER.label)],
        initial=PayoutMethod.BANK_TRANSFER,
    )
    schedule = forms.ChoiceField(
        label="Schedule",
        choices=PayoutSchedule.choices,
        initial=PayoutSchedule.MANUAL,
        help_text="Manual: you ask for each payout. Weekly and monthly pay out what is available automatically.",
    )
    minimum_amount = forms.IntegerField(
        label="Minimum payout (in the currency's smallest unit)",
        min_value=0,
        max_value=MAX_AMOUNT,
        initial=0,
        help_text="One figure for every currency: 1000 is $10.00, €10.00 or ¥1,000. Smaller payouts wait.",
    )
    holder = forms.CharField(label="Account holder", max_length=140)
    number = forms.CharField(
        label="Account number or IBAN",
        max_length=64,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    bank = forms.CharField(label="Bank", max_length=140)
    country = forms.CharField(
        label="Bank's country", max_length=2, min_length=2, help_text="Two letters (ISO 3166), e.g. DE or US."
    )

    def __init__(self, *args: Any, number_hint: str = "", stripe_enabled: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.number_hint = number_hint
        method: Any = self.fields["method"]
        if stripe_enabled:  # offered once the seller's Stripe account can receive payouts
            method.choices = [(value, label) for value, label in PayoutMethod.choices]
            # Paid by Stripe, a bank account is optional (kept if given, for a switch back later).
            for name in ("holder", "bank", "country"):
                self.fields[name].required = False
        number: Any = self.fields["number"]
        if number_hint:
            number.help_text = f"Stored: ending {number_hint}. Leave empty to keep it; we never show it again."
        else:
            number.required = not stripe_enabled
            number.help_text = "Stored encrypted; afterwards we only show its last 4 characters."
        self.stripe_enabled = stripe_enabled

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.stripe_enabled or data.get("method") != PayoutMethod.BANK_TRANSFER:
            return data
        # A bank transfer needs the whole bank account (the fields were optional for Stripe's sake).
        needed = ["holder", "bank", "country"] + ([] if self.number_hint else ["number"])
        for name in needed:
            if not (data.get(name) or "").strip() and name not in self.errors:
                self.add_error(name, "This field is required for bank transfers.")
        return data

    @property
    def bank_account_given(self) -> bool:
        data = self.cleaned_data
        return any((data.get(name) or "").strip() for name in ("holder", "number", "bank", "country"))
