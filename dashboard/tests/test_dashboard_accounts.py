"""Seller sign-up and password reset by email."""

import re

import pytest
from django.contrib.auth import SESSION_KEY
from django.core import mail

from marketplace.accounts.models import User
from marketplace.accounts.tests.factories import DEFAULT_PASSWORD, SellerFactory

pytestmark = pytest.mark.django_db

SIGNUP = "/accounts/signup/"
RESET = "/accounts/password-reset/"


def test_signup_page_renders_and_sign_in_links_to_it(client):
    html = client.get(SIGNUP).content.decode()
    assert 'name="email"' in html and 'name="password"' in html and 'name="name"' in html
    login = client.get("/accounts/login/").content.decode()
    assert 'href="/accounts/signup/"' in login
    assert 'href="/accounts/password-reset/"' in login


def test_signup_creates_a_seller_and_signs_in(client):
    response = client.post(
        SIGNUP, {"name": "Grace's Games", "email": "Grace@Example.com", "password": "a-long-unusual-passphrase"}
    )

    assert response.status_code == 302
    assert response["Location"] == "/dashboard/products/"
    user = User.objects.get()
    assert (user.email, user.name, user.role) == ("grace@example.com", "Grace's Games", "seller")
    assert user.check_password("a-long-unusual-passphrase")
    assert client.session[SESSION_KEY] == str(user.pk)
    page = client.get("/dashboard/products/")
    assert page.status_code == 200
    assert "Create your first product" in page.content.decode()


def test_signup_applies_djangos_password_validators_next_to_the_field(client):
    response = client.post(SIGNUP, {"name": "Grace", "email": "grace@example.com", "password": "12345678"})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="error-password">This password is too common.' in html
    assert 'value="grace@example.com"' in html  # what was typed is kept (never the password)
    assert "12345678" not in html
    assert not User.objects.exists()
    assert SESSION_KEY not in client.session


def test_signup_with_a_taken_email_answers_like_a_new_one_and_signs_nobody_in(
    client, django_capture_on_commit_callbacks
):
    """Never "this email is taken": the same redirect, and the owner gets an email instead."""
    owner = SellerFactory(email="taken@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            SIGNUP, {"name": "X", "email": "TAKEN@example.com", "password": "a-long-unusual-passphrase"}
        )
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/products/"
    assert SESSION_KEY not in client.session
    assert User.objects.count() == 1
    assert not owner.__class__.objects.get().check_password("a-long-unusual-passphrase")
    [message] = mail.outbox
    assert message.to == ["taken@example.com"]


def test_signup_requires_every_field(client):
    html = client.post(SIGNUP, {"name": "", "email": "not-an-email", "password": ""}).content.decode()
    assert 'data-testid="error-name">This field is required.' in html
    assert 'data-testid="error-email">Enter a valid email address.' in html
    assert 'data-testid="error-password">This field is required.' in html
    assert not User.objects.exists()


def test_signed_in_users_skip_the_signup_page(client):
    client.force_login(SellerFactory())
    assert client.get(SIGNUP)["Location"] == "/dashboard/"


def test_signup_goes_to_a_safe_next_only(client):
    data = {"name": "A", "email": "a@example.com", "password": "a-long-unusual-passphrase"}
    assert client.post(SIGNUP, {**data, "next": "https://evil.example/"})["Location"] == "/dashboard/products/"
    client.logout()
    data["email"] = "b@example.com"
    assert client.post(SIGNUP, {**data, "next": "/dashboard/"})["Location"] == "/dashboard/"


def test_password_reset_sends_one_email_whose_link_sets_a_new_password(client):
    user = SellerFactory(email="ada@example.com", name="Ada")

    response = client.post(RESET, {"email": "ADA@example.com"})

    assert response.status_code == 302
    assert response["Location"] == "/accounts/password-reset/sent/"
    assert "Check your email" in client.get(response["Location"]).content.decode()
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ada@example.com"]
    assert message.alternatives and "Choose a new password" in message.alternatives[0][0]
    link = re.search(r"http://testserver(/accounts/reset/[^/\s]+/[^/\s]+/)", message.body)
    assert link, message.body

    # Django redirects the token link to a URL without the token, then shows the form.
    page = client.get(link.group(1), follow=True)
    assert page.status_code == 200
    assert "Choose a new password" in page.content.decode()
    form_url = page.redirect_chain[-1][0]

    mismatch = client.post(form_url, {"new_password1": "new-secret-passphrase", "new_password2": "other"})
    assert 'data-testid="error-new_password2"' in mismatch.content.decode()

    done = client.post(form_url, {"new_password1": "new-secret-passphrase", "new_password2": "new-secret-passphrase"})
    assert done.status_code == 302
    assert done["Location"] == "/accounts/reset/done/"
    user.refresh_from_db()
    assert user.check_password("new-secret-passphrase")
    assert not user.check_password(DEFAULT_PASSWORD)

    # The link works once.
    again = client.get(link.group(1), follow=True)
    assert "This link no longer works" in again.content.decode()
    # And the new password signs in.
    client.logout()
    signed_in = client.post("/accounts/login/", {"email": "ada@example.com", "password": "new-secret-passphrase"})
    assert signed_in.status_code == 302


def test_password_reset_for_an_unknown_address_sends_nothing_and_says_the_same(client):
    response = client.post(RESET, {"email": "nobody@example.com"})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password-reset/sent/"
    assert mail.outbox == []
