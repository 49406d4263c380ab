"""Serializers that describe, for the OpenAPI schema, the objects ``presenters.py`` returns."""

from rest_framework import serializers

from .models import FulfillmentStatus, OrderStatus


class DeliveryDoc(serializers.Serializer):
    content_type = serializers.CharField()
    content = serializers.CharField(allow_null=True)
    download_url = serializers.URLField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)


class OrderItemDoc(serializers.Serializer):
    id = serializers.CharField()
    product_id = serializers.CharField()
    variant_id = serializers.CharField()
    title = serializers.CharField()
    variant_name = serializers.CharField()
    quantity = serializers.IntegerField()
    unit_price = serializers.IntegerField()
    fulfilled = serializers.BooleanField()
    fulfilled_at = serializers.DateTimeField(allow_null=True)
    fulfillment_status = serializers.ChoiceField(choices=FulfillmentStatus.choices)
    voucher_codes = serializers.ListField(child=serializers.CharField())
    delivery = DeliveryDoc(allow_null=True)


class PaymentDoc(serializers.Serializer):
    id = serializers.CharField()
    gateway = serializers.CharField()
    status = serializers.CharField()
    transaction_id = serializers.CharField(allow_null=True)
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    payment_method = serializers.CharField()
    created_at = serializers.DateTimeField()


class PaymentRedirectDoc(PaymentDoc):
    redirect_url = serializers.URLField()


class RefundDoc(serializers.Serializer):
    id = serializers.CharField()
    payment_id = serializers.CharField()
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    reason = serializers.CharField()
    status = serializers.CharField()
    source = serializers.CharField()  # type: ignore[assignment]
    gateway_refund_id = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()


class OrderEventDoc(serializers.Serializer):
    id = serializers.CharField()
    type = serializers.CharField()
    from_status = serializers.CharField(allow_null=True)
    to_status = serializers.CharField(allow_null=True)
    message = serializers.CharField()
    actor = serializers.CharField()
    data = serializers.DictField()  # type: ignore[assignment]
    created_at = serializers.DateTimeField()


class ProductRefDoc(serializers.Serializer):
    id = serializers.CharField()
    slug = serializers.CharField()
    title = serializers.CharField()


SUB_STATUSES = [
    "INITIAL",
    "PROCESSING",
    "VENDOR_ORDER_PENDING",
    "VENDOR_ORDER_CREATED",
    "VENDOR_VOUCHER_FETCHED",
    "PARTIAL",
    "COMPLETED",
    "GV_LINK_UNCLAIMED",
    "GV_LINK_CLAIMED",
    "DELAYED",
    "REFUNDED",
    "NOT_REFUNDED",
]


class GiftDoc(serializers.Serializer):
    claim_link = serializers.BooleanField()
    claimed_at = serializers.DateTimeField(allow_null=True)
    sent_at = serializers.DateTimeField(allow_null=True, help_text="When the recipient's e-mail went out.")


class OrderDoc(serializers.Serializer):
    id = serializers.CharField()
    order_number = serializers.CharField()
    status = serializers.ChoiceField(choices=OrderStatus.choices)
    status_label = serializers.CharField()
    status_message = serializers.CharField()
    product = ProductRefDoc()
    buyer_email = serializers.EmailField()
    recipient_email = serializers.EmailField(allow_null=True)
    currency = serializers.CharField()
    subtotal = serializers.IntegerField()
    discount_code = serializers.CharField(allow_null=True)
    discount_amount = serializers.IntegerField()
    total_amount = serializers.IntegerField()
    platform_fee = serializers.IntegerField(required=False)
    seller_earnings = serializers.IntegerField(required=False)
    refunded_amount = serializers.IntegerField()
    items = OrderItemDoc(many=True)
    voucher_codes = serializers.ListField(child=serializers.CharField())
    delivery_content = serializers.CharField(allow_null=True)
    content_type = serializers.CharField(allow_null=True)
    sub_status = serializers.ChoiceField(choices=SUB_STATUSES)
    deliver_at = serializers.DateTimeField(allow_null=True)
    gift = GiftDoc(allow_null=True)
    payments = PaymentDoc(many=True)
    refunds = RefundDoc(many=True)
    events = OrderEventDoc(many=True, required=False)
    dispatched_email = serializers.BooleanField()
    email_sent_at = serializers.DateTimeField(allow_null=True)
    meta = serializers.DictField(required=False)
    payment_reference = serializers.CharField(allow_null=True, required=False)
    idempotency_key = serializers.CharField(allow_null=True, required=False)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    paid_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)


class CheckoutOrderDoc(OrderDoc):
    payment = PaymentRedirectDoc(required=False)


class PublicVariantDoc(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    price = serializers.IntegerField()
    available = serializers.BooleanField()
    stock = serializers.IntegerField(allow_null=True)


class PublicProductDoc(serializers.Serializer):
    slug = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField(help_text="Markdown, as the seller wrote it.")
    description_html = serializers.CharField(help_text="The description rendered and sanitised.")
    cover_image_url = serializers.CharField(help_text="The resized cover image ('' if none).")
    seller_name = serializers.CharField()
    seller_slug = serializers.CharField(help_text="The seller's store: /s/{seller_slug}.")
    support_email = serializers.CharField()
    currency = serializers.CharField()
    content_type = serializers.CharField()
    variants = PublicVariantDoc(many=True)


class QuoteItemDoc(serializers.Serializer):
    variant_id = serializers.CharField()
    variant_name = serializers.CharField()
    quantity = serializers.IntegerField()
    unit_price = serializers.IntegerField()
    total = serializers.IntegerField()


class QuoteDoc(serializers.Serializer):
    currency = serializers.CharField()
    subtotal = serializers.IntegerField()
    discount_code = serializers.CharField(allow_null=True)
    discount_amount = serializers.IntegerField()
    total_amount = serializers.IntegerField()
    items = QuoteItemDoc(many=True)


class ResourceDoc(serializers.Serializer):
    item_id = serializers.CharField()
    content_type = serializers.CharField()
    content = serializers.CharField()
    redemption_instructions = serializers.CharField()
