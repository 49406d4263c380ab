"""The order object of ``shared/API.md``, for the seller and for the buyer."""

from typing import Any

from .fulfillment import get_strategy
from .models import Order, OrderItem
from .sub_status import order_sub_status


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")


def item_to_dict(item: OrderItem, order: Order, *, reveal: bool = True) -> dict[str, Any]:
    # Codes are decrypted only for delivered items of orders that are not refunded, only in a view
    # of one order, and never for payloads that are stored (the webhook outbox).
    delivered = item.fulfilled and not order.access_blocked and reveal
    strategy = get_strategy(item.content_type)
    delivery = strategy.delivery_view(item) if delivered else None
    return {
        "id": item.id,
        "product_id": item.product_id,
        "variant_id": item.variant_id,
        "title": item.title,
        "variant_name": item.variant_name,
        "quantity": item.quantity,
        "unit_price": item.unit_price,
        "fulfilled": item.fulfilled,
        "fulfilled_at": _iso(item.fulfilled_at),
        "fulfillment_status": item.fulfillment_status,
        "voucher_codes": strategy.voucher_codes(item) if delivered else [],
        "delivery": delivery,
    }


def gift_to_dict(order: Order) -> dict[str, Any] | None:
    """``gift: {claim_link, claimed_at, sent_at}`` for a gift with its own e-mail, else ``null``."""
    if not order.is_gift:
        return None
    return {
        "claim_link": order.gift_claim_link,
        "claimed_at": _iso(order.gift_claimed_at),
        "sent_at": _iso(order.gift_sent_at),
    }


def payment_to_dict(payment: Any) -> dict[str, Any]:
    return {
        "id": payment.id,
        "gateway": payment.gateway,
        "status": payment.status,
        "transaction_id": payment.transaction_id or None,
        "amount": payment.amount,
        "currency": payment.currency,
        "payment_method": payment.payment_method,
        "created_at": _iso(payment.created_at),
    }


def refund_to_dict(refund: Any) -> dict[str, Any]:
    return {
        "id": refund.id,
        "payment_id": refund.payment_id,
        "amount": refund.amount,
        "currency": refund.currency,
        "reason": refund.reason,
        "status": refund.status,
        "source": refund.source,
        "gateway_refund_id": refund.gateway_refund_id or None,
        "created_at": _iso(refund.created_at),
    }


def event_to_dict(event: Any) -> dict[str, Any]:
    return {
        "id": event.id,
        "type": event.type,
        "from_status": event.from_status or None,
        "to_status": event.to_status or None,
        "message": event.message,
        "actor": event.actor,
        "data": event.data,
        "created_at": _iso(event.created_at),
    }


def order_to_dict(order: Order, *, audience: str = "seller", summary: bool = False) -> dict[str, Any]:
    """One order for ``audience`` (seller, buyer, recipient or webhook). A ``summary`` (an order in a
    list) has no timeline and no code, key or delivery; the webhook payload never has codes either.
    ``recipient`` is the buyer's view for a gift's recipient, with the gift's codes."""
    # A gift's codes are the recipient's: the buyer's views do not show them (the recipient's e-mail
    # or claim link does).
    reveal = not summary and audience != "webhook" and not (audience == "buyer" and order.is_gift)
    order_items = list(order.items.all())
    items = [item_to_dict(item, order, reveal=reveal) for item in order_items]
    voucher_codes: list[str] = [code for item in items for code in item["voucher_codes"]]
    first = items[0] if len(items) == 1 else None
    data: dict[str, Any] = {
        "id": order.id,
        "order_number": order.order_number,
        "status": order.status,
        "status_label": order.get_status_display(),
        "status_message": order.status_message,
        "product": {"id": order.product_id, "slug": order.product.slug, "title": order.product.title},
        "buyer_email": order.buyer_email,
        "recipient_email": order.recipient_email or None,
        "currency": order.currency,
        "subtotal": order.subtotal,
        "discount_code": order.discount_code or None,
        "discount_amount": order.discount_amount,
        "total_amount": order.total_amount,
        "platform_fee": order.platform_fee,
        "seller_earnings": order.seller_earnings,
        "refunded_amount": order.refunded_amount,
        "items": items,
        "voucher_codes": voucher_codes,
        "delivery_content": (first["delivery"] or {}).get("content") if first and first["delivery"] else None,
        "content_type": first["delivery"]["content_type"] if first and first["delivery"] else None,
        "sub_status": order_sub_status(order, order_items),
        "deliver_at": _iso(order.deliver_at),
        "gift": gift_to_dict(order),
        "payments": [payment_to_dict(p) for p in order.payments.all()],
        "dispatched_email": order.dispatched_email,
        "email_sent_at": _iso(order.email_sent_at),
        "meta": order.meta,
        "payment_reference": order.payment_reference or None,
        "idempotency_key": order.idempotency_key,
        "created_at": _iso(order.created_at),
        "updated_at": _iso(order.updated_at),
        "paid_at": _iso(order.paid_at),
        "delivered_at": _iso(order.delivered_at),
        "expires_at": _iso(order.expires_at),
    }
    data["refunds"] = [refund_to_dict(r) for r in order.refunds.all()]
    if audience == "seller":
        if not summary:
            data["events"] = [event_to_dict(e) for e in order.events.all()]
    elif audience == "webhook":
        pass  # the seller's own view without the timeline and without decrypted codes
    else:
        for private in ("platform_fee", "seller_earnings", "meta", "idempotency_key", "payment_reference"):
            data.pop(private)
        data["seller_name"] = order.seller.name
    return data


def order_summary_to_dict(order: Order, *, audience: str = "seller") -> dict[str, Any]:
    """An order in a list: without its timeline and without any code, licence key or delivery
    content — a list of 100 orders must not be a bulk export of what buyers bought. The codes are
    read one order at a time (``GET /orders/{id}``), and each such read is recorded."""
    return order_to_dict(order, audience=audience, summary=True)


def revealed_item_ids(data: dict[str, Any]) -> list[str]:
    """The items of an order view whose codes or delivered content it shows."""
    return [item["id"] for item in data["items"] if item["voucher_codes"] or item["delivery"]]
