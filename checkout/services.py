"""The checkout use case, above orders and payments (Saleor's ``checkout/complete_checkout.py``):
find the product on sale, turn the cart into order lines, create (or replay) the order and open its
payment. Shared by the public API and the hosted checkout page."""

from typing import Any

from catalog.models import Product, ProductStatus
from marketplace.core.errors import NotFound, ValidationFailed
from orders.emails import success_page_url
from orders.models import Order, OrderStatus
from orders.services import CheckoutLine, order_create, request_fingerprint
from payments.gateways import get_gateway
from payments.services import payment_initiate


def product_for_checkout(slug: str) -> Product:
    product = Product.objects.select_related("seller").filter(slug=slug, status=ProductStatus.ACTIVE).first()
    if product is None:
        raise NotFound("This product is not for sale.", code="product_not_found")
    return product


def checkout_lines(product: Product, items: list[dict[str, Any]]) -> list[CheckoutLine]:
    """The cart's lines from validated input; a product with one option needs no variant id."""
    lines = []
    for item in items:
        variant_id = item["variant_id"]
        if variant_id is None:
            variants = list(product.variants.all()[:2])
            if len(variants) != 1:
                raise ValidationFailed(
                    "Choose an option.", fields={"variant_id": ["This product has several options."]}
                )
            variant_id = variants[0].id
        lines.append(CheckoutLine(variant_id, item["quantity"], item.get("fulfillment_input") or {}))
    if not lines:
        variants = list(product.variants.all()[:2])
        if len(variants) == 1:
            lines.append(CheckoutLine(variants[0].id, 1, {}))
    return lines


def checkout_pay(
    *, product: Product, validated: dict[str, Any], idempotency_key: str | None, buyer: Any = None
) -> tuple[Order, Any, bool]:
    """Creates (or replays) the order, then opens its payment. Shared by the API and the page."""
    if validated.get("init_payment", True):
        get_gateway(validated.get("payment_method") or None)  # an unknown method creates nothing
    lines = checkout_lines(product, validated["items"])
    fingerprint_body = {k: v for k, v in validated.items() if k != "idempotency_key"}
    fingerprint_body["items"] = [(line.variant_id, line.quantity, line.fulfillment_input) for line in lines]
    result = order_create(
        product=product,
        buyer_email=validated["buyer_email"],
        recipient_email=validated.get("recipient_email", ""),
        lines=lines,
        discount_code=validated.get("discount_code", ""),
        meta=validated.get("meta") or {},
        webhook_urls=validated.get("webhook_urls") or [],
        payment_reference=validated.get("payment_reference", ""),
        idempotency_key=idempotency_key,
        fingerprint=request_fingerprint(fingerprint_body),
        buyer=buyer,
    )
    payment = None
    order = result.order
    if validated.get("init_payment", True) and order.status in (OrderStatus.PENDING, OrderStatus.FAILED):
        payment = payment_initiate(
            order=order, gateway_name=validated.get("payment_method") or None, return_url=success_page_url(order)
        )
    return order, payment, result.created


