"""Licence keys: generated per unit sold, verified, activated and deactivated by the seller's app."""

import secrets
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from marketplace.core.crypto import blind_index, hint
from marketplace.core.errors import Conflict, NotFound

from .models import License, LicenseActivation

# Uppercase letters and digits without the ones people misread (0/O, 1/I).
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
GROUPS, GROUP_SIZE = 5, 5  # 25 characters × 5 bits = 125 random bits
GENERIC_NOT_FOUND = "This license key is not valid."


def generate_key(prefix: str = "") -> str:
    groups = ["".join(secrets.choice(ALPHABET) for _ in range(GROUP_SIZE)) for _ in range(GROUPS)]
    return "-".join(([prefix] if prefix else []) + groups)


def normalise(key: str) -> str:
    return key.strip().upper()


def key_hash(key: str) -> str:
    return blind_index(normalise(key), scope="license")


def licenses_issue(*, item: Any, options: dict[str, Any]) -> list[License]:
    """Creates the missing keys for an item (one per unit). Idempotent."""
    existing = License.objects.filter(order_item=item).count()
    created: list[License] = []
    expires_in_days = options.get("expires_in_days")
    expires_at = timezone.now() + timedelta(days=int(expires_in_days)) if expires_in_days else None
    for _ in range(item.quantity - existing):
        for _attempt in range(5):
            key = generate_key(options.get("prefix") or "")
            try:
                with transaction.atomic():
                    created.append(
                        License.objects.create(
                            order_item=item,
                            product_id=item.product_id,
                            key=key,
                            key_hash=key_hash(key),
                            key_hint=hint(key),
                            activation_limit=options.get("activation_limit"),
                            expires_at=expires_at,
                        )
                    )
                break
            except IntegrityError:  # a 125-bit collision: astronomically rare, but never fatal
                continue
    return created


def _usable(license_key: str, *, product_id: str | None = None, lock: bool = False) -> License:
    """The licence if it may be used, else one generic 404 (unknown, disabled, refunded, expired)."""
    if not isinstance(license_key, str) or not license_key.strip() or len(license_key) > 200:
        raise NotFound(GENERIC_NOT_FOUND, code="license_not_found")
    qs = License.objects.select_related("order_item__order")
    if lock:
        qs = qs.select_for_update()
    lic = qs.filter(key_hash=key_hash(license_key)).first()
    if (
        lic is None
        or (product_id and lic.product_id != product_id)
        or lic.status != License.Status.ACTIVE
        or lic.order_item.order.access_blocked
        or (lic.expires_at is not None and lic.expires_at <= timezone.now())
    ):
        raise NotFound(GENERIC_NOT_FOUND, code="license_not_found")
    return lic


def active_activations_count(lic: License) -> int:
    return lic.activations.filter(deactivated_at__isnull=True).count()


def license_view(lic: License) -> dict[str, Any]:
    """What a seller's app learns from a key: the licence itself, never the order it came with.
    The ``ord_`` id is the buyer's capability (their email, every code, the downloads), so anyone
    holding one licence key must not be able to reach it from here."""
    return {
        "valid": True,
        "status": lic.status,
        "uses": lic.uses,
        "activation_limit": lic.activation_limit,
        "activations": active_activations_count(lic),
        "license_id": lic.id,
        "product_id": lic.product_id,
        "variant_id": lic.order_item.variant_id,
        "expires_at": lic.expires_at.isoformat().replace("+00:00", "Z") if lic.expires_at else None,
    }


def license_verify(*, product_id: str, license_key: str, increment_uses_count: bool = False) -> dict[str, Any]:
    with transaction.atomic():
        lic = _usable(license_key, product_id=product_id, lock=increment_uses_count)
        if increment_uses_count:
            License.objects.filter(pk=lic.pk).update(uses=lic.uses + 1)
            lic.uses += 1
        return license_view(lic)


def license_activate(*, license_key: str, instance_name: str) -> dict[str, Any]:
    """Row-locked: two activations at once can never exceed the limit."""
    with transaction.atomic():
        lic = _usable(license_key, lock=True)
        active = active_activations_count(lic)
        if lic.activation_limit is not None and active >= lic.activation_limit:
            raise Conflict(
                f"This key is already active on {active} of {lic.activation_limit} allowed instances.",
                code="activation_limit_reached",
            )
        activation = LicenseActivation.objects.create(license=lic, instance_name=instance_name)
        return {"activation_id": activation.id, "instance_name": activation.instance_name, **license_view(lic)}


def license_deactivate(*, license_key: str, activation_id: str) -> dict[str, Any]:
    with transaction.atomic():
        lic = _usable(license_key, lock=True)
        updated = LicenseActivation.objects.filter(id=activation_id, license=lic, deactivated_at__isnull=True).update(
            deactivated_at=timezone.now()
        )
        if not updated:
            raise NotFound("This activation is not active for this key.", code="activation_not_found")
        return {"activation_id": activation_id, "deactivated": True, **license_view(lic)}


def licenses_for_items(item_ids: list[str]) -> Any:
    return License.objects.filter(order_item_id__in=item_ids).annotate(
        active_activations=Count("activations", filter=Q(activations__deactivated_at__isnull=True))
    )
