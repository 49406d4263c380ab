from typing import Any, cast

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from marketplace.accounts.models import APIKey, User
from marketplace.accounts.services import hash_api_key
from marketplace.accounts.tests.factories import SellerFactory, UserFactory

from .test_auth_api import assert_error

pytestmark = pytest.mark.django_db

KEYS = "/api/v1/api-keys"


def jwt_client(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def key_client(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def seller() -> User:
    return cast(User, SellerFactory())


def test_create_shows_the_key_once(seller: User) -> None:
    client = jwt_client(seller)

    response = client.post(KEYS, {"name": "Zapier"}, format="json")

    assert response.status_code == 201, response.content
    data = response.json()["data"]
    key = APIKey.objects.get()
    assert set(data) >= {"id", "name", "prefix", "key", "created_at"}
    assert (data["id"], data["name"], data["prefix"]) == (key.id, "Zapier", key.prefix)
    assert data["id"].startswith("key_")
    assert data["key"].startswith("sk_")
    assert data["key"].startswith(data["prefix"])
    assert key.hashed_key == hash_api_key(data["key"])
    assert data["key"] not in (key.hashed_key, key.prefix)

    listed = client.get(KEYS)
    assert listed.status_code == 200
    assert data["key"] not in listed.content.decode()
    assert key.hashed_key not in listed.content.decode()
    items = listed.json()["data"]
    assert [(item["id"], item["name"], item["prefix"]) for item in items] == [(key.id, "Zapier", key.prefix)]
    assert all("key" not in item and "hashed_key" not in item for item in items)


def test_create_needs_a_name(seller: User) -> None:
    assert_error(jwt_client(seller).post(KEYS, {}, format="json"), 400, "validation_error", ["name"])
    assert APIKey.objects.count() == 0


def test_key_works_as_bearer_and_records_use(seller: User) -> None:
    raw = jwt_client(seller).post(KEYS, {"name": "CI"}, format="json").json()["data"]["key"]

    response = key_client(raw).get(KEYS)

    assert response.status_code == 200
    assert [item["name"] for item in response.json()["data"]] == ["CI"]
    assert APIKey.objects.get().last_used_at is not None


def test_unknown_key_is_401(db: Any) -> None:
    response = key_client("sk_not-a-real-key").get(KEYS)

    error = assert_error(response, 401, "not_authenticated")
    assert error["message"] == "Invalid API key."


def test_revoked_key_is_401_and_gone_from_the_list(seller: User) -> None:
    client = jwt_client(seller)
    created = client.post(KEYS, {"name": "Old"}, format="json").json()["data"]

    deleted = client.delete(f"{KEYS}/{created['id']}")

    assert deleted.status_code == 204
    assert deleted.content == b""
    assert APIKey.objects.get().revoked_at is not None
    assert_error(key_client(created["key"]).get(KEYS), 401, "not_authenticated")
    assert client.get(KEYS).json()["data"] == []
    assert_error(client.delete(f"{KEYS}/{created['id']}"), 404, "not_found")


def test_deleting_someone_elses_key_is_404(seller: User) -> None:
    other = SellerFactory()
    theirs = jwt_client(other).post(KEYS, {"name": "Theirs"}, format="json").json()["data"]

    assert_error(jwt_client(seller).delete(f"{KEYS}/{theirs['id']}"), 404, "not_found")
    assert APIKey.objects.get().revoked_at is None
    assert key_client(theirs["key"]).get(KEYS).status_code == 200


def test_list_shows_only_own_keys(seller: User) -> None:
    jwt_client(SellerFactory()).post(KEYS, {"name": "Theirs"}, format="json")
    jwt_client(seller).post(KEYS, {"name": "Mine"}, format="json")

    assert [item["name"] for item in jwt_client(seller).get(KEYS).json()["data"]] == ["Mine"]


def test_anonymous_cannot_manage_keys_and_a_buyer_sees_only_its_own(api_client: APIClient, seller: User) -> None:
    # Buyers create keys too (resellers, apps: ``POST /api/v1/orders``); each sees and revokes only its own.
    jwt_client(seller).post(KEYS, {"name": "seller's"}, format="json")
    buyer = UserFactory()
    assert jwt_client(buyer).get(KEYS).json()["data"] == []
    seller_key = APIKey.objects.get(user=seller)
    assert_error(jwt_client(buyer).delete(f"{KEYS}/{seller_key.id}"), 404, "not_found")
    assert APIKey.objects.get(pk=seller_key.pk).revoked_at is None
    APIKey.objects.all().delete()

    assert_error(api_client.post(KEYS, {"name": "x"}, format="json"), 401, "not_authenticated")
    assert_error(api_client.get(KEYS), 401, "not_authenticated")
    assert APIKey.objects.count() == 0


def test_key_of_deactivated_user_is_401(seller: User) -> None:
    raw = jwt_client(seller).post(KEYS, {"name": "CI"}, format="json").json()["data"]["key"]
    User.objects.filter(pk=seller.pk).update(is_active=False)

    assert_error(key_client(raw).get(KEYS), 401, "not_authenticated")
