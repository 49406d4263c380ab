"""The registry of delivery types. A new type is one module here and one line in ``_STRATEGIES``."""

from .base import DeliverySettings, DeliveryStrategy, PermanentDeliveryError, Resource, TransientDeliveryError
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


def validate_delivery(settings: DeliverySettings, *, seller: object) -> DeliverySettings:
    from .base import invalid

    if settings.content_type not in _STRATEGIES:
        raise invalid("content_type", f"Must be one of: {', '.join(_STRATEGIES)}.")
    return _STRATEGIES[settings.content_type].validate_settings(settings, seller=seller)


__all__ = [
    "DeliverySettings",
    "DeliveryStrategy",
    "PermanentDeliveryError",
    "Resource",
    "TransientDeliveryError",
    "available_types",
    "get_strategy",
    "validate_delivery",
]
