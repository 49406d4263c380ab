import json
import re
from typing import Any, cast

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from catalog.models import DeliveryType, Product, ProductStatus, Upload, Variant
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.services import api_key_create
from marketplace.core.money import MAX_AMOUNT

from .conftest import jwt_client

pytestmark = pytest.mark.django_db

PRODUCTS = "/api/v1/products"
TEXT_DELIVERY = {
    "content_type": "text",
    "content": "Your key: ABCD-1234",
    "redemption_instructions": "Enter it in the app.",
}
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def create_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "The Django Handbook",
        "description": "Everything about Django.",
        "currency": "USD",
        "price": 1999,
        "delivery": TEXT_DELIVERY,
    }
    body.update(overrides)
    return body


def product_with_variants(seller: Any, prices: tuple[int, ...] = (1999,), **kwargs: Any) -> Product:
    product = cast(Product, ProductFactory(seller=seller, **kwargs))
    for position, price in enumerate(prices):
        VariantFactory(product=product, name=f"Tier {position}", price=price, position=position)
    return product


def assert_error(response: Any, status: int, code: str, fields: list[str] | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is False
    assert set(body["error"]) <= {"code", "message", "fields"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if fields is not None:
        assert sorted(body["error"]["fields"]) == sorted(fields)
        for messages in body["error"]["fields"].values():
            assert messages and all(isinstance(m, str) and m for m in messages)
    return body["error"]


# --- Create ---------------------------------------------------------------------------------


def test_create_with_price_makes_one_standard_variant(seller_client: APIClient, seller: Any) -> None:
    response = seller_client.post(PRODUCTS, create_body(), format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["success"] is True
    data = body["data"]
    product = Product.objects.get()
    variant = product.variants.get()
    assert data == {
        "id": product.id,
        "slug": "the-django-handbook",
        "title": "The Django Handbook",
        "description": "Everything about Django.",
        "status": "draft",
        "currency": "USD",
        "price": 1999,
        "variants": [{"id": variant.id, "name": "Standard", "price": 1999, "stock": None, "delivery": None}],
        "delivery": {
            "content_type": "text",
            "content": "Your key: ABCD-1234",
            "redemption_instructions": "Enter it in the app.",
            "license": None,
            "partner": None,
        },
        "cover_image": "",
        "cover_image_url": "",
        "download_limit": None,
        "checkout_url": "http://127.0.0.1:8000/c/the-django-handbook",
        "created_at": data["created_at"],
        "updated_at": data["updated_at"],
    }
    assert product.id.startswith("prd_") and variant.id.startswith("var_")
    assert ISO_UTC.match(data["created_at"]) and ISO_UTC.match(data["updated_at"])
    assert product.seller == seller
    assert product.delivery_type == DeliveryType.TEXT


def test_create_with_variants(seller_client: APIClient) -> None:
    body = create_body(
        price=None,
        status="active",
        variants=[{"name": "Basic", "price": 1000}, {"name": "Pro", "price": 5000, "stock": 3}],
    )
    del body["price"]
    response = seller_client.post(PRODUCTS, body, format="json")

    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert data["status"] == "active"
    assert data["price"] == 1000
    assert [(v["name"], v["price"], v["stock"]) for v in data["variants"]] == [("Basic", 1000, None), ("Pro", 5000, 3)]
    assert list(Variant.objects.order_by("position").values_list("name", "price", "stock", "position")) == [
        ("Basic", 1000, None, 0),
        ("Pro", 5000, 3, 1),
    ]


def test_price_zero_and_max_amount_are_allowed(seller_client: APIClient) -> None:
    assert seller_client.post(PRODUCTS, create_body(title="Free", price=0), format="json").status_code == 201
    response = seller_client.post(PRODUCTS, create_body(title="Dear", price=MAX_AMOUNT), format="json")
    assert response.status_code == 201
    assert response.json()["data"]["price"] == MAX_AMOUNT


def test_zero_decimal_and_three_decimal_currencies(seller_client: APIClient) -> None:
    for currency, price in (("UGX", 50000), ("KWD", 1234), ("JPY", 500)):
        response = seller_client.post(
            PRODUCTS, create_body(title=f"In {currency}", currency=currency, price=price), format="json"
        )
        assert response.status_code == 201
        assert (response.json()["data"]["currency"], response.json()["data"]["price"]) == (currency, price)


@pytest.mark.parametrize(
    ("price", "message_part"),
    [
        (19.99, "whole number"),
        (1999.0, "whole number"),
        ("1999", "whole number"),
        (True, "whole number"),
        (-1, "between 0 and"),
        (MAX_AMOUNT + 1, "between 0 and"),
        (None, "may not be null"),
    ],
)
def test_create_rejects_bad_prices(seller_client: APIClient, price: Any, message_part: str) -> None:
    response = seller_client.post(PRODUCTS, create_body(price=price), format="json")

    error = assert_error(response, 400, "validation_error", ["price"])
    assert message_part in error["fields"]["price"][0]
    assert Product.objects.count() == 0
    assert Variant.objects.count() == 0


def test_create_rejects_bad_variant_price_with_indexed_field(seller_client: APIClient) -> None:
    body = create_body(variants=[{"name": "A", "price": 100}, {"name": "B", "price": 12.5}])
    del body["price"]

    assert_error(seller_client.post(PRODUCTS, body, format="json"), 400, "validation_error", ["variants.1.price"])
    assert Product.objects.count() == 0


@pytest.mark.parametrize(
    ("variants", "field"),
    [
        ([], "variants"),
        ([{"name": "A"}], "variants.0.price"),
        ([{"price": 100}], "variants.0.name"),
        ([{"name": "A", "price": 1}, {"name": "a", "price": 2}], "variants.1.name"),
        ([{"id": "var_x", "name": "A", "price": 1}], "variants.0.id"),
        ([{"name": "A", "price": 1, "stock": -1}], "variants.0.stock"),
        ([{"name": "A", "price": 1, "colour": "red"}], "variants.0.colour"),
    ],
)
def test_create_rejects_bad_variants(seller_client: APIClient, variants: list[Any], field: str) -> None:
    body = create_body(variants=variants)
    del body["price"]

    assert_error(seller_client.post(PRODUCTS, body, format="json"), 400, "validation_error", [field])
    assert Product.objects.count() == 0
    assert Variant.objects.count() == 0


def test_create_needs_exactly_one_of_price_and_variants(seller_client: APIClient) -> None:
    both = create_body(variants=[{"name": "A", "price": 1}])
    neither = create_body()
    del neither["price"]

    assert (
        "not both"
        in assert_error(seller_client.post(PRODUCTS, both, format="json"), 400, "validation_error", ["price"])[
            "message"
        ]
    )
    assert_error(seller_client.post(PRODUCTS, neither, format="json"), 400, "validation_error", ["price"])
    assert Product.objects.count() == 0


def test_missing_fields_listed_in_the_envelope(seller_client: APIClient) -> None:
    response = seller_client.post(PRODUCTS, {}, format="json")

    error = assert_error(response, 400, "validation_error", ["title", "currency", "delivery"])
    assert error["fields"]["title"] == ["This field is required."]
    assert Product.objects.count() == 0


@pytest.mark.parametrize(
    ("currency", "message"),
    [
        ("usd", "Use the uppercase ISO 4217 code: USD."),
        ("ABC", "'ABC' is not an ISO 4217 currency code."),
        ("XAU", "'XAU' is not an ISO 4217 currency code."),
    ],
)
def test_create_rejects_bad_currency(seller_client: APIClient, currency: str, message: str) -> None:
    error = assert_error(
        seller_client.post(PRODUCTS, create_body(currency=currency), format="json"),
        400,
        "validation_error",
        ["currency"],
    )
    assert error["fields"]["currency"] == [message]
    assert Product.objects.count() == 0


def test_unknown_field_is_rejected(seller_client: APIClient) -> None:
    assert_error(
        seller_client.post(PRODUCTS, create_body(prices=[1]), format="json"), 400, "validation_error", ["prices"]
    )
    assert Product.objects.count() == 0


def test_blank_title_rejected(seller_client: APIClient) -> None:
    assert_error(
        seller_client.post(PRODUCTS, create_body(title="   "), format="json"), 400, "validation_error", ["title"]
    )
    assert Product.objects.count() == 0


def test_bad_status_rejected(seller_client: APIClient) -> None:
    assert_error(
        seller_client.post(PRODUCTS, create_body(status="live"), format="json"), 400, "validation_error", ["status"]
    )
    assert Product.objects.count() == 0


def test_malformed_json_is_invalid_json(seller_client: APIClient) -> None:
    response = seller_client.post(PRODUCTS, data='{"title": "x",', content_type="application/json")

    assert_error(response, 400, "invalid_json")
    assert Product.objects.count() == 0


def test_form_encoded_body_is_unsupported_media_type(seller_client: APIClient) -> None:
    response = seller_client.post(PRODUCTS, data="title=x", content_type="application/x-www-form-urlencoded")

    assert_error(response, 415, "unsupported_media_type")
    assert Product.objects.count() == 0


# --- Slugs ----------------------------------------------------------------------------------


def test_generated_slugs_get_numeric_suffixes(seller_client: APIClient, other_seller: Any) -> None:
    ProductFactory(seller=other_seller, slug="my-ebook")

    first = seller_client.post(PRODUCTS, create_body(title="My eBook!"), format="json").json()["data"]
    second = seller_client.post(PRODUCTS, create_body(title="My  eBook"), format="json").json()["data"]

    assert (first["slug"], second["slug"]) == ("my-ebook-2", "my-ebook-3")
    assert second["checkout_url"] == "http://127.0.0.1:8000/c/my-ebook-3"


def test_generated_slug_for_title_without_latin_letters(seller_client: APIClient) -> None:
    data = seller_client.post(PRODUCTS, create_body(title="Café ☕ Guide"), format="json").json()["data"]
    other = seller_client.post(PRODUCTS, create_body(title="日本語"), format="json").json()["data"]

    assert data["slug"] == "cafe-guide"
    assert other["slug"] == "product"


def test_generated_slug_is_cut_to_80_characters(seller_client: APIClient) -> None:
    title = "word " * 39  # slugified: 194 characters
    first = seller_client.post(PRODUCTS, create_body(title=title), format="json").json()["data"]["slug"]
    second = seller_client.post(PRODUCTS, create_body(title=title), format="json").json()["data"]["slug"]

    assert len(first) <= 80 and not first.endswith("-")
    assert len(second) <= 80 and second.endswith("-2")


def test_explicit_slug_is_used(seller_client: APIClient) -> None:
    data = seller_client.post(PRODUCTS, create_body(slug="handbook-2026"), format="json").json()["data"]

    assert data["slug"] == "handbook-2026"


def test_taken_slug_is_409(seller_client: APIClient, other_seller: Any) -> None:
    ProductFactory(seller=other_seller, slug="taken")

    error = assert_error(seller_client.post(PRODUCTS, create_body(slug="taken"), format="json"), 409, "slug_taken")
    assert error["fields"] == {"slug": ["This slug is already in use."]}
    assert Product.objects.count() == 1


@pytest.mark.parametrize(
    "slug", ["Has-Caps", "under_score", "space here", "-lead", "trail-", "double--dash", "é", "a" * 81]
)
def test_invalid_slugs_rejected(seller_client: APIClient, slug: str) -> None:
    assert_error(seller_client.post(PRODUCTS, create_body(slug=slug), format="json"), 400, "validation_error", ["slug"])
    assert Product.objects.count() == 0


# --- Delivery -------------------------------------------------------------------------------


def test_link_delivery_must_be_https(seller_client: APIClient) -> None:
    bad = create_body(delivery={"content_type": "link", "content": "http://example.com/course"})
    good = create_body(delivery={"content_type": "link", "content": "https://example.com/course"})

    error = assert_error(
        seller_client.post(PRODUCTS, bad, format="json"), 400, "validation_error", ["delivery.content"]
    )
    assert error["fields"]["delivery.content"] == ["Must be a valid https:// URL."]
    assert Product.objects.count() == 0
    response = seller_client.post(PRODUCTS, good, format="json")
    assert response.status_code == 201
    assert response.json()["data"]["delivery"]["content"] == "https://example.com/course"


def test_text_delivery_must_not_be_empty(seller_client: APIClient) -> None:
    body = create_body(delivery={"content_type": "text", "content": "   "})

    assert_error(seller_client.post(PRODUCTS, body, format="json"), 400, "validation_error", ["delivery.content"])
    assert Product.objects.count() == 0


def test_unknown_or_missing_delivery_type(seller_client: APIClient) -> None:
    unknown = create_body(delivery={"content_type": "carrier_pigeon", "content": "x"})
    missing = create_body(delivery={"content": "x"})

    for body in (unknown, missing):
        assert_error(
            seller_client.post(PRODUCTS, body, format="json"), 400, "validation_error", ["delivery.content_type"]
        )
    assert Product.objects.count() == 0


def test_file_delivery_needs_an_upload_of_the_seller(seller_client: APIClient, seller: Any, other_seller: Any) -> None:
    mine = Upload.objects.create(
        seller=seller, key="uploads/me/t/book.pdf", filename="book.pdf", size=3, content_type="application/pdf"
    )
    theirs = Upload.objects.create(
        seller=other_seller, key="uploads/them/t/book.pdf", filename="book.pdf", size=3, content_type="application/pdf"
    )

    error = assert_error(
        seller_client.post(
            PRODUCTS, create_body(delivery={"content_type": "file", "content": theirs.key}), format="json"
        ),
        400,
        "validation_error",
        ["delivery.content"],
    )
    assert error["fields"]["delivery.content"] == ["No upload of yours has this reference."]
    assert Product.objects.count() == 0

    response = seller_client.post(
        PRODUCTS, create_body(delivery={"content_type": "file", "content": mine.key}), format="json"
    )
    assert response.status_code == 201
    assert response.json()["data"]["delivery"]["content"] == mine.key
    assert Product.objects.get().delivery_type == "file"


# --- Permissions ----------------------------------------------------------------------------


def test_anonymous_is_401(api_client: APIClient, db: Any) -> None:
    for response in (api_client.get(PRODUCTS), api_client.post(PRODUCTS, create_body(), format="json")):
        assert_error(response, 401, "not_authenticated")
        assert response["WWW-Authenticate"] == "Bearer"
    assert Product.objects.count() == 0


def test_buyer_is_403(buyer: Any) -> None:
    client = jwt_client(buyer)

    assert_error(client.get(PRODUCTS), 403, "permission_denied")
    assert_error(client.post(PRODUCTS, create_body(), format="json"), 403, "permission_denied")
    assert Product.objects.count() == 0


def test_api_key_works_for_create_and_list(seller: Any) -> None:
    _key, raw = api_key_create(user=seller, name="CI")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")

    created = client.post(PRODUCTS, create_body(), format="json")
    listed = client.get(PRODUCTS)

    assert created.status_code == 201
    assert [p["id"] for p in listed.json()["data"]["results"]] == [created.json()["data"]["id"]]


def test_bad_token_is_401(db: Any) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-jwt")

    assert_error(client.get(PRODUCTS), 401, "not_authenticated")


# --- List -----------------------------------------------------------------------------------


def test_list_shows_only_own_products_paginated(seller_client: APIClient, seller: Any, other_seller: Any) -> None:
    mine = [product_with_variants(seller, (100 * (i + 1),)) for i in range(3)]
    product_with_variants(other_seller)

    response = seller_client.get(PRODUCTS, {"limit": 2})

    assert response.status_code == 200
    data = response.json()["data"]
    assert data["pagination"] == {"page": 1, "limit": 2, "total_items": 3, "total_pages": 2}
    assert [p["id"] for p in data["results"]] == [mine[2].id, mine[1].id]
    assert data["results"][0]["price"] == 300
    page2 = seller_client.get(PRODUCTS, {"limit": 2, "page": 2}).json()["data"]
    assert [p["id"] for p in page2["results"]] == [mine[0].id]


def test_list_filters_by_status(seller_client: APIClient, seller: Any) -> None:
    product_with_variants(seller, status=ProductStatus.DRAFT)
    active = product_with_variants(seller, status=ProductStatus.ACTIVE)

    data = seller_client.get(PRODUCTS, {"status": "active"}).json()["data"]

    assert [p["id"] for p in data["results"]] == [active.id]
    assert data["pagination"]["total_items"] == 1


def test_list_rejects_unknown_status_and_bad_limit(seller_client: APIClient) -> None:
    assert_error(seller_client.get(PRODUCTS, {"status": "live"}), 400, "validation_error", ["status"])
    assert_error(seller_client.get(PRODUCTS, {"limit": 101}), 400, "validation_error", ["limit"])


def test_list_query_count_is_constant(seller: Any, seller_client: APIClient) -> None:
    def count_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = seller_client.get(PRODUCTS, {"limit": 100})
        assert response.status_code == 200
        return len(queries)

    for _ in range(2):
        product_with_variants(seller, (100, 200))
    with_two = count_queries()
    for _ in range(8):
        product_with_variants(seller, (100, 200, 300))
    with_ten = count_queries()

    assert with_ten == with_two
    assert with_two <= 4  # user, count, products, variants


# --- Detail ---------------------------------------------------------------------------------


def test_get_own_product(seller_client: APIClient, seller: Any) -> None:
    product = product_with_variants(seller, (500, 900))

    data = seller_client.get(f"{PRODUCTS}/{product.id}").json()["data"]

    assert data["id"] == product.id
    assert data["price"] == 500
    assert [v["price"] for v in data["variants"]] == [500, 900]


def test_another_sellers_product_is_404_everywhere(seller_client: APIClient, other_seller: Any) -> None:
    product = product_with_variants(other_seller, title="Theirs")
    url = f"{PRODUCTS}/{product.id}"

    for response in (
        seller_client.get(url),
        seller_client.patch(url, {"title": "Mine now"}, format="json"),
        seller_client.delete(url),
    ):
        error = assert_error(response, 404, "not_found")
        assert error["message"] == "Product not found."
    product.refresh_from_db()
    assert product.title == "Theirs"
    assert Product.objects.filter(id=product.id).exists()


def test_missing_product_is_404(seller_client: APIClient) -> None:
    assert_error(seller_client.get(f"{PRODUCTS}/prd_nope"), 404, "not_found")


# --- Update ---------------------------------------------------------------------------------


def test_patch_simple_fields(seller_client: APIClient, seller: Any) -> None:
    product = product_with_variants(seller, status=ProductStatus.DRAFT)

    response = seller_client.patch(
        f"{PRODUCTS}/{product.id}",
        {"title": "New title", "description": "New text", "status": "active", "slug": "new-slug"},
        format="json",
    )

    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert (data["title"], data["description"], data["status"], data["slug"]) == (
        "New title",
        "New text",
        "active",
        "new-slug",
    )
    assert data["checkout_url"] == "http://127.0.0.1:8000/c/new-slug"
    product.refresh_from_db()
    assert (product.title, product.status, product.slug) == ("New title", "active", "new-slug")


def test_patch_price_of_single_variant_product(seller_client: APIClient, seller: Any) -> None:
    product = product_with_variants(seller, (1000,))

    data = seller_client.patch(f"{PRODUCTS}/{product.id}", {"price": 2500}, format="json").json()["data"]

    assert data["price"] == 2500
    assert product.variants.get().price == 2500


def test_patch_price_refused_with_several_variants(seller_client: APIClient, seller: Any) -> None:
    product = product_with_variants(seller, (1000, 2000))

    assert_error(
        seller_client.patch(f"{PRODUCTS}/{product.id}", {"price": 5}, format="json"), 400, "validation_error", ["price"]
    )
    assert sorted(product.variants.values_list("price", flat=True)) == [1000, 2000]


def test_patch_rejects_float_price(seller_client: APIClient, seller: Any) -> None:
    product = product_with_variants(seller, (1000,))

    assert_error(
        seller_client.patch(f"{PRODUCTS}/{product.id}", {"price": 10.5}, format="json"),
        400,
        "validation_error",
        ["price"],
    )
    assert product.variants.get().price == 1000


def test_patch_slug_taken_is_409(seller_client: APIClient, seller: Any, other_seller: Any) -> None:
    ProductFactory(seller=other_seller, slug="taken")
    product = product_with_variants(seller, slug="mine", title="Original")

    assert_error(
        seller_client.patch(f"{PRODUCTS}/{product.id}", {"slug": "taken", "title": "X"}, format="json"),
        409,
        "slug_taken",
    )
    product.refresh_from_db()
    assert (product.slug, product.title) == ("mine", "Original")


def test_patch_same_slug_is_fine(seller_client: APIClient, seller: Any) -> None:
    product = product_with_variants(seller, slug="mine")

    assert seller_client.patch(f"{PRODUCTS}/{product.id}", {"slug": "mine"}, format="json").status_code == 200


def test_patch_variants_updates_creates_and_removes(seller_client: APIClient, seller: Any) -> None:
    product = product_with_variants(seller, (100, 200, 300))
    first, second, third = product.variants.order_by("position")

    response = seller_client.patch(
        f"{PRODUCTS}/{product.id}",
        {
            "variants": [
                {"id": third.id, "price": 333},
                {"name": "New", "price": 50, "stock": 10},
                {"id": first.id, "name": "Renamed"},
            ]
        },
        format="json",
    )

    assert response.status_code == 200, response.content
    data = response.json()["data"]
    new = Variant.objects.get(name="New")
    assert data["variants"] == [
        {"id": third.id, "name": "Tier 2", "price": 333, "stock": None, "delivery": None},
        {"id": new.id, "name": "New", "price": 50, "stock": 10, "delivery": None},
        {"id": first.id, "name": "Renamed", "price": 100, "stock": None, "delivery": None},
    ]
    assert data["price"] == 333
    assert not Variant.objects.filter(id=second.id).exists()


def test_patch_cannot_remove_a_variant_with_orders(seller_client: APIClient, seller: Any, make_order: Any) -> None:
    product = product_with_variants(seller, (100, 200))
    sold, unsold = product.variants.order_by("position")
    make_order(product, sold)

    response = seller_client.patch(
        f"{PRODUCTS}/{product.id}", {"title": "Changed", "variants": [{"id": unsold.id, "price": 1}]}, format="json"
    )

    error = assert_error(response, 409, "variant_has_orders")
    assert sold.id in error["message"]
    product.refresh_from_db()
    assert product.title != "Changed"
    assert sorted(Variant.objects.filter(product=product).values_list("id", "price")) == sorted(
        [(sold.id, 100), (unsold.id, 200)]
    )


def test_patch_variant_with_orders_can_be_renamed_and_repriced(
    seller_client: APIClient, seller: Any, make_order: Any
) -> None:
    product = product_with_variants(seller, (100,))
    sold = product.variants.get()
    make_order(product, sold)

    response = seller_client.patch(
        f"{PRODUCTS}/{product.id}", {"variants": [{"id": sold.id, "name": "Gold", "price": 150}]}, format="json"
    )

    assert response.status_code == 200
    sold.refresh_from_db()
    assert (sold.name, sold.price) == ("Gold", 150)


def test_patch_variant_of_another_product_is_rejected(seller_client: APIClient, seller: Any) -> None:
    product = product_with_variants(seller, (100,))
    elsewhere = product_with_variants(seller, (999,)).variants.get()

    response = seller_client.patch(
        f"{PRODUCTS}/{product.id}", {"variants": [{"id": elsewhere.id, "price": 1}]}, format="json"
    )

    assert_error(response, 400, "validation_error", ["variants.0.id"])
    elsewhere.refresh_from_db()
    assert (elsewhere.price, elsewhere.product_id) == (999, elsewhere.product_id)
    assert product.variants.count() == 1


def test_patch_empty_variants_rejected(seller_client: APIClient, seller: Any) -> None:
    product = product_with_variants(seller, (100,))

    assert_error(
        seller_client.patch(f"{PRODUCTS}/{product.id}", {"variants": []}, format="json"),
        400,
        "validation_error",
        ["variants"],
    )
    assert product.variants.count() == 1


def test_patch_delivery_is_merged_and_validated(seller_client: APIClient, seller: Any) -> None:
    product = product_with_variants(seller)
    url = f"{PRODUCTS}/{product.id}"

    data = seller_client.patch(url, {"delivery": {"redemption_instructions": "Paste it."}}, format="json").json()[
        "data"
    ]
    assert data["delivery"]["content"] == product.delivery_content
    assert data["delivery"]["redemption_instructions"] == "Paste it."

    bad = seller_client.patch(url, {"delivery": {"content_type": "link", "content": "ftp://x"}}, format="json")
    assert_error(bad, 400, "validation_error", ["delivery.content"])
    product.refresh_from_db()
    assert product.delivery_type == "text"

    switched = seller_client.patch(
        url, {"delivery": {"content_type": "link", "content": "https://x.example/a"}}, format="json"
    )
    assert switched.json()["data"]["delivery"] == {
        "content_type": "link",
        "content": "https://x.example/a",
        "redemption_instructions": "",
        "license": None,
        "partner": None,
    }


def test_patch_currency_locked_once_ordered(seller_client: APIClient, seller: Any, make_order: Any) -> None:
    product = product_with_variants(seller)
    url = f"{PRODUCTS}/{product.id}"

    assert seller_client.patch(url, {"currency": "EUR"}, format="json").json()["data"]["currency"] == "EUR"
    make_order(product)
    assert_error(seller_client.patch(url, {"currency": "GBP"}, format="json"), 409, "currency_locked")
    product.refresh_from_db()
    assert product.currency == "EUR"


def test_patch_ignores_echoed_read_only_fields(seller_client: APIClient, seller: Any) -> None:
    product = product_with_variants(seller)
    url = f"{PRODUCTS}/{product.id}"

    response = seller_client.patch(url, {"id": "prd_other", "checkout_url": "x", "title": "T"}, format="json")

    assert response.status_code == 200
    assert response.json()["data"]["id"] == product.id


def test_patch_malformed_json(seller_client: APIClient, seller: Any) -> None:
    product = product_with_variants(seller)

    response = seller_client.generic("PATCH", f"{PRODUCTS}/{product.id}", "{not json", content_type="application/json")

    assert_error(response, 400, "invalid_json")


# --- Delete ---------------------------------------------------------------------------------


def test_delete_without_orders_deletes(seller_client: APIClient, seller: Any) -> None:
    product = product_with_variants(seller, (1, 2))

    response = seller_client.delete(f"{PRODUCTS}/{product.id}")

    assert response.status_code == 204
    assert response.content == b""
    assert not Product.objects.filter(id=product.id).exists()
    assert Variant.objects.count() == 0


def test_delete_with_orders_archives(seller_client: APIClient, seller: Any, make_order: Any) -> None:
    product = product_with_variants(seller, status=ProductStatus.ACTIVE)
    make_order(product)

    response = seller_client.delete(f"{PRODUCTS}/{product.id}")

    assert response.status_code == 200
    data = response.json()["data"]
    assert (data["id"], data["status"]) == (product.id, "archived")
    product.refresh_from_db()
    assert product.status == ProductStatus.ARCHIVED
    assert product.variants.count() == 1


def test_delete_by_buyer_is_403(buyer: Any, seller: Any) -> None:
    product = product_with_variants(seller)

    assert_error(jwt_client(buyer).delete(f"{PRODUCTS}/{product.id}"), 403, "permission_denied")
    assert Product.objects.filter(id=product.id).exists()


def test_success_envelope_is_json(seller_client: APIClient, seller: Any) -> None:
    product = product_with_variants(seller)

    response = seller_client.get(f"{PRODUCTS}/{product.id}")

    assert response["Content-Type"] == "application/json"
    assert set(json.loads(response.content)) == {"success", "data"}
