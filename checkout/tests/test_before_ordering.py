"""Before ordering: the public catalogue (``GET /api/v1/public/products``), a quote that checks stock
as ``pay`` does, and a discount preview (``GET /api/v1/discounts/validate``)."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from catalog.inventory import CodeRow, codes_import
from catalog.models import DeliveryType, Discount, DiscountKind, ProductStatus
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory
from orders.models import Order

pytestmark = pytest.mark.django_db

CATALOGUE = "/api/v1/public/products"
VALIDATE = "/api/v1/discounts/validate"


@pytest.fixture
def shop():
    seller = SellerFactory(name="Ada's Shop")
    cards = ProductFactory(
        seller=seller, title="Gift cards", delivery_type=DeliveryType.CODE_POOL, delivery_content="", currency="USD"
    )
    ten = VariantFactory(product=cards, name="$10", price=1000, position=0)
    twenty = VariantFactory(product=cards, name="$20", price=2000, position=1)
    codes_import(variant=ten, rows=[CodeRow(i, f"TEN-{i:04d}") for i in range(3)])
    ebook = ProductFactory(seller=seller, title="Python ebook", description="Learn Python", currency="USD")
    limited = VariantFactory(product=ebook, name="Signed", price=500, stock=1)
    return {"seller": seller, "cards": cards, "ten": ten, "twenty": twenty, "ebook": ebook, "limited": limited}


def test_catalogue_lists_active_products_with_price_and_availability(shop):
    ProductFactory(seller=shop["seller"], status=ProductStatus.DRAFT, title="Secret draft")
    other = ProductFactory(title="Someone else's")
    VariantFactory(product=other, price=100)
    body = APIClient().get(CATALOGUE, {"seller": shop["seller"].id}).json()
    assert body["success"] is True
    data = body["data"]
    assert data["pagination"] == {"page": 1, "limit": 20, "total_items": 2, "total_pages": 1}
    by_title = {p["title"]: p for p in data["results"]}
    assert set(by_title) == {"Gift cards", "Python ebook"}
    cards = by_title["Gift cards"]
    assert cards["seller_name"] == "Ada's Shop" and cards["currency"] == "USD"
    assert cards["checkout_url"].endswith(f"/c/{shop['cards'].slug}")
    assert cards["variants"] == [
        {"id": shop["ten"].id, "name": "$10", "price": 1000, "available": True, "stock": 3},
        {"id": shop["twenty"].id, "name": "$20", "price": 2000, "available": False, "stock": 0},
    ]
    assert by_title["Python ebook"]["variants"][0]["stock"] == 1
    assert "TEN-" not in str(body) and "OPEN-SESAME" not in str(body)  # never a code or delivery content


def test_catalogue_search_and_pages(shop):
    client = APIClient()
    found = client.get(CATALOGUE, {"q": "python"}).json()["data"]["results"]
    assert [p["title"] for p in found] == ["Python ebook"]
    page = client.get(CATALOGUE, {"limit": 1, "page": 2}).json()["data"]
    assert page["pagination"]["total_items"] == 2 and len(page["results"]) == 1


def test_catalogue_costs_a_fixed_number_of_queries(shop, django_assert_max_num_queries):
    for n in range(15):
        product = ProductFactory(seller=shop["seller"], delivery_type=DeliveryType.CODE_POOL, delivery_content="")
        VariantFactory(product=product, price=100 + n)
        VariantFactory(product=product, price=200 + n)
    # count, the page of products with their sellers, their variants with the codes counted
    with django_assert_max_num_queries(3):
        response = APIClient().get(CATALOGUE, {"limit": 100})
    assert response.status_code == 200
    assert len(response.json()["data"]["results"]) == 17


def test_catalogue_refuses_unknown_and_repeated_parameters(shop):
    client = APIClient()
    response = client.get(CATALOGUE, {"sellr": "x"})
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"sellr": ["Unknown query parameter."]}
    response = client.get(f"{CATALOGUE}?q=a&q=b")
    assert response.status_code == 400 and "q" in response.json()["error"]["fields"]


# --- quote checks stock like pay -----------------------------------------------------------------


def test_quote_for_more_than_is_left_is_409_like_pay(shop):
    client = APIClient()
    slug = shop["ebook"].slug
    body = {"variant_id": shop["limited"].id, "quantity": 50}
    quote = client.post(f"/api/v1/public/checkout/{slug}/quote", body, format="json")
    assert quote.status_code == 409
    assert quote.json()["error"]["code"] == "out_of_stock"
    pay = client.post(f"/api/v1/public/checkout/{slug}/pay", {**body, "buyer_email": "b@example.com"}, format="json")
    assert pay.status_code == 409 and pay.json()["error"]["code"] == "out_of_stock"
    pool = client.post(
        f"/api/v1/public/checkout/{shop['cards'].slug}/quote",
        {"variant_id": shop["ten"].id, "quantity": 4},
        format="json",
    )
    assert pool.status_code == 409 and pool.json()["error"]["code"] == "out_of_stock"
    ok = client.post(
        f"/api/v1/public/checkout/{shop['cards'].slug}/quote",
        {"variant_id": shop["ten"].id, "quantity": 3},
        format="json",
    )
    assert ok.status_code == 200 and ok.json()["data"]["total_amount"] == 3000
    assert Order.objects.count() == 0


# --- discounts/validate --------------------------------------------------------------------------


def _discount(seller, **kwargs):
    values = {"code": "SPRING", "kind": DiscountKind.PERCENT, "value": 10} | kwargs
    return Discount.objects.create(seller=seller, **values)


def test_validate_previews_a_code_for_items_of_two_products(shop):
    discount = _discount(shop["seller"])
    items = f"{shop['ten'].id}:2,{shop['limited'].id}:1"
    response = APIClient().get(VALIDATE, {"code": "spring", "items": items})
    assert response.status_code == 200, response.json()
    assert response.json()["data"] == {
        "valid": True,
        "code": "SPRING",
        "kind": "percent",
        "value": 10,
        "currency": "USD",
        "subtotal": 2500,
        "discount_amount": 250,
        "total_amount": 2250,
    }
    discount.refresh_from_db()
    assert discount.uses == 0  # a preview counts nothing


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"expires_at": timezone.now() - timedelta(days=1)}, "expired"),
        ({"starts_at": timezone.now() + timedelta(days=1)}, "not active yet"),
        ({"max_uses": 1, "uses": 1}, "used up"),
        ({"min_quantity": 5}, "at least 5"),
        ({"kind": DiscountKind.FIXED, "value": 100, "currency": "EUR"}, "EUR"),
    ],
)
def test_validate_an_unusable_code_is_422_with_the_reason(shop, kwargs, reason):
    _discount(shop["seller"], **kwargs)
    response = APIClient().get(VALIDATE, {"code": "SPRING", "items": f"{shop['ten'].id}:1"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_discount" and reason in error["message"]


def test_validate_unknown_code_and_wrong_product(shop):
    response = APIClient().get(VALIDATE, {"code": "NOPE", "items": f"{shop['ten'].id}:1"})
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_discount"
    scoped = _discount(shop["seller"])
    scoped.products.set([shop["ebook"]])
    response = APIClient().get(VALIDATE, {"code": "SPRING", "items": f"{shop['ten'].id}:1"})
    assert response.status_code == 422 and "does not apply" in response.json()["error"]["message"]


def test_validate_bad_input_is_400(shop):
    client = APIClient()
    stranger = VariantFactory(product=ProductFactory(), price=100)
    cases = [
        ({"code": "SPRING"}, "items"),
        ({"code": "SPRING", "items": "var_missing:1"}, "items"),
        ({"code": "SPRING", "items": f"{shop['ten'].id}:zero"}, "items"),
        ({"code": "SPRING", "items": f"{shop['ten'].id}:1,{stranger.id}:1"}, "items"),
        ({"code": "SPRING", "items": f"{shop['ten'].id}:1", "extra": "1"}, "extra"),
    ]
    for params, field in cases:
        response = client.get(VALIDATE, params)
        assert response.status_code == 400, params
        assert field in response.json()["error"]["fields"], params
