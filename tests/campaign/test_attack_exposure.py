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
