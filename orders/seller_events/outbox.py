"""The outbox: a seller event is written in the same transaction as what caused it, and handed to
the dispatcher (``delivery``) once that transaction commits.

The payload is frozen when the event happens: a later change to the order never changes what a
delivery (or a retry of it) sends. It carries no decrypted code — the outbox is stored in the
database, where codes only ever exist encrypted. If the hand-over after commit is lost, the
sweeper (``delivery.webhooks_sweep``) fans the event out later.
"""

from typing import Any

from orders.models import Order, SellerEvent, WebhookEndpoint

from .delivery import dispatch_seller_event_on_commit


def seller_event_record(*, seller_id: Any, type: str, data: dict[str, Any]) -> SellerEvent:
    event = SellerEvent.objects.create(seller_id=seller_id, type=type, data=data)
    dispatch_seller_event_on_commit(event)
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
