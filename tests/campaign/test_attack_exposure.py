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
from django.test import Client
from rest_framework.test import APIClient

from catalog.inventory import CodeRow, codes_import
from catalog.models import DeliveryType
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.services import api_key_create
from marketplace.accounts.tests.factories import SellerFactory, UserFactory
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


# --- 7: lists carry no codes; one order's codes are read one at a time, and recorded ------------


class Sold:
    """A seller's delivered orders of every kind that shows something secret once delivered: pool
    codes with PINs, a licence key, a text delivery. ``secrets`` are the decrypted values."""

    def __init__(self, capture: Any) -> None:
        self.seller = SellerFactory()
        self.buyer = UserFactory()
        pool = ProductFactory(
            seller=self.seller, slug="exposure-pool", delivery_type=DeliveryType.CODE_POOL, delivery_content=""
        )
        codes_import(
            variant=VariantFactory(product=pool, price=2500),
            rows=[CodeRow(i, f"POOL-CODE-{i:04d}-XYZ", pin=f"PIN{i:04d}Q") for i in range(1, 4)],
        )
        licence = ProductFactory(
            seller=self.seller,
            slug="exposure-licence",
            delivery_type=DeliveryType.LICENSE_KEY,
            delivery_content="",
            delivery_options={"license": {"activation_limit": 2}},
        )
        VariantFactory(product=licence, price=4900)
        text = ProductFactory(seller=self.seller, slug="exposure-words", delivery_content="PASSPHRASE-OPEN-42")
        VariantFactory(product=text, price=900)
        self.orders = [
            pay(make_order(pool, quantity=2, buyer=self.buyer, email=self.buyer.email), capture),
            pay(make_order(licence, buyer=self.buyer, email=self.buyer.email), capture),
            pay(make_order(text, buyer=self.buyer, email=self.buyer.email), capture),
        ]
        assert [o.status for o in self.orders] == ["delivered"] * 3
        self.secrets = [
            "POOL-CODE-0001-XYZ",
            "PIN0001Q",
            "POOL-CODE-0002-XYZ",
            "PIN0002Q",
            License.objects.get().key,
            "PASSPHRASE-OPEN-42",
        ]


@pytest.fixture
def sold(django_capture_on_commit_callbacks: Any) -> Sold:
    return Sold(django_capture_on_commit_callbacks)


def codes_viewed() -> int:
    return OrderEvent.objects.filter(type="codes_viewed").count()


def test_no_list_carries_codes_pins_keys_or_delivery_content(sold: Sold) -> None:
    seller = jwt_client(sold.seller)
    dashboard = Client()
    dashboard.force_login(sold.seller)
    reads = {
        "orders": seller.get("/api/v1/orders?limit=100"),
        "my-sales": seller.get("/api/v1/orders/my-sales?limit=100"),
        "my-orders": jwt_client(sold.buyer).get("/api/v1/orders/my-orders?limit=100"),
        "export.csv": seller.get("/api/v1/orders/export.csv"),
        "dashboard home": dashboard.get("/dashboard/"),
    }
    for name, response in reads.items():
        assert response.status_code == 200, name
        text = b"".join(response.streaming_content) if response.streaming else response.content
        body = text.decode()
        assert sold.orders[0].order_number in body, name  # the list really lists the orders
        for secret in sold.secrets:
            assert secret not in body, (name, secret)
    for name in ("orders", "my-sales", "my-orders"):
        results = reads[name].json()["data"]["results"]
        assert len(results) == 3
        for order in results:
            assert (order["voucher_codes"], order["delivery_content"], order["content_type"]) == ([], None, None)
            assert [(i["voucher_codes"], i["delivery"]) for i in order["items"]] == [([], None)] * len(order["items"])
            assert "events" not in order
    assert codes_viewed() == 0  # a list shows no codes, so it records no read of them


def test_one_orders_view_shows_the_codes_and_each_read_is_recorded(sold: Sold) -> None:
    order = sold.orders[0]
    key, raw = api_key_create(user=sold.seller, name="integration")
    by_key = APIClient()
    by_key.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")

    first = jwt_client(sold.seller).get(f"/api/v1/orders/{order.id}")
    assert first.status_code == 200
    assert first.json()["data"]["voucher_codes"] == ["POOL-CODE-0001-XYZ", "POOL-CODE-0002-XYZ"]
    assert "PIN0001Q" in first.content.decode()
    assert codes_viewed() == 1
    second = by_key.get(f"/api/v1/orders/{order.order_number}")
    assert second.status_code == 200
    assert codes_viewed() == 2

    events = list(OrderEvent.objects.filter(order=order, type="codes_viewed").order_by("created_at", "id"))
    assert [(e.actor, e.actor_user_id) for e in events] == [("seller", sold.seller.id)] * 2
    assert [(e.data["user_id"], e.data["api_key_id"], e.data["via"]) for e in events] == [
        (sold.seller.id, None, "api"),
        (sold.seller.id, key.id, "api"),
    ]
    assert events[0].data["item_ids"] == [order.items.get().id]
    # The answer's own timeline has the read it made.
    assert second.json()["data"]["events"][-1]["id"] == events[1].id
    assert [e["type"] for e in second.json()["data"]["events"]].count("codes_viewed") == 2


def test_the_dashboard_order_page_records_that_it_showed_the_codes(sold: Sold) -> None:
    order = sold.orders[1]
    dashboard = Client()
    dashboard.force_login(sold.seller)
    for expected in (1, 2):
        page = dashboard.get(f"/dashboard/orders/{order.order_number}/")
        assert page.status_code == 200
        assert License.objects.get().key in page.content.decode()
        assert codes_viewed() == expected
    event = OrderEvent.objects.filter(order=order, type="codes_viewed").last()
    assert event is not None
    assert (event.actor_user_id, event.data["via"], event.data["api_key_id"]) == (sold.seller.id, "dashboard", None)


def test_an_order_with_nothing_delivered_shows_no_codes_and_records_no_read(shop_product: Any) -> None:
    order = make_order(shop_product)
    response = jwt_client(shop_product.seller).get(f"/api/v1/orders/{order.id}")
    assert response.status_code == 200
    assert response.json()["data"]["voucher_codes"] == []
    assert codes_viewed() == 0


# --- 17: the partner signing secret is shown once -----------------------------------------------


def partner_body(**partner: Any) -> dict[str, Any]:
    return {
        "title": "Credits",
        "currency": "USD",
        "price": 100,
        "delivery": {"content_type": "partner_api", "partner": {"url": "https://partner.example/fulfill", **partner}},
    }


def stored_secret(product_id: str) -> str:
    from catalog.delivery import partner_secret
    from catalog.models import Product

    return partner_secret(Product.objects.get(pk=product_id).delivery_options)


def test_partner_secret_is_in_the_create_answer_only() -> None:
    seller = SellerFactory()
    client = jwt_client(seller)
    created = client.post("/api/v1/products", partner_body(), format="json")
    assert created.status_code == 201, created.json()
    product_id = created.json()["data"]["id"]
    secret = stored_secret(product_id)
    assert secret.startswith("whsec_")
    assert created.json()["data"]["delivery"]["partner"] == {
        "url": "https://partner.example/fulfill",
        "secret": secret,
        "secret_hint": secret[-4:],
    }
    dashboard = Client()
    dashboard.force_login(seller)
    later = {
        "list": client.get("/api/v1/products"),
        "detail": client.get(f"/api/v1/products/{product_id}"),
        "patch": client.patch(f"/api/v1/products/{product_id}", {"title": "More credits"}, format="json"),
        "dashboard list": dashboard.get("/dashboard/products/"),
        "dashboard page": dashboard.get(f"/dashboard/products/{product_id}/edit/"),
    }
    for name, response in later.items():
        assert response.status_code == 200, name
        body = response.content.decode()
        assert secret not in body and secret.removeprefix("whsec_")[:-4] not in body, name
    assert later["detail"].json()["data"]["delivery"]["partner"] == {
        "url": "https://partner.example/fulfill",
        "secret_hint": secret[-4:],
    }
    assert [p["delivery"]["partner"] for p in later["list"].json()["data"]["results"]] == [
        {"url": "https://partner.example/fulfill", "secret_hint": secret[-4:]}
    ]
    assert stored_secret(product_id) == secret  # reading changed nothing


def test_a_new_url_keeps_the_secret_and_an_explicit_rotation_shows_the_new_one_once() -> None:
    client = jwt_client(SellerFactory())
    product_id = client.post("/api/v1/products", partner_body(), format="json").json()["data"]["id"]
    secret = stored_secret(product_id)

    moved = client.patch(
        f"/api/v1/products/{product_id}",
        {"delivery": {"partner": {"url": "https://partner.example/v2"}}},
        format="json",
    )
    assert moved.status_code == 200
    assert moved.json()["data"]["delivery"]["partner"] == {
        "url": "https://partner.example/v2",
        "secret_hint": secret[-4:],
    }
    assert stored_secret(product_id) == secret

    rotated = client.patch(
        f"/api/v1/products/{product_id}",
        {"delivery": {"partner": {"url": "https://partner.example/v2", "secret": None}}},
        format="json",
    )
    assert rotated.status_code == 200
    new = stored_secret(product_id)
    assert new != secret and new.startswith("whsec_")
    assert rotated.json()["data"]["delivery"]["partner"] == {
        "url": "https://partner.example/v2",
        "secret": new,
        "secret_hint": new[-4:],
    }
    again = client.get(f"/api/v1/products/{product_id}")
    assert new not in again.content.decode()
