"""Tenant isolation, built from the URL resolver rather than from a list kept by hand.

Every route under /api/v1/ and /dashboard/ that takes an id is called by seller B, with each of its
ids taken from seller A (alone, and mixed with B's own ids), with every method its view answers.
Each call must answer 404 — the envelope of API.md for the API, the not-found page for the
dashboard — and leave A's data exactly as it was. A route with a parameter this module cannot fill
fails ``test_every_id_route_is_known``, so a new endpoint cannot slip past the check.
"""

import itertools
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from catalog.models import Code, Discount, Product, Upload, Variant
from ledger.models import Payout
from marketplace.accounts.models import APIKey
from orders.library import SESSION_KEY
from orders.models import (
    License,
    LicenseActivation,
    Order,
    OrderEvent,
    OrderItem,
    SellerEvent,
    WebhookDelivery,
    WebhookEndpoint,
)
from payments.models import Payment, Refund

from .world import ID_PARAMS, Tenant, build_tenant, jwt_client

pytestmark = pytest.mark.django_db

PARAM = re.compile(r"<(?:\w+:)?(\w+)>")

# Routes whose ids are not a seller's: the buyer's capabilities and the public checkout. Each is
# named with the reason it is out of this check.
NOT_TENANT_SCOPED = {
    "api/v1/public/checkout/<slug:slug>": "the public product page, by slug",
    "api/v1/public/checkout/<slug:slug>/quote": "the public checkout, by slug",
    "api/v1/public/checkout/<slug:slug>/pay": "the public checkout, by slug",
    "api/v1/public/checkout/<slug:slug>/order/<str:order_id>": "the buyer's ord_ id is the capability (checked below)",
    "api/v1/public/checkout/<slug:slug>/order/<str:order_id>/gift/resend": "the buyer's ord_ id is the capability",
    "api/v1/orders/<str:order_id>/resource": "the buyer's ord_ id is the capability",
    "api/v1/payments/initiate/<str:order_id>": "the buyer's ord_ id is the capability",
    "api/v1/payments/webhooks/<str:gateway>": "the gateway's signed webhook, no tenant",
}

# A fixed value for parameters that are not ids.
CONSTANTS = {"action": "block"}

# Bodies that would be accepted for the seller's own object, so that a refusal can only come from
# the ownership check (not from validation running first).
API_BODIES: dict[tuple[str, str], Callable[[Tenant], dict[str, Any]]] = {
    ("patch", "products/<str:product_id>"): lambda t: {"title": "Taken over"},
    ("post", "codes"): lambda t: {"codes": [{"code": "INJECTED-BY-ANOTHER-SELLER-0001"}]},
    ("patch", "discounts/<str:discount_id>"): lambda t: {"value": 99},
    ("patch", "webhook-endpoints/<str:endpoint_id>"): lambda t: {"active": False},
    ("put", "status"): lambda t: {"status": "cancelled"},
    ("put", "delivery"): lambda t: {"delivery_content": "taken over", "content_type": "text", "item_id": t.item.id},
    ("post", "refund"): lambda t: {"reason": "taken over"},
}


def _routes(prefix: str) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []

    def walk(patterns: list[Any], base: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, base + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                found.append((base + str(pattern.pattern), pattern.callback))

    walk(get_resolver().url_patterns, "")
    return [(route, callback) for route, callback in found if route.startswith(prefix) and PARAM.search(route)]


def api_routes() -> list[tuple[str, Any]]:
    return [(r, cb) for r, cb in _routes("api/v1/") if r not in NOT_TENANT_SCOPED]


def dashboard_routes() -> list[tuple[str, Any]]:
    return _routes("dashboard/")


def _methods(callback: Any) -> list[str]:
    view = getattr(callback, "cls", None)
    if view is None:  # a function view: it may answer either
        return ["get", "post"]
    return [m for m in ("get", "post", "put", "patch", "delete") if hasattr(view, m)]


def _fill(route: str, values: dict[str, str]) -> str:
    return PARAM.sub(lambda m: values[m.group(1)], route)


def _mixes(route: str, owner: Tenant, other: Tenant) -> Iterator[tuple[str, dict[str, str]]]:
    """A's ids in every non-empty subset of the route's id parameters, B's in the rest."""
    names = [n for n in PARAM.findall(route) if n not in CONSTANTS]
    for size in range(1, len(names) + 1):
        for chosen in itertools.combinations(names, size):
            values = {**CONSTANTS, **{n: (owner.ids[n] if n in chosen else other.ids[n]) for n in names}}
            yield "+".join(chosen), values


def _body(method: str, route: str, tenant: Tenant) -> dict[str, Any] | None:
    for (m, suffix), make in API_BODIES.items():
        if m == method and route.endswith(suffix):
            return make(tenant)
    return None


def snapshot(tenant: Tenant) -> dict[str, Any]:
    """Everything of a tenant that another could change."""
    seller = tenant.seller
    orders = Order.objects.filter(seller=seller)
    return {
        "products": list(Product.objects.filter(seller=seller).order_by("id").values()),
        "variants": list(Variant.objects.filter(product__seller=seller).order_by("id").values()),
        "codes": list(Code.objects.filter(seller=seller).order_by("id").values()),
        "discounts": list(Discount.objects.filter(seller=seller).order_by("id").values()),
        "endpoints": list(WebhookEndpoint.objects.filter(seller=seller).order_by("id").values()),
        "deliveries": list(WebhookDelivery.objects.filter(endpoint__seller=seller).order_by("id").values()),
        "api_keys": list(APIKey.objects.filter(user=seller).order_by("id").values()),
        "uploads": list(Upload.objects.filter(seller=seller).order_by("id").values()),
        "orders": list(orders.order_by("id").values()),
        "items": list(OrderItem.objects.filter(order__in=orders).order_by("id").values()),
        "events": OrderEvent.objects.filter(order__in=orders).count(),
        "payments": Payment.objects.filter(order__in=orders).count(),
        "refunds": Refund.objects.filter(order__in=orders).count(),
        "seller_events": SellerEvent.objects.filter(seller=seller).count(),
        "payouts": list(Payout.objects.filter(seller=seller).order_by("id").values()),
        "licenses": list(License.objects.filter(product__seller=seller).order_by("id").values()),
        "activations": list(LicenseActivation.objects.filter(license__product__seller=seller).values()),
    }


@pytest.fixture
def tenants(settings: Any, tmp_path: Any) -> tuple[Tenant, Tenant]:
    settings.STORAGES = {
        **settings.STORAGES,
        "private": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }
    return build_tenant("Alpha"), build_tenant("Bravo")


def test_every_id_route_is_known() -> None:
    """Fails when a route takes a parameter this module does not know how to fill."""
    fillable = set(CONSTANTS) | set(ID_PARAMS)
    unknown = {
        route: sorted(set(PARAM.findall(route)) - fillable)
        for route, _ in api_routes() + dashboard_routes()
        if set(PARAM.findall(route)) - fillable
    }
    assert unknown == {}, f"Teach test_isolation how to fill these (or list them as not tenant-scoped): {unknown}"
    assert len(api_routes()) >= 10 and len(dashboard_routes()) >= 10  # the walk found the real routes


def test_the_owner_reaches_each_object(tenants: tuple[Tenant, Tenant]) -> None:
    """The ids are real: the same GETs by their owner succeed, so a 404 below means "not yours"."""
    alpha, _ = tenants
    for route, callback in api_routes():
        if "get" in _methods(callback):
            response = alpha.client.get("/" + _fill(route, {**CONSTANTS, **alpha.ids}))
            assert response.status_code == 200, (route, response.status_code, response.content[:200])


@pytest.mark.parametrize("auth", ["jwt", "api_key"])
def test_api_answers_404_for_another_sellers_ids_and_changes_nothing(
    tenants: tuple[Tenant, Tenant], auth: str, django_capture_on_commit_callbacks: Any
) -> None:
    alpha, bravo = tenants
    client = bravo.client if auth == "jwt" else bravo.key_client()
    before = snapshot(alpha)
    calls = 0
    problems = []
    for route, callback in api_routes():
        for method in _methods(callback):
            for mixed, values in _mixes(route, alpha, bravo):
                url = "/" + _fill(route, values)
                body = _body(method, route, bravo)
                with django_capture_on_commit_callbacks(execute=True):
                    response = getattr(client, method)(url, body, format="json")
                calls += 1
                envelope = response.json() if response.get("Content-Type", "").startswith("application/json") else {}
                if (
                    response.status_code != 404
                    or envelope.get("success") is not False
                    or not envelope.get("error", {}).get("code")
                    or not envelope.get("error", {}).get("message")
                ):
                    problems.append((method.upper(), url, f"A's {mixed}", response.status_code, response.content[:160]))
    assert problems == []
    assert calls >= 30
    assert snapshot(alpha) == before


def test_api_order_number_of_another_seller_is_404(tenants: tuple[Tenant, Tenant]) -> None:
    alpha, bravo = tenants
    before = snapshot(alpha)
    response = bravo.client.get(f"/api/v1/orders/{alpha.order.order_number}")
    assert response.status_code == 404
    assert response.json()["success"] is False
    assert alpha.client.get(f"/api/v1/orders/{alpha.order.order_number}").status_code == 200
    assert snapshot(alpha) == before


def test_api_lists_show_only_the_sellers_own_objects(tenants: tuple[Tenant, Tenant]) -> None:
    alpha, bravo = tenants
    for path, mine in (
        ("/api/v1/products", alpha.product.id),
        ("/api/v1/discounts", alpha.discount.id),
        ("/api/v1/webhook-endpoints", alpha.endpoint.id),
        ("/api/v1/orders", alpha.order.id),
        ("/api/v1/api-keys", alpha.api_key.id),
        ("/api/v1/licenses", alpha.license.id),
    ):
        theirs = bravo.client.get(path).content.decode()
        own = alpha.client.get(path).content.decode()
        assert mine in own and mine not in theirs, path
    export = b"".join(bravo.client.get("/api/v1/orders/export.csv").streaming_content).decode()
    assert alpha.order.order_number not in export and bravo.order.order_number in export


def test_checkout_order_page_needs_the_orders_own_product(tenants: tuple[Tenant, Tenant], api_client: Any) -> None:
    alpha, bravo = tenants
    response = api_client.get(f"/api/v1/public/checkout/{bravo.product.slug}/order/{alpha.order.id}")
    assert response.status_code == 404
    assert api_client.get(f"/api/v1/public/checkout/{alpha.product.slug}/order/{alpha.order.id}").status_code == 200


def test_dashboard_answers_404_for_another_sellers_ids_and_changes_nothing(
    tenants: tuple[Tenant, Tenant], django_capture_on_commit_callbacks: Any
) -> None:
    alpha, bravo = tenants
    browser = Client()
    browser.force_login(bravo.seller)
    before = snapshot(alpha)
    problems = []
    calls = 0
    refused: dict[str, set[int]] = defaultdict(set)
    for route, callback in dashboard_routes():
        for method in _methods(callback):
            for mixed, values in _mixes(route, alpha, bravo):
                url = "/" + _fill(route, values)
                with django_capture_on_commit_callbacks(execute=True):
                    response = getattr(browser, method)(url, {"status": "cancelled", "amount": "1.00"})
                calls += 1
                # 405: the page does not take this method at all, whatever the id (it reveals nothing).
                if response.status_code not in (404, 405):
                    problems.append((method.upper(), url, f"A's {mixed}", response.status_code))
                refused[route].add(response.status_code)
    assert problems == []
    assert {route: codes for route, codes in refused.items() if 404 not in codes} == {}
    assert calls >= 30
    assert snapshot(alpha) == before


def test_dashboard_owner_reaches_each_page(tenants: tuple[Tenant, Tenant]) -> None:
    alpha, _ = tenants
    browser = Client()
    browser.force_login(alpha.seller)
    for route, _callback in dashboard_routes():
        url = "/" + _fill(route, {**CONSTANTS, **alpha.ids})
        if any(word in route for word in ("archive", "revoke", "resend", "delete", "retry", "refund", "roll")):
            continue  # POST-only actions; their GET is not a page
        response = browser.get(url)
        assert response.status_code in (200, 302, 405), (url, response.status_code)
        assert response.status_code != 404, url


def test_buyer_library_shows_only_the_signed_in_emails_purchases(tenants: tuple[Tenant, Tenant]) -> None:
    alpha, bravo = tenants
    browser = Client()
    session = browser.session
    session[SESSION_KEY] = alpha.buyer.email
    session.save()
    page = browser.get("/library").content.decode()
    assert alpha.product.title in page
    assert bravo.product.title not in page and bravo.order.order_number not in page
    response = browser.get(f"/library/items/{bravo.item.id}/download")
    assert response.status_code == 404
    before = snapshot(bravo)
    assert browser.post(f"/library/items/{bravo.item.id}/download").status_code in (404, 405)
    assert snapshot(bravo) == before


def test_buyer_api_lists_only_their_own_orders(tenants: tuple[Tenant, Tenant]) -> None:
    alpha, bravo = tenants
    response = jwt_client(alpha.buyer).get("/api/v1/orders/my-orders")
    assert response.status_code == 200
    ids = [order["id"] for order in response.json()["data"]["results"]]
    assert ids == [alpha.order.id]
    assert bravo.order.id not in response.content.decode()
    # The orders list and detail answer a buyer with the buyer's own purchases only, as the buyer sees
    # them; another buyer's order is not found, and the seller's actions stay refused.
    client = jwt_client(alpha.buyer)
    listed = client.get("/api/v1/orders").json()["data"]["results"]
    assert [order["id"] for order in listed] == [alpha.order.id]
    own = client.get(f"/api/v1/orders/{alpha.order.id}")
    assert own.status_code == 200 and "platform_fee" not in own.json()["data"]
    assert client.get(f"/api/v1/orders/{bravo.order.id}").status_code == 404
    assert client.get(f"/api/v1/orders/{bravo.order.order_number}").status_code == 404
    before = snapshot(alpha)
    moved = client.put(f"/api/v1/orders/{alpha.order.id}/status", {"status": "delivered"}, format="json")
    assert moved.status_code == 403
    assert snapshot(alpha) == before
