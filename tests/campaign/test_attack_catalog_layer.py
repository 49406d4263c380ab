"""Issue 11, part 1: the catalog never imports orders. Each test failed on the code as it was found
(the catalog imported ``orders.fulfillment`` for its delivery settings and partner secrets, and
``orders.analytics`` for a product's revenue).

- no module of the catalog imports ``orders``, directly, inside a function or through another module;
- each delivery type's settings rules live in ``catalog.delivery`` with their messages and field
  paths unchanged; the fulfillment strategies keep only the fulfill half, and both cover the same types;
- the partner signing-secret helpers and ``variant_stock`` are the catalog's;
- ``GET /api/v1/products/{id}/revenue`` is served by orders (same path, same URL name).
"""

import ast
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.urls import resolve
from rest_framework.test import APIClient

import catalog.api
import catalog.selectors
import catalog.serializers
import orders.fulfillment.partner
import orders.services
from catalog.delivery import (
    DeliverySettings,
    delivery_types,
    new_partner_secret,
    partner_for_seller,
    partner_secret,
    partner_secret_of,
    seal_partner_secret,
    validate_delivery,
)
from catalog.inventory import CodeRow, codes_import
from catalog.models import DeliveryType, Product, Upload
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory
from marketplace.core.errors import ValidationFailed
from orders.analytics_api import ProductRevenueApi
from orders.fulfillment import available_types, get_strategy

from .world import jwt_client

ROOT = Path(django_settings.BASE_DIR)
PROJECT_PACKAGES = ("catalog", "orders", "payments", "dashboard", "marketplace")


# --- No import of orders from the catalog --------------------------------------------------------


def _module_file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports_of(module: str, path: Path) -> set[str]:
    """Every project module ``module`` imports at run time, anywhere in the file (function bodies
    included; ``if TYPE_CHECKING:`` blocks excluded, as import-linter's contracts do)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for statement in node.orelse:
                visit(statement)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.add(target)
            # ``from package import module`` imports the module.
            found.update(f"{target}.{alias.name}" for alias in node.names if _module_file(f"{target}.{alias.name}"))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), filename=str(path)))
    return {name for name in found if name.split(".")[0] in PROJECT_PACKAGES}


def _is_excluded(module: str) -> bool:
    parts = module.split(".")
    return "tests" in parts or "migrations" in parts


def _catalog_modules() -> list[str]:
    modules = []
    for path in sorted((ROOT / "catalog").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        module = ".".join(parts)
        if not _is_excluded(module):
            modules.append(module)
    return modules


def test_no_catalog_module_imports_orders_even_inside_a_function() -> None:
    direct = {
        module: sorted(name for name in _imports_of(module, _module_file(module)) if name.split(".")[0] == "orders")  # type: ignore[arg-type]
        for module in _catalog_modules()
    }
    assert {module: names for module, names in direct.items() if names} == {}
    assert "catalog.delivery" in direct and "catalog.management.commands.rotate_code_keys" in direct


def test_nothing_the_catalog_imports_leads_to_orders() -> None:
    """Followed through every project module on the way (the kernel, accounts): none reaches orders,
    payments or the dashboard."""
    seen: dict[str, str | None] = {module: None for module in _catalog_modules()}
    queue = list(seen)
    while queue:
        module = queue.pop()
        path = _module_file(module)
        if path is None:
            continue
        for name in _imports_of(module, path):
            if name not in seen and not _is_excluded(name):
                seen[name] = module
                queue.append(name)
    reached = sorted(name for name in seen if name.split(".")[0] in ("orders", "payments", "dashboard"))
    chains = {name: seen[name] for name in reached}
    assert chains == {}


def test_the_partner_secret_helpers_are_the_catalogs_own() -> None:
    helpers = (new_partner_secret, seal_partner_secret, partner_secret, partner_secret_of, partner_for_seller)
    assert {helper.__module__ for helper in helpers} == {"catalog.delivery"}
    assert not hasattr(catalog.serializers, "partner_secret_of")
    # Fulfillment only reads the secret to sign its calls; making and showing it is the catalog's.
    assert orders.fulfillment.partner.partner_secret is partner_secret
    for name in ("new_partner_secret", "seal_partner_secret", "partner_for_seller"):
        assert not hasattr(orders.fulfillment.partner, name), name
    secret = new_partner_secret()
    sealed = seal_partner_secret(secret)
    options = {"partner": {"url": "https://partner.example/fulfill", "secret": sealed}}
    assert secret.startswith("whsec_") and len(secret) == 50 and sealed != secret
    assert partner_secret(options) == secret
    assert partner_secret({"partner": {"secret": "whsec_cGxhaW4"}}) == "whsec_cGxhaW4"
    assert partner_secret(None) == ""
    assert partner_for_seller(options) == {"url": "https://partner.example/fulfill", "secret_hint": secret[-4:]}
    assert partner_for_seller(options, reveal=True) == {
        "url": "https://partner.example/fulfill",
        "secret_hint": secret[-4:],
        "secret": secret,
    }
    assert partner_for_seller({}) is None
    assert partner_secret_of(Product(delivery_type=DeliveryType.PARTNER_API, delivery_options=options)) == secret
    assert partner_secret_of(Product(delivery_type=DeliveryType.TEXT, delivery_options=options)) == ""


# --- The settings half in the catalog, the fulfill half in orders ---------------------------------


def test_every_delivery_type_has_its_settings_rules_and_its_strategy_in_one_order() -> None:
    expected = ["file", "link", "text", "code_pool", "license_key", "partner_api"]
    assert delivery_types() == expected
    assert available_types() == expected
    assert list(DeliveryType.values) == expected
    for content_type in expected:
        assert not hasattr(get_strategy(content_type), "validate_settings"), content_type
    assert not hasattr(orders.fulfillment, "validate_delivery")


def _refusal(settings: DeliverySettings, seller: Any) -> tuple[str, dict[str, list[str]] | None]:
    with pytest.raises(ValidationFailed) as caught:
        validate_delivery(settings, seller=seller)
    return caught.value.message, caught.value.fields


REFUSALS = [
    (
        DeliverySettings("ebook"),
        "delivery.content_type",
        "Must be one of: file, link, text, code_pool, license_key, partner_api.",
    ),
    (
        DeliverySettings("file", ""),
        "delivery.content",
        "Upload the file first and pass the `url` that the upload returned.",
    ),
    (DeliverySettings("file", "uploads/x/y/z.pdf"), "delivery.content", "No upload of yours has this reference."),
    (DeliverySettings("link", "http://example.com/"), "delivery.content", "Must be a valid https:// URL."),
    (
        DeliverySettings("link", "https://e.com/" + "a" * 2000),
        "delivery.content",
        "The link must be at most 2000 characters.",
    ),
    (DeliverySettings("text", "   "), "delivery.content", "Text to deliver is required."),
    (DeliverySettings("text", "x" * 20001), "delivery.content", "The text must be at most 20000 characters."),
    (
        DeliverySettings("code_pool", "a shared code"),
        "delivery.content",
        "Leave content empty: each buyer gets a code from the variant's pool.",
    ),
    (
        DeliverySettings("license_key", options={"license": ["x"]}),
        "delivery.license",
        "Must be an object with activation_limit and expires_in_days.",
    ),
    (DeliverySettings("license_key", options={"license": {"seats": 1}}), "delivery.license.seats", "Unknown field."),
    (
        DeliverySettings("license_key", options={"license": {"prefix": "acme"}}),
        "delivery.license.prefix",
        "Up to 12 uppercase letters or digits.",
    ),
    (
        DeliverySettings("license_key", options={"license": {"activation_limit": True}}),
        "delivery.license.activation_limit",
        "Must be a whole number from 1 to 100000, or null.",
    ),
    (
        DeliverySettings("license_key", options={"license": {"expires_in_days": 36_501}}),
        "delivery.license.expires_in_days",
        "Must be a whole number from 1 to 36500, or null.",
    ),
    (
        DeliverySettings("partner_api", options={"partner": "https://p.example"}),
        "delivery.partner",
        "Must be an object with a url.",
    ),
    (
        DeliverySettings("partner_api", options={"partner": {"url": "https://p.example", "token": "t"}}),
        "delivery.partner.token",
        "Unknown field.",
    ),
    (
        DeliverySettings("partner_api", options={"partner": {"url": "https://p.example", "secret": "not-sealed"}}),
        "delivery.partner.secret",
        "Leave it out to have one generated.",
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("requested", "field", "message"), REFUSALS, ids=[r[1] + ":" + r[2][:24] for r in REFUSALS])
def test_each_types_settings_are_refused_with_the_same_message_and_field(
    requested: DeliverySettings, field: str, message: str, settings: Any
) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True  # the partner cases are about the shape, not the address
    assert _refusal(requested, SellerFactory()) == (message, {field: [message]})


@pytest.mark.django_db
def test_a_partner_url_is_checked_by_the_outbound_client_when_saved(settings: Any) -> None:
    settings.PARTNER_ALLOW_HTTP = False
    message, fields = _refusal(
        DeliverySettings("partner_api", options={"partner": {"url": "http://p.example/fulfill"}}), SellerFactory()
    )
    assert fields == {"delivery.partner.url": [message]}
    assert "https" in message


@pytest.mark.django_db
def test_accepted_settings_are_cleaned_as_before(settings: Any) -> None:
    seller = SellerFactory()
    Upload.objects.create(seller=seller, key="uploads/s/t/book.pdf", filename="book.pdf", size=3)
    assert validate_delivery(DeliverySettings("file", " uploads/s/t/book.pdf ", " read me "), seller=seller) == (
        DeliverySettings("file", "uploads/s/t/book.pdf", "read me", {})
    )
    assert validate_delivery(
        DeliverySettings("license_key", options={"license": {"prefix": "ACME"}}), seller=seller
    ) == (
        DeliverySettings(
            "license_key", "", "", {"license": {"activation_limit": None, "expires_in_days": None, "prefix": "ACME"}}
        )
    )
    sealed = seal_partner_secret("whsec_a2VwdA")
    kept = validate_delivery(
        DeliverySettings("partner_api", options={"partner": {"url": "https://p.example/f", "secret": sealed}}),
        seller=seller,
    )
    assert kept.options["partner"]["url"] == "https://p.example/f"
    assert partner_secret(kept.options) == "whsec_a2VwdA"


@pytest.mark.django_db
def test_a_refused_delivery_over_the_api_changes_nothing() -> None:
    seller = SellerFactory()
    product = ProductFactory(seller=seller, delivery_type=DeliveryType.TEXT, delivery_content="the key")
    response = jwt_client(seller).patch(
        f"/api/v1/products/{product.id}",
        {"delivery": {"content_type": "code_pool", "content": "shared"}},
        format="json",
    )
    message = "Leave content empty: each buyer gets a code from the variant's pool."
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"delivery.content": [message]}
    product.refresh_from_db()
    assert (product.delivery_type, product.delivery_content) == ("text", "the key")


# --- variant_stock is a catalog read -------------------------------------------------------------


@pytest.mark.django_db
def test_variant_stock_is_the_catalogs_and_checkout_still_finds_it() -> None:
    import checkout.api
    import checkout.views

    assert checkout.api.variant_stock is catalog.selectors.variant_stock
    assert checkout.views.variant_stock is catalog.selectors.variant_stock
    assert not hasattr(orders.services, "variant_stock")
    assert catalog.selectors.variant_stock.__module__ == "catalog.selectors"
    pool = ProductFactory(delivery_type=DeliveryType.CODE_POOL, delivery_content="")
    full, empty = VariantFactory(product=pool, name="Ten"), VariantFactory(product=pool, name="Twenty")
    codes_import(variant=full, rows=[CodeRow(line=n, code=f"CODE-{n:04d}") for n in range(1, 4)])
    text = ProductFactory(delivery_type=DeliveryType.TEXT)
    counted, unlimited = VariantFactory(product=text, stock=7), VariantFactory(product=text, stock=None)
    assert catalog.selectors.variant_stock(pool) == {full.id: 3, empty.id: 0}
    assert catalog.selectors.variant_stock(text) == {counted.id: 7, unlimited.id: None}


# --- A product's revenue is orders' figure ------------------------------------------------------


def test_the_revenue_route_is_served_by_orders_with_the_same_path_and_name() -> None:
    match = resolve("/api/v1/products/prd_x/revenue")
    assert match.func.view_class is ProductRevenueApi  # type: ignore[attr-defined]
    assert (match.url_name, match.kwargs) == ("product-revenue", {"product_id": "prd_x"})
    assert not hasattr(catalog.api, "ProductRevenueApi")


@pytest.mark.django_db
def test_another_sellers_revenue_is_not_found_and_nothing_changes() -> None:
    owner, stranger = SellerFactory(), SellerFactory()
    product = ProductFactory(seller=owner)
    before = Product.objects.filter(pk=product.pk).values().get()
    theirs = jwt_client(stranger).get(f"/api/v1/products/{product.id}/revenue")
    assert theirs.status_code == 404
    assert theirs.json() == {"success": False, "error": {"code": "not_found", "message": "Product not found."}}
    assert APIClient().get(f"/api/v1/products/{product.id}/revenue").status_code == 401
    assert Product.objects.filter(pk=product.pk).values().get() == before
    mine = jwt_client(owner).get(f"/api/v1/products/{product.id}/revenue")
    assert mine.status_code == 200
    assert mine.json()["data"] == {
        "product_id": product.id,
        "currency": product.currency,
        "total_revenue": 0,
        "order_count": 0,
        "paid_order_count": 0,
        "conversion_rate": 0.0,
    }
