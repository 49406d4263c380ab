"""The buyer-facing store pages: the marketplace's front page (``/``), a seller's store
(``/s/<seller_slug>``), and the public files they show (covers, under ``/media/``).

Both pages are read-only and cheap (at most 6 queries, held by tests), and indexable: a title, a
meta description, a canonical URL and Open Graph tags (``templates/store/_meta.html``)."""

import posixpath
from typing import Any

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET
from django.views.static import serve

from catalog.covers import cover_image_url, public_storage
from catalog.models import Product
from catalog.rendering import markdown_to_plain_text, markdown_to_safe_html
from catalog.selectors import front_page_products, store_products
from catalog.serializers import absolute_url
from marketplace.accounts.models import Role, User
from marketplace.core.money import format_money
from marketplace.core.ratelimit import throttle_page

# How long browsers and proxies may keep a page (seconds): short, so that a product taken off sale
# disappears quickly, but enough to absorb a burst of visits from a shared link.
PAGE_MAX_AGE = 60


def product_card(product: Product) -> dict[str, Any]:
    """What a product's tile shows: title, seller, cover, and the price ("Free", "$9", "From $9")."""
    prices = sorted(v.price for v in product.variants.all())
    if not prices:
        price = ""
    elif prices[-1] == 0:
        price = "Free"
    elif prices[0] == prices[-1]:
        price = format_money(prices[0], product.currency)
    else:
        price = "From " + (format_money(prices[0], product.currency) if prices[0] else "free")
    return {
        "product": product,
        "url": reverse("checkout:page", args=[product.slug]),
        "cover_url": cover_image_url(product.cover_image_path),
        "price": price,
        "seller_name": product.seller.name,
    }


def _first_cover(cards: list[dict[str, Any]]) -> str:
    """The page's Open Graph image: the first product cover it shows ('' when none has one)."""
    return next((absolute_url(card["cover_url"]) for card in cards if card["cover_url"]), "")


def _cacheable(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = f"public, max-age={PAGE_MAX_AGE}"
    return response


@require_GET
@throttle_page("checkout", methods=("GET",))
def front_page(request: HttpRequest) -> HttpResponse:
    """``/``: featured products, then the most recent ones."""
    featured, recent = front_page_products()
    featured_cards, recent_cards = [product_card(p) for p in featured], [product_card(p) for p in recent]
    response = render(
        request,
        "store/front.html",
        {
            "featured": featured_cards,
            "recent": recent_cards,
            "meta_title": "Marketplace — digital goods from independent sellers",
            "meta_description": "E-books, software, courses, gift cards and more, delivered the moment you pay.",
            "canonical_url": settings.SITE_URL + "/",
            "og_image": _first_cover([*featured_cards, *recent_cards]),
        },
    )
    return _cacheable(response)


@require_GET
@throttle_page("checkout", methods=("GET",))
def store_page(request: HttpRequest, seller_slug: str) -> HttpResponse:
    """``/s/<seller_slug>``: the seller's name and profile, support email and active products."""
    seller = User.objects.filter(store_slug=seller_slug, role=Role.SELLER, is_active=True).first()
    if seller is None:
        return render(request, "checkout/not_found.html", status=404)
    products = store_products(seller=seller)
    cards = [product_card(p) for p in products]
    description = markdown_to_plain_text(seller.store_bio) or f"Digital products by {seller.name}."
    response = render(
        request,
        "store/store.html",
        {
            "seller": seller,
            "bio_html": markdown_to_safe_html(seller.store_bio),
            "support_email": seller.support_email or seller.email,
            "cards": cards,
            "meta_title": f"{seller.name} — Store",
            "meta_description": description,
            "canonical_url": settings.SITE_URL + reverse("store:store", args=[seller.store_slug]),
            "og_image": _first_cover(cards),
        },
    )
    return _cacheable(response)


@require_GET
def public_media(request: HttpRequest, path: str) -> HttpResponse | FileResponse:
    """Public files (cover images) from the local default storage. Elsewhere (S3) the storage
    serves them itself and this answers 404. Names are random and never reused: cached for long."""
    storage = public_storage()
    path = posixpath.normpath(path).lstrip("/")
    if not isinstance(storage, FileSystemStorage) or not path.startswith("covers/"):
        raise Http404("Not found.")
    response = serve(request, path, document_root=str(storage.location))
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    response["X-Content-Type-Options"] = "nosniff"
    return response
