from typing import Any

from .base import DeliverySettings, DeliveryStrategy, Resource, invalid


def _clean_positive(value: Any, field: str, *, maximum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise invalid(f"license.{field}", f"Must be a whole number from 1 to {maximum}, or null.")
    return value


class LicenseKeyDelivery(DeliveryStrategy):
    """One generated key per unit, with an activation limit and an optional expiry."""

    content_type = "license_key"

    def validate_settings(self, settings: DeliverySettings, *, seller: Any) -> DeliverySettings:
        from orders.licensing import PREFIX_RE

        raw = settings.options.get("license") or {}
        if not isinstance(raw, dict):
            raise invalid("license", "Must be an object with activation_limit and expires_in_days.")
        unknown = set(raw) - {"activation_limit", "expires_in_days", "prefix"}
        if unknown:
            raise invalid(f"license.{sorted(unknown)[0]}", "Unknown field.")
        prefix = raw.get("prefix") or ""
        if prefix and (not isinstance(prefix, str) or not PREFIX_RE.match(prefix)):
            raise invalid("license.prefix", "Up to 12 uppercase letters or digits.")
        license_options = {
            "activation_limit": _clean_positive(raw.get("activation_limit"), "activation_limit", maximum=100_000),
            "expires_in_days": _clean_positive(raw.get("expires_in_days"), "expires_in_days", maximum=36_500),
            "prefix": prefix or None,
        }
        return DeliverySettings(
            "license_key", "", settings.redemption_instructions.strip(), {"license": license_options}
        )

    def _options(self, item: Any) -> dict[str, Any]:
        return dict((item.product.delivery_options or {}).get("license") or {})

    def fulfil(self, item: Any) -> None:
        from orders.licensing import licenses_issue

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
