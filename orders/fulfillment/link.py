from typing import Any

from .base import DeliveryStrategy, Resource


class LinkDelivery(DeliveryStrategy):
    """An https URL the buyer is sent to (a course, a shared folder, a calendar booking)."""

    content_type = "link"

    def resource(self, item: Any, *, request: Any) -> Resource:
        return Resource(redirect_url=item.delivery_content)
