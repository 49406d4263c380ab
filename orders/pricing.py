"""What an order costs before it exists: the cart's lines, the quote (prices, the discount, stock
checks, what a buyer may tell the seller's fulfillment) and the platform's fee."""

import json
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from catalog.delivery import counts_codes
from catalog.discounts import CartLine, discount_evaluate
from catalog.inventory import available_counts
from catalog.models import Product, ProductStatus, Variant
from marketplace.core.errors import (
    OutOfStock,
    ValidationFailed,
)

# --- Checkout ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckoutLine:
    variant_id: str
    quantity: int
    fulfillment_input: dict[str, Any] = field(default_factory=dict)


@dataclass
class QuoteLine:
    variant: Variant
    quantity: int
    unit_price: int
    fulfillment_input: dict[str, Any]

    @property
    def total(self) -> int:
        return self.unit_price * self.quantity


@dataclass
class Quote:
    currency: str
    lines: list[QuoteLine]
    subtotal: int
    discount_code: str
    discount_amount: int
    total_amount: int
    discount: Any = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "subtotal": self.subtotal,
            "discount_code": self.discount_code or None,
            "discount_amount": self.discount_amount,
            "total_amount": self.total_amount,
            "items": [
                {
                    "variant_id": line.variant.id,
                    "variant_name": line.variant.name,
                    "quantity": line.quantity,
                    "unit_price": line.unit_price,
                    "total": line.total,
                }
                for line in self.lines
            ],
        }




# What a buyer may tell the seller's fulfillment per line (a player id, an account name): a few short
# strings. It is stored with the order and sent to the seller's partner URL as it is, so an
# anonymous buyer must not be able to park megabytes or nested structures there.
FULFILLMENT_INPUT_MAX_KEYS = 20
FULFILLMENT_INPUT_MAX_BYTES = 2048


def fulfillment_input_problem(value: Any) -> str | None:
    """Why a line's ``fulfillment_input`` cannot be taken, or None: an object of at most
    ``FULFILLMENT_INPUT_MAX_KEYS`` string values, at most ``FULFILLMENT_INPUT_MAX_BYTES`` as JSON."""
    if not isinstance(value, dict):
        return "Must be an object of strings."
    if len(value) > FULFILLMENT_INPUT_MAX_KEYS:
        return f"At most {FULFILLMENT_INPUT_MAX_KEYS} keys."
    if not all(isinstance(v, str) for v in value.values()):
        return "Every value must be a string."
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    if size > FULFILLMENT_INPUT_MAX_BYTES:
        return f"At most {FULFILLMENT_INPUT_MAX_BYTES} bytes in all (as JSON)."
    return None


def checkout_stock_check(*, quote: "Quote") -> None:
    """409 ``out_of_stock`` when a line of a quote asks for more than is left, as ``pay`` would
    answer. A code pool is probed for ``quantity`` codes (``LIMIT quantity``), never counted whole;
    ``pay`` itself does not call this: its reservation decides from the codes it got."""
    for line in quote.lines:
        variant = line.variant
        if counts_codes(variant.product.delivery_type):
            left: int | None = available_counts([variant.id], at_most=line.quantity)[variant.id]
        else:
            left = variant.stock
        if left is not None and left < line.quantity:
            raise OutOfStock(
                f"Only {left} left of {variant.name}." if left else f"{variant.name} is sold out.",
                extra={"variant_id": variant.id, "available": left},
            )


def checkout_quote(*, product: Product, lines: list[CheckoutLine], discount_code: str = "") -> Quote:
    """Prices the lines. Every door that makes an order (the pay API, the checkout page) quotes
    first, so the limits checked here hold for all of them."""
    if not lines:
        raise ValidationFailed("Choose at least one item.", fields={"items": ["Choose at least one item."]})
    for index, line in enumerate(lines):
        problem = fulfillment_input_problem(line.fulfillment_input)
        if problem:
            raise ValidationFailed(problem, fields={f"items.{index}.fulfillment_input": [problem]})
    variants = {v.id: v for v in product.variants.all()}
    others = {line.variant_id for line in lines} - set(variants)
    if others:
        # An order may combine variants of the same seller's other products on sale.
        for variant in Variant.objects.select_related("product").filter(
            id__in=others, product__seller_id=product.seller_id, product__status=ProductStatus.ACTIVE
        ):
            variants[variant.id] = variant
    quoted: list[QuoteLine] = []
    seen: set[str] = set()
    for index, line in enumerate(lines):
        found = variants.get(line.variant_id)
        if found is None:
            message = "This option does not exist for this product."
            raise ValidationFailed(message, fields={f"items.{index}.variant_id": [message]})
        variant = found
        if line.variant_id in seen:
            message = "Each option may appear once; raise its quantity instead."
            raise ValidationFailed(message, fields={f"items.{index}.variant_id": [message]})
        seen.add(line.variant_id)
        if variant.product_id != product.id and variant.product.currency != product.currency:
            message = f"This option is sold in {variant.product.currency}; the order is in {product.currency}."
            raise ValidationFailed(message, fields={f"items.{index}.variant_id": [message]})
        quoted.append(QuoteLine(variant, line.quantity, variant.price, line.fulfillment_input))
    subtotal = sum(line.total for line in quoted)
    if discount_code and discount_code.strip():
        discount, amount = discount_evaluate(
            seller_id=product.seller_id,
            code=discount_code,
            currency=product.currency,
            lines=[CartLine(line.variant.product_id, line.quantity, line.total) for line in quoted],
        )
        return Quote(product.currency, quoted, subtotal, discount.code, amount, subtotal - amount, discount)
    return Quote(product.currency, quoted, subtotal, "", 0, subtotal)


def platform_fee_for(total: int, *, seller: Any = None) -> int:
    """Basis points of the total, rounded half up, plus a fixed part; never more than the total.
    The rates come from settings unless an operator set the seller's own."""
    bps = settings.PLATFORM_FEE_BPS
    fixed = settings.PLATFORM_FEE_FIXED
    if seller is not None:
        if getattr(seller, "platform_fee_bps", None) is not None:
            bps = seller.platform_fee_bps
        if getattr(seller, "platform_fee_fixed", None) is not None:
            fixed = seller.platform_fee_fixed
    fee = (total * bps + 5_000) // 10_000 + (fixed if total else 0)
    return min(fee, total)
