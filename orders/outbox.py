"""Events for sellers' outgoing webhooks, written in the same transaction as what caused them.

The payload is frozen when the event happens: a later change to the order never changes what a
delivery (or a retry of it) sends. It carries no decrypted code — the outbox is stored in the
database, where codes only ever exist encrypted.
"""

from typing import Any

from django.utils import timezone

from .models import Order, SellerEvent, WebhookEndpoint


def seller_event_record(*, seller_id: Any, type: str, data: dict[str, Any]) -> SellerEvent:
    event = SellerEvent.objects.create(seller_id=seller_id, type=type, data=data)
    _schedule_dispatch(event)
    return event


def seller_event_has_receiver(*, seller_id: Any, type: str, order: Order | None = None) -> bool:
    """Whether anyone would receive an event of ``type``: the order's own ``webhook_urls``, or an
    active endpoint of the seller that listens to it. One query at most (none for an order with
    ``webhook_urls``)."""
    if order is not None and order.webhook_urls:
        return True
    listening = WebhookEndpoint.objects.filter(
        seller_id=seller_id, kind=WebhookEndpoint.Kind.ENDPOINT, active=True
    ).values_list("events", flat=True)
    return any(not events or type in events for events in listening)


def order_seller_event(*, order: Order, type: str) -> SellerEvent | None:
    """Records ``type`` for the order, or nothing when nobody can receive it.

    A seller without an endpoint (most sellers) costs one small query per status change instead of
    an order reload, an INSERT and a dispatch transaction. Nothing is lost by skipping: an endpoint
    only ever receives events that happen after it is created (``seller_event_dispatch``).
    """
    if not seller_event_has_receiver(seller_id=order.seller_id, type=type, order=order):
        return None
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
