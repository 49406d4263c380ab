"""Every API answer is the envelope of shared/API.md, whatever goes wrong."""

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from orders.models import Order

pytestmark = pytest.mark.django_db


def assert_error(response, status, code):
    assert response.status_code == status
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


def test_unknown_api_path_is_a_json_404(client):
    assert_error(client.get("/api/v1/no-such-thing"), 404, "not_found")


def test_method_not_allowed(api_client):
    assert_error(api_client.delete("/api/v1/auth/token"), 405, "method_not_allowed")


def test_wrong_media_type_is_415(api_client, text_product):
    response = api_client.generic(
        "POST", f"/api/v1/public/checkout/{text_product.slug}/pay", "buyer_email=a@b.co", content_type="text/plain"
    )
    assert_error(response, 415, "unsupported_media_type")
    assert Order.objects.count() == 0


def test_missing_credentials_is_401(api_client):
    assert_error(api_client.get("/api/v1/orders"), 401, "not_authenticated")


def test_bad_jwt_is_401(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not.a.jwt")
    assert_error(api_client.get("/api/v1/orders"), 401, "not_authenticated")


def test_rate_limited_is_429_with_retry_after(text_product):
    from rest_framework.throttling import ScopedRateThrottle

    client = APIClient()
    rates = {**ScopedRateThrottle.THROTTLE_RATES, "checkout": "3/minute"}
    original = ScopedRateThrottle.THROTTLE_RATES
    ScopedRateThrottle.THROTTLE_RATES = rates
    try:
        statuses = [client.get(f"/api/v1/public/checkout/{text_product.slug}").status_code for _ in range(4)]
        response = client.get(f"/api/v1/public/checkout/{text_product.slug}")
    finally:
        ScopedRateThrottle.THROTTLE_RATES = original
    assert statuses == [200, 200, 200, 429]
    assert_error(response, 429, "rate_limited")
    assert int(response["Retry-After"]) > 0


@override_settings(DEBUG=False)
def test_unexpected_error_is_a_json_500(text_product):
    from unittest import mock

    client = APIClient(raise_request_exception=False)
    with mock.patch("checkout.api.product_for_checkout", side_effect=RuntimeError("boom")):
        response = client.get(f"/api/v1/public/checkout/{text_product.slug}")
    error = assert_error(response, 500, "server_error")
    assert "boom" not in error["message"]


@pytest.mark.parametrize("error", ["OperationalError", "InterfaceError"])
def test_a_database_that_does_not_answer_is_a_503_to_retry_not_a_500(text_product, error):
    from unittest import mock

    from django import db

    client = APIClient(raise_request_exception=False)
    failure = getattr(db, error)("server closed the connection unexpectedly")
    with mock.patch("checkout.api.product_for_checkout", side_effect=failure):
        response = client.get(f"/api/v1/public/checkout/{text_product.slug}")
    error_body = assert_error(response, 503, "service_unavailable")
    assert "try again" in error_body["message"]
    assert "server closed" not in error_body["message"]
    assert response["Retry-After"] == "5"
