"""A buyer's orders include those placed as a guest with the same address, once the account has
proved that address (``POST /api/v1/auth/verify-email`` → the emailed code → ``.../confirm``)."""

import re

import pytest
from django.core import mail, signing
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.models import User
from marketplace.accounts.services import EMAIL_VERIFY_SALT
from marketplace.accounts.tests.factories import UserFactory
from orders.tests.helpers import make_order

pytestmark = pytest.mark.django_db


def jwt_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.fixture
def guest_order():
    product = ProductFactory()
    VariantFactory(product=product, price=300)
    return make_order(product, email="Guest@Example.com")


def _code_from_mail() -> str:
    (message,) = mail.outbox
    return re.search(r"\n\n(\S+:\S+)\n\n", message.body).group(1)


def test_guest_orders_appear_once_the_email_is_verified(guest_order, django_capture_on_commit_callbacks):
    user = UserFactory(email="guest@example.com")
    client = jwt_client(user)
    # Not yet proved: registering with an address claims none of its guest orders.
    assert client.get("/api/v1/orders/my-orders").json()["data"]["results"] == []
    assert client.get("/api/v1/orders").json()["data"]["results"] == []
    assert client.get(f"/api/v1/orders/{guest_order.id}").status_code == 404

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/auth/verify-email")
    assert response.status_code == 202
    assert response.json()["data"] == {"email": "guest@example.com", "email_verified": False}
    assert mail.outbox[0].to == ["guest@example.com"]
    code = _code_from_mail()

    confirmed = APIClient().post("/api/v1/auth/verify-email/confirm", {"token": code}, format="json")
    assert confirmed.status_code == 200
    assert confirmed.json()["data"] == {"email": "guest@example.com", "email_verified": True}
    assert User.objects.get(pk=user.pk).email_verified

    mine = client.get("/api/v1/orders/my-orders").json()["data"]["results"]
    assert [o["id"] for o in mine] == [guest_order.id]
    assert [o["id"] for o in client.get("/api/v1/orders").json()["data"]["results"]] == [guest_order.id]
    assert client.get(f"/api/v1/orders/{guest_order.id}").status_code == 200


def test_a_changed_email_claims_nothing_until_proved_again(guest_order):
    user = UserFactory(email="guest@example.com", verified_email="guest@example.com")
    assert [o["id"] for o in jwt_client(user).get("/api/v1/orders/my-orders").json()["data"]["results"]] == [
        guest_order.id
    ]
    User.objects.filter(pk=user.pk).update(email="new@example.com")
    user.refresh_from_db()
    assert jwt_client(user).get("/api/v1/orders/my-orders").json()["data"]["results"] == []


def test_a_forged_expired_or_stale_code_verifies_nothing():
    user = UserFactory(email="someone@example.com")
    client = APIClient()
    forged = signing.dumps({"u": user.id, "e": user.email}, salt="another-salt")
    stale = signing.dumps({"u": user.id, "e": "old@example.com"}, salt=EMAIL_VERIFY_SALT)
    for token in (forged, stale, "nonsense"):
        response = client.post("/api/v1/auth/verify-email/confirm", {"token": token}, format="json")
        assert response.status_code == 400
        assert response.json()["error"]["fields"] == {"token": ["Invalid or expired."]}
    assert not User.objects.get(pk=user.pk).email_verified


def test_the_email_goes_out_at_most_once_a_minute(django_capture_on_commit_callbacks):
    user = UserFactory()
    client = jwt_client(user)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/api/v1/auth/verify-email")
        client.post("/api/v1/auth/verify-email")
    assert len(mail.outbox) == 1
    assert APIClient().post("/api/v1/auth/verify-email").status_code == 401
