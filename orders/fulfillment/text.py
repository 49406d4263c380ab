from typing import Any

from .base import DeliveryStrategy, Resource


class TextDelivery(DeliveryStrategy):
    """Text shown to the buyer: instructions, a shared key, a message."""

    content_type = "text"

    def resource(self, item: Any, *, request: Any) -> Resource:
        return Resource(
            body={
                "item_id": item.id,
                "content_type": "text",
                "content": item.delivery_content,
                "redemption_instructions": item.redemption_instructions,
            }
        )
