"""The seller's store address and profile text, set on the dashboard's settings page."""

from typing import Any

import pytest
from django.test import Client

from marketplace.accounts.models import User
from marketplace.accounts.tests.factories import SellerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def me(db: Any) -> Any:
    return SellerFactory(name="Ada's Shop", email="ada@example.com")


@pytest.fixture
def browser(client: Client, me: Any) -> Client:
    client.force_login(me)
    return client


def post(browser: Client, **fields: str) -> Any:
    return browser.post("/dashboard/settings/", {"name": "Ada's Shop", "support_email": "", **fields})


def test_the_seller_sets_the_store_address_and_profile(browser: Client, me: Any, client: Client) -> None:
    response = post(browser, store_slug="ada-shop", store_bio="Puzzles **by hand**.")

    assert response.status_code == 302
    me.refresh_from_db()
    assert (me.store_slug, me.store_bio) == ("ada-shop", "Puzzles **by hand**.")
    page = browser.get("/dashboard/settings/").content.decode()
    assert 'href="/s/ada-shop"' in page
    assert "Puzzles <strong>by hand</strong>." in client.get("/s/ada-shop").content.decode()


@pytest.mark.parametrize(
    ("slug", "message"),
    [("Ada Shop", "lowercase"), ("ab", "3 to 60"), ("dashboard", "reserved"), ("a--b", "lowercase")],
)
def test_a_malformed_store_address_is_refused(browser: Client, me: Any, slug: str, message: str) -> None:
    response = post(browser, store_slug=slug, store_bio="New text")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="error-store_slug"' in html and message in html
    me.refresh_from_db()
    assert (me.store_slug, me.store_bio) == (None, "")


def test_a_taken_store_address_is_refused_and_nothing_changes(browser: Client, me: Any) -> None:
    SellerFactory(store_slug="taken-shop")

    response = post(browser, store_slug="taken-shop", store_bio="x")
    response_name = browser.post(
        "/dashboard/settings/", {"name": "Renamed", "support_email": "", "store_slug": "taken-shop"}
    )

    assert 'data-testid="error-store_slug"' in response.content.decode()
    assert "already in use" in response_name.content.decode()
    me.refresh_from_db()
    assert (me.name, me.store_slug) == ("Ada's Shop", None)  # the profile was not half-saved
    assert User.objects.filter(store_slug="taken-shop").count() == 1
