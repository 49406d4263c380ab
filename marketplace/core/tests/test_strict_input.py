"""Strict input on every API operation (``marketplace.core.strict_input``): an unknown query
parameter or body field, or a repeated single-valued parameter, is 400 in the envelope naming it."""

import re

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory
from orders.models import Order
from payments.models import Payment

pytestmark = pytest.mark.django_db

# Operations whose body is another system's format, checked by its signature instead (the query is
# still strict): only the gateways' webhooks.
FREE_BODY = {
    ("POST", "/api/v1/payments/webhooks/{gateway}"),
    ("POST", "/api/v1/payments/webhooks/stripe-connect"),  # Stripe's event format, signed
}


def operations():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [(method.upper(), path) for path, methods in schema["paths"].items() for method in methods]


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


@pytest.fixture
def client():
    client = APIClient()
    seller = SellerFactory()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(seller).access_token}")
    return client


def assert_names(response, name):
    assert response.status_code == 400, (response.status_code, response.content[:300])
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == "validation_error"
    assert name in body["error"]["fields"], body


def test_the_schema_has_the_operations_this_walks():
    found = operations()
    assert len(found) > 50
    assert ("POST", "/api/v1/public/checkout/{slug}/pay") in found
    assert FREE_BODY <= set(found)


@pytest.mark.parametrize(("method", "path"), operations())
def test_every_operation_refuses_an_unknown_query_parameter(client, method, path):
    response = client.generic(method, f"{concrete(path)}?zz_unknown=1")
    assert_names(response, "zz_unknown")


@pytest.mark.parametrize(
    ("method", "path"), [op for op in operations() if op[0] in ("POST", "PUT", "PATCH") and op not in FREE_BODY]
)
def test_every_write_operation_refuses_an_unknown_body_field(client, method, path):
    response = client.generic(method, concrete(path), '{"zz_unknown": 1}', content_type="application/json")
    assert_names(response, "zz_unknown")


def test_a_gateway_webhook_body_is_the_gateway_s_own(client):
    response = client.post("/api/v1/payments/webhooks/sandbox", {"zz_unknown": 1}, format="json")
    assert response.status_code != 400 or "zz_unknown" not in response.json()["error"].get("fields", {})


def test_a_repeated_single_valued_parameter_is_400(client):
    response = client.get("/api/v1/orders?status=paid&status=delivered")
    assert_names(response, "status")
    assert "more than once" in response.json()["error"]["fields"]["status"][0]


def test_an_unknown_nested_field_is_named_with_its_path(client):
    response = client.post(
        "/api/v1/public/checkout/x1/pay",
        {"buyer_email": "a@example.com", "items": [{"variant_id": "var_1", "quantity": 1, "colour": "red"}]},
        format="json",
    )
    assert_names(response, "items.0.colour")


def test_free_form_objects_take_any_key(client):
    seller = SellerFactory()
    product = ProductFactory(seller=seller, slug="free-form", currency="USD")
    VariantFactory(product=product, price=500)
    response = APIClient().post(
        "/api/v1/public/checkout/free-form/pay",
        {"buyer_email": "a@example.com", "meta": {"anything": 1}, "init_payment": False},
        format="json",
    )
    assert response.status_code == 201, response.json()


def test_camel_case_filter_names_are_the_declared_ones(client):
    assert client.get("/api/v1/orders?filter.idempotencyKey=$in:a,b").status_code == 200
    assert_names(client.get("/api/v1/orders?filter.colour=red"), "filter.colour")


class TestPayAndInitiateRefuseAnotherGatewaysFields:
    """``{"method": "bkash", "currency": "BDT"}`` used to open a USD sandbox payment."""

    @pytest.fixture
    def product(self):
        product = ProductFactory(seller=SellerFactory(), slug="strict-pay", currency="USD")
        VariantFactory(product=product, price=1999)
        return product

    def test_pay(self, product):
        response = APIClient().post(
            "/api/v1/public/checkout/strict-pay/pay",
            {"buyer_email": "a@example.com", "method": "bkash", "currency": "BDT"},
            format="json",
        )
        assert_names(response, "method")
        assert set(response.json()["error"]["fields"]) == {"method", "currency"}
        assert Order.objects.count() == 0
        assert Payment.objects.count() == 0

    def test_initiate(self, product):
        created = APIClient().post(
            "/api/v1/public/checkout/strict-pay/pay",
            {"buyer_email": "a@example.com", "init_payment": False},
            format="json",
        )
        assert created.status_code == 201
        order_id = created.json()["data"]["id"]
        response = APIClient().post(
            f"/api/v1/payments/initiate/{order_id}", {"method": "bkash", "currency": "BDT"}, format="json"
        )
        assert set(response.json()["error"]["fields"]) == {"method", "currency"}
        assert response.status_code == 400
        assert Payment.objects.count() == 0
        form = APIClient().post(
            f"/api/v1/payments/initiate/{order_id}", "method=bkash", content_type="application/x-www-form-urlencoded"
        )
        assert_names(form, "method")
        multipart = APIClient().post(f"/api/v1/payments/initiate/{order_id}", {"method": "bkash"}, format="multipart")
        assert_names(multipart, "method")
        assert Payment.objects.count() == 0
