"""Events for sellers' outgoing webhooks, written in the same transaction as what caused them.

The payload is frozen when the event happens: a later change to the order never changes what a
delivery (or a retry of it) sends. It carries no decrypted code — the outbox is stored in the
database, where codes only ever exist encrypted.
"""

from typing import Any

from django.utils import timezone

from .models import Order, SellerEvent


def seller_event_record(*, seller_id: Any, type: str, data: dict[str, Any]) -> SellerEvent:
    event = SellerEvent.objects.create(seller_id=seller_id, type=type, data=data)
    _schedule_dispatch(event)
    return event


def order_seller_event(*, order: Order, type: str) -> SellerEvent:
    from .presenters import order_to_dict
    from .selectors import orders_with_details

    fresh = orders_with_details().get(pk=order.pk)
    payload = {
        "type": type,
        "timestamp": timezone.now().isoformat().replace("+00:00", "Z"),
        "data": order_to_dict(fresh, audience="webhook"),
    }
    return seller_event_record(seller_id=order.seller_id, type=type, data=payload)


def _schedule_dispatch(event: SellerEvent) -> None:
    """Hands the event to the outgoing-webhook dispatcher once the transaction commits."""
    try:
        from .webhooks import dispatch_seller_event_on_commit
    except ImportError:  # the dispatcher is optional: without it events simply wait in the outbox
        return
    dispatch_seller_event_on_commit(event)
