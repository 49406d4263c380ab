"""Discount codes: what a code takes off a cart, and its use counter.

Rounding is defined: a percentage is taken off the eligible lines' subtotal and rounded half up —
the half unit goes to the buyer. A fixed discount never takes off more than the eligible subtotal,
so a total is never negative. ``max_uses`` is counted with one conditional UPDATE when the order is
placed (so a rush can never exceed it) and given back when the order fails or is cancelled.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from marketplace.core.bounds import DAY_RANGE_MESSAGE, MAX_COUNT, moment_in_bounds
from marketplace.core.errors import Conflict, NotFound, Unprocessable, ValidationFailed
from marketplace.core.money import MAX_AMOUNT, validate_currency

from .models import Discount, DiscountKind, Product, ProductStatus, Variant

MAX_CODE = 64


def normalise_code(code: str) -> str:
    return code.strip().upper()


@dataclass(frozen=True)
class CartLine:
    product_id: str
    quantity: int
    total: int  # minor units


def _invalid(reason: str) -> Unprocessable:
    return Unprocessable(reason, code="invalid_discount", fields={"discount_code": [reason]})


def discount_evaluate(
    *, seller_id: Any, code: str, currency: str, lines: list[CartLine], now: datetime | None = None
) -> tuple[Discount, int]:
    """The discount a code gives this cart, or 422 ``invalid_discount`` saying why not."""
    now = now or timezone.now()
    discount = (
        Discount.objects.filter(seller_id=seller_id, code=normalise_code(code)).prefetch_related("products").first()
    )
    if discount is None or not discount.active:
        raise _invalid("This discount code is not valid.")
    if discount.starts_at and discount.starts_at > now:
        raise _invalid("This discount code is not active yet.")
    if discount.expires_at and discount.expires_at <= now:
        raise _invalid("This discount code has expired.")
    if discount.max_uses is not None and discount.uses >= discount.max_uses:
        raise _invalid("This discount code has been used up.")
    if discount.kind == DiscountKind.FIXED and discount.currency != currency:
        raise _invalid(f"This discount code applies to {discount.currency} purchases only.")
    scope = {p.id for p in discount.products.all()}
    eligible = [line for line in lines if not scope or line.product_id in scope]
    if not eligible:
        raise _invalid("This discount code does not apply to these products.")
    quantity = sum(line.quantity for line in eligible)
    if quantity < discount.min_quantity:
        raise _invalid(f"This discount code needs at least {discount.min_quantity} items.")
    base = sum(line.total for line in eligible)
    if discount.kind == DiscountKind.PERCENT:
        amount = (base * discount.value + 50) // 100  # half up: the half unit goes to the buyer
    else:
        amount = discount.value
    return discount, min(amount, base)


MAX_PREVIEW_ITEMS = 50
MAX_PREVIEW_QUANTITY = 1000


def preview_items_parse(raw: str) -> list[tuple[str, int]]:
    """``var_x:2,var_y:1`` (a quantity left out is 1) → [(variant id, quantity)]; 400 naming ``items``."""

    def bad(message: str) -> ValidationFailed:
        return ValidationFailed(message, fields={"items": [message]})

    parsed: list[tuple[str, int]] = []
    for part in [p.strip() for p in raw.split(",") if p.strip()]:
        variant_id, _, quantity = part.partition(":")
        if not variant_id or len(variant_id) > 40:
            raise bad("Each item is variant_id:quantity.")
        try:
            count = int(quantity) if quantity else 1
        except ValueError:
            raise bad(f"The quantity of {variant_id} must be a whole number.") from None
        if not 1 <= count <= MAX_PREVIEW_QUANTITY:
            raise bad(f"The quantity of {variant_id} must be between 1 and {MAX_PREVIEW_QUANTITY}.")
        if any(variant_id == seen for seen, _ in parsed):
            raise bad(f"{variant_id} appears twice.")
        parsed.append((variant_id, count))
    if not parsed:
        raise bad("Name at least one item.")
    if len(parsed) > MAX_PREVIEW_ITEMS:
        raise bad(f"At most {MAX_PREVIEW_ITEMS} items.")
    return parsed


def discount_preview(*, code: str, items: list[tuple[str, int]]) -> dict[str, Any]:
    """What ``code`` would take off these items (variants of one seller's active products, in one
    currency), priced as an order would be; an unusable code is 422 ``invalid_discount`` with the
    reason. Nothing is counted or reserved: this is a preview."""
    variants = {
        v.id: v
        for v in Variant.objects.select_related("product").filter(
            id__in=[variant_id for variant_id, _ in items], product__status=ProductStatus.ACTIVE
        )
    }
    missing = [variant_id for variant_id, _ in items if variant_id not in variants]
    if missing:
        message = f"Not for sale: {', '.join(missing)}."
        raise ValidationFailed(message, fields={"items": [message]})
    chosen = [variants[variant_id] for variant_id, _ in items]
    if len({v.product.seller_id for v in chosen}) > 1:
        message = "All items must come from one seller."
        raise ValidationFailed(message, fields={"items": [message]})
    currencies = {v.product.currency for v in chosen}
    if len(currencies) > 1:
        message = "All items must be in one currency."
        raise ValidationFailed(message, fields={"items": [message]})
    (currency,) = currencies
    lines = [CartLine(variants[vid].product_id, qty, variants[vid].price * qty) for vid, qty in items]
    subtotal = sum(line.total for line in lines)
    discount, amount = discount_evaluate(
        seller_id=chosen[0].product.seller_id, code=code, currency=currency, lines=lines
    )
    return {
        "valid": True,
        "code": discount.code,
        "kind": discount.kind,
        "value": discount.value,
        "currency": currency,
        "subtotal": subtotal,
        "discount_amount": amount,
        "total_amount": subtotal - amount,
    }


def discount_redeem(*, discount: Discount) -> None:
    """Counts one use, atomically; 422 if the last use was taken meanwhile."""
    taken = Discount.objects.filter(
        Q(max_uses__isnull=True) | Q(uses__lt=F("max_uses")), pk=discount.pk, active=True
    ).update(uses=F("uses") + 1)
    if not taken:
        raise _invalid("This discount code has been used up.")


def discount_release(*, seller_id: Any, code: str) -> None:
    Discount.objects.filter(seller_id=seller_id, code=normalise_code(code), uses__gt=0).update(uses=F("uses") - 1)


# --- The seller's CRUD ---------------------------------------------------------------------------

_FIELDS = {
    "code",
    "kind",
    "value",
    "currency",
    "product_ids",
    "max_uses",
    "starts_at",
    "expires_at",
    "min_quantity",
    "active",
}


def _clean(seller: Any, data: dict[str, Any], current: Discount | None) -> dict[str, Any]:
    unknown = set(data) - _FIELDS - {"id", "uses", "created_at", "updated_at"}
    if unknown:
        raise ValidationFailed(fields={name: ["Unknown field."] for name in sorted(unknown)})
    merged: dict[str, Any] = {"min_quantity": 1, "active": True, "max_uses": None}
    if current is not None:
        merged = {
            "code": current.code,
            "kind": current.kind,
            "value": current.value,
            "currency": current.currency,
            "max_uses": current.max_uses,
            "starts_at": current.starts_at,
            "expires_at": current.expires_at,
            "min_quantity": current.min_quantity,
            "active": current.active,
        }
    merged.update({k: v for k, v in data.items() if k in _FIELDS and k != "product_ids"})
    errors: dict[str, list[str]] = {}
    code = merged.get("code")
    if (
        not isinstance(code, str)
        or not code.strip()
        or len(code.strip()) > MAX_CODE
        or not all(ch.isalnum() or ch in "-_" for ch in code.strip())
    ):
        errors["code"] = [f"Letters, digits, - and _ only, 1–{MAX_CODE} characters."]
    kind = merged.get("kind")
    if kind not in DiscountKind.values:
        errors["kind"] = ["Must be percent or fixed."]
    value = merged.get("value")
    if isinstance(value, bool) or not isinstance(value, int):
        errors["value"] = ["Must be a whole number."]
    elif kind == DiscountKind.PERCENT and not 1 <= value <= 100:
        errors["value"] = ["A percent discount is from 1 to 100."]
    elif kind == DiscountKind.FIXED and not 1 <= value <= MAX_AMOUNT:
        errors["value"] = ["A fixed discount is a positive amount in minor units."]
    currency = merged.get("currency") or ""
    if kind == DiscountKind.FIXED:
        try:
            validate_currency(currency)
        except Exception:  # noqa: BLE001
            errors["currency"] = ["A fixed discount needs the ISO 4217 currency its amount is in."]
    else:
        currency = ""
    for name in ("max_uses", "min_quantity"):
        number = merged.get(name)
        if number is None and name == "max_uses":
            continue
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= MAX_COUNT:
            errors[name] = [
                f"Must be a whole number from 1 to {MAX_COUNT}" + (", or null." if name == "max_uses" else ".")
            ]
    for name in ("starts_at", "expires_at"):
        raw = merged.get(name)
        if isinstance(raw, str):
            try:
                parsed = parse_datetime(raw)
            except ValueError:  # well formed but no such time: 2026-02-30T10:00
                parsed = None
            if parsed is None:
                errors[name] = ["Must be an ISO 8601 date and time."]
            elif not moment_in_bounds(parsed):
                errors[name] = [DAY_RANGE_MESSAGE]
            else:
                merged[name] = (
                    parsed
                    if timezone.is_aware(parsed)
                    else timezone.make_aware(parsed, timezone.get_default_timezone())
                )
        elif isinstance(raw, datetime) and not moment_in_bounds(raw):
            errors[name] = [DAY_RANGE_MESSAGE]
        elif raw is not None and not isinstance(raw, datetime):
            errors[name] = ["Must be an ISO 8601 date and time."]
    if (
        not errors
        and merged.get("starts_at")
        and merged.get("expires_at")
        and merged["expires_at"] <= merged["starts_at"]
    ):
        errors["expires_at"] = ["Must be after starts_at."]
    if not isinstance(merged.get("active", True), bool):
        errors["active"] = ["Must be true or false."]
    products: list[Product] | None = None
    if "product_ids" in data:
        ids = data["product_ids"] or []
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            errors["product_ids"] = ["Must be a list of product ids."]
        else:
            products = list(Product.objects.filter(seller=seller, id__in=ids))
            if len(products) != len(set(ids)):
                errors["product_ids"] = ["Some of these products are not yours or do not exist."]
    if errors:
        raise ValidationFailed(fields=errors)
    merged["code"] = normalise_code(code)  # type: ignore[arg-type]
    merged["currency"] = currency
    merged["products"] = products
    return merged


def discount_save(*, seller: Any, data: dict[str, Any], discount: Discount | None = None) -> Discount:
    cleaned = _clean(seller, data, discount)
    products = cleaned.pop("products")
    try:
        with transaction.atomic():
            if discount is None:
                discount = Discount.objects.create(seller=seller, **cleaned)
            else:
                for name, value in cleaned.items():
                    setattr(discount, name, value)
                discount.save()
            if products is not None:
                discount.products.set(products)
    except IntegrityError:
        raise Conflict("You already have a discount with this code.", code="discount_code_taken") from None
    return discount


def discount_get(*, seller: Any, discount_id: str) -> Discount:
    discount = Discount.objects.filter(seller=seller, id=discount_id).prefetch_related("products").first()
    if discount is None:
        raise NotFound("Discount not found.")
    return discount
