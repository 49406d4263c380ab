"""Reads of the catalog. A seller only ever sees their own products; anything else is "not found"."""

from typing import Any

from django.db.models import Count, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery, prefetch_related_objects
from django.db.models.functions import Coalesce
from django.utils import timezone

from marketplace.core.errors import NotFound, ValidationFailed

from .delivery import counts_codes
from .inventory import available_counts
from .models import Code, CodeStatus, Product, ProductStatus, Variant


def variants_with_stock() -> Prefetch:
    """Variants with ``available_codes``: the count of codes that can still be sold (one query).

    A correlated count per variant on the pool's index (``variant, status`` first, ``expires_at``
    carried): it reads only the available codes' index entries, never the pool's sold codes, as a
    join of all codes filtered after the fact would."""
    now = timezone.now()
    available = (
        Code.objects.filter(variant=OuterRef("pk"), status=CodeStatus.AVAILABLE)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .order_by()
        .values("variant")
        .annotate(n=Count("*"))
        .values("n")
    )
    return Prefetch(
        "variants",
        queryset=Variant.objects.annotate(
            available_codes=Coalesce(Subquery(available, output_field=IntegerField()), 0)
        ).order_by("position", "created_at", "id"),
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


def variant_stock(product: Product, *, at_most: int | None = None) -> dict[str, int | None]:
    """Units left per variant: available codes for a code pool, the stock counter otherwise
    (None = unlimited). ``at_most`` bounds a code pool's count (``LIMIT``), for a page that only
    says "sold out" or "3 left"; the public API's exact ``stock`` is an index-only count."""
    variants = list(product.variants.all())
    if counts_codes(product.delivery_type):
        return dict(available_counts([v.id for v in variants], at_most=at_most))
    return {v.id: v.stock for v in variants}


# --- The store and the front page ------------------------------------------------------------------

FRONT_PAGE_FEATURED = 6
FRONT_PAGE_RECENT = 12
STORE_PAGE_PRODUCTS = 60


def _storefront(products: QuerySet[Product]) -> QuerySet[Product]:
    """Active products with their seller (one join) and their variants (one prefetch for all)."""
    return (
        products.filter(status=ProductStatus.ACTIVE)
        .select_related("seller")
        .prefetch_related(Prefetch("variants", queryset=Variant.objects.order_by("position", "created_at", "id")))
        .order_by("-created_at", "id")
    )


def store_products(*, seller: Any, limit: int = STORE_PAGE_PRODUCTS) -> list[Product]:
    """A seller's active products, newest first: two queries."""
    return list(_storefront(Product.objects.filter(seller=seller))[:limit])


def front_page_products(
    *, featured: int = FRONT_PAGE_FEATURED, recent: int = FRONT_PAGE_RECENT
) -> tuple[list[Product], list[Product]]:
    """The front page: products operators featured, and the most recent others. Three queries in
    all (featured, recent, and one prefetch of the variants of both)."""
    featured_products = list(
        Product.objects.filter(status=ProductStatus.ACTIVE, featured=True, seller__is_active=True)
        .select_related("seller")
        .order_by("-created_at", "id")[:featured]
    )
    recent_products = list(
        Product.objects.filter(status=ProductStatus.ACTIVE, seller__is_active=True)
        .exclude(id__in=[p.id for p in featured_products])
        .select_related("seller")
        .order_by("-created_at", "id")[:recent]
    )
    prefetch_related_objects(
        [*featured_products, *recent_products],
        Prefetch("variants", queryset=Variant.objects.order_by("position", "created_at", "id")),
    )
    return featured_products, recent_products
def public_products(*, seller_id: str = "", q: str = "") -> QuerySet[Product]:
    """Active products for the public catalogue, newest first, each with its seller and its variants
    (their available codes counted in the same query): a page costs the same few queries whatever
    its size. ``seller_id`` narrows to one seller; ``q`` searches titles and descriptions."""
    products = (
        Product.objects.filter(status=ProductStatus.ACTIVE)
        .select_related("seller")
        .prefetch_related(variants_with_stock())
    )
    if seller_id:
        products = products.filter(seller_id=seller_id)
    if q:
        products = products.filter(Q(title__icontains=q) | Q(description__icontains=q))
    return products.order_by("-created_at", "id")


def public_variant_stock(product: Product, variant: Variant) -> int | None:
    """Units left of a variant loaded by ``variants_with_stock``: the annotated count for a code
    pool, the stock counter otherwise (None = unlimited)."""
    if counts_codes(product.delivery_type):
        return int(getattr(variant, "available_codes", 0))
    return variant.stock
