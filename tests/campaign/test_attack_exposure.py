"""Issue 10, the exposure items: what an outsider or a leaked credential can read or make the
server do. Each test failed on the code as the attack found it.

- 5: a licence key answers the licence, its product and variant, never the order (a capability).
- 6: an anonymous checkout cannot attach ``webhook_urls`` (the server would call them, signed).
- 7: lists carry no codes, keys or delivery content; a seller's read of one order's codes is recorded.
- 12: ``fulfillment_input`` is small and flat: at most 20 string values, 2 KB in all.
- 17: a partner signing secret is shown once, like every other secret.
"""

import json
from typing import Any

import pytest
from rest_framework.test import APIClient

from catalog.inventory import CodeRow, codes_import
from catalog.models import DeliveryType
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory
from orders.models import License, LicenseActivation, Order, OrderEvent
from orders.tests.helpers import make_order, pay

from .world import jwt_client

pytestmark = pytest.mark.django_db


# --- 5: licence keys answer the licence, not the order ------------------------------------------


@pytest.fixture
def licensed(django_capture_on_commit_callbacks: Any) -> tuple[Order, License]:
    seller = SellerFactory()
    product = ProductFactory(
        seller=seller,
        slug="exposure-app",
        delivery_type=DeliveryType.LICENSE_KEY,
        delivery_content="",
        delivery_options={"license": {"activation_limit": 3}},
    )
    VariantFactory(product=product, name="Team", price=4900)
    order = pay(make_order(product), django_capture_on_commit_callbacks)
    assert order.status == "delivered"
    return order, License.objects.get()


def test_licence_verify_activate_deactivate_answer_no_order_id(licensed: tuple[Order, License]) -> None:
    order, lic = licensed
    client = APIClient()
    expected = {"license_id": lic.id, "product_id": lic.product_id, "variant_id": order.items.get().variant_id}
    verify = client.post(
        "/api/v1/licenses/verify", {"product_id": lic.product_id, "license_key": lic.key}, format="json"
    )
    activate = client.post(
        "/api/v1/licenses/activate", {"license_key": lic.key, "instance_name": "laptop"}, format="json"
    )
    assert (verify.status_code, activate.status_code) == (200, 201)
    deactivate = client.post(
        "/api/v1/licenses/deactivate",
        {"license_key": lic.key, "activation_id": activate.json()["data"]["activation_id"]},
        format="json",
    )
    assert deactivate.status_code == 200
    for response in (verify, activate, deactivate):
        data = response.json()["data"]
        assert {name: data[name] for name in expected} == expected
        assert "order_id" not in data
        assert order.id not in response.content.decode()  # the buyer's capability, nowhere in the body
    assert set(verify.json()["data"]) == {
        "valid",
        "status",
        "uses",
        "activation_limit",
        "activations",
        "license_id",
        "product_id",
        "variant_id",
        "expires_at",
    }


def test_licence_schema_documents_license_id_not_order_id() -> None:
    schema = APIClient().get("/api/schema/?format=json")
    assert schema.status_code == 200
    properties = json.loads(schema.content)["components"]["schemas"]["LicenseStatus"]["properties"]
    assert {"license_id", "product_id", "variant_id"} <= set(properties)
    assert "order_id" not in properties


def test_unknown_licence_key_is_one_generic_404_and_activates_nothing(licensed: tuple[Order, License]) -> None:
    response = APIClient().post(
        "/api/v1/licenses/activate",
        {"license_key": "AAAAA-BBBBB-CCCCC-DDDDD-EEEEE", "instance_name": "laptop"},
        format="json",
    )
    assert response.status_code == 404
    assert response.json()["error"] == {"code": "license_not_found", "message": "This license key is not valid."}
    assert LicenseActivation.objects.count() == 0


# --- 6 and 12: what an anonymous checkout may attach ---------------------------------------------


@pytest.fixture
def shop_product() -> Any:
    product = ProductFactory(seller=SellerFactory(), slug="exposure-text", delivery_content="Thanks!")
    VariantFactory(product=product, name="Standard", price=500)
    return product


def pay_body(**extra: Any) -> dict[str, Any]:
    return {"buyer_email": "buyer@example.com", "init_payment": False, **extra}


def test_anonymous_pay_with_webhook_urls_is_400_and_creates_nothing(shop_product: Any) -> None:
    before = Order.objects.count()
    response = APIClient().post(
        f"/api/v1/public/checkout/{shop_product.slug}/pay",
        pay_body(webhook_urls=["https://reflect.example/hook"]),
        format="json",
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert list(error["fields"]) == ["webhook_urls"]
    assert Order.objects.count() == before


def test_an_authenticated_caller_may_still_attach_webhook_urls(shop_product: Any) -> None:
    from marketplace.accounts.tests.factories import UserFactory

    response = jwt_client(UserFactory()).post(
        f"/api/v1/public/checkout/{shop_product.slug}/pay",
        pay_body(webhook_urls=["https://integration.example/hook"]),
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert Order.objects.get().webhook_urls == ["https://integration.example/hook"]


def _items(fulfillment_input: Any, product: Any) -> list[dict[str, Any]]:
    return [{"variant_id": product.variants.get().id, "quantity": 1, "fulfillment_input": fulfillment_input}]


@pytest.mark.parametrize(
    "fulfillment_input",
    [
        {f"k{i}": "v" for i in range(21)},  # 21 keys
        {"player_id": "x" * 2100},  # over 2 KB
        {"blob": "é" * 1100},  # 2 KB of UTF-8 in fewer characters
        {"player_id": 42},  # not a string
        {"nested": {"deeper": "value"}},
        {"list": ["a", "b"]},
    ],
    ids=["21-keys", "over-2kb", "over-2kb-utf8", "integer", "nested-object", "list"],
)
@pytest.mark.parametrize("endpoint", ["pay", "quote"])
def test_fulfillment_input_over_the_limits_is_400_and_stores_nothing(
    shop_product: Any, fulfillment_input: Any, endpoint: str
) -> None:
    before = Order.objects.count()
    items = _items(fulfillment_input, shop_product)
    response = APIClient().post(
        f"/api/v1/public/checkout/{shop_product.slug}/{endpoint}",
        pay_body(items=items) if endpoint == "pay" else {"items": items},
        format="json",
    )
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert list(error["fields"]) == ["items.0.fulfillment_input"]
    assert Order.objects.count() == before


def test_fulfillment_input_at_the_limits_is_stored(shop_product: Any) -> None:
    at_limit = {f"k{i:02d}": "" for i in range(19)}
    at_limit["player_id"] = ""
    at_limit["player_id"] = "x" * (2048 - len(json.dumps(at_limit, separators=(",", ":"))))
    assert len(at_limit) == 20 and len(json.dumps(at_limit, separators=(",", ":"))) == 2048
    response = APIClient().post(
        f"/api/v1/public/checkout/{shop_product.slug}/pay",
        pay_body(items=_items(at_limit, shop_product)),
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert Order.objects.get().items.get().fulfillment_input == at_limit
