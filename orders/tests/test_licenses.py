import re
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from catalog.models import DeliveryType
from catalog.tests.factories import ProductFactory, VariantFactory
from orders.models import License, LicenseActivation

from .helpers import make_order, pay

pytestmark = pytest.mark.django_db


@pytest.fixture
def license_product(seller):
    product = ProductFactory(
        seller=seller,
        slug="pro-app",
        title="Pro App",
        delivery_type=DeliveryType.LICENSE_KEY,
        delivery_content="",
        delivery_options={"license": {"activation_limit": 2, "expires_in_days": 365, "prefix": "PRO"}},
    )
    VariantFactory(product=product, price=4900)
    return product


@pytest.fixture
def keys(license_product, django_capture_on_commit_callbacks):
    order = pay(make_order(license_product, quantity=2), django_capture_on_commit_callbacks)
    assert order.status == "delivered"
    return order, [lic.key for lic in License.objects.order_by("created_at", "id")]


def post(path, body):
    return APIClient().post(f"/api/v1/licenses/{path}", body, format="json")


def test_one_key_per_unit_grouped_with_prefix(keys, license_product):
    order, issued = keys
    assert len(issued) == 2 and len(set(issued)) == 2
    for key in issued:
        assert re.fullmatch(r"PRO(-[A-HJ-NP-Z2-9]{5}){5}", key)
    lic = License.objects.first()
    assert (lic.activation_limit, lic.key_hint) == (2, lic.key[-4:])
    assert (lic.expires_at - timezone.now()).days in (364, 365)
    data = APIClient().get(f"/api/v1/public/checkout/pro-app/order/{order.id}").json()["data"]
    assert data["voucher_codes"] == issued


def test_fulfilling_again_issues_no_more_keys(keys):
    from orders.fulfillment import get_strategy

    order, issued = keys
    item = order.items.get()
    get_strategy("license_key").fulfill(item)
    assert License.objects.count() == 2


def test_verify(keys, license_product):
    _, issued = keys
    response = post(
        "verify", {"product_id": license_product.id, "license_key": issued[0].lower(), "increment_uses_count": True}
    )
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["valid"] is True
    lic = License.objects.order_by("created_at", "id").first()
    assert (data["status"], data["uses"], data["activation_limit"], data["activations"]) == ("active", 1, 2, 0)
    assert (data["license_id"], data["product_id"], data["variant_id"]) == (
        lic.id,
        license_product.id,
        license_product.variants.get().id,
    )
    assert "order_id" not in data  # the order id is the buyer's capability
    assert post("verify", {"product_id": license_product.id, "license_key": issued[0]}).json()["data"]["uses"] == 1


@pytest.mark.parametrize("case", ["unknown", "wrong_product", "disabled", "expired", "refunded"])
def test_unusable_keys_get_one_generic_404(keys, license_product, case):
    order, issued = keys
    key, product_id = issued[0], license_product.id
    if case == "unknown":
        key = "PRO-AAAAA-BBBBB-CCCCC-DDDDD-EEEEE"
    elif case == "wrong_product":
        product_id = "prd_other"
    elif case == "disabled":
        License.objects.update(status=License.Status.DISABLED)
    elif case == "expired":
        License.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    elif case == "refunded":
        type(order).objects.filter(pk=order.pk).update(status="refunded")
    for path, body in (
        ("verify", {"product_id": product_id, "license_key": key}),
        ("activate", {"license_key": key, "instance_name": "laptop"}),
    ):
        if case == "wrong_product" and path == "activate":
            continue
        response = post(path, body)
        assert response.status_code == 404
        assert response.json()["error"] == {"code": "license_not_found", "message": "This license key is not valid."}
    assert LicenseActivation.objects.count() == 0


def test_activate_up_to_the_limit_then_deactivate(keys):
    _, issued = keys
    first = post("activate", {"license_key": issued[0], "instance_name": "laptop"})
    second = post("activate", {"license_key": issued[0], "instance_name": "desktop"})
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json()["data"]["activations"] == 2
    third = post("activate", {"license_key": issued[0], "instance_name": "phone"})
    assert third.status_code == 409
    assert third.json()["error"]["code"] == "activation_limit_reached"
    assert LicenseActivation.objects.count() == 2
    activation_id = first.json()["data"]["activation_id"]
    assert activation_id.startswith("act_")
    off = post("deactivate", {"license_key": issued[0], "activation_id": activation_id})
    assert off.status_code == 200
    assert off.json()["data"]["activations"] == 1
    assert post("deactivate", {"license_key": issued[0], "activation_id": activation_id}).status_code == 404
    assert post("activate", {"license_key": issued[0], "instance_name": "phone"}).status_code == 201
    # The other key has its own count.
    assert post("activate", {"license_key": issued[1], "instance_name": "laptop"}).status_code == 201


def test_bad_input_is_400(keys):
    response = post("activate", {"license_key": "X"})
    assert response.status_code == 400
    assert "instance_name" in response.json()["error"]["fields"]


def test_keys_are_encrypted_at_rest(keys):
    from django.db import connection

    _, issued = keys
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM orders_license")
        dump = repr(cursor.fetchall())
    assert all(key not in dump for key in issued)


def test_license_settings_are_validated(seller_client):
    body = {
        "title": "App",
        "currency": "USD",
        "price": 100,
        "delivery": {"content_type": "license_key", "license": {"activation_limit": 0}},
    }
    response = seller_client.post("/api/v1/products", body, format="json")
    assert response.status_code == 400
    assert "delivery.license.activation_limit" in response.json()["error"]["fields"]
    body["delivery"]["license"] = {"activation_limit": 3, "expires_in_days": None}
    response = seller_client.post("/api/v1/products", body, format="json")
    assert response.status_code == 201
    assert response.json()["data"]["delivery"]["license"] == {
        "activation_limit": 3,
        "expires_in_days": None,
        "prefix": None,
    }


def test_refunding_one_of_two_seats_leaves_exactly_one_key_valid(
    keys, license_product, django_capture_on_commit_callbacks
):
    from orders.services.refunds import order_refund_create

    order, issued = keys
    in_use = License.objects.order_by("created_at", "id").last()  # the newest key, but the one activated
    assert post("activate", {"license_key": in_use.key, "instance_name": "laptop"}).status_code == 201
    with django_capture_on_commit_callbacks(execute=True):
        order_refund_create(order=order, amount=4900, reason="One seat too many")
    order.refresh_from_db()
    assert order.status == "partially_refunded"
    statuses = dict(License.objects.values_list("key", "status"))
    assert sorted(statuses.values()) == ["active", "refunded"]
    assert statuses[in_use.key] == "active"  # the key in use is the one the buyer keeps
    [refunded_key] = [key for key, status in statuses.items() if status == "refunded"]
    assert post("verify", {"product_id": license_product.id, "license_key": in_use.key}).status_code == 200
    assert post("verify", {"product_id": license_product.id, "license_key": refunded_key}).status_code == 404
    assert order.events.filter(type="access_revoked").count() == 1


def test_a_refund_smaller_than_a_seat_disables_no_key(keys, django_capture_on_commit_callbacks):
    from orders.services.refunds import order_refund_create

    order, _issued = keys
    with django_capture_on_commit_callbacks(execute=True):
        order_refund_create(order=order, amount=2000)
    assert list(License.objects.values_list("status", flat=True)) == ["active", "active"]
    with django_capture_on_commit_callbacks(execute=True):
        order_refund_create(order=order, amount=2900)  # 4900 refunded in all: one whole seat
    assert sorted(License.objects.values_list("status", flat=True)) == ["active", "refunded"]
    with django_capture_on_commit_callbacks(execute=True):
        order_refund_create(order=order, amount=4900)  # the rest: both keys
    assert list(License.objects.values_list("status", flat=True)) == ["refunded", "refunded"]
