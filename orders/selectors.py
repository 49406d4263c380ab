"""Reads of orders that are more than a ``.get``."""

from typing import Any, cast

from django.db.models import Model, Prefetch, Q, QuerySet

from catalog.models import Code
from marketplace.core.errors import NotFound
from payments.models import Payment

from .models import Order, OrderEvent, OrderItem


def prefetched_set(instance: Model, relation: str, objects: list[Any]) -> None:
    """Hands ``instance`` the objects of a to-many ``relation`` that are already in memory, as
    ``prefetch_related`` would: ``instance.<relation>.all()`` then answers them without a query. A
    write path that just created an order, its items and its payment builds its answer and its
    seller event from them this way instead of reloading what it wrote."""
    queryset = getattr(instance, relation).all()
    queryset._result_cache = list(objects)
    queryset._prefetch_done = True
    holder = cast(Any, instance)
    if not hasattr(holder, "_prefetched_objects_cache"):
        holder._prefetched_objects_cache = {}
    holder._prefetched_objects_cache[relation] = queryset  # a reverse relation's cache is its accessor's name


def order_details_in_hand(order: Order) -> bool:
    """Whether ``order`` carries what its presenter reads (items, payments, refunds) already."""
    cache = getattr(order, "_prefetched_objects_cache", {})
    return all(name in cache for name in ("items", "payments", "refunds"))


def orders_with_details() -> QuerySet[Order]:
    return Order.objects.select_related("product", "seller").prefetch_related(
        Prefetch("items", queryset=OrderItem.objects.select_related("product").order_by("position", "id")),
        Prefetch("items__codes", queryset=Code.objects.order_by("created_at", "id")),
        "items__licenses",
        "refunds",
        Prefetch("payments", queryset=Payment.objects.order_by("created_at")),
        Prefetch("events", queryset=OrderEvent.objects.order_by("created_at", "id")),
    )


def orders_for_list() -> QuerySet[Order]:
    """Orders for a list (the seller's orders, my-sales, my-orders): their items, payments and
    refunds in one query each. No codes, licences or timeline: a list never shows them."""
    return Order.objects.select_related("product", "seller").prefetch_related(
        Prefetch("items", queryset=OrderItem.objects.order_by("position", "id")),
        "refunds",
        Prefetch("payments", queryset=Payment.objects.order_by("created_at")),
    )


def order_get_for_seller(*, seller: Any, ref: str) -> Order:
    """By ``ord_`` id or 8-digit order number; another seller's order is simply not found."""
    lookup = Q(id=ref) if ref.startswith("ord_") else Q(order_number=ref)
    order = orders_with_details().filter(lookup, seller=seller).first()
    if order is None:
        raise NotFound("Order not found.", code="order_not_found")
    return order


def order_get_for_buyer(*, order_id: str, slug: str | None = None) -> Order:
    """The ``ord_`` id is the buyer's capability; the order number never is."""
    if not order_id.startswith("ord_"):
        raise NotFound("Order not found.", code="order_not_found")
    qs = orders_with_details().filter(id=order_id)
    if slug is not None:
        qs = qs.filter(product__slug=slug)
    order = qs.first()
    if order is None:
        raise NotFound("Order not found.", code="order_not_found")
    return order


def buyer_owns_q(user: Any) -> Q:
    """The orders that are ``user``'s as a buyer: those placed while signed in, and, once the account's
    email is verified (``User.email_verified``), those placed as a guest with that address. An
    unverified address claims nothing: registering with someone else's email must not hand over
    their orders (an ``ord_`` capability and its codes)."""
    owned = Q(buyer=user)
    if getattr(user, "email_verified", False):
        owned |= Q(buyer__isnull=True, buyer_email=user.email.lower())
    return owned


def order_get_for_buyer_account(*, user: Any, ref: str) -> Order:
    """A signed-in buyer's own order (``buyer_owns_q``), by ``ord_`` id or order number; anyone
    else's is simply not found."""
    lookup = Q(id=ref) if ref.startswith("ord_") else Q(order_number=ref)
    order = orders_with_details().filter(lookup).filter(buyer_owns_q(user)).first()
    if order is None:
        raise NotFound("Order not found.", code="order_not_found")
    return order
