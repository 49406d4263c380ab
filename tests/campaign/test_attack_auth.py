"""Issue 10, items 2, 8 and 16, attacked from outside as a stranger would.

- 2: a client's address is ``REMOTE_ADDR`` unless ``TRUSTED_PROXY_COUNT`` proxies stand in front;
  a made-up ``X-Forwarded-For`` neither escapes a limit or the sign-in lock-out nor locks a victim out.
- 8: a password reset ends every token issued before it (and other sessions); refresh tokens rotate
  and a used one is refused.
- 16: ``register`` answers the same for a new and a taken email, and emails the account instead.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.core import mail
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.models import User
from marketplace.accounts.services import api_key_create
from marketplace.accounts.tests.factories import DEFAULT_PASSWORD, SellerFactory
from marketplace.core.client_ip import client_address
from marketplace.core.ratelimit import ClientAddressIdent
from orders.models import Order

pytestmark = pytest.mark.django_db

TOKEN = "/api/v1/auth/token"
REFRESH = "/api/v1/auth/token/refresh"
REGISTER = "/api/v1/auth/register"
FAILURES = 5  # LOGIN_FAILURE_LIMIT's default
ATTACKER, VICTIM, PROXY = "203.0.113.66", "198.51.100.23", "10.0.0.1"


def forged(n: int) -> str:
    """A different, plausible X-Forwarded-For for every request."""
    return f"192.0.2.{n % 250 + 1}"


@pytest.fixture
def product() -> Any:
    product = ProductFactory(seller=SellerFactory(), slug="attack-text", currency="USD")
    VariantFactory(product=product, name="Standard", price=500)
    return product


@pytest.fixture
def low_rates(monkeypatch: pytest.MonkeyPatch) -> int:
    limit = 3
    monkeypatch.setattr(
        ScopedRateThrottle, "THROTTLE_RATES", {s: f"{limit}/minute" for s in ScopedRateThrottle.THROTTLE_RATES}
    )
    return limit


# --- 2. One header beats every rate limit and the sign-in lock-out --------------------------------


def test_40_wrong_passwords_under_rotating_forwarded_for_lock_the_account() -> None:
    SellerFactory(email="ada@example.com")
    client = APIClient(REMOTE_ADDR=ATTACKER)

    statuses = [
        client.post(
            TOKEN, {"email": "ada@example.com", "password": f"guess-{n}"}, HTTP_X_FORWARDED_FOR=forged(n)
        ).status_code
        for n in range(40)
    ]
    right = client.post(
        TOKEN, {"email": "ada@example.com", "password": DEFAULT_PASSWORD}, HTTP_X_FORWARDED_FOR=forged(41)
    )

    assert statuses == [401] * (FAILURES - 1) + [429] * (40 - FAILURES + 1)
    assert right.status_code == 429
    assert right.json()["error"]["code"] == "account_locked"
    assert "access" not in str(right.content)
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {ATTACKER}


def test_a_victim_cannot_be_locked_out_by_naming_their_address() -> None:
    SellerFactory(email="ada@example.com")
    attacker = APIClient(REMOTE_ADDR=ATTACKER, HTTP_X_FORWARDED_FOR=VICTIM)
    for _ in range(FAILURES + 3):
        attacker.post(TOKEN, {"email": "ada@example.com", "password": "wrong"})

    victim = APIClient(REMOTE_ADDR=VICTIM)
    response = victim.post(TOKEN, {"email": "ada@example.com", "password": DEFAULT_PASSWORD})

    assert response.status_code == 200, response.content
    assert set(response.json()["data"]) == {"access", "refresh", "token_type", "expires_in"}
    assert not AccessAttempt.objects.filter(ip_address=VICTIM).exists()


@pytest.mark.parametrize("scope", ["pay", "auth"])
def test_rate_limits_are_not_reset_by_a_changing_header(low_rates: int, product: Any, scope: str) -> None:
    client = APIClient(REMOTE_ADDR=ATTACKER)
    variant = product.variants.get()

    def send(n: int) -> Any:
        if scope == "pay":
            body = {"items": [{"variant_id": variant.id, "quantity": 1}], "buyer_email": f"b{n}@example.com"}
            return client.post(f"/api/v1/public/checkout/{product.slug}/pay", body, HTTP_X_FORWARDED_FOR=forged(n))
        return client.post(REGISTER, {"email": "not-an-email"}, HTTP_X_FORWARDED_FOR=forged(n))

    statuses = [send(n).status_code for n in range(low_rates + 2)]

    assert 429 not in statuses[:low_rates]
    assert statuses[low_rates:] == [429, 429]
    if scope == "pay":
        assert Order.objects.count() == low_rates  # the refused ones created nothing


def test_behind_a_trusted_proxy_the_proxys_view_is_used(low_rates: int, product: Any, settings: Any) -> None:
    settings.TRUSTED_PROXY_COUNT = 1
    url = f"/api/v1/public/checkout/{product.slug}"
    # The client writes the left part; our proxy appends the address it saw (the right-most entry).
    one = [APIClient(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"{forged(n)}, 198.51.100.7") for n in range(5)]
    other = APIClient(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.8")

    statuses = [one[n].get(url).status_code for n in range(low_rates + 1)]

    assert statuses == [200] * low_rates + [429]
    assert other.get(url).status_code == 200

    SellerFactory(email="ada@example.com")
    for n in range(FAILURES):
        one[n].post(TOKEN, {"email": "ada@example.com", "password": "wrong"})
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"198.51.100.7"}
    assert other.post(TOKEN, {"email": "ada@example.com", "password": DEFAULT_PASSWORD}).status_code == 200


class _Request:
    def __init__(self, remote: str | None, forwarded: str | None = None) -> None:
        self.META: dict[str, str] = {}
        if remote is not None:
            self.META["REMOTE_ADDR"] = remote
        if forwarded is not None:
            self.META["HTTP_X_FORWARDED_FOR"] = forwarded


@pytest.mark.parametrize(
    ("proxies", "remote", "forwarded", "expected"),
    [
        (0, "203.0.113.5", "198.51.100.1", "203.0.113.5"),  # no proxy configured: the header is ignored
        (0, "203.0.113.5", None, "203.0.113.5"),
        (1, "10.0.0.1", "198.51.100.1", "198.51.100.1"),
        (1, "10.0.0.1", "1.2.3.4, 198.51.100.1", "198.51.100.1"),  # the client's own entry is never used
        (2, "10.0.0.2", "1.2.3.4, 198.51.100.1, 10.0.0.1", "198.51.100.1"),
        (2, "10.0.0.2", "198.51.100.1", "10.0.0.2"),  # fewer entries than proxies: not through them
        (1, "10.0.0.1", "not-an-address", "10.0.0.1"),  # malformed: the peer
        (1, "10.0.0.1", "", "10.0.0.1"),
        (1, "10.0.0.1", "198.51.100.1:443", "10.0.0.1"),
        (1, "10.0.0.1", "2001:DB8:0:0::1", "2001:db8::1"),  # one address, one spelling
        (0, None, None, None),  # a sign-in made in code
    ],
)
def test_client_address(
    settings: Any, proxies: int, remote: str | None, forwarded: str | None, expected: str | None
) -> None:
    settings.TRUSTED_PROXY_COUNT = proxies
    assert client_address(_Request(remote, forwarded)) == expected


def _views(patterns: list[URLPattern | URLResolver]) -> Iterator[Any]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _views(entry.url_patterns)
        else:
            view = getattr(entry.callback, "view_class", None) or getattr(entry.callback, "cls", None)
            if view is not None:
                yield view


def test_every_api_throttle_counts_the_one_client_address() -> None:
    """A throttle that used DRF's own ``get_ident`` would trust the header again: none may."""
    throttles = {t for view in _views(get_resolver().url_patterns) for t in getattr(view, "throttle_classes", [])}
    assert throttles  # the public API is throttled
    assert all(issubclass(t, ClientAddressIdent) for t in throttles), throttles


def test_the_request_log_line_names_the_same_address(caplog: pytest.LogCaptureFixture, product: Any) -> None:
    with caplog.at_level(logging.INFO, logger="marketplace.request"):
        APIClient(REMOTE_ADDR=ATTACKER).get(f"/api/v1/public/checkout/{product.slug}", HTTP_X_FORWARDED_FOR=VICTIM)
    [line] = [r for r in caplog.records if r.name == "marketplace.request"]
    assert line.client_address == ATTACKER  # type: ignore[attr-defined]


def test_the_sign_in_page_lock_out_ignores_the_header_too() -> None:
    SellerFactory(email="ada@example.com")
    page = Client(REMOTE_ADDR=ATTACKER)
    for n in range(FAILURES):
        page.post("/accounts/login/", {"email": "ada@example.com", "password": "wrong"}, HTTP_X_FORWARDED_FOR=forged(n))
    locked = page.post(
        "/accounts/login/", {"email": "ada@example.com", "password": DEFAULT_PASSWORD}, HTTP_X_FORWARDED_FOR=forged(99)
    )
    assert locked.status_code == 429
    assert "_auth_user_id" not in page.session


# --- 8. Tokens outlive a password change -----------------------------------------------------------


def sign_in(email: str, password: str) -> dict[str, Any]:
    response = APIClient().post(TOKEN, {"email": email, "password": password})
    assert response.status_code == 200, response.content
    return dict(response.json()["data"])


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def reset_password_by_email(email: str, new_password: str) -> None:
    """The whole dashboard flow: ask for the link, open it, choose a new password."""
    browser = Client()
    mail.outbox.clear()
    assert browser.post("/accounts/password-reset/", {"email": email}).status_code == 302
    link = re.search(r"http://testserver(/accounts/reset/[^/\s]+/[^/\s]+/)", mail.outbox[-1].body)
    assert link is not None
    form = browser.get(link.group(1), follow=True).redirect_chain[-1][0]
    done = browser.post(form, {"new_password1": new_password, "new_password2": new_password})
    assert done.status_code == 302
    assert done["Location"] == "/accounts/reset/done/"


def assert_refused(response: Any, code: str) -> None:
    assert response.status_code == 401, response.content
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert set(body) == {"success", "error"}


NEW_PASSWORD = "a-fresh-passphrase-after-the-leak"


def test_a_password_reset_ends_every_token_and_session_issued_before_it() -> None:
    seller = SellerFactory(email="ada@example.com")
    before = sign_in("ada@example.com", DEFAULT_PASSWORD)
    rotated = APIClient().post(REFRESH, {"refresh": before["refresh"]}).json()["data"]  # a descendant, also before
    _, api_key = api_key_create(user=seller, name="shop integration")
    dashboard = Client()
    dashboard.force_login(seller)
    assert bearer(before["access"]).get("/api/v1/products").status_code == 200
    assert dashboard.get("/dashboard/").status_code == 200

    reset_password_by_email("ada@example.com", NEW_PASSWORD)

    for access in (before["access"], rotated["access"]):
        assert_refused(bearer(access).get("/api/v1/products"), "not_authenticated")
    assert_refused(APIClient().post(REFRESH, {"refresh": rotated["refresh"]}), "invalid_token")
    assert dashboard.get("/dashboard/")["Location"].startswith("/accounts/login/")  # the session ended
    assert OutstandingToken.objects.filter(user=seller, blacklistedtoken__isnull=True).count() == 0

    after = sign_in("ada@example.com", NEW_PASSWORD)
    assert bearer(after["access"]).get("/api/v1/products").status_code == 200
    again = APIClient().post(REFRESH, {"refresh": after["refresh"]})
    assert again.status_code == 200, again.content
    assert bearer(again.json()["data"]["access"]).get("/api/v1/products").status_code == 200
    # Seller API keys are not JWTs: an integration survives its seller's password reset.
    assert bearer(api_key).get("/api/v1/products").status_code == 200


def test_a_password_changed_any_other_way_ends_the_tokens_too() -> None:
    """The admin's password form, ``changepassword``: whatever sets a new password and saves."""
    seller = SellerFactory(email="ada@example.com")
    before = sign_in("ada@example.com", DEFAULT_PASSWORD)

    seller.set_password(NEW_PASSWORD)
    seller.save()

    assert_refused(bearer(before["access"]).get("/api/v1/products"), "not_authenticated")
    assert_refused(APIClient().post(REFRESH, {"refresh": before["refresh"]}), "invalid_token")


def test_a_refresh_token_works_once() -> None:
    SellerFactory(email="ada@example.com")
    pair = sign_in("ada@example.com", DEFAULT_PASSWORD)

    first = APIClient().post(REFRESH, {"refresh": pair["refresh"]})
    replay = APIClient().post(REFRESH, {"refresh": pair["refresh"]})

    assert first.status_code == 200, first.content
    assert set(first.json()["data"]) == {"access", "refresh", "expires_in"}
    assert_refused(replay, "invalid_token")
    assert replay.json()["error"]["message"] == "The refresh token is invalid or expired."
    # The next one in the chain works (once).
    assert APIClient().post(REFRESH, {"refresh": first.json()["data"]["refresh"]}).status_code == 200
    assert BlacklistedToken.objects.count() == 2


def test_refresh_tokens_are_listed_but_never_stored() -> None:
    """The blacklist needs each token's id; a copy of the database must not sign anybody in."""
    SellerFactory(email="ada@example.com")
    pair = sign_in("ada@example.com", DEFAULT_PASSWORD)
    APIClient().post(REFRESH, {"refresh": pair["refresh"]})

    assert OutstandingToken.objects.count() == 2
    assert set(OutstandingToken.objects.values_list("token", flat=True)) == {""}


# --- 16. register reveals which emails have accounts -----------------------------------------------


STRANGERS_PASSWORD = "plum-orbit-lantern-42"


def _register(email: str, password: str = STRANGERS_PASSWORD) -> Any:
    body = {"email": email, "password": password, "name": "Mallory", "role": "seller"}
    return APIClient().post(REGISTER, body)


def _hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the password hashes computed (the work that makes an answer slow or fast)."""
    from django.contrib.auth.hashers import MD5PasswordHasher

    calls: list[str] = []
    original = MD5PasswordHasher.encode

    def encode(self: Any, password: str, salt: str) -> str:
        calls.append(salt)
        return original(self, password, salt)

    monkeypatch.setattr(MD5PasswordHasher, "encode", encode)
    return calls


def test_register_answers_a_taken_email_exactly_like_a_new_one(
    monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    owner = SellerFactory(email="ada@example.com", name="Ada's Shop")
    before = User.objects.filter(pk=owner.pk).values().get()
    hashes = _hashes(monkeypatch)

    with django_capture_on_commit_callbacks(execute=True):
        new = _register("newcomer@example.com")
    hashed_for_new = len(hashes)
    with django_capture_on_commit_callbacks(execute=True):
        taken = _register("ADA@example.com")

    assert new.status_code == taken.status_code == 201
    new_body, taken_body = new.json(), taken.json()
    assert set(new_body) == set(taken_body) == {"success", "data"}
    assert set(new_body["data"]) == set(taken_body["data"]) == {"id", "email", "name", "role"}
    assert taken_body["data"] == {
        "id": taken_body["data"]["id"],
        "email": "ada@example.com",
        "name": "Mallory",
        "role": "seller",
    }
    # An id of the same form that names nothing.
    assert len(taken_body["data"]["id"]) == len(new_body["data"]["id"]) and taken_body["data"]["id"].startswith("usr_")
    assert not User.objects.filter(pk=taken_body["data"]["id"]).exists()
    # The same work on both paths: one password hash each.
    assert hashed_for_new == 1 and len(hashes) == 2

    # Nothing about the existing account changed; its owner was told instead.
    assert User.objects.filter(pk=owner.pk).values().get() == before
    assert User.objects.filter(email__iexact="ada@example.com").count() == 1
    [notice] = mail.outbox
    assert notice.to == ["ada@example.com"]
    assert notice.subject == "Someone tried to sign up with your email address"
    assert "http://127.0.0.1:8000/accounts/login/" in notice.body
    assert "http://127.0.0.1:8000/accounts/password-reset/" in notice.body
    assert STRANGERS_PASSWORD not in notice.body
    # The stranger's password opens nothing.
    assert APIClient().post(TOKEN, {"email": "ada@example.com", "password": STRANGERS_PASSWORD}).status_code == 401


def test_invalid_input_is_refused_alike_for_new_and_taken_emails() -> None:
    SellerFactory(email="ada@example.com")
    for email in ("ada@example.com", "newcomer@example.com"):
        response = _register(email, password="12345678")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "validation_error"
        assert set(response.json()["error"]["fields"]) == {"password"}
    assert User.objects.count() == 1
    assert mail.outbox == []


def test_registering_a_taken_email_in_a_loop_sends_one_notice(django_capture_on_commit_callbacks: Any) -> None:
    SellerFactory(email="ada@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        statuses = {_register("ada@example.com").status_code for _ in range(5)}
    assert statuses == {201}
    assert [m.to for m in mail.outbox] == [["ada@example.com"]]


def test_the_sign_up_page_answers_a_taken_email_like_a_new_one(django_capture_on_commit_callbacks: Any) -> None:
    owner = SellerFactory(email="ada@example.com", name="Ada's Shop")
    before = User.objects.filter(pk=owner.pk).values().get()
    form = {"name": "Mallory", "password": "a-long-unusual-passphrase"}

    new = Client().post("/accounts/signup/", {**form, "email": "newcomer@example.com"})
    stranger = Client()
    with django_capture_on_commit_callbacks(execute=True):
        taken = stranger.post("/accounts/signup/", {**form, "email": "ada@example.com"})

    assert (taken.status_code, taken["Location"]) == (new.status_code, new["Location"]) == (302, "/dashboard/products/")
    assert b"already" not in taken.content
    assert "_auth_user_id" not in stranger.session
    assert User.objects.filter(pk=owner.pk).values().get() == before
    assert User.objects.count() == 2  # the owner and the newcomer
    assert [m.to for m in mail.outbox] == [["ada@example.com"]]


def test_expired_refresh_tokens_are_forgotten_live_ones_kept() -> None:
    from datetime import timedelta

    from django.utils import timezone

    from marketplace.accounts.tasks import flush_expired_tokens

    SellerFactory(email="ada@example.com")
    live = sign_in("ada@example.com", DEFAULT_PASSWORD)
    stale = sign_in("ada@example.com", DEFAULT_PASSWORD)
    APIClient().post(REFRESH, {"refresh": stale["refresh"]})  # blacklisted, then expired below
    OutstandingToken.objects.exclude(jti=_jti(live["refresh"])).update(expires_at=timezone.now() - timedelta(seconds=1))
    expired = OutstandingToken.objects.filter(expires_at__lt=timezone.now()).count()

    assert flush_expired_tokens() == expired == 2
    assert list(OutstandingToken.objects.values_list("jti", flat=True)) == [_jti(live["refresh"])]
    assert BlacklistedToken.objects.count() == 0


def _jti(token: str) -> str:
    from rest_framework_simplejwt.tokens import UntypedToken

    return str(UntypedToken(token, verify=False)["jti"])


@pytest.mark.django_db(transaction=True)
def test_one_refresh_token_sent_six_times_at_once_works_once() -> None:
    """Real concurrent transactions: the unique blacklist row, not a check-then-write, decides."""
    import threading

    from django.db import connection

    SellerFactory(email="ada@example.com")
    refresh = sign_in("ada@example.com", DEFAULT_PASSWORD)["refresh"]
    barrier = threading.Barrier(6)
    statuses: list[int] = []

    def replay() -> None:
        try:
            barrier.wait(timeout=10)
            statuses.append(APIClient().post(REFRESH, {"refresh": refresh}).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=replay) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(statuses) == [200, 401, 401, 401, 401, 401]
    assert BlacklistedToken.objects.count() == 1
    assert OutstandingToken.objects.count() == 2  # the sign-in's and the one successful refresh's
