from typing import Any

from catalog.inventory import codes_allocate, codes_deliver, codes_deliver_together, codes_release
from catalog.models import CodeStatus
from orders.seller_events.outbox import seller_event_record

from .base import DeliveryStrategy, NotTogether, PermanentDeliveryError, Resource


def _delivered_codes(item: Any) -> list[Any]:
    # ``item.codes.all()`` reads the prefetched list on order pages (no query per item).
    return [code for code in item.codes.all() if code.status == CodeStatus.DELIVERED]


class CodePoolDelivery(DeliveryStrategy):
    """One preloaded code per unit from the variant's pool; an empty pool stops the sale."""

    content_type = "code_pool"
    failure_status = "out_of_stock"

    def reserve(self, item: Any) -> None:
        left = codes_allocate(variant=item.variant, order_item_id=item.id, quantity=item.quantity)
        if left == 0:
            seller_event_record(
                seller_id=item.product.seller_id,
                type="product.out_of_stock",
                data={"product_id": item.product_id, "variant_id": item.variant_id, "variant_name": item.variant_name},
            )

    def release(self, item_ids: list[str]) -> None:
        codes_release(order_item_ids=item_ids)

    def fulfill(self, item: Any) -> None:
        missing = codes_deliver(variant=item.variant, order_item_id=item.id, quantity=item.quantity)
        if missing:
            raise PermanentDeliveryError(
                f"The pool ran out: {missing} code(s) could not be delivered.", status="out_of_stock"
            )

    def fulfill_together(self, items: list[Any]) -> None:
        """Every item's reserved codes in one SELECT and one UPDATE; the codes stay on the items
        (their ``codes`` prefetch), so the e-mail and the answer read them without a query."""
        codes = codes_deliver_together(wanted={item.id: item.quantity for item in items})
        if codes is None:
            raise NotTogether("An item's reservation was released: its codes are reserved again one by one.")
        for item in items:
            item._prefetched_objects_cache = {**getattr(item, "_prefetched_objects_cache", {}), "codes": codes[item.id]}

    def codes(self, item: Any) -> list[dict[str, Any]]:
        return [
            {
                "code": code.code,
                "pin": code.pin,
                "serial": code.serial or None,
                "redemption_url": code.redemption_url or None,
                "expires_at": code.expires_at.isoformat().replace("+00:00", "Z") if code.expires_at else None,
            }
            for code in _delivered_codes(item)
        ]

    def voucher_codes(self, item: Any) -> list[str]:
        return [code.code for code in _delivered_codes(item)]

    def delivery_view(self, item: Any) -> dict[str, Any]:
        return {
            "content_type": self.content_type,
            "content": None,
            "codes": self.codes(item),
            "redemption_instructions": item.redemption_instructions or None,
            "download_url": None,
            "expires_at": None,
        }

    def resource(self, item: Any, *, request: Any) -> Resource:
        return Resource(
            body={
                "item_id": item.id,
                "content_type": self.content_type,
                "codes": self.codes(item),
                "redemption_instructions": item.redemption_instructions,
            }
        )
