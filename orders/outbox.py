"""Events for sellers' outgoing webhooks, written in the same transaction as what caused them."""

from typing import Any

from .models import SellerEvent


def seller_event_record(*, seller_id: Any, type: str, data: dict[str, Any]) -> SellerEvent:
    return SellerEvent.objects.create(seller_id=seller_id, type=type, data=data)
