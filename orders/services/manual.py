"""What a seller or an operator does to one order by hand: reading it (codes shown are recorded),
moving its status, overriding an item's delivery, retrying delivery."""

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from catalog.delivery import DeliverySettings, validate_delivery
from marketplace.core.errors import (
    ApplicationError,
    DependencyUnavailable,
    NotFound,
    ValidationFailed,
)
from marketplace.core.queue import enqueue
from orders.lifecycle import CLOSED, FULFILLABLE, order_event_record, order_transition
from orders.models import FulfillmentStatus, Order, OrderEvent, OrderItem, OrderStatus
from orders.presenters import event_to_dict, order_to_dict, revealed_item_ids
from orders.tasks_names import FULFILL_TASK

from .payment_outcomes import order_cancel

logger = logging.getLogger(__name__)
S = OrderStatus
Actor = OrderEvent.Actor


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
    if order.status in CLOSED:
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
        enqueue(FULFILL_TASK, order.id)
    except Exception as exc:  # noqa: BLE001 - whatever the broker's failure, the answer is the same
        logger.exception("Could not queue the delivery retry of order %s.", order.order_number)
        raise DependencyUnavailable(
            "The retry was recorded, but the delivery queue is not answering. Try again in a minute."
        ) from exc
    return order


def order_item_replace_and_deliver(
    *, order: Order, item_id: str | None, content_type: str, content: str, user: Any, actor: str = Actor.SELLER
) -> OrderItem:
    """Fixes a failed item in one step: its delivery is replaced (as ``order_item_override_delivery``)
    and its delivery is retried at once (as ``order_retry_delivery``), both in the order's timeline.
    Only for a paid order's item that is not delivered yet; a delivered item's content is replaced
    with ``order_item_override_delivery`` alone."""
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.status not in FULFILLABLE:
            raise ApplicationError(
                f"Only paid orders that are not fully delivered can be delivered again (this one is {locked.status}).",
                code="invalid_transition",
                status_code=409,
            )
        items = list(locked.items.all())
        if item_id:
            target = next((i for i in items if i.id == item_id), None)
        else:
            target = items[0] if len(items) == 1 else None
        if target is not None and target.fulfillment_status == FulfillmentStatus.SUCCEEDED:
            raise ApplicationError(
                "This item is already delivered: replace its delivery without delivering it again.",
                code="already_delivered",
                status_code=409,
            )
        item = order_item_override_delivery(
            order=locked, item_id=item_id, content_type=content_type, content=content, user=user, actor=actor
        )
        OrderItem.objects.filter(pk=item.pk).update(last_error="")
        order_event_record(
            order=locked,
            type="delivery_retry_requested",
            message=f"Delivery of {item.title} requested with its new content.",
            actor=actor,
            actor_user=user,
            data={"items_reset": 1, "item_id": item.id},
        )
    try:
        enqueue(FULFILL_TASK, order.id)
    except Exception as exc:  # noqa: BLE001 - whatever the broker's failure, the answer is the same
        logger.exception("Could not queue the delivery of order %s.", order.order_number)
        raise DependencyUnavailable(
            "The new content was saved, but the delivery queue is not answering. Retry delivery in a minute."
        ) from exc
    item.refresh_from_db()
    return item
