"""The seller's side of licence keys: list (hints only), read, disable, enable, reset activations.
Each change is written to the order's timeline. Apart from ``licensing`` because the timeline
(``lifecycle``) sits above the fulfilment strategies that issue keys."""

from typing import Any

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from marketplace.core.errors import Conflict, NotFound

from .licensing import active_activations_count, key_hash
from .lifecycle import order_event_record
from .models import License, LicenseActivation

SELLER_STATUSES = tuple(License.Status.values)


def _iso(moment: Any) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def licenses_for_seller(
    *, seller: Any, product_id: str | None = None, statuses: list[str] | None = None, q: str = ""
) -> Any:
    """The seller's keys, newest first, with their active activations counted (one query)."""
    qs = (
        License.objects.filter(product__seller=seller)
        .select_related("order_item__order", "product")
        .defer("key")
        .annotate(active_activations=Count("activations", filter=Q(activations__deactivated_at__isnull=True)))
        .order_by("-created_at", "-id")
    )
    if product_id:
        qs = qs.filter(Q(product_id=product_id) | Q(product__slug=product_id))
    if statuses:
        qs = qs.filter(status__in=statuses)
    q = (q or "").strip()
    if q:
        # A whole key finds its licence by its blind index; otherwise the hint, an order number or
        # the buyer's email.
        match = (
            Q(key_hash=key_hash(q))
            | Q(order_item__order__order_number=q)
            | Q(order_item__order__buyer_email__icontains=q)
            | Q(id=q)
        )
        if len(q) <= 8:
            match |= Q(key_hint__iexact=q)
        qs = qs.filter(match)
    return qs


def license_get_for_seller(*, seller: Any, license_id: str) -> License:
    """One of the seller's keys; another seller's, or none, is the same 404."""
    lic = (
        License.objects.filter(product__seller=seller, id=license_id)
        .select_related("order_item__order", "product")
        .defer("key")
        .annotate(active_activations=Count("activations", filter=Q(activations__deactivated_at__isnull=True)))
        .first()
    )
    if lic is None:
        raise NotFound("No such license.", code="license_not_found")
    return lic


def license_seller_view(lic: License, *, with_activations: bool = False) -> dict[str, Any]:
    """A key as its seller sees it: the hint, never the key itself."""
    order = lic.order_item.order
    active = getattr(lic, "active_activations", None)
    data: dict[str, Any] = {
        "id": lic.id,
        "key_hint": lic.key_hint,
        "status": lic.status,
        "product_id": lic.product_id,
        "product_title": lic.product.title,
        "variant_id": lic.order_item.variant_id,
        "order_number": order.order_number,
        "buyer_email": order.buyer_email,
        "uses": lic.uses,
        "activation_limit": lic.activation_limit,
        "activations": active if active is not None else active_activations_count(lic),
        "expires_at": _iso(lic.expires_at),
        "created_at": _iso(lic.created_at),
    }
    if with_activations:
        data["activation_list"] = [
            {
                "id": a.id,
                "instance_name": a.instance_name,
                "created_at": _iso(a.created_at),
                "deactivated_at": _iso(a.deactivated_at),
            }
            for a in lic.activations.all()
        ]
    return data


def _license_event(lic: License, *, type: str, message: str, user: Any, data: dict[str, Any]) -> None:
    order_event_record(
        order=lic.order_item.order,
        type=type,
        message=message,
        actor="seller",
        actor_user=user,
        data={"license_id": lic.id, **data},
    )


def license_set_status(*, seller: Any, license_id: str, to_status: str, user: Any) -> License:
    """Disable or enable one key; a refunded key stays refunded (409). Recorded in the order's timeline."""
    if to_status not in (License.Status.ACTIVE, License.Status.DISABLED):
        raise Conflict("A key can only be enabled or disabled.", code="invalid_transition")
    with transaction.atomic():
        lic = license_get_for_seller(seller=seller, license_id=license_id)
        locked = License.objects.select_for_update().only("id", "status").get(pk=lic.pk)
        if locked.status == License.Status.REFUNDED:
            raise Conflict("This key was refunded; it cannot be enabled or disabled.", code="license_refunded")
        if locked.status != to_status:
            License.objects.filter(pk=lic.pk).update(status=to_status)
            verb = "disabled" if to_status == License.Status.DISABLED else "enabled"
            _license_event(
                lic,
                type=f"license_{verb}",
                message=f"License key ••••{lic.key_hint} {verb} by the seller.",
                user=user,
                data={"from": locked.status, "to": to_status},
            )
        lic.status = to_status
        return lic


def license_reset_activations(*, seller: Any, license_id: str, user: Any) -> License:
    """Ends every active activation of a key, so that the buyer can activate it afresh."""
    with transaction.atomic():
        lic = license_get_for_seller(seller=seller, license_id=license_id)
        License.objects.select_for_update().only("id").get(pk=lic.pk)
        ended = LicenseActivation.objects.filter(license=lic, deactivated_at__isnull=True).update(
            deactivated_at=timezone.now()
        )
        if ended:
            _license_event(
                lic,
                type="license_activations_reset",
                message=f"Activations of license key ••••{lic.key_hint} reset by the seller ({ended} ended).",
                user=user,
                data={"ended": ended},
            )
        lic.active_activations = 0  # type: ignore[attr-defined]
        return lic
