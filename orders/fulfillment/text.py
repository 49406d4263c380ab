from typing import Any

from .base import DeliverySettings, DeliveryStrategy, Resource, invalid


class TextDelivery(DeliveryStrategy):
    """Text shown to the buyer: instructions, a shared key, a message."""

    content_type = "text"

    def validate_settings(self, settings: DeliverySettings, *, seller: Any) -> DeliverySettings:
        text = settings.content.strip()
        if not text:
            raise invalid("content", "Text to deliver is required.")
        if len(text) > 20000:
            raise invalid("content", "The text must be at most 20000 characters.")
        return DeliverySettings("text", text, settings.redemption_instructions.strip(), {})

    def resource(self, item: Any, *, request: Any) -> Resource:
        return Resource(
            body={
                "item_id": item.id,
                "content_type": "text",
                "content": item.delivery_content,
                "redemption_instructions": item.redemption_instructions,
            }
        )
