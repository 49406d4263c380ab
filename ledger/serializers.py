"""The shapes of the seller-money API, for the OpenAPI schema (the views build plain dicts)."""

from rest_framework import serializers

from catalog.serializers import StrictInput
from marketplace.core.fields import StrictIntegerField

from .models import PayoutMethod, PayoutSchedule, PayoutStatus, TransactionType


class BalanceLineDoc(serializers.Serializer):
    currency = serializers.CharField()
    pending = serializers.IntegerField(help_text="On hold until its available_on (minor units).")
    available = serializers.IntegerField(help_text="Held no longer; negative after a refund of paid-out money.")
    reserved = serializers.IntegerField(help_text="Held for open disputes.")
    total = serializers.IntegerField()
    next_available_on = serializers.DateTimeField(
        allow_null=True, help_text="When the next pending amount becomes available."
    )


class NextPayoutDoc(serializers.Serializer):
    date = serializers.DateField()
    amount = serializers.IntegerField()
    currency = serializers.CharField()


class BalanceDoc(serializers.Serializer):
    balances = BalanceLineDoc(many=True)
    hold_days = serializers.IntegerField(help_text="Days a sale stays pending before it is available.")
    next_payout = NextPayoutDoc(allow_null=True)


class BalanceTransactionDoc(serializers.Serializer):
    id = serializers.CharField(help_text="btx_...")
    type = serializers.ChoiceField(choices=TransactionType.choices)
    amount = serializers.IntegerField(help_text="Signed, minor units: what it did to the balance.")
    currency = serializers.CharField()
    status = serializers.ChoiceField(choices=["pending", "available"])
    available_on = serializers.DateTimeField()
    order_id = serializers.CharField(allow_null=True)
    payout_id = serializers.CharField(allow_null=True)
    description = serializers.CharField()
    created_at = serializers.DateTimeField()


# --- Payouts (input is strict: unknown fields are a 400) -----------------------------------------------


class BankAccountWrite(StrictInput):
    holder = serializers.CharField(max_length=140)
    number = serializers.CharField(max_length=64, required=False, help_text="Write only; shown back as number_hint.")
    bank = serializers.CharField(max_length=140)
    country = serializers.CharField(min_length=2, max_length=2, help_text="ISO 3166 alpha-2.")


class PayoutSettingsInput(StrictInput):
    method = serializers.ChoiceField(choices=PayoutMethod.choices)
    schedule = serializers.ChoiceField(choices=PayoutSchedule.choices)
    minimum_amount = StrictIntegerField(min_value=0, help_text="Minor units, the same figure in every currency.")
    bank_account = BankAccountWrite(allow_null=True, required=False)


class BankAccountDoc(serializers.Serializer):
    holder = serializers.CharField()
    number_hint = serializers.CharField(help_text="The account number's last 4 characters.")
    bank = serializers.CharField()
    country = serializers.CharField()


class StripeAccountDoc(serializers.Serializer):
    id = serializers.CharField(help_text="The seller's own connected account (acct_...).")
    status = serializers.ChoiceField(choices=["pending", "restricted", "enabled"])


class PayoutSettingsDoc(serializers.Serializer):
    method = serializers.ChoiceField(choices=PayoutMethod.choices, allow_null=True)
    schedule = serializers.ChoiceField(choices=PayoutSchedule.choices)
    minimum_amount = serializers.IntegerField()
    bank_account = BankAccountDoc(allow_null=True)
    stripe_account = StripeAccountDoc(
        allow_null=True, help_text="The seller's Stripe Express account once onboarding started, else null."
    )


class PayoutCreateInput(StrictInput):
    currency = serializers.CharField(min_length=3, max_length=3)


class PayoutDoc(serializers.Serializer):
    id = serializers.CharField(help_text="po_...")
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    status = serializers.ChoiceField(choices=PayoutStatus.choices)
    method = serializers.ChoiceField(choices=PayoutMethod.choices)
    arrival_date = serializers.DateField(allow_null=True)
    failure_reason = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
