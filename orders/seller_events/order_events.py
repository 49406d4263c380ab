"""An order's seller events (``order.created``, ``order.paid`` ...), with the order as the API shows
it to sellers as their payload.

Apart from ``outbox`` because it needs the order's presenter, which needs the fulfillment strategies,
one of which (code pools) records ``product.out_of_stock`` through ``outbox``: kept in one module,
the two would import each other.
"""

from django.utils import timezone

from orders.models import Order, SellerEvent
from orders.presenters import order_to_dict
from orders.selectors import order_details_in_hand, orders_with_details

from .outbox import seller_event_has_receiver, seller_event_record


def order_seller_event(*, order: Order, type: str, in_hand: bool = False) -> SellerEvent | None:
    """Records ``type`` for the order, or nothing when nobody can receive it.

    ``in_hand``: the caller just wrote the order and handed it its items, payments and refunds
    (``prefetched_set``), so the payload is built from them instead of a reload.

    A seller without an endpoint (most sellers) costs one small query per status change instead of
    an order reload, an INSERT and a dispatch transaction. Nothing is lost by skipping: an endpoint
    only ever receives events that happen after it is created (``seller_event_dispatch``).
    """
    if not seller_event_has_receiver(seller_id=order.seller_id, type=type, order=order):
        return None
    fresh = order if in_hand and order_details_in_hand(order) else orders_with_details().get(pk=order.pk)
    payload = {
        "type": type,
        "timestamp": timezone.now().isoformat().replace("+00:00", "Z"),
        "data": order_to_dict(fresh, audience="webhook"),
    }
    return seller_event_record(seller_id=order.seller_id, type=type, data=payload)
