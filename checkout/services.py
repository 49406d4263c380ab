"""The checkout use case, above orders and payments (Saleor's ``checkout/complete_checkout.py``):
find the product on sale, turn the cart into order lines, create (or replay) the order and open its
payment. Shared by the public API and the hosted checkout page."""

from typing import Any

from catalog.models import Product, ProductStatus, Variant
from marketplace.core.errors import NotFound, ValidationFailed
from orders.emails import success_page_url
from orders.models import Order, OrderStatus
from orders.selectors import prefetched_set
from orders.services import CheckoutLine, order_create, request_fingerprint
from payments.gateways import get_gateway
from payments.models import Payment
from payments.services import payment_initiate, payment_open_in_order_transaction


def product_for_checkout(slug: str) -> Product:
    """The active product with its seller and its variants, in one query: the variants are read
    with their product joined (``select_related``) and handed to the product as its prefetched
    ``variants``, so that the quote, the stock view and the order lines read them from memory. A
    product without variants (nothing to sell yet) costs a second query, for its 404 or its page."""
    variants = list(
        Variant.objects.select_related("product__seller").filter(
            product__slug=slug, product__status=ProductStatus.ACTIVE
        )
    )
    product = variants[0].product if variants else None
    if product is None:
        product = Product.objects.select_related("seller").filter(slug=slug, status=ProductStatus.ACTIVE).first()
        if product is None:
            raise NotFound("This product is not for sale.", code="product_not_found")
    for variant in variants:
        variant.product = product  # one product instance for all of them, as a prefetch would give
    prefetched_set(product, "variants", variants)
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
    """Creates (or replays) the order, then opens its payment. Shared by the API and the page.

    A new order's payment through a gateway that opens in process (the sandbox) is opened inside
    the order's own transaction: one commit for the order, its payment, the gateway's record and
    their events. A remote gateway's (Stripe) opens after the commit, as a replay's does. A created
    order comes back with its items and payments in hand, for an answer that reloads nothing."""
    init_payment = validated.get("init_payment", True)
    gateway_name = validated.get("payment_method") or None
    if init_payment:
        get_gateway(gateway_name)  # an unknown method creates nothing
    lines = checkout_lines(product, validated["items"])
    fingerprint_body = {k: v for k, v in validated.items() if k != "idempotency_key"}
    for gift_option in ("deliver_at", "claim_link"):  # unset, a request's fingerprint is as it always was
        if not fingerprint_body.get(gift_option):
            fingerprint_body.pop(gift_option, None)
    fingerprint_body["items"] = [(line.variant_id, line.quantity, line.fulfillment_input) for line in lines]
    opened: list[Payment] = []

    def open_payment(order: Order) -> None:
        payment = payment_open_in_order_transaction(
            order=order, gateway_name=gateway_name, return_url=success_page_url(order)
        )
        opened[:] = [] if payment is None else [payment]  # only this attempt's, if an attempt is retried

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
        then=open_payment if init_payment else None,
        deliver_at=validated.get("deliver_at"),
        claim_link=bool(validated.get("claim_link")),
    )
    order = result.order
    if result.created and opened:  # (a replay's order is not the one an attempt opened a payment for)
        prefetched_set(order, "payments", opened)
        return order, opened[0], result.created
    payment = None
    if init_payment and order.status in (OrderStatus.PENDING, OrderStatus.FAILED):
        payment = payment_initiate(order=order, gateway_name=gateway_name, return_url=success_page_url(order))
        if result.created:
            prefetched_set(order, "payments", [payment])
    return order, payment, result.created
