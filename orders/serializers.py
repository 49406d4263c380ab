"""Input validation for checkout and order actions (output lives in ``presenters.py``)."""

import json
from datetime import datetime, timedelta
from typing import Any

from django.core.validators import URLValidator
from django.utils import timezone
from rest_framework import serializers

from marketplace.core.bounds import moment_in_bounds
from marketplace.core.fields import StrictIntegerField

from .models import OrderStatus

MAX_QUANTITY = 1000
# A gift's ``deliver_at`` is at most this far ahead (shared/API.md: "at most a year ahead").
MAX_GIFT_DELAY_DAYS = 366


class CheckoutItemInput(serializers.Serializer):
    variant_id = serializers.CharField(max_length=40)
    quantity = StrictIntegerField(min_value=1, max_value=MAX_QUANTITY, default=1)
    fulfillment_input = serializers.DictField(required=False, default=dict)


class _ItemsMixin(serializers.Serializer):
    items = CheckoutItemInput(many=True, required=False, allow_empty=False, max_length=50)  # type: ignore[call-arg]
    variant_id = serializers.CharField(max_length=40, required=False)
    quantity = StrictIntegerField(min_value=1, max_value=MAX_QUANTITY, required=False)
    discount_code = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("items") and (attrs.get("variant_id") or attrs.get("quantity")):
            raise serializers.ValidationError({"items": ["Send either items or variant_id and quantity, not both."]})
        if not attrs.get("items"):
            if attrs.get("variant_id"):
                attrs["items"] = [
                    {"variant_id": attrs["variant_id"], "quantity": attrs.get("quantity") or 1, "fulfillment_input": {}}
                ]
            elif attrs.get("quantity") is not None:
                attrs["items"] = [{"variant_id": None, "quantity": attrs["quantity"], "fulfillment_input": {}}]
            else:
                attrs["items"] = []
        attrs.pop("variant_id", None)
        attrs.pop("quantity", None)
        return attrs


class QuoteInput(_ItemsMixin):
    pass


_https = URLValidator(schemes=["https"])


def _validate_webhook_url(value: str) -> None:
    try:
        _https(value)
    except Exception:  # noqa: BLE001
        raise serializers.ValidationError("Must be an https:// URL.") from None


class PayInput(_ItemsMixin):
    buyer_email = serializers.EmailField(max_length=254)
    recipient_email = serializers.EmailField(max_length=254, required=False, allow_blank=True, default="")
    payment_method = serializers.CharField(max_length=20, required=False, default="")
    init_payment = serializers.BooleanField(required=False, default=True)
    idempotency_key = serializers.CharField(max_length=200, required=False, allow_blank=False)
    meta = serializers.DictField(required=False, default=dict)
    webhook_urls = serializers.ListField(
        child=serializers.CharField(max_length=2000, validators=[_validate_webhook_url]),
        required=False,
        default=list,
        max_length=5,
    )
    payment_reference = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    deliver_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="A gift's delivery time (ISO 8601, at most a year ahead): the recipient's e-mail goes out then.",
    )
    claim_link = serializers.BooleanField(
        required=False,
        default=False,
        help_text="The recipient's e-mail carries a link; the codes are shown when it is opened.",
    )

    def validate_deliver_at(self, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if not moment_in_bounds(value) or value > timezone.now() + timedelta(days=MAX_GIFT_DELAY_DAYS):
            raise serializers.ValidationError("At most a year ahead.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        gift_fields = {
            name: ["Needs a recipient_email: it is the recipient's e-mail that is delayed or carries the link."]
            for name in ("deliver_at", "claim_link")
            if attrs.get(name) and not attrs.get("recipient_email")
        }
        if gift_fields:
            raise serializers.ValidationError(gift_fields)
        return attrs

    def validate_webhook_urls(self, value: list[str]) -> list[str]:
        """The server calls these URLs with signed requests carrying the seller's fee, earnings and
        meta: from an anonymous caller they would make the marketplace a request reflector. Only an
        authenticated caller (the ``request`` in the context) may name them."""
        request = self.context.get("request")
        if value and not getattr(getattr(request, "user", None), "is_authenticated", False):
            raise serializers.ValidationError(
                "Only an authenticated caller may send webhook_urls; an anonymous checkout cannot."
            )
        return value

    def validate_meta(self, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > 50:
            raise serializers.ValidationError("At most 50 keys.")
        if len(json.dumps(value)) > 16_384:
            raise serializers.ValidationError("At most 16 KB of metadata.")
        return value


class OrderCreateInput(PayInput):
    """``POST /api/v1/orders``: the body of ``pay``; ``buyer_email`` only from a seller's credentials
    (a buyer's orders are the account's own). Nothing a caller sent is silently ignored: an unknown
    field is a 400 naming it."""

    buyer_email = serializers.EmailField(max_length=254, required=False)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class RefundInput(serializers.Serializer):
    amount = StrictIntegerField(min_value=1, required=False, help_text="Minor units; leave out for a full refund.")
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class InitiateInput(serializers.Serializer):
    payment_method = serializers.CharField(max_length=20, required=False, default="")


class StatusInput(serializers.Serializer):
    status = serializers.ChoiceField(choices=OrderStatus.choices)


class DeliveryOverrideInput(serializers.Serializer):
    delivery_content = serializers.CharField(max_length=20000, allow_blank=True)
    content_type = serializers.CharField(max_length=20)
    item_id = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
    deliver = serializers.BooleanField(
        required=False,
        default=False,
        help_text="true: deliver the item with its new content at once (a paid order's item not delivered yet).",
    )


class LicenseVerifyInput(serializers.Serializer):
    product_id = serializers.CharField(max_length=40)
    license_key = serializers.CharField(max_length=200)
    increment_uses_count = serializers.BooleanField(required=False, default=False)


class LicenseActivateInput(serializers.Serializer):
    license_key = serializers.CharField(max_length=200)
    instance_name = serializers.CharField(max_length=200)


class LicenseDeactivateInput(serializers.Serializer):
    license_key = serializers.CharField(max_length=200)
    activation_id = serializers.CharField(max_length=40)


class GiftScheduleInput(serializers.Serializer):
    deliver_at = serializers.DateTimeField(help_text="The new delivery time of the recipient's e-mail.")

    def validate_deliver_at(self, value: datetime) -> datetime:
        if not moment_in_bounds(value) or value > timezone.now() + timedelta(days=MAX_GIFT_DELAY_DAYS):
            raise serializers.ValidationError("At most a year ahead.")
        return value
