"""Rate limits on every public endpoint and page (429 + Retry-After, from the cache), and the sign-in
lock-out after repeated failures (django-axes), for the API, the dashboard and the admin."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.core import mail
from django.test import Client
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from marketplace.accounts.tests.factories import DEFAULT_PASSWORD, SellerFactory
from orders.models import Order
from orders.tests.helpers import make_order

pytestmark = pytest.mark.django_db

LIMIT = 3


@pytest.fixture
def low_rates(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every scope at LIMIT per minute: the same table the API and the pages read."""
    rates = {scope: f"{LIMIT}/minute" for scope in ScopedRateThrottle.THROTTLE_RATES}
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", rates)


def _assert_limited(send: Callable[[], Any], *, envelope: bool) -> None:
    first = [send().status_code for _ in range(LIMIT)]
    assert 429 not in first, first
    refused = send()
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    if envelope:
        body = refused.json()
        assert body["success"] is False
        assert body["error"]["code"] == "rate_limited"
        assert "Try again in" in body["error"]["message"]
    else:
        assert b"Too many requests" in refused.content


def _api_cases(product: Any, order: Order) -> dict[str, Callable[[APIClient], Any]]:
    slug = product.slug
    variant = product.variants.first()
    pay_body = {"items": [{"variant_id": variant.id, "quantity": 1}], "buyer_email": "b@example.com"}
    return {
        "product": lambda c: c.get(f"/api/v1/public/checkout/{slug}"),
        "quote": lambda c: c.post(
            f"/api/v1/public/checkout/{slug}/quote", {"items": [{"variant_id": variant.id, "quantity": 1}]}
        ),
        "pay": lambda c: c.post(f"/api/v1/public/checkout/{slug}/pay", pay_body),
        "polling": lambda c: c.get(f"/api/v1/public/checkout/{slug}/order/{order.id}"),
        "initiate": lambda c: c.post(f"/api/v1/payments/initiate/{order.id}", {}),
        "licence verify": lambda c: c.post("/api/v1/licenses/verify", {"license_key": "NOPE-NOPE"}),
        "sign-in": lambda c: c.post("/api/v1/auth/token", {"email": "x@example.com", "password": "wrong"}),
        "register": lambda c: c.post("/api/v1/auth/register", {"email": "bad"}),
        "token refresh": lambda c: c.post("/api/v1/auth/token/refresh", {"refresh": "garbage"}),
    }


@pytest.mark.parametrize(
    "case",
    ["product", "quote", "pay", "polling", "initiate", "licence verify", "sign-in", "register", "token refresh"],
)
def test_public_api_endpoints_answer_429_with_retry_after(low_rates: None, text_product: Any, case: str) -> None:
    order = make_order(text_product)
    send = _api_cases(text_product, order)[case]
    client = APIClient()
    _assert_limited(lambda: send(client), envelope=True)


def test_limits_count_per_client_address(low_rates: None, text_product: Any) -> None:
    one, other = APIClient(REMOTE_ADDR="203.0.113.1"), APIClient(REMOTE_ADDR="203.0.113.2")
    url = f"/api/v1/public/checkout/{text_product.slug}"
    for _ in range(LIMIT):
        one.get(url)
    assert one.get(url).status_code == 429
    assert other.get(url).status_code == 200


def test_paying_does_not_use_up_the_browsing_budget(low_rates: None, text_product: Any) -> None:
    """Scopes are separate: a buyer who looked at the product three times can still pay."""
    client = APIClient()
    for _ in range(LIMIT):
        client.get(f"/api/v1/public/checkout/{text_product.slug}")
    variant = text_product.variants.first()
    response = client.post(
        f"/api/v1/public/checkout/{text_product.slug}/pay",
        {"items": [{"variant_id": variant.id, "quantity": 1}], "buyer_email": "b@example.com"},
    )
    assert response.status_code == 201


def _page_cases(product: Any, order: Order) -> dict[str, Callable[[Client], Any]]:
    slug = product.slug
    return {
        "checkout page": lambda c: c.get(f"/c/{slug}"),
        "checkout pay": lambda c: c.post(f"/c/{slug}", {"email": "not-an-email"}),
        "success page polling": lambda c: c.get(f"/c/{slug}/orders/{order.id}"),
        "dashboard sign-in": lambda c: c.post("/accounts/login/", {"email": "x@example.com", "password": "nope"}),
        "sign-up": lambda c: c.post("/accounts/signup/", {"email": "bad"}),
        "password reset": lambda c: c.post("/accounts/password-reset/", {"email": "x@example.com"}),
    }


@pytest.mark.parametrize(
    "case",
    ["checkout page", "checkout pay", "success page polling", "dashboard sign-in", "sign-up", "password reset"],
)
def test_public_pages_answer_429_with_retry_after(low_rates: None, text_product: Any, case: str) -> None:
    order = make_order(text_product)
    send = _page_cases(text_product, order)[case]
    client = Client()
    _assert_limited(lambda: send(client), envelope=False)


def test_a_refused_page_creates_nothing(low_rates: None, text_product: Any) -> None:
    client = Client()
    variant = text_product.variants.first()
    form = {"variant": variant.id, "quantity": 1, "email": "buyer@example.com"}
    statuses = [client.post(f"/c/{text_product.slug}", form).status_code for _ in range(LIMIT + 2)]
    assert statuses[-1] == 429
    assert Order.objects.count() == statuses.count(302)


def test_password_reset_mails_nothing_past_the_limit(low_rates: None) -> None:
    SellerFactory(email="ada@example.com")
    client = Client()
    for _ in range(LIMIT + 3):
        client.post("/accounts/password-reset/", {"email": "ada@example.com"})
    assert len(mail.outbox) == LIMIT


# --- Lock-out after repeated failed sign-ins -----------------------------------------------------


FAILURES = 5  # AXES_FAILURE_LIMIT's default


def test_api_sign_in_locks_after_repeated_failures_even_with_the_right_password() -> None:
    SellerFactory(email="ada@example.com")
    client = APIClient()
    for _ in range(FAILURES - 1):
        response = client.post("/api/v1/auth/token", {"email": "ada@example.com", "password": "wrong"})
        assert response.status_code == 401
    locked = client.post("/api/v1/auth/token", {"email": "ADA@example.com", "password": "wrong"})
    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "account_locked"
    assert int(locked["Retry-After"]) == 15 * 60

    right = client.post("/api/v1/auth/token", {"email": "ada@example.com", "password": DEFAULT_PASSWORD})
    assert right.status_code == 429
    assert "access" not in right.json().get("data", {})


def test_lock_out_is_per_email_and_address() -> None:
    SellerFactory(email="ada@example.com")
    SellerFactory(email="bob@example.com")
    here = APIClient(REMOTE_ADDR="203.0.113.1")
    for _ in range(FAILURES):
        here.post("/api/v1/auth/token", {"email": "ada@example.com", "password": "wrong"})

    elsewhere = APIClient(REMOTE_ADDR="203.0.113.2")
    assert (
        elsewhere.post("/api/v1/auth/token", {"email": "ada@example.com", "password": DEFAULT_PASSWORD}).status_code
        == 200
    )
    assert (
        here.post("/api/v1/auth/token", {"email": "bob@example.com", "password": DEFAULT_PASSWORD}).status_code == 200
    )


def test_a_success_before_the_limit_starts_the_count_again() -> None:
    SellerFactory(email="ada@example.com")
    client = APIClient()
    for _ in range(FAILURES - 1):
        client.post("/api/v1/auth/token", {"email": "ada@example.com", "password": "wrong"})
    assert (
        client.post("/api/v1/auth/token", {"email": "ada@example.com", "password": DEFAULT_PASSWORD}).status_code == 200
    )
    for _ in range(FAILURES - 1):
        assert client.post("/api/v1/auth/token", {"email": "ada@example.com", "password": "wrong"}).status_code == 401


def test_dashboard_sign_in_locks_with_a_page_that_says_what_to_do() -> None:
    SellerFactory(email="ada@example.com")
    client = Client()
    for _ in range(FAILURES - 1):
        page = client.post("/accounts/login/", {"email": "ada@example.com", "password": "wrong"})
        assert page.status_code == 200  # the form again, with its error
        assert b"Sign-in paused" not in page.content
    fifth = client.post("/accounts/login/", {"email": "ada@example.com", "password": "wrong"})
    assert fifth.status_code == 429
    locked = client.post("/accounts/login/", {"email": "ada@example.com", "password": DEFAULT_PASSWORD})
    assert locked.status_code == 429
    assert int(locked["Retry-After"]) > 0
    assert b"Sign-in paused" in locked.content
    assert b"/accounts/password-reset/" in locked.content
    assert "_auth_user_id" not in client.session


def test_the_admin_sign_in_is_locked_the_same_way() -> None:
    SellerFactory(email="root@example.com", is_staff=True, is_superuser=True)
    client = Client()
    for _ in range(FAILURES):
        client.post("/admin/login/", {"username": "root@example.com", "password": "wrong"})
    locked = client.post("/admin/login/", {"username": "root@example.com", "password": DEFAULT_PASSWORD})
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session


def test_a_completed_password_reset_lifts_the_lock() -> None:
    SellerFactory(email="ada@example.com")
    client = Client()
    for _ in range(FAILURES):
        client.post("/accounts/login/", {"email": "ada@example.com", "password": "wrong"})
    assert AccessAttempt.objects.filter(username="ada@example.com").exists()

    client.post("/accounts/password-reset/", {"email": "ada@example.com"})
    link = re.search(r"https?://\S+/accounts/reset/\S+/", mail.outbox[-1].body)
    assert link is not None
    path = "/" + link.group(0).split("/", 3)[3]
    form_page = client.get(path, follow=True)
    new_password = "a-brand-new-passphrase-2026"
    done = client.post(form_page.redirect_chain[-1][0], {"new_password1": new_password, "new_password2": new_password})
    assert done.status_code == 302

    assert not AccessAttempt.objects.filter(username="ada@example.com").exists()
    signed_in = client.post("/accounts/login/", {"email": "ada@example.com", "password": new_password})
    assert signed_in.status_code == 302
    assert client.session["_auth_user_id"]


def test_failed_attempts_never_store_the_password() -> None:
    SellerFactory(email="ada@example.com")
    APIClient().post("/api/v1/auth/token", {"email": "ada@example.com", "password": "hunter2-secret-guess"})
    attempt = AccessAttempt.objects.get(username="ada@example.com")
    stored = " ".join(str(v) for v in (attempt.post_data, attempt.get_data, attempt.user_agent, attempt.path_info))
    assert "hunter2-secret-guess" not in stored


def test_behind_a_trusted_proxy_each_client_has_its_own_limit_and_lock(
    low_rates: None, text_product: Any, settings: Any
) -> None:
    settings.TRUSTED_PROXY_COUNT = 1
    url = f"/api/v1/public/checkout/{text_product.slug}"
    one = APIClient(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.7")
    other = APIClient(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.8")
    for _ in range(LIMIT):
        one.get(url)
    assert one.get(url).status_code == 429
    assert other.get(url).status_code == 200

    SellerFactory(email="ada@example.com")
    for _ in range(FAILURES):
        one.post("/api/v1/auth/token", {"email": "ada@example.com", "password": "wrong"})
    assert AccessAttempt.objects.get(username="ada@example.com").ip_address == "198.51.100.7"
    signed_in = other.post("/api/v1/auth/token", {"email": "ada@example.com", "password": DEFAULT_PASSWORD})
    assert signed_in.status_code == 200
