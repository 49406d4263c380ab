"""Creating an order: its number, its lines, the stock and discount it reserves, idempotency."""

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from catalog.delivery import variant_delivery_content
from catalog.discounts import discount_redeem, discount_release
from catalog.models import Discount, Product, Variant
from marketplace.core.errors import (
    ApplicationError,
    IdempotencyConflict,
    OutOfStock,
)
from orders.fulfillment import get_strategy
from orders.lifecycle import order_event_record, order_events_together
from orders.models import Order, OrderEvent, OrderItem
from orders.pricing import CheckoutLine, Quote, QuoteLine, checkout_quote, platform_fee_for
from orders.selectors import prefetched_set
from orders.seller_events.endpoints import webhook_url_clean
from orders.seller_events.order_events import order_seller_event

Actor = OrderEvent.Actor


def request_fingerprint(payload: dict[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


# How many order numbers a new order tries before it gives up: a collision is a one in ~90 million
# event per existing order, and the unique index, not a SELECT, finds it.
ORDER_NUMBER_ATTEMPTS = 5


def _new_order_number() -> str:
    return str(10_000_000 + secrets.randbelow(90_000_000))


def _reserve_stock(lines: list[QuoteLine]) -> None:
    """Locks each limited variant and takes the units; not enough for any line → nothing taken."""
    limited = [line for line in lines if line.variant.stock is not None]
    if not limited:
        return
    locked = {v.id: v for v in Variant.objects.select_for_update().filter(id__in=[line.variant.id for line in limited])}
    for line in limited:
        variant = locked[line.variant.id]
        if variant.stock is None:
            continue
        if variant.stock < line.quantity:
            raise OutOfStock(
                f"Only {variant.stock} left of {variant.name}." if variant.stock else f"{variant.name} is sold out.",
                extra={"variant_id": variant.id, "available": variant.stock},
            )
    for line in limited:
        Variant.objects.filter(id=line.variant.id).update(stock=F("stock") - line.quantity)


def order_stock_release(order: Order) -> None:
    """Gives back what an unpaid order held: limited units and reserved codes. Once."""
    if not Order.objects.filter(pk=order.pk, reservation_held=True).update(reservation_held=False):
        return
    order.reservation_held = False
    items = list(order.items.all())
    for item in items:
        Variant.objects.filter(id=item.variant_id, stock__isnull=False).update(stock=F("stock") + item.quantity)
    by_type: dict[str, list[str]] = {}
    for item in items:
        by_type.setdefault(item.content_type, []).append(item.id)
    for content_type, item_ids in by_type.items():
        get_strategy(content_type).release(item_ids)
    if order.discount_code:
        discount_release(seller_id=order.seller_id, code=order.discount_code)


def order_stock_reserve_again(order: Order) -> None:
    """A failed order gets a new payment attempt: take its units and codes again, or 409."""
    if not Order.objects.filter(pk=order.pk, reservation_held=False).update(reservation_held=True):
        return
    order.reservation_held = True
    items = list(order.items.select_related("variant", "product"))
    lines = [QuoteLine(item.variant, item.quantity, item.unit_price, item.fulfillment_input) for item in items]
    _reserve_stock(lines)
    for item in items:
        get_strategy(item.content_type).reserve(item)
    if order.discount_code:
        discount = Discount.objects.filter(seller_id=order.seller_id, code=order.discount_code).first()
        if discount is not None:
            discount_redeem(discount=discount)


@dataclass
class CreatedOrder:
    order: Order
    created: bool


def order_create(
    *,
    product: Product,
    buyer_email: str,
    lines: list[CheckoutLine],
    recipient_email: str = "",
    discount_code: str = "",
    meta: dict[str, Any] | None = None,
    webhook_urls: list[str] | None = None,
    payment_reference: str = "",
    idempotency_key: str | None = None,
    idempotency_scope: str = "",
    fingerprint: str = "",
    buyer: Any = None,
    then: Callable[[Order], None] | None = None,
    deliver_at: datetime | None = None,
    claim_link: bool = False,
) -> CreatedOrder:
    """Creates a pending order with its items and reserved stock, or replays an idempotent request.

    An idempotency key lives in the seller's key space, and there in ``idempotency_scope``'s: "" for
    the public checkout (the same key on two of one seller's products is one order), the calling
    user's id for an integration's ``POST /api/v1/orders``. The same key with the same request
    returns the first order; with a different request it is a 409. The unique indexes decide, not
    a SELECT before the INSERT: the order row is the transaction's first write, so a request whose
    key already has an order fails there (or, if its cart can no longer be sold, earlier) and then
    answers that order; two concurrent requests with one key make one order, the second waiting on
    the index and then replaying. An order number that is taken (the index again) is drawn anew.

    ``then`` runs inside the order's transaction once the order exists (checkout opens an in-process
    payment there); its order events are written with ``order_created`` in one INSERT. The order
    comes back with its items, payments and refunds in hand (``prefetched_set``): an answer or a
    seller event built from it reloads nothing.
    """
    try:
        # Each URL the order's events will be POSTed to, checked like a webhook endpoint's when saved
        # (and again at every attempt): a refused one creates nothing.
        webhook_urls = [webhook_url_clean(url, field="webhook_urls") for url in webhook_urls or []]
        quote = checkout_quote(product=product, lines=lines, discount_code=discount_code)
        for _ in range(ORDER_NUMBER_ATTEMPTS):
            number = _new_order_number()
            try:
                order = _order_insert(
                    number=number,
                    product=product,
                    quote=quote,
                    buyer=buyer,
                    buyer_email=buyer_email,
                    recipient_email=recipient_email,
                    meta=meta,
                    webhook_urls=webhook_urls,
                    payment_reference=payment_reference,
                    idempotency_key=idempotency_key,
                    idempotency_scope=idempotency_scope,
                    fingerprint=fingerprint,
                    then=then,
                    deliver_at=deliver_at,
                    claim_link=claim_link,
                )
            except IntegrityError:
                replayed = _replay_by_key(product, idempotency_key, idempotency_scope, fingerprint)
                if replayed is not None:
                    return replayed
                if not Order.objects.filter(order_number=number).exists():
                    raise
                continue  # the number was taken: draw another
            return CreatedOrder(order, True)
    except ApplicationError:
        # The cart cannot be sold as it is now (sold out, a used-up discount...), but this key may
        # already have its order: a repeat of a request that succeeded answers that order, as before.
        replayed = _replay_by_key(product, idempotency_key, idempotency_scope, fingerprint)
        if replayed is not None:
            return replayed
        raise
    raise ApplicationError("Could not allocate an order number.", status_code=503, code="service_unavailable")


def _order_insert(
    *,
    number: str,
    product: Product,
    quote: Quote,
    buyer: Any,
    buyer_email: str,
    recipient_email: str,
    meta: dict[str, Any] | None,
    webhook_urls: list[str],
    payment_reference: str,
    idempotency_key: str | None,
    idempotency_scope: str,
    fingerprint: str,
    then: Callable[[Order], None] | None,
    deliver_at: datetime | None = None,
    claim_link: bool = False,
) -> Order:
    """One transaction: the order row first (its unique indexes decide), then stock, items, codes,
    events, the seller event and ``then``."""
    with transaction.atomic(), order_events_together():
        fee = platform_fee_for(quote.total_amount, seller=product.seller)
        order = Order.objects.create(
            order_number=number,
            seller=product.seller,
            product=product,
            buyer=buyer if getattr(buyer, "is_authenticated", False) else None,
            buyer_email=buyer_email.lower(),
            recipient_email=(recipient_email or "").lower(),
            currency=quote.currency,
            subtotal=quote.subtotal,
            discount_code=quote.discount_code,
            discount_amount=quote.discount_amount,
            total_amount=quote.total_amount,
            platform_fee=fee,
            seller_earnings=quote.total_amount - fee,
            meta=meta or {},
            webhook_urls=webhook_urls or [],
            payment_reference=payment_reference,
            idempotency_key=idempotency_key or None,
            idempotency_scope=idempotency_scope if idempotency_key else "",
            request_fingerprint=fingerprint,
            expires_at=timezone.now() + timedelta(minutes=settings.ORDER_EXPIRY_MINUTES),
            deliver_at=deliver_at if recipient_email else None,
            gift_claim_link=bool(claim_link and recipient_email),
        )
        _reserve_stock(quote.lines)
        if quote.discount is not None:
            discount_redeem(discount=quote.discount)
        items = []
        for position, line in enumerate(quote.lines):
            line_product = line.variant.product
            delivery = get_strategy(line_product.delivery_type).snapshot(line_product)
            content = variant_delivery_content(line.variant, delivery.content_type, delivery.content)
            items.append(
                OrderItem(
                    order=order,
                    product=line_product,
                    variant=line.variant,
                    title=line_product.title,
                    variant_name=line.variant.name,
                    quantity=line.quantity,
                    unit_price=line.unit_price,
                    fulfillment_input=line.fulfillment_input,
                    content_type=delivery.content_type,
                    delivery_content=content,
                    redemption_instructions=delivery.redemption_instructions,
                    position=position,
                )
            )
        OrderItem.objects.bulk_create(items)
        for item in items:
            get_strategy(item.content_type).reserve(item)  # code pools take their codes now
        prefetched_set(order, "items", items)
        prefetched_set(order, "payments", [])
        prefetched_set(order, "refunds", [])
        order_event_record(
            order=order,
            type="order_created",
            message=f"Order created for {order.buyer_email}.",
            actor=Actor.BUYER,
            data={"total_amount": order.total_amount, "currency": order.currency},
        )
        order_seller_event(order=order, type="order.created", in_hand=True)
        if then is not None:
            then(order)
    return order


def _replay_by_key(
    product: Product, idempotency_key: str | None, idempotency_scope: str, fingerprint: str
) -> CreatedOrder | None:
    if not idempotency_key:
        return None
    existing = Order.objects.filter(
        seller_id=product.seller_id, idempotency_scope=idempotency_scope, idempotency_key=idempotency_key
    ).first()
    return None if existing is None else _replay(existing, fingerprint)


def _replay(order: Order, fingerprint: str) -> CreatedOrder:
    if fingerprint and order.request_fingerprint and fingerprint != order.request_fingerprint:
        raise IdempotencyConflict()
    return CreatedOrder(order, False)
