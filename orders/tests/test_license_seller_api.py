"""The seller's side of licence keys: list (hints only), read, disable, enable, reset activations,
each recorded in the order's timeline, and never another seller's keys."""

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from catalog.models import DeliveryType
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory
from orders.models import License, LicenseActivation, OrderEvent

from .helpers import make_order, pay

pytestmark = pytest.mark.django_db


def client_for(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def license_product_of(seller, slug):
    product = ProductFactory(
        seller=seller,
        slug=slug,
        title=f"App {slug}",
        delivery_type=DeliveryType.LICENSE_KEY,
        delivery_content="",
        delivery_options={"license": {"activation_limit": 2, "prefix": "PRO"}},
    )
    VariantFactory(product=product, price=4900)
    return product


@pytest.fixture
def keys(seller, django_capture_on_commit_callbacks):
    product = license_product_of(seller, "pro-app")
    order = pay(make_order(product, quantity=2, email="ann@example.com"), django_capture_on_commit_callbacks)
    assert order.status == "delivered"
    return product, order, list(License.objects.filter(product=product).order_by("created_at", "id"))


@pytest.fixture
def other_keys(django_capture_on_commit_callbacks):
    other = SellerFactory(name="Other")
    product = license_product_of(other, "other-app")
    pay(make_order(product, email="bob@example.com"), django_capture_on_commit_callbacks)
    return other, list(License.objects.filter(product=product))


def activate(key, name):
    response = APIClient().post("/api/v1/licenses/activate", {"license_key": key, "instance_name": name}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["data"]


def test_list_shows_hints_never_keys_and_only_the_sellers_own(seller_client, keys, other_keys):
    product, order, licenses = keys
    activate(licenses[0].key, "laptop")
    response = seller_client.get("/api/v1/licenses")
    assert response.status_code == 200
    body = response.json()["data"]
    assert body["pagination"]["total_items"] == 2
    ids = {row["id"] for row in body["results"]}
    assert ids == {lic.id for lic in licenses}  # not the other seller's
    for lic in licenses:
        assert lic.key not in response.content.decode()
    row = next(r for r in body["results"] if r["id"] == licenses[0].id)
    assert row["key_hint"] == licenses[0].key[-4:]
    assert (row["status"], row["activations"], row["activation_limit"]) == ("active", 1, 2)
    assert (row["product_id"], row["order_number"], row["buyer_email"]) == (
        product.id,
        order.order_number,
        "ann@example.com",
    )
    assert "order_id" not in row


def test_list_filters_product_status_and_q(seller_client, keys):
    product, order, licenses = keys
    License.objects.filter(pk=licenses[1].pk).update(status="disabled")
    get = lambda query: seller_client.get(f"/api/v1/licenses?{query}").json()["data"]["results"]  # noqa: E731
    assert [r["id"] for r in get("status=disabled")] == [licenses[1].id]
    assert len(get("status=active,disabled")) == 2
    assert len(get(f"product={product.id}")) == 2
    assert len(get("product=pro-app")) == 2
    assert get("product=prd_nope") == []
    assert [r["id"] for r in get(f"q={licenses[0].key.lower()}")] == [licenses[0].id]
    assert [r["id"] for r in get(f"q={licenses[1].key_hint}")] == [licenses[1].id]
    assert len(get(f"q={order.order_number}")) == 2
    assert len(get("q=ann@")) == 2


@pytest.mark.parametrize(
    "query,field",
    [("status=gone", "status"), ("sort=id", "sort"), ("status=active&status=disabled", "status")],
)
def test_list_refuses_bad_parameters(seller_client, keys, query, field):
    response = seller_client.get(f"/api/v1/licenses?{query}")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_list_query_count_is_flat(seller_client, keys, django_assert_max_num_queries):
    with django_assert_max_num_queries(5):
        assert seller_client.get("/api/v1/licenses?limit=100").status_code == 200


def test_detail_lists_activations(seller_client, keys):
    _, _, licenses = keys
    act = activate(licenses[0].key, "laptop")
    data = seller_client.get(f"/api/v1/licenses/{licenses[0].id}").json()["data"]
    assert data["activations"] == 1
    assert [(a["id"], a["instance_name"], a["deactivated_at"]) for a in data["activation_list"]] == [
        (act["activation_id"], "laptop", None)
    ]
    assert licenses[0].key not in str(data)


def test_disable_then_enable_is_recorded_and_stops_verification(seller_client, keys):
    product, order, licenses = keys
    lic = licenses[0]
    response = seller_client.post(f"/api/v1/licenses/{lic.id}/disable")
    assert response.status_code == 200 and response.json()["data"]["status"] == "disabled"
    verify = APIClient().post(
        "/api/v1/licenses/verify", {"product_id": product.id, "license_key": lic.key}, format="json"
    )
    assert verify.status_code == 404
    # Disabling again changes nothing and records nothing more.
    assert seller_client.post(f"/api/v1/licenses/{lic.id}/disable").status_code == 200
    assert seller_client.post(f"/api/v1/licenses/{lic.id}/enable").json()["data"]["status"] == "active"
    verify = APIClient().post(
        "/api/v1/licenses/verify", {"product_id": product.id, "license_key": lic.key}, format="json"
    )
    assert verify.status_code == 200
    events = list(OrderEvent.objects.filter(order=order, type__startswith="license_").values_list("type", "actor"))
    assert events == [("license_disabled", "seller"), ("license_enabled", "seller")]
    assert License.objects.get(pk=licenses[1].pk).status == "active"  # the other seat untouched


def test_a_refunded_key_cannot_be_enabled(seller_client, keys):
    _, order, licenses = keys
    License.objects.filter(pk=licenses[0].pk).update(status="refunded")
    for action in ("enable", "disable"):
        response = seller_client.post(f"/api/v1/licenses/{licenses[0].id}/{action}")
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "license_refunded"
    assert License.objects.get(pk=licenses[0].pk).status == "refunded"
    assert not OrderEvent.objects.filter(order=order, type__startswith="license_").exists()


def test_reset_activations_frees_the_seats(seller_client, keys):
    _, order, licenses = keys
    lic = licenses[0]
    activate(lic.key, "one")
    activate(lic.key, "two")
    full = APIClient().post("/api/v1/licenses/activate", {"license_key": lic.key, "instance_name": "3"}, format="json")
    assert full.status_code == 409
    response = seller_client.post(f"/api/v1/licenses/{lic.id}/reset-activations")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["activations"] == 0
    assert all(a["deactivated_at"] for a in data["activation_list"])
    assert LicenseActivation.objects.filter(license=lic, deactivated_at__isnull=True).count() == 0
    activate(lic.key, "three")
    event = OrderEvent.objects.get(order=order, type="license_activations_reset")
    assert event.data == {"license_id": lic.id, "ended": 2}


def test_another_sellers_key_is_a_404_and_unchanged(seller_client, keys, other_keys):
    _, licenses = other_keys
    lic = licenses[0]
    activate(lic.key, "theirs")
    for method, path in [
        ("get", ""),
        ("post", "/disable"),
        ("post", "/enable"),
        ("post", "/reset-activations"),
    ]:
        response = getattr(seller_client, method)(f"/api/v1/licenses/{lic.id}{path}")
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "license_not_found"
    lic.refresh_from_db()
    assert lic.status == "active"
    assert LicenseActivation.objects.filter(license=lic, deactivated_at__isnull=True).count() == 1


def test_buyers_and_anonymous_callers_are_refused(keys):
    _, _, licenses = keys
    assert APIClient().get("/api/v1/licenses").status_code == 401
    assert APIClient().post(f"/api/v1/licenses/{licenses[0].id}/disable").status_code == 401


def test_an_unknown_body_field_is_400(seller_client, keys):
    _, _, licenses = keys
    response = seller_client.post(f"/api/v1/licenses/{licenses[0].id}/disable", {"reason": "x"}, format="json")
    assert response.status_code == 400
    assert License.objects.get(pk=licenses[0].pk).status == "active"
