from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from .base import DeliverySettings, DeliveryStrategy, Resource, invalid

_https = URLValidator(schemes=["https"])


class LinkDelivery(DeliveryStrategy):
    """An https URL the buyer is sent to (a course, a shared folder, a calendar booking)."""

    content_type = "link"

    def validate_settings(self, settings: DeliverySettings, *, seller: Any) -> DeliverySettings:
        url = settings.content.strip()
        if len(url) > 2000:
            raise invalid("content", "The link must be at most 2000 characters.")
        try:
            _https(url)
        except ValidationError:
            raise invalid("content", "Must be a valid https:// URL.") from None
        return DeliverySettings("link", url, settings.redemption_instructions.strip(), {})

    def resource(self, item: Any, *, request: Any) -> Resource:
        return Resource(redirect_url=item.delivery_content)
