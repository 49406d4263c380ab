from typing import Any

from orders.licensing import licenses_issue

from .base import DeliveryStrategy, Resource


class LicenseKeyDelivery(DeliveryStrategy):
    """One generated key per unit, with an activation limit and an optional expiry."""

    content_type = "license_key"

    def _options(self, item: Any) -> dict[str, Any]:
        return dict((item.product.delivery_options or {}).get("license") or {})

    def fulfill(self, item: Any) -> None:
        licenses_issue(item=item, options=self._options(item))

    def voucher_codes(self, item: Any) -> list[str]:
        return [lic.key for lic in item.licenses.all()]

    def delivery_view(self, item: Any) -> dict[str, Any]:
        return {
            "content_type": self.content_type,
            "content": None,
            "codes": [
                {
                    "code": lic.key,
                    "activation_limit": lic.activation_limit,
                    "expires_at": lic.expires_at.isoformat().replace("+00:00", "Z") if lic.expires_at else None,
                }
                for lic in item.licenses.all()
            ],
            "redemption_instructions": item.redemption_instructions or None,
            "download_url": None,
            "expires_at": None,
        }

    def resource(self, item: Any, *, request: Any) -> Resource:
        view = self.delivery_view(item)
        return Resource(body={"item_id": item.id, "content_type": self.content_type, "codes": view["codes"]})
