"""The registry of delivery strategies: the fulfillment half of each delivery type. A new type is
one module here and one line in ``_STRATEGIES``, plus its settings in ``catalog.delivery``."""

from .base import DeliveryStrategy, NotTogether, PermanentDeliveryError, Resource, TransientDeliveryError
from .code_pool import CodePoolDelivery
from .file import FileDelivery
from .license_key import LicenseKeyDelivery
from .link import LinkDelivery
from .partner import PartnerApiDelivery
from .text import TextDelivery

_STRATEGIES: dict[str, DeliveryStrategy] = {
    strategy.content_type: strategy
    for strategy in (
        FileDelivery(),
        LinkDelivery(),
        TextDelivery(),
        CodePoolDelivery(),
        LicenseKeyDelivery(),
        PartnerApiDelivery(),
    )
}


def available_types() -> list[str]:
    return list(_STRATEGIES)


def get_strategy(content_type: str) -> DeliveryStrategy:
    try:
        return _STRATEGIES[content_type]
    except KeyError:
        raise KeyError(f"No delivery strategy for {content_type!r}") from None


__all__ = [
    "DeliveryStrategy",
    "NotTogether",
    "PermanentDeliveryError",
    "Resource",
    "TransientDeliveryError",
    "available_types",
    "get_strategy",
]
