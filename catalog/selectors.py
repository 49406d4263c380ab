"""Reads of the catalog. A seller only ever sees their own products; anything else is "not found"."""

from typing import Any

from django.db.models import QuerySet

from marketplace.core.errors import NotFound, ValidationFailed

from .models import Product, ProductStatus


def product_list(*, seller: Any, status: str | None = None) -> QuerySet[Product]:
    """The seller's products, newest first, with their variants prefetched (one query for all)."""
    products = Product.objects.filter(seller=seller).prefetch_related("variants")
    if status:
        if status not in ProductStatus.values:
            message = f"Must be one of: {', '.join(ProductStatus.values)}."
            raise ValidationFailed(message, fields={"status": [message]})
        products = products.filter(status=status)
    return products.order_by("-created_at", "id")


def product_get(*, seller: Any, product_id: str) -> Product:
    """One of the seller's products. Another seller's product is 404, exactly like a missing one."""
    product = Product.objects.filter(seller=seller, id=product_id).prefetch_related("variants").first()
    if product is None:
        raise NotFound("Product not found.")
    return product
