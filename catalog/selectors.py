"""Reads of the catalog. A seller only ever sees their own products; anything else is "not found"."""

from typing import Any

from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone

from marketplace.core.errors import NotFound, ValidationFailed

from .delivery import counts_codes
from .inventory import available_counts
from .models import CodeStatus, Product, ProductStatus, Variant


def variants_with_stock() -> Prefetch:
    """Variants with ``available_codes``: the count of codes that can still be sold (one query)."""
    now = timezone.now()
    available = Q(codes__status=CodeStatus.AVAILABLE) & (
        Q(codes__expires_at__isnull=True) | Q(codes__expires_at__gt=now)
    )
    return Prefetch(
        "variants",
        queryset=Variant.objects.annotate(available_codes=Count("codes", filter=available)).order_by(
            "position", "created_at", "id"
        ),
    )


def product_list(*, seller: Any, status: str | None = None) -> QuerySet[Product]:
    """The seller's products, newest first, with their variants prefetched (one query for all)."""
    products = Product.objects.filter(seller=seller).prefetch_related(variants_with_stock())
    if status:
        if status not in ProductStatus.values:
            message = f"Must be one of: {', '.join(ProductStatus.values)}."
            raise ValidationFailed(message, fields={"status": [message]})
        products = products.filter(status=status)
    return products.order_by("-created_at", "id")


def product_get(*, seller: Any, product_id: str) -> Product:
    """One of the seller's products. Another seller's product is 404, exactly like a missing one."""
    product = Product.objects.filter(seller=seller, id=product_id).prefetch_related(variants_with_stock()).first()
    if product is None:
        raise NotFound("Product not found.")
    return product


def variant_stock(product: Product) -> dict[str, int | None]:
    """Units left per variant: available codes for a code pool, the stock counter otherwise
    (None = unlimited)."""
    variants = list(product.variants.all())
    if counts_codes(product.delivery_type):
        return dict(available_counts([v.id for v in variants]))
    return {v.id: v.stock for v in variants}
