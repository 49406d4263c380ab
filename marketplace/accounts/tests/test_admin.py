from typing import Any

import pytest
from django.contrib.admin.utils import quote
from django.test import Client

from marketplace.accounts.models import Role, User
from marketplace.accounts.services import api_key_create
from marketplace.accounts.tests.factories import SellerFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(db: Any) -> Client:
    operator = User.objects.create_superuser(email="ops@example.com", password="x-very-long-pass-1", name="Ops")
    client = Client()
    client.force_login(operator)
    return client


def test_user_changelist_filters_and_search(operator_client: Client) -> None:
    SellerFactory(email="alice@example.com")
    UserFactory(email="bob@example.com")

    by_search = operator_client.get("/admin/accounts/user/", {"q": "alice"})
    by_role = operator_client.get("/admin/accounts/user/", {"role__exact": "buyer"})

    assert by_search.status_code == 200
    assert [u.email for u in by_search.context["cl"].result_list] == ["alice@example.com"]
    assert [u.email for u in by_role.context["cl"].result_list] == ["bob@example.com"]


def test_add_user_through_admin(operator_client: Client) -> None:
    response = operator_client.post(
        "/admin/accounts/user/add/",
        {
            "email": "New.Seller@Example.com",
            "name": "New Seller",
            "role": "seller",
            "usable_password": "true",
            "password1": "a-long-unusual-passphrase-9",
            "password2": "a-long-unusual-passphrase-9",
        },
    )

    assert response.status_code == 302, response.content
    user = User.objects.get(email="new.seller@example.com")
    assert (user.name, user.role) == ("New Seller", Role.SELLER)
    assert user.check_password("a-long-unusual-passphrase-9")


def test_add_user_with_taken_email_changes_nothing(operator_client: Client) -> None:
    SellerFactory(email="taken@example.com")
    count = User.objects.count()

    response = operator_client.post(
        "/admin/accounts/user/add/",
        {
            "email": "TAKEN@example.com",
            "name": "Dup",
            "role": "buyer",
            "usable_password": "true",
            "password1": "a-long-unusual-passphrase-9",
            "password2": "a-long-unusual-passphrase-9",
        },
    )

    assert response.status_code == 200
    assert "An account with this email already exists." in response.content.decode()
    assert User.objects.count() == count


def test_user_change_page_renders(operator_client: Client) -> None:
    seller = SellerFactory()
    api_key_create(user=seller, name="Integration")

    response = operator_client.get(f"/admin/accounts/user/{quote(seller.pk)}/change/")

    assert response.status_code == 200
    assert b"Integration" in response.content


def test_api_key_admin_never_shows_the_hash(operator_client: Client) -> None:
    key, raw = api_key_create(user=SellerFactory(), name="CI")

    listing = operator_client.get("/admin/accounts/apikey/")
    change = operator_client.get(f"/admin/accounts/apikey/{quote(key.pk)}/change/")

    assert listing.status_code == 200 and change.status_code == 200
    for response in (listing, change):
        assert key.hashed_key.encode() not in response.content
        assert raw.encode() not in response.content
    assert b'name="hashed_key"' not in change.content
    assert b'name="name"' not in change.content  # read-only everywhere
    assert operator_client.get("/admin/accounts/apikey/add/").status_code == 403


def test_api_key_edit_post_changes_nothing(operator_client: Client) -> None:
    key, _raw = api_key_create(user=SellerFactory(), name="CI")

    operator_client.post(f"/admin/accounts/apikey/{quote(key.pk)}/change/", {"name": "hacked", "hashed_key": "0" * 64})

    key.refresh_from_db()
    assert key.name == "CI"
    assert key.hashed_key != "0" * 64


def test_revoke_action(operator_client: Client) -> None:
    key, _raw = api_key_create(user=SellerFactory(), name="CI")

    response = operator_client.post(
        "/admin/accounts/apikey/", {"action": "revoke_keys", "_selected_action": [key.pk]}, follow=True
    )

    assert response.status_code == 200
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert b"Revoked 1 API key(s)." in response.content
