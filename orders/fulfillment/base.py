"""One strategy per delivery type (Polar's benefit strategies): each fulfills an item once the order
is paid and hands the buyer what they bought. The settings half of each type (what a seller may
save on a product) is ``catalog.delivery``: the catalog checks it without importing orders."""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from catalog.delivery import DeliverySettings
from catalog.models import Product
from orders.models import OrderItem


class TransientDeliveryError(Exception):
    """A failure worth retrying (a timeout, a 5xx from a partner). Retried with backoff."""


class NotTogether(Exception):
    """These items cannot be fulfilled together in one transaction; fulfill them one by one.

    ``item_id`` and ``failure``: the item whose attempt failed, and how (that attempt counts: the
    one-by-one path settles it without trying the item again)."""

    def __init__(self, message: str, *, item_id: str | None = None, failure: Exception | None = None) -> None:
        super().__init__(message)
        self.item_id = item_id
        self.failure = failure


class PermanentDeliveryError(Exception):
    """A failure retries will not fix; the item gets ``fulfillment_status = status``."""

    def __init__(self, message: str, status: str = "dispatch_failed") -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Resource:
    """What the buyer gets from ``GET /orders/{id}/resource``: a redirect or a JSON body."""

    redirect_url: str | None = None
    body: dict[str, Any] | None = None


class DeliveryStrategy(ABC):
    content_type: ClassVar[str]
    # The item's fulfillment_status when its retries are spent.
    failure_status: ClassVar[str] = "dispatch_failed"
    # True for strategies that call out over the network: they run outside the item's lock (a
    # transaction must never wait on a remote server) and guard against doubles themselves.
    remote: ClassVar[bool] = False

    def reserve(self, item: OrderItem) -> None:  # noqa: B027 - an optional hook; most types reserve nothing
        """Called in the order's transaction when it is created (code pools reserve codes)."""

    def release(self, item_ids: list[str]) -> None:  # noqa: B027 - an optional hook
        """Called when an unpaid order fails, is cancelled or expires."""

    def voucher_codes(self, item: OrderItem) -> list[str]:
        """The codes or keys the item delivered, decrypted (only for delivered, unrefunded items)."""
        return []

    def fulfill(self, item: OrderItem) -> None:  # noqa: B027 - text and link need no work at payment
        """Makes the item's delivery ready. Must be idempotent: called again after success, it
        changes nothing. Raises TransientDeliveryError or PermanentDeliveryError."""

    def fulfill_together(self, items: list[OrderItem]) -> None:
        """Fulfills several items of one order in the caller's transaction (the order's one
        fulfillment transaction: local strategies only). One by one unless a strategy can do better
        (code pools fetch and deliver every item's codes in two statements). Raises what ``fulfill``
        raises, or ``NotTogether`` when the items must take the one-by-one path instead."""
        for item in items:
            try:
                self.fulfill(item)
            except (TransientDeliveryError, PermanentDeliveryError) as exc:
                raise NotTogether(str(exc), item_id=item.id, failure=exc) from exc

    def delivery_view(self, item: OrderItem) -> dict[str, Any]:
        """The item's ``delivery`` object for the order API (only for fulfilled items)."""
        return {
            "content_type": item.content_type,
            "content": item.delivery_content,
            "download_url": None,
            "expires_at": None,
            "redemption_instructions": item.redemption_instructions or None,
        }

    @abstractmethod
    def resource(self, item: OrderItem, *, request: Any) -> Resource: ...

    def snapshot(self, product: Product) -> DeliverySettings:
        return DeliverySettings(
            content_type=product.delivery_type,
            content=product.delivery_content,
            redemption_instructions=product.redemption_instructions,
            options=dict(product.delivery_options or {}),
        )
