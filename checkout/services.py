"""The checkout use case, above orders and payments (Saleor's ``checkout/complete_checkout.py``):
find the product on sale, turn the cart into order lines, create (or replay) the order and open its
payment. Shared by the public API and the hosted checkout page."""

from typing import Any

from django.db import transaction

from catalog.models import Product, ProductStatus, Variant
from marketplace.core.errors import ApplicationError, NotFound, RateLimited, ValidationFailed
from marketplace.core.ratelimit import retry_after
from orders.emails import success_page_url
from orders.models import Order, OrderStatus
from orders.selectors import prefetched_set
from orders.services import (
    CheckoutLine,
    order_claim_free,
    order_create,
    order_mark_paid_externally,
    request_fingerprint,
)
from payments.gateways import GATEWAYS, PaymentGateway, available_gateways, get_gateway
from payments.models import Payment, PaymentStatus
from payments.services import payment_initiate, payment_open_in_order_transaction, payment_reconcile_throttled

# What the hosted checkout calls each gateway, and its mark (vendored under static/img/payment/).
PAYMENT_METHOD_NAMES = {
    "bkash": "bKash",
    "sslcommerz": "SSLCommerz — cards, mobile banking, internet banking",
    "stripe": "Card",
    "sandbox": "Test payment (sandbox: no money moves)",
}
# Buyers in Bangladesh pay with these first: a BDT product lists them before the others.
BDT_FIRST = ("bkash", "sslcommerz")


def gateway_accepts(gateway: type[PaymentGateway] | PaymentGateway, currency: str) -> bool:
    """Whether a gateway takes payments in ``currency`` (one that names its ``currencies`` takes
    only those; the others take any)."""
    accepted = gateway.currencies
    return not accepted or currency in accepted


def checkout_gateway(name: str | None, *, currency: str) -> PaymentGateway:
    """The enabled gateway ``name`` (or the default), if it takes ``currency``; else a 400 on
    ``payment_method`` (before anything is created)."""
    gateway = get_gateway(name)
    if not gateway_accepts(gateway, currency):
        takes = ", ".join(sorted(gateway.currencies))
        message = f"This payment method does not take {currency} ({takes} only). Choose another one."
        raise ValidationFailed(message, fields={"payment_method": [message]})
    return gateway


def payment_methods_for(currency: str) -> list[dict[str, str]]:
    """The methods the hosted checkout offers for a product in ``currency``: enabled and
    registered, taking that currency; bKash and SSLCommerz first for BDT."""
    names = [name for name in available_gateways() if gateway_accepts(GATEWAYS[name], currency)]
    if currency == "BDT":
        names.sort(key=lambda name: BDT_FIRST.index(name) if name in BDT_FIRST else len(BDT_FIRST))
    return [
        {"name": name, "label": PAYMENT_METHOD_NAMES.get(name, name), "mark": f"img/payment/{name}.svg"}
        for name in names
    ]


def sslcommerz_browser_return(*, payment_id: str) -> Order | None:
    """SSLCommerz's page posts the buyer back (success, fail or cancel), unsigned: nothing in the
    post is believed. The payment named in our own return URL is re-checked with SSLCommerz (at
    most every few seconds per order), and its order is answered for the redirect to its page."""
    payment = Payment.objects.select_related("order__product").filter(id=payment_id, gateway="sslcommerz").first()
    if payment is None:
        return None
    if payment.status == PaymentStatus.PENDING:
        try:
            payment_reconcile_throttled(order=payment.order)
        except ApplicationError:
            pass  # an unusable answer: the order's page asks again, the sweeper later
    return payment.order


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


def product_for_preview(slug: str, *, seller: Any) -> Product:
    """The seller's own product that is not on sale (a draft, or archived), for a preview of its
    checkout page; 404 for anybody else's, and for an active one (its real page is there)."""
    if not getattr(seller, "is_authenticated", False):
        raise NotFound("This product is not for sale.", code="product_not_found")
    product = (
        Product.objects.select_related("seller")
        .filter(slug=slug, seller=seller)
        .exclude(status=ProductStatus.ACTIVE)
        .first()
    )
    if product is None:
        raise NotFound("This product is not for sale.", code="product_not_found")
    variants = list(Variant.objects.filter(product=product))
    for variant in variants:
        variant.product = product
    prefetched_set(product, "variants", variants)
    return product


def free_claim_allowed(*, buyer_email: str, client_ip: str | None) -> None:
    """The abuse limits of free claims: so many per client address and per buyer email an hour
    (``free_claim_ip``, ``free_claim_email``); past them, 429 and nothing is created."""
    limits = [("free_claim_email", buyer_email.strip().lower())]
    if client_ip:
        limits.insert(0, ("free_claim_ip", client_ip))
    wait = retry_after(limits)
    if wait is not None:
        raise RateLimited(
            f"Too many free claims were made from here or for this email. Try again in {wait} seconds.",
            retry_after=wait,
        )


def checkout_pay(
    *,
    product: Product,
    validated: dict[str, Any],
    idempotency_key: str | None,
    buyer: Any = None,
    client_ip: str | None = None,
    idempotency_scope: str = "",
) -> tuple[Order, Any, bool]:
    """Creates (or replays) the order, then opens its payment. Shared by the API and the page.

    A new order's payment through a gateway that opens in process (the sandbox) is opened inside
    the order's own transaction: one commit for the order, its payment, the gateway's record and
    their events. A remote gateway's (Stripe) opens after the commit, as a replay's does. A created
    order comes back with its items and payments in hand, for an answer that reloads nothing."""
    init_payment = validated.get("init_payment", True)
    gateway_name = validated.get("payment_method") or None
    if init_payment:
        checkout_gateway(gateway_name, currency=product.currency)  # an unknown method (or currency) creates nothing
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

    def claim_or_open_payment(order: Order) -> None:
        # A total of 0 is claimed without a payment step, within the abuse limits (a refusal
        # raises here, inside the order's transaction: nothing is created, no stock is taken).
        if order.total_amount == 0 and gateway_name != EXTERNAL:  # (an external payment is recorded as such)
            free_claim_allowed(buyer_email=order.buyer_email, client_ip=client_ip)
            order_claim_free(order=order)
            opened[:] = []
        elif init_payment:
            open_payment(order)

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
        idempotency_scope=idempotency_scope,
        fingerprint=request_fingerprint(fingerprint_body),
        buyer=buyer,
        then=claim_or_open_payment,
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


EXTERNAL = "external"


def product_for_items(*, items: list[dict[str, Any]], seller: Any = None) -> Product:
    """The product an integration's order is made under: the first item's, on sale (and, for a
    seller's own call, the seller's). The quote then takes the other items only from the same
    seller's products on sale, in the same currency. Another seller's option is simply not for sale."""
    first = items[0]["variant_id"] if items else None
    query = Variant.objects.filter(id=first or "", product__status=ProductStatus.ACTIVE)
    if seller is not None:
        query = query.filter(product__seller=seller)
    slug = query.values_list("product__slug", flat=True).first()
    if slug is None:
        message = "This option is not for sale."
        raise ValidationFailed(message, fields={"items.0.variant_id": [message]})
    return product_for_checkout(slug)


def checkout_order_for_caller(
    *, caller: Any, api_key_id: str | None, validated: dict[str, Any], idempotency_key: str | None
) -> tuple[Order, Any, bool]:
    """``POST /api/v1/orders``: an authenticated caller's order, through the same ``checkout_pay``.

    - A buyer orders for itself: the order's buyer and email are the account's; ``buyer_email`` is refused.
    - A seller orders its own products for a customer (``buyer_email`` required); with
      ``payment_method: "external"`` and a ``payment_reference`` the seller took the money itself:
      the order is created and moved to paid in one transaction, then fulfilled as any paid order.
    Idempotency keys live in the caller's own key space (``idempotency_scope``: the caller's id)."""
    validated = dict(validated)
    method = validated.get("payment_method") or ""
    is_seller = getattr(caller, "is_seller", False)
    if is_seller:
        if not validated.get("buyer_email"):
            raise ValidationFailed(fields={"buyer_email": ["Required when a seller orders for a customer."]})
        buyer = None
    else:
        if "buyer_email" in validated:
            raise ValidationFailed(
                fields={"buyer_email": ["A buyer's order is for the account's own email; leave this out."]}
            )
        validated["buyer_email"] = caller.email
        buyer = caller
    if method == EXTERNAL:
        if not is_seller:
            raise ApplicationError(
                "Only the seller's own credentials may record an external payment.",
                code="permission_denied",
                status_code=403,
            )
        if not validated.get("payment_reference"):
            raise ValidationFailed(fields={"payment_reference": ["Required with payment_method external."]})
        if validated.get("init_payment") is False:
            raise ValidationFailed(fields={"init_payment": ["An external payment is already made."]})
    product = product_for_items(items=validated["items"], seller=caller if is_seller else None)
    scope = str(caller.pk)
    if method != EXTERNAL:
        return checkout_pay(
            product=product, validated=validated, idempotency_key=idempotency_key, buyer=buyer, idempotency_scope=scope
        )
    with transaction.atomic():
        order, _, created = checkout_pay(
            product=product,
            validated={**validated, "init_payment": False},
            idempotency_key=idempotency_key,
            idempotency_scope=scope,
        )
        if created:
            order = order_mark_paid_externally(
                order_id=order.id, reference=validated["payment_reference"], user=caller, api_key_id=api_key_id
            )
    return order, None, created
