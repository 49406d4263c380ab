"""Every write to an order: checkout, payment outcomes, fulfilment, manual actions, the sweeper."""

import hashlib
import json
import logging
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from catalog.delivery import DeliverySettings, counts_codes, validate_delivery
from catalog.inventory import available_counts
from catalog.models import Code, CodeStatus, Product, ProductStatus, Variant
from marketplace.core.errors import (
    ApplicationError,
    DependencyUnavailable,
    IdempotencyConflict,
    NotFound,
    OutOfStock,
    ValidationFailed,
)
from marketplace.core.log_context import bound
from marketplace.core.money import format_money
from marketplace.core.queue import enqueue
from payments.models import Payment, PaymentStatus, Refund
from payments.refunds import payment_refund_unpayable
from payments.services import payment_reconcile_order

from .fulfillment import PermanentDeliveryError, TransientDeliveryError, get_strategy
from .lifecycle import FULFILLABLE, order_event_record, order_transition
from .models import FulfillmentStatus, License, Order, OrderEvent, OrderItem, OrderStatus
from .presenters import event_to_dict, order_to_dict, revealed_item_ids
from .seller_events.endpoints import webhook_url_clean
from .seller_events.order_events import order_seller_event

logger = logging.getLogger(__name__)
FULFIL_TASK = "orders.tasks.fulfil_order"  # queued by name: the task module imports this one
S = OrderStatus
Actor = OrderEvent.Actor


# --- Checkout ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckoutLine:
    variant_id: str
    quantity: int
    fulfillment_input: dict[str, Any] = field(default_factory=dict)


@dataclass
class QuoteLine:
    variant: Variant
    quantity: int
    unit_price: int
    fulfillment_input: dict[str, Any]

    @property
    def total(self) -> int:
        return self.unit_price * self.quantity


@dataclass
class Quote:
    currency: str
    lines: list[QuoteLine]
    subtotal: int
    discount_code: str
    discount_amount: int
    total_amount: int
    discount: Any = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "subtotal": self.subtotal,
            "discount_code": self.discount_code or None,
            "discount_amount": self.discount_amount,
            "total_amount": self.total_amount,
            "items": [
                {
                    "variant_id": line.variant.id,
                    "variant_name": line.variant.name,
                    "quantity": line.quantity,
                    "unit_price": line.unit_price,
                    "total": line.total,
                }
                for line in self.lines
            ],
        }




# What a buyer may tell the seller's fulfilment per line (a player id, an account name): a few short
# strings. It is stored with the order and sent to the seller's partner URL as it is, so an
# anonymous buyer must not be able to park megabytes or nested structures there.
FULFILLMENT_INPUT_MAX_KEYS = 20
FULFILLMENT_INPUT_MAX_BYTES = 2048


def fulfillment_input_problem(value: Any) -> str | None:
    """Why a line's ``fulfillment_input`` cannot be taken, or None: an object of at most
    ``FULFILLMENT_INPUT_MAX_KEYS`` string values, at most ``FULFILLMENT_INPUT_MAX_BYTES`` as JSON."""
    if not isinstance(value, dict):
        return "Must be an object of strings."
    if len(value) > FULFILLMENT_INPUT_MAX_KEYS:
        return f"At most {FULFILLMENT_INPUT_MAX_KEYS} keys."
    if not all(isinstance(v, str) for v in value.values()):
        return "Every value must be a string."
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    if size > FULFILLMENT_INPUT_MAX_BYTES:
        return f"At most {FULFILLMENT_INPUT_MAX_BYTES} bytes in all (as JSON)."
    return None


def checkout_stock_check(*, quote: "Quote") -> None:
    """409 ``out_of_stock`` when a line of a quote asks for more than is left, as ``pay`` would
    answer. A code pool is probed for ``quantity`` codes (``LIMIT quantity``), never counted whole;
    ``pay`` itself does not call this: its reservation decides from the codes it got."""
    for line in quote.lines:
        variant = line.variant
        if counts_codes(variant.product.delivery_type):
            left: int | None = available_counts([variant.id], at_most=line.quantity)[variant.id]
        else:
            left = variant.stock
        if left is not None and left < line.quantity:
            raise OutOfStock(
                f"Only {left} left of {variant.name}." if left else f"{variant.name} is sold out.",
                extra={"variant_id": variant.id, "available": left},
            )


def checkout_quote(*, product: Product, lines: list[CheckoutLine], discount_code: str = "") -> Quote:
    """Prices the lines. Every door that makes an order (the pay API, the checkout page) quotes
    first, so the limits checked here hold for all of them."""
    if not lines:
        raise ValidationFailed("Choose at least one item.", fields={"items": ["Choose at least one item."]})
    for index, line in enumerate(lines):
        problem = fulfillment_input_problem(line.fulfillment_input)
        if problem:
            raise ValidationFailed(problem, fields={f"items.{index}.fulfillment_input": [problem]})
    variants = {v.id: v for v in product.variants.all()}
    others = {line.variant_id for line in lines} - set(variants)
    if others:
        # An order may combine variants of the same seller's other products on sale.
        for variant in Variant.objects.select_related("product").filter(
            id__in=others, product__seller_id=product.seller_id, product__status=ProductStatus.ACTIVE
        ):
            variants[variant.id] = variant
    quoted: list[QuoteLine] = []
    seen: set[str] = set()
    for index, line in enumerate(lines):
        found = variants.get(line.variant_id)
        if found is None:
            message = "This option does not exist for this product."
            raise ValidationFailed(message, fields={f"items.{index}.variant_id": [message]})
        variant = found
        if line.variant_id in seen:
            message = "Each option may appear once; raise its quantity instead."
            raise ValidationFailed(message, fields={f"items.{index}.variant_id": [message]})
        seen.add(line.variant_id)
        if variant.product_id != product.id and variant.product.currency != product.currency:
            message = f"This option is sold in {variant.product.currency}; the order is in {product.currency}."
            raise ValidationFailed(message, fields={f"items.{index}.variant_id": [message]})
        quoted.append(QuoteLine(variant, line.quantity, variant.price, line.fulfillment_input))
    subtotal = sum(line.total for line in quoted)
    if discount_code and discount_code.strip():
        from catalog.discounts import CartLine, discount_evaluate

        discount, amount = discount_evaluate(
            seller_id=product.seller_id,
            code=discount_code,
            currency=product.currency,
            lines=[CartLine(line.variant.product_id, line.quantity, line.total) for line in quoted],
        )
        return Quote(product.currency, quoted, subtotal, discount.code, amount, subtotal - amount, discount)
    return Quote(product.currency, quoted, subtotal, "", 0, subtotal)


def platform_fee_for(total: int, *, seller: Any = None) -> int:
    """Basis points of the total, rounded half up, plus a fixed part; never more than the total.
    The rates come from settings unless an operator set the seller's own."""
    bps = settings.PLATFORM_FEE_BPS
    fixed = settings.PLATFORM_FEE_FIXED
    if seller is not None:
        if getattr(seller, "platform_fee_bps", None) is not None:
            bps = seller.platform_fee_bps
        if getattr(seller, "platform_fee_fixed", None) is not None:
            fixed = seller.platform_fee_fixed
    fee = (total * bps + 5_000) // 10_000 + (fixed if total else 0)
    return min(fee, total)


def request_fingerprint(payload: dict[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _new_order_number() -> str:
    for _ in range(20):
        number = str(10_000_000 + secrets.randbelow(90_000_000))
        if not Order.objects.filter(order_number=number).exists():
            return number
    raise ApplicationError("Could not allocate an order number.", status_code=503, code="service_unavailable")


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


def _release_stock(order: Order) -> None:
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
        from catalog.discounts import discount_release

        discount_release(seller_id=order.seller_id, code=order.discount_code)


def _reserve_again(order: Order) -> None:
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
        from catalog.discounts import discount_redeem
        from catalog.models import Discount

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
    fingerprint: str = "",
    buyer: Any = None,
) -> CreatedOrder:
    """Creates a pending order with its items and reserved stock, or replays an idempotent request.

    The same idempotency key with the same request returns the first order; with a different
    request it is a 409. Two concurrent requests with one key make one order: the second waits on
    the unique index and then replays.
    """
    if idempotency_key:
        existing = Order.objects.filter(product=product, idempotency_key=idempotency_key).first()
        if existing is not None:
            return _replay(existing, fingerprint)
    # Each URL the order's events will be POSTed to, checked like a webhook endpoint's when saved
    # (and again at every attempt): a refused one creates nothing.
    webhook_urls = [webhook_url_clean(url, field="webhook_urls") for url in webhook_urls or []]
    quote = checkout_quote(product=product, lines=lines, discount_code=discount_code)
    try:
        with transaction.atomic():
            _reserve_stock(quote.lines)
            if quote.discount is not None:
                from catalog.discounts import discount_redeem

                discount_redeem(discount=quote.discount)
            fee = platform_fee_for(quote.total_amount, seller=product.seller)
            order = Order.objects.create(
                order_number=_new_order_number(),
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
                request_fingerprint=fingerprint,
                expires_at=timezone.now() + timedelta(minutes=settings.ORDER_EXPIRY_MINUTES),
            )
            items = []
            for position, line in enumerate(quote.lines):
                line_product = line.variant.product
                delivery = get_strategy(line_product.delivery_type).snapshot(line_product)
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
                        delivery_content=delivery.content,
                        redemption_instructions=delivery.redemption_instructions,
                        position=position,
                    )
                )
            OrderItem.objects.bulk_create(items)
            for item in items:
                get_strategy(item.content_type).reserve(item)  # code pools take their codes now
            order_event_record(
                order=order,
                type="order_created",
                message=f"Order created for {order.buyer_email}.",
                actor=Actor.BUYER,
                data={"total_amount": order.total_amount, "currency": order.currency},
            )
            order_seller_event(order=order, type="order.created")
    except IntegrityError:
        if idempotency_key:
            existing = Order.objects.filter(product=product, idempotency_key=idempotency_key).first()
            if existing is not None:
                return _replay(existing, fingerprint)
        raise
    return CreatedOrder(order, True)


def _replay(order: Order, fingerprint: str) -> CreatedOrder:
    if fingerprint and order.request_fingerprint and fingerprint != order.request_fingerprint:
        raise IdempotencyConflict()
    return CreatedOrder(order, False)


# --- The seller's view of one order -------------------------------------------------------------


def order_seller_read(
    *, order: Order, user: Any, api_key_id: str | None = None, via: str = "api"
) -> tuple[dict[str, Any], OrderEvent | None]:
    """The seller's view of one order, with its codes, keys and delivered content. This is the only
    view that decrypts them for a seller, and every read that shows them writes a ``codes_viewed``
    event (who — the user and the API key, if one was used —, how, when) to the order's timeline,
    the answer's own timeline included: a leaked credential that reads codes leaves a trail.
    Returns the view and the event (None when nothing was shown)."""
    data = order_to_dict(order, audience="seller")
    item_ids = revealed_item_ids(data)
    event = None
    if item_ids:
        event = order_event_record(
            order=order,
            type="codes_viewed",
            message="The seller viewed the delivered codes."
            if api_key_id is None
            else f"The seller viewed the delivered codes with API key {api_key_id}.",
            actor=Actor.SELLER,
            actor_user=user,
            data={"user_id": user.pk, "api_key_id": api_key_id, "via": via, "item_ids": item_ids},
        )
        data["events"].append(event_to_dict(event))
    return data, event


# --- Payment outcomes ----------------------------------------------------------------------------


def order_mark_paid(*, order_id: str, payment_id: str, message: str = "") -> Order:
    """The gateway confirmed the payment. Moves the order to paid and queues its fulfilment.

    A payment that cannot pay its order — the order is already paid (by another payment), cancelled
    or refunded, or a failed order's stock or discount is gone meanwhile — is refunded through its
    gateway once this commits, and the order's timeline says why: a buyer is never charged for nothing.
    """
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        if order.status == S.FAILED:
            try:
                with transaction.atomic():
                    _reserve_again(order)
            except ApplicationError as exc:  # out of stock, or the discount was used up meanwhile
                _refund_unpayable_on_commit(
                    payment_id, f"Paid after a failed attempt, but the order can no longer be filled: {exc.message}"
                )
                return order
            order_transition(
                order_id=order.id, to_status=S.PENDING, message="A new payment attempt succeeded.", actor=Actor.GATEWAY
            )
            order.refresh_from_db()
        if order.status != S.PENDING:
            if order_paid_by(order) != payment_id:
                reason = (
                    "Paid after the order was cancelled."
                    if order.status == S.CANCELLED
                    else f"Paid for an order that is already {order.status} (paid by another payment)."
                )
                _refund_unpayable_on_commit(payment_id, reason)
            return order
        # The fee is fixed at payment, with the seller's rates as they are now.
        fee = platform_fee_for(order.total_amount, seller=order.seller)
        if fee != order.platform_fee:
            Order.objects.filter(pk=order.pk).update(platform_fee=fee, seller_earnings=order.total_amount - fee)
        order = order_transition(
            order_id=order.id,
            to_status=S.PAID,
            message=message or "Payment confirmed by the gateway.",
            actor=Actor.GATEWAY,
            data={"payment_id": payment_id},
        )
        _queue_fulfilment_on_commit(order)
        return order


def order_paid_by(order: Order) -> str | None:
    """The id of the payment that paid the order (its move to paid names it), if one did."""
    data = (
        OrderEvent.objects.filter(order=order, type="status_changed", to_status=S.PAID)
        .order_by("created_at", "id")
        .values_list("data", flat=True)
        .first()
    )
    return (data or {}).get("payment_id")


def _refund_unpayable_on_commit(payment_id: str, reason: str) -> None:
    transaction.on_commit(lambda: payment_refund_unpayable(payment_id=payment_id, reason=reason))


def _queue_fulfilment_on_commit(order: Order) -> None:
    """Queues the order's fulfilment once the transaction commits. If the broker does not take the
    task (it is down), the payment stays recorded and the order paid: the failure is logged, and the
    sweeper queues the order again once it has waited ``SWEEP_STUCK_AFTER_SECONDS``. A broker outage
    never turns a confirmed payment into an error for the gateway (whose webhook would otherwise get
    a 500 for an order that is in fact paid)."""

    def queue() -> None:
        try:
            enqueue(FULFIL_TASK, order.id)
        except Exception:  # noqa: BLE001 - whatever the broker's failure, the sweeper recovers the order
            logger.exception(
                "Could not queue the fulfilment of order %s; the sweeper will queue it.", order.order_number
            )

    transaction.on_commit(queue)


def order_mark_payment_failed(*, order_id: str, payment_id: str, reason: str = "") -> Order:
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        if order.status != S.PENDING:
            return order
        _release_stock(order)
        return order_transition(
            order_id=order.id,
            to_status=S.FAILED,
            message=reason or "The payment was declined.",
            actor=Actor.GATEWAY,
            data={"payment_id": payment_id},
        )


def order_reopen_for_payment(*, order: Order) -> Order:
    """A failed order gets a new payment attempt: failed → pending, with a fresh expiry."""
    with transaction.atomic():
        if order.status == S.FAILED:
            _reserve_again(order)  # not enough left → OutOfStock, and the order stays failed
            order = order_transition(
                order_id=order.id, to_status=S.PENDING, message="New payment attempt.", actor=Actor.BUYER
            )
        if order.status != S.PENDING:
            raise ApplicationError(
                "This order cannot take a payment in its current state.", code="invalid_transition", status_code=409
            )
        Order.objects.filter(pk=order.pk).update(
            expires_at=timezone.now() + timedelta(minutes=settings.ORDER_EXPIRY_MINUTES)
        )
        order.refresh_from_db()
        return order


def order_cancel(
    *, order_id: str, message: str, actor: str = Actor.SYSTEM, actor_user: Any = None, manual: bool = False
) -> Order:
    """Cancels an unpaid order and releases what it reserved, in one transaction."""
    with transaction.atomic():
        order = order_transition(
            order_id=order_id, to_status=S.CANCELLED, message=message, actor=actor, actor_user=actor_user, manual=manual
        )
        _release_stock(order)
        return order


# --- Fulfilment ----------------------------------------------------------------------------------



@dataclass
class FulfilmentResult:
    outcome: str  # delivered | partial | needs_attention | skipped | retry
    transient_errors: list[str] = field(default_factory=list)


def _fulfil_item(item_id: str) -> tuple[str, str]:
    """Fulfils one item; returns (fulfillment_status, error). Never twice.

    Local strategies run under the item's row lock. Remote ones (partner_api) run outside any
    transaction — a slow partner must not hold a lock, and on SQLite a transaction holds the whole
    database — and store each unit's code once (a unique item+unit constraint); the item's status is
    then settled under the lock. Both paths settle the outcome the same way."""
    content_type = OrderItem.objects.values_list("content_type", flat=True).get(pk=item_id)
    strategy = get_strategy(content_type)
    if strategy.remote:
        item = OrderItem.objects.select_related("order", "product", "variant").get(pk=item_id)
        if item.fulfillment_status == FulfillmentStatus.SUCCEEDED:
            return item.fulfillment_status, ""
        failure = _attempt(strategy, item)
        with transaction.atomic():
            item = OrderItem.objects.select_for_update().select_related("order").get(pk=item_id)
            if item.fulfillment_status == FulfillmentStatus.SUCCEEDED:
                return item.fulfillment_status, ""  # another run finished it meanwhile
            return _settle_item(item, failure)
    with transaction.atomic():
        item = OrderItem.objects.select_for_update().select_related("order").get(pk=item_id)
        if item.fulfillment_status == FulfillmentStatus.SUCCEEDED:
            return item.fulfillment_status, ""
        return _settle_item(item, _attempt(strategy, item))


def _attempt(strategy: Any, item: OrderItem) -> TransientDeliveryError | PermanentDeliveryError | None:
    try:
        strategy.fulfil(item)
    except (TransientDeliveryError, PermanentDeliveryError) as exc:
        return exc
    return None


def _settle_item(item: OrderItem, failure: TransientDeliveryError | PermanentDeliveryError | None) -> tuple[str, str]:
    """Records one attempt's outcome on the (locked) item and its order's timeline."""
    item.attempts += 1
    if isinstance(failure, TransientDeliveryError):
        item.last_error = str(failure)[:500]
        item.save(update_fields=["attempts", "last_error"])
        return "transient", item.last_error
    if isinstance(failure, PermanentDeliveryError):
        item.fulfillment_status = failure.status
        item.last_error = str(failure)[:500]
        item.save(update_fields=["attempts", "last_error", "fulfillment_status"])
        order_event_record(
            order=item.order,
            type="item_failed",
            message=f"{item.title}: {failure}",
            data={"item_id": item.id, "fulfillment_status": failure.status},
        )
        return item.fulfillment_status, item.last_error
    item.fulfillment_status = FulfillmentStatus.SUCCEEDED
    item.fulfilled_at = timezone.now()
    item.last_error = ""
    item.save(update_fields=["attempts", "last_error", "fulfillment_status", "fulfilled_at"])
    order_event_record(
        order=item.order,
        type="item_fulfilled",
        message=f"{item.title} × {item.quantity} fulfilled.",
        data={"item_id": item.id},
    )
    return item.fulfillment_status, ""


def order_fulfil(*, order_id: str, final_attempt: bool = False) -> FulfilmentResult:
    """Fulfils every item not yet fulfilled, sends the one email, and marks the order delivered.

    Safe to run twice or concurrently: items are locked and skipped once fulfilled, the email is
    sent once under the order's lock. Transient failures raise ``TransientDeliveryError`` for the
    task to retry, unless this is the final attempt, which hands the order to an operator.
    """
    order = Order.objects.filter(pk=order_id).first()
    if order is None or order.status not in FULFILLABLE:
        return FulfilmentResult("skipped")
    with bound(order_number=order.order_number):  # the task's lines name the order by its number
        return _order_fulfil(order, final_attempt=final_attempt)


def _order_fulfil(order: Order, *, final_attempt: bool) -> FulfilmentResult:
    transient: list[str] = []
    for item_id in order.items.values_list("id", flat=True):
        status, error = _fulfil_item(item_id)
        if status == "transient":
            transient.append(error)
    items = list(order.items.all())
    done = [item for item in items if item.fulfilled]
    if len(done) == len(items):
        try:
            order_send_delivery_email(order_id=order.id)
        except TransientDeliveryError as exc:
            transient.append(str(exc))
            order_event_record(
                order=order,
                type="email_failed",
                message=f"Delivery email failed; it will be retried alone: {exc}"[:500],
            )
            if not final_attempt:
                raise
            return _hand_to_operator(order, f"The delivery email could not be sent: {exc}")
        _move(order.id, S.DELIVERED, "Every item was delivered and the buyer was emailed.")
        return FulfilmentResult("delivered")
    if transient and not final_attempt:
        if done:
            _move(order.id, S.PARTIALLY_DELIVERED, f"{len(done)} of {len(items)} items delivered; retrying the rest.")
        raise TransientDeliveryError("; ".join(transient))
    if transient:
        # Retries are spent: the items still waiting get their type's failure status.
        for item in items:
            if item.fulfillment_status == FulfillmentStatus.PENDING:
                item.fulfillment_status = get_strategy(item.content_type).failure_status
                item.save(update_fields=["fulfillment_status"])
    reason = "; ".join(item.last_error for item in items if not item.fulfilled and item.last_error)
    prefix = "Delivery failed after retries" if transient else "Delivery failed"
    return _hand_to_operator(order, f"{prefix}: {reason}"[:500])


def _hand_to_operator(order: Order, message: str) -> FulfilmentResult:
    """The buyer paid but could not be served: an operator and the seller must act. Told once."""
    with transaction.atomic():
        current = Order.objects.select_for_update().get(pk=order.id)
        already = current.status == S.NEEDS_ATTENTION
        _move(order.id, S.NEEDS_ATTENTION, message)
    if not already:
        _notify_needs_attention(current, message)
    return FulfilmentResult("needs_attention")


def _notify_needs_attention(order: Order, message: str) -> None:
    from django.core.mail import mail_admins, send_mail

    from .emails import sandbox_notice

    subject = f"Order #{order.order_number} needs attention"
    body = (
        f"Order #{order.order_number} ({order.id}) was paid but could not be delivered.\n\n{message}\n\n"
        f"Fix the cause, then retry its delivery from the dashboard or the admin."
    )
    if notice := sandbox_notice(order):
        body = f"{notice}\n\n{body}"
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [order.seller.email])
        mail_admins(subject, body)
    except Exception:  # noqa: BLE001 - the order's status already tells; a mail outage must not hide it
        logger.exception("could not notify about order %s", order.order_number)
        return
    order_event_record(order=order, type="attention_notified", message="The seller and the operators were emailed.")


def _move(order_id: str, to_status: str, message: str) -> None:
    """A fulfilment move that may already have happened (a second run): skip if not allowed."""
    with transaction.atomic():
        current = Order.objects.select_for_update().values_list("status", flat=True).get(pk=order_id)
        if current == to_status:
            return
        from .lifecycle import can_move

        if can_move(current, to_status):
            order_transition(order_id=order_id, to_status=to_status, message=message)


def order_send_delivery_email(*, order_id: str) -> bool:
    """Sends the buyer one email with everything they bought. Returns False if already sent."""
    from .emails import build_delivery_email

    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        if order.dispatched_email:
            return False
        message = build_delivery_email(order)
        try:
            message.send(fail_silently=False)
        except Exception as exc:  # noqa: BLE001 - any mail failure is worth a retry
            raise TransientDeliveryError(f"Email not sent: {exc}") from exc
        order.dispatched_email = True
        order.email_sent_at = timezone.now()
        order.save(update_fields=["dispatched_email", "email_sent_at", "updated_at"])
        order_event_record(order=order, type="email_sent", message=f"Delivery email sent to {message.to[0]}.")
        return True


# --- Seller and operator actions -----------------------------------------------------------------


def order_set_status(*, order: Order, to_status: str, user: Any, actor: str = Actor.SELLER) -> Order:
    if to_status == S.CANCELLED:
        return order_cancel(order_id=order.id, message="Cancelled by hand.", actor=actor, actor_user=user, manual=True)
    if to_status == S.DELIVERED:
        return order_mark_delivered(order=order, user=user, actor=actor)
    return order_transition(
        order_id=order.id, to_status=to_status, message="Status set by hand.", actor=actor, actor_user=user, manual=True
    )


def order_mark_delivered(*, order: Order, user: Any, actor: str = Actor.SELLER) -> Order:
    """The seller or an operator delivered outside the platform: items count as fulfilled."""
    with transaction.atomic():
        order = order_transition(
            order_id=order.id,
            to_status=S.DELIVERED,
            message="Marked delivered by hand.",
            actor=actor,
            actor_user=user,
            manual=True,
        )
        order.items.exclude(fulfillment_status=FulfillmentStatus.SUCCEEDED).update(
            fulfillment_status=FulfillmentStatus.SUCCEEDED, fulfilled_at=timezone.now()
        )
        return order


def order_item_override_delivery(
    *, order: Order, item_id: str | None, content_type: str, content: str, user: Any, actor: str = Actor.SELLER
) -> OrderItem:
    items = list(order.items.all())
    if item_id:
        item = next((i for i in items if i.id == item_id), None)
        if item is None:
            raise NotFound("This order has no such item.", code="item_not_found")
    elif len(items) == 1:
        item = items[0]
    else:
        raise ValidationFailed(
            "This order has several items: name one.", fields={"item_id": ["Required for this order."]}
        )
    if order.status in (S.CANCELLED, S.REFUNDED):
        raise ApplicationError("This order is closed.", code="invalid_transition", status_code=409)
    cleaned = validate_delivery(DeliverySettings(content_type, content), seller=order.seller)
    with transaction.atomic():
        item = OrderItem.objects.select_for_update().get(pk=item.id)
        previous = {"content_type": item.content_type}
        item.content_type = cleaned.content_type
        item.delivery_content = cleaned.content
        if item.fulfillment_status != FulfillmentStatus.SUCCEEDED:
            item.fulfillment_status = FulfillmentStatus.PENDING
        item.save(update_fields=["content_type", "delivery_content", "fulfillment_status"])
        order_event_record(
            order=order,
            type="delivery_overridden",
            message=f"Delivery of {item.title} replaced.",
            actor=actor,
            actor_user=user,
            data={"item_id": item.id, "previous": previous, "content_type": cleaned.content_type},
        )
    return item


def order_retry_delivery(*, order: Order, user: Any, actor: str = Actor.SELLER) -> Order:
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        if order.status not in FULFILLABLE:
            raise ApplicationError(
                f"Only paid orders that are not fully delivered can be retried (this one is {order.status}).",
                code="invalid_transition",
                status_code=409,
            )
        reset = order.items.filter(
            fulfillment_status__in=[
                FulfillmentStatus.DISPATCH_FAILED,
                FulfillmentStatus.PARTNER_FAILED,
                FulfillmentStatus.OUT_OF_STOCK,
            ]
        ).update(fulfillment_status=FulfillmentStatus.PENDING, last_error="")
        order_event_record(
            order=order,
            type="delivery_retry_requested",
            message="Delivery retry requested.",
            actor=actor,
            actor_user=user,
            data={"items_reset": reset},
        )
    # After the commit, and not swallowed: the seller is told when the queue does not take it, and
    # asking again is safe (items already pending stay pending).
    try:
        enqueue(FULFIL_TASK, order.id)
    except Exception as exc:  # noqa: BLE001 - whatever the broker's failure, the answer is the same
        logger.exception("Could not queue the delivery retry of order %s.", order.order_number)
        raise DependencyUnavailable(
            "The retry was recorded, but the delivery queue is not answering. Try again in a minute."
        ) from exc
    return order


# --- The sweeper ---------------------------------------------------------------------------------


@dataclass
class SweepResult:
    requeued: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    paid: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def orders_sweep(*, now: Any = None) -> SweepResult:
    """Recovers what lost tasks and lost webhooks left undone.

    - paid (or partially delivered) orders untouched for a while are queued for fulfilment again;
    - unpaid orders past their expiry are first re-checked with the gateway (a lost webhook), then
      cancelled, releasing their reservations.

    One bad order never stops the sweep: each is handled on its own (its writes in their own
    transactions), and an error is logged and recorded on that order's timeline (``sweep_failed``)
    before the sweep goes on to the next.
    """

    now = now or timezone.now()
    result = SweepResult()
    stuck_before = now - timedelta(seconds=settings.SWEEP_STUCK_AFTER_SECONDS)
    for order_id in Order.objects.filter(
        status__in=[S.PAID, S.PARTIALLY_DELIVERED], updated_at__lt=stuck_before
    ).values_list("id", flat=True)[:500]:
        try:
            enqueue(FULFIL_TASK, order_id)
        except Exception as exc:  # noqa: BLE001 - recorded on the order; the sweep goes on
            _sweep_failed(order_id, "requeue", exc, result)
            continue
        result.requeued.append(order_id)
    for order_id in Order.objects.filter(status__in=[S.PENDING, S.FAILED], expires_at__lt=now).values_list(
        "id", flat=True
    )[:500]:
        try:
            order = Order.objects.get(pk=order_id)
            if payment_reconcile_order(order=order):
                result.paid.append(order_id)
                continue
        except Exception as exc:  # noqa: BLE001 - a gateway outage or a bad order must not stop the sweep
            # Not cancelled: it may have been paid, and only its gateway can tell.
            _sweep_failed(order_id, "re-check", exc, result)
            continue
        try:
            order_cancel(order_id=order_id, message="Expired before payment.")
        except ApplicationError:
            continue  # moved on meanwhile
        except Exception as exc:  # noqa: BLE001 - recorded on the order; the sweep goes on
            _sweep_failed(order_id, "cancel", exc, result)
            continue
        result.cancelled.append(order_id)
    if result.requeued or result.cancelled or result.paid or result.failed:
        logger.info(
            "sweeper: requeued=%d cancelled=%d paid=%d failed=%d",
            len(result.requeued),
            len(result.cancelled),
            len(result.paid),
            len(result.failed),
        )
    return result


def _sweep_failed(order_id: str, step: str, exc: Exception, result: SweepResult) -> None:
    """Logs and records on the order what stopped the sweeper on it: the error's class and its
    first line, cut short (an error's text is never a place for more than that)."""
    result.failed.append(order_id)
    kind = type(exc).__name__
    detail = (str(exc).splitlines() or [""])[0][:200]
    order_number = "?"
    try:
        order = Order.objects.get(pk=order_id)
        order_number = order.order_number
        logger.exception("sweeper: %s of order %s failed (%s)", step, order_number, kind)
        order_event_record(
            order=order,
            type="sweep_failed",
            message=f"The sweeper could not {step} this order: {kind}: {detail}"[:500],
            data={"step": step, "error": kind},
        )
    except Exception:  # noqa: BLE001 - the database itself may be the problem; the log has it
        logger.exception("sweeper: %s of order %s failed (%s), and could not be recorded", step, order_number, kind)


# --- Refunds -------------------------------------------------------------------------------------


def order_apply_refund(*, order_id: str, refund: Any, user: Any, actor: str) -> Order:
    """Applies a refund the gateway has made: the amount, the payment's and the order's status, and —
    once the whole order is refunded — revokes access: codes REVOKED (never resold by default),
    licence keys refunded, downloads and links 410."""
    with transaction.atomic():
        order = Order.objects.select_for_update().select_related("seller").get(pk=order_id)
        order.refunded_amount = min(order.total_amount, order.refunded_amount + refund.amount)
        # The fee follows the money the platform keeps: recomputed on what is left after refunds,
        # so that fee + earnings always equals the revenue net of refunds.
        net = order.total_amount - order.refunded_amount
        order.platform_fee = platform_fee_for(net, seller=order.seller)
        order.seller_earnings = net - order.platform_fee
        order.save(update_fields=["refunded_amount", "platform_fee", "seller_earnings", "updated_at"])
        full = order.refunded_amount >= order.total_amount
        payment_refunded = sum(r.amount for r in refund.payment.refunds.filter(status="succeeded"))
        Payment.objects.filter(pk=refund.payment_id).update(
            status=PaymentStatus.REFUNDED
            if payment_refunded >= refund.payment.amount
            else PaymentStatus.PARTIALLY_REFUNDED
        )
        money = format_money(refund.amount, order.currency)
        order_event_record(
            order=order,
            type="refund",
            message=f"Refunded {money}" + (f": {refund.reason}" if refund.reason else "."),
            actor=actor,
            actor_user=user if getattr(user, "is_authenticated", False) else None,
            data={"refund_id": refund.id, "amount": refund.amount, "refunded_amount": order.refunded_amount},
        )
        refund_id = refund.id
        transaction.on_commit(lambda: _email_refund(order_id=order.id, refund_id=refund_id))
        target = S.REFUNDED if full else S.PARTIALLY_REFUNDED
        if order.status != target:
            order = order_transition(
                order_id=order.id,
                to_status=target,
                message="Refunded in full."
                if full
                else f"Partially refunded ({order.refunded_amount} of {order.total_amount}).",
                actor=actor,
                actor_user=user if getattr(user, "is_authenticated", False) else None,
                data={"refund_id": refund.id},
            )
        elif not full:
            order_seller_event(order=order, type="order.refunded")
        if full:
            item_ids = list(order.items.values_list("id", flat=True))
            revoked = Code.objects.filter(order_item_id__in=item_ids, status=CodeStatus.DELIVERED).update(
                status=CodeStatus.REVOKED
            )
            released = Code.objects.filter(order_item_id__in=item_ids, status=CodeStatus.ALLOCATED).update(
                status=CodeStatus.AVAILABLE, order_item=None, allocated_at=None
            )
            licenses = License.objects.filter(order_item_id__in=item_ids).update(status=License.Status.REFUNDED)
            order_event_record(
                order=order,
                type="access_revoked",
                message=f"Access revoked: {revoked} code(s) revoked, {licenses} licence key(s) disabled, "
                f"{released} undelivered code(s) returned to the pool.",
                actor=actor,
            )
        return order


def _email_refund(*, order_id: str, refund_id: str) -> None:
    """Tells the buyer their money is on its way back. A mail outage is logged, not raised: the
    refund itself has happened and is on the order's timeline either way."""
    from .emails import send_refund_email

    order = Order.objects.select_related("product", "seller").get(pk=order_id)
    refund = Refund.objects.get(pk=refund_id)
    try:
        send_refund_email(order, refund)
    except Exception:  # noqa: BLE001
        logger.exception("refund email for order %s could not be sent", order.order_number)
        return
    order_event_record(order=order, type="refund_email_sent", message=f"Refund email sent to {order.buyer_email}.")
