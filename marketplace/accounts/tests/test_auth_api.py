from typing import Any

import jwt
import pytest
from django.conf import settings
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from marketplace.accounts.models import Role, User
from marketplace.accounts.tests.factories import DEFAULT_PASSWORD, SellerFactory, UserFactory

pytestmark = pytest.mark.django_db

REGISTER = "/api/v1/auth/register"
TOKEN = "/api/v1/auth/token"
REFRESH = "/api/v1/auth/token/refresh"
STRONG = "plum-orbit-lantern-42"


def assert_error(response: Any, status: int, code: str, fields: list[str] | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    if fields is not None:
        assert sorted(body["error"]["fields"]) == sorted(fields)
    return body["error"]


def register(client: APIClient, **overrides: Any) -> Any:
    body = {"email": "Ada@Example.com", "password": STRONG, "name": "Ada Lovelace", "role": "seller"}
    body.update(overrides)
    return client.post(REGISTER, body, format="json")


def test_register_returns_201_and_the_user(api_client: APIClient) -> None:
    response = register(api_client)

    assert response.status_code == 201, response.content
    user = User.objects.get()
    assert response.json() == {
        "success": True,
        "data": {"id": user.id, "email": "ada@example.com", "name": "Ada Lovelace", "role": "seller"},
    }
    assert user.id.startswith("usr_")
    assert user.check_password(STRONG)
    assert user.password != STRONG


def test_register_buyer(api_client: APIClient) -> None:
    assert register(api_client, role="buyer").json()["data"]["role"] == "buyer"
    assert User.objects.get().role == Role.BUYER


def test_a_taken_email_answers_like_a_new_one_and_changes_nothing(
    api_client: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    """No 409: ``register`` must not tell which addresses have accounts (the owner is emailed)."""
    existing = UserFactory(email="ada@example.com", name="Ada", role=Role.BUYER)
    password = existing.password

    with django_capture_on_commit_callbacks(execute=True):
        response = register(api_client, email="ADA@example.com")

    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert data == {"id": data["id"], "email": "ada@example.com", "name": "Ada Lovelace", "role": "seller"}
    assert data["id"].startswith("usr_") and data["id"] != existing.id
    assert not User.objects.filter(id=data["id"]).exists()
    assert User.objects.count() == 1
    existing.refresh_from_db()
    assert (existing.name, existing.role, existing.password) == ("Ada", Role.BUYER, password)


@pytest.mark.parametrize("password", ["short", "password123", "12345678901", "ada@example.com"])
def test_weak_password_is_400(api_client: APIClient, password: str) -> None:
    error = assert_error(register(api_client, password=password), 400, "validation_error", ["password"])
    assert error["fields"]["password"]
    assert User.objects.count() == 0


@pytest.mark.parametrize("role", ["admin", "", None, "SELLER"])
def test_bad_role_is_400(api_client: APIClient, role: Any) -> None:
    assert_error(register(api_client, role=role), 400, "validation_error", ["role"])
    assert User.objects.count() == 0


def test_bad_email_and_missing_fields(api_client: APIClient) -> None:
    assert_error(register(api_client, email="not-an-email"), 400, "validation_error", ["email"])
    assert_error(
        api_client.post(REGISTER, {}, format="json"), 400, "validation_error", ["email", "password", "name", "role"]
    )
    assert User.objects.count() == 0


def test_register_malformed_json(api_client: APIClient) -> None:
    assert_error(api_client.post(REGISTER, "{", content_type="application/json"), 400, "invalid_json")
    assert User.objects.count() == 0


def test_token_pair(api_client: APIClient) -> None:
    user = SellerFactory(email="seller@example.com")

    response = api_client.post(TOKEN, {"email": "Seller@Example.com", "password": DEFAULT_PASSWORD}, format="json")

    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert set(data) == {"access", "refresh", "token_type", "expires_in"}
    assert data["token_type"] == "Bearer"
    assert data["expires_in"] == 15 * 60
    claims = jwt.decode(
        data["access"], settings.SIMPLE_JWT.get("SIGNING_KEY", settings.SECRET_KEY), algorithms=["HS256"]
    )
    assert claims["user_id"] == user.id
    assert claims["token_type"] == "access"


def test_access_token_authenticates(api_client: APIClient) -> None:
    SellerFactory(email="seller@example.com")
    access = api_client.post(
        TOKEN, {"email": "seller@example.com", "password": DEFAULT_PASSWORD}, format="json"
    ).json()["data"]["access"]

    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    assert api_client.get("/api/v1/api-keys").status_code == 200


@pytest.mark.parametrize(
    ("email", "password"), [("seller@example.com", "wrong-password"), ("nobody@example.com", DEFAULT_PASSWORD)]
)
def test_wrong_credentials_are_401_with_one_message(api_client: APIClient, email: str, password: str) -> None:
    SellerFactory(email="seller@example.com")

    response = api_client.post(TOKEN, {"email": email, "password": password}, format="json")

    assert response.json() == {
        "success": False,
        "error": {"code": "invalid_credentials", "message": "Email or password is incorrect."},
    }
    assert response.status_code == 401


def test_inactive_user_gets_no_token(api_client: APIClient) -> None:
    SellerFactory(email="gone@example.com", is_active=False)

    assert_error(
        api_client.post(TOKEN, {"email": "gone@example.com", "password": DEFAULT_PASSWORD}, format="json"),
        401,
        "invalid_credentials",
    )


def test_refresh_gives_a_new_access_token_and_the_next_refresh_token(api_client: APIClient) -> None:
    SellerFactory(email="seller@example.com")
    pair = api_client.post(TOKEN, {"email": "seller@example.com", "password": DEFAULT_PASSWORD}, format="json").json()[
        "data"
    ]

    response = api_client.post(REFRESH, {"refresh": pair["refresh"]}, format="json")

    assert response.status_code == 200
    data = response.json()["data"]
    assert set(data) == {"access", "refresh", "expires_in"}
    assert data["refresh"] != pair["refresh"]  # rotated: the one sent is used up
    assert data["expires_in"] == 15 * 60
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {data['access']}")
    assert api_client.get("/api/v1/api-keys").status_code == 200


def test_bad_refresh_is_401(api_client: APIClient) -> None:
    SellerFactory(email="seller@example.com")
    pair = api_client.post(TOKEN, {"email": "seller@example.com", "password": DEFAULT_PASSWORD}, format="json").json()[
        "data"
    ]

    for token in ("garbage", pair["access"], pair["refresh"][:-2] + "xx"):
        assert_error(api_client.post(REFRESH, {"refresh": token}, format="json"), 401, "invalid_token")
    assert_error(api_client.post(REFRESH, {}, format="json"), 400, "validation_error", ["refresh"])


def test_auth_endpoints_are_rate_limited(api_client: APIClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"auth": "3/minute"})
    for _ in range(3):
        api_client.post(TOKEN, {"email": "x@example.com", "password": "nope"}, format="json")

    response = api_client.post(TOKEN, {"email": "x@example.com", "password": "nope"}, format="json")

    assert_error(response, 429, "rate_limited")
    assert int(response["Retry-After"]) > 0
