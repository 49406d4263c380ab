"""The shapes of the seller-money API, for the OpenAPI schema (the views build plain dicts)."""

from rest_framework import serializers

from .models import TransactionType


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
