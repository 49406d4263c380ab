"""The seller's settings pages: profile, API keys, webhook endpoints and discount codes."""

from datetime import UTC, datetime

import pytest

from catalog.models import Discount
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.models import APIKey
from marketplace.accounts.services import api_key_authenticate, api_key_create
from marketplace.accounts.tests.factories import SellerFactory, UserFactory
from orders.models import SellerEvent, WebhookDelivery, WebhookEndpoint
from orders.seller_events import endpoints as seller_endpoints

pytestmark = pytest.mark.django_db


@pytest.fixture
def me():
    return SellerFactory(name="Ada's Shop", email="ada@example.com")


@pytest.fixture
def other():
    return SellerFactory(name="Other Shop", email="other@example.com")


@pytest.fixture
def browser(client, me):
    client.force_login(me)
    return client


# --- Access --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/settings/",
        "/dashboard/settings/api-keys/",
        "/dashboard/settings/webhooks/",
        "/dashboard/settings/discounts/",
        "/dashboard/settings/discounts/new/",
    ],
)
def test_settings_pages_need_a_signed_in_seller(client, path):
    anonymous = client.get(path)
    assert (anonymous.status_code, anonymous["Location"]) == (302, f"/accounts/login/?next={path}")
    client.force_login(UserFactory())
    assert client.get(path).status_code == 403


def test_the_nav_links_to_orders_and_settings(browser):
    html = browser.get("/dashboard/settings/").content.decode()
    assert 'data-testid="nav-orders"' in html
    assert 'href="/dashboard/settings/"' in html
    for link in ("/dashboard/settings/api-keys/", "/dashboard/settings/webhooks/", "/dashboard/settings/discounts/"):
        assert f'href="{link}"' in html


# --- Profile -------------------------------------------------------------------------------------


def test_settings_save_the_display_name_and_support_email(browser, me):
    page = browser.get("/dashboard/settings/")
    assert 'value="Ada&#x27;s Shop"' in page.content.decode()

    response = browser.post(
        "/dashboard/settings/", {"name": "  Ada Games ", "support_email": "Help@Ada.example"}, follow=True
    )

    assert response.redirect_chain == [("/dashboard/settings/", 302)]
    assert "Settings saved." in response.content.decode()
    me.refresh_from_db()
    assert (me.name, me.support_email) == ("Ada Games", "help@ada.example")


def test_settings_errors_are_shown_next_to_the_fields_and_nothing_is_saved(browser, me):
    response = browser.post("/dashboard/settings/", {"name": "", "support_email": "not-an-email"})

    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="error-name"' in html
    assert 'data-testid="error-support_email"' in html
    assert "Enter a valid email address." in html
    me.refresh_from_db()
    assert (me.name, me.support_email) == ("Ada's Shop", "")


# --- API keys ------------------------------------------------------------------------------------


def test_api_keys_empty_state_says_what_to_do(browser):
    html = browser.get("/dashboard/settings/api-keys/").content.decode()
    assert 'data-testid="empty-keys"' in html
    assert "Create one above" in html


def test_an_api_key_is_shown_once_then_only_its_prefix(browser, me):
    response = browser.post("/dashboard/settings/api-keys/", {"name": "Shop backend"})

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    raw = response.context["new_key"][1]
    assert raw.startswith("sk_")
    html = response.content.decode()
    assert raw in html
    assert 'data-copy="#new-key-value"' in html
    key = APIKey.objects.get(user=me)
    assert (key.name, key.prefix) == ("Shop backend", raw[:10])
    assert api_key_authenticate(raw) == me

    again = browser.get("/dashboard/settings/api-keys/").content.decode()
    assert raw not in again
    assert f"{key.prefix}…" in again
    assert "Shop backend" in again


def test_an_api_key_needs_a_name(browser, me):
    response = browser.post("/dashboard/settings/api-keys/", {"name": "  "})
    assert 'data-testid="error-name"' in response.content.decode()
    assert response.context["new_key"] is None
    assert APIKey.objects.filter(user=me).count() == 0


def test_revoking_a_key_stops_it(browser, me):
    key, raw = api_key_create(user=me, name="Old")
    page = browser.get("/dashboard/settings/api-keys/").content.decode()
    assert 'data-confirm="Revoke the key Old' in page

    response = browser.post(f"/dashboard/settings/api-keys/{key.id}/revoke/", follow=True)

    assert response.redirect_chain == [("/dashboard/settings/api-keys/", 302)]
    assert "is revoked" in response.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert api_key_authenticate(raw) is None
    assert browser.get(f"/dashboard/settings/api-keys/{key.id}/revoke/").status_code == 405


def test_another_sellers_key_is_not_found_and_stays_valid(browser, other):
    key, raw = api_key_create(user=other, name="Theirs")

    response = browser.post(f"/dashboard/settings/api-keys/{key.id}/revoke/")

    assert response.status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None
    assert api_key_authenticate(raw) == other
    assert "Theirs" not in browser.get("/dashboard/settings/api-keys/").content.decode()


# --- Webhook endpoints ---------------------------------------------------------------------------


def test_webhooks_empty_states(browser):
    html = browser.get("/dashboard/settings/webhooks/").content.decode()
    assert 'data-testid="empty-endpoints"' in html
    assert "Make the secret" in html


def test_creating_an_endpoint_shows_its_secret_once(browser, me, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    response = browser.post(
        "/dashboard/settings/webhooks/",
        {"url": "https://hooks.ada.example/mp", "events": ["order.paid", "order.refunded"], "active": "on"},
    )

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    endpoint = WebhookEndpoint.objects.get(seller=me)
    assert (endpoint.url, endpoint.events, endpoint.active) == (
        "https://hooks.ada.example/mp",
        ["order.paid", "order.refunded"],
        True,
    )
    assert endpoint.secret.startswith("whsec_")
    assert endpoint.secret in response.content.decode()
    listed = browser.get("/dashboard/settings/webhooks/").content.decode()
    assert endpoint.secret not in listed
    assert "https://hooks.ada.example/mp" in listed
    assert "order.paid, order.refunded" in listed


def test_a_private_webhook_url_is_refused_next_to_the_url_field(browser, me, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    response = browser.post("/dashboard/settings/webhooks/", {"url": "https://127.0.0.1/hook", "active": "on"})

    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="error-url"' in html
    assert "The URL could not be reached." in html
    assert "127.0.0.1" not in html.split('data-testid="error-url"', 1)[1][:300]  # nothing about what it resolved to
    assert response.context["form"].errors["url"] == ["The URL could not be reached."]
    assert WebhookEndpoint.objects.filter(seller=me).count() == 0

    plain_http = browser.post("/dashboard/settings/webhooks/", {"url": "http://hooks.example/x", "active": "on"})
    assert plain_http.context["form"].errors["url"] == ["Must be a valid https:// URL."]
    assert WebhookEndpoint.objects.filter(seller=me).count() == 0


def test_editing_disabling_and_deleting_an_endpoint(browser, me, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    endpoint = seller_endpoints.webhook_endpoint_create(seller=me, url="https://a.example/hook", events=["order.paid"])
    base = f"/dashboard/settings/webhooks/{endpoint.id}/"

    edit = browser.post(base, {"url": "https://b.example/hook", "events": ["order.delivered"], "active": "on"})
    assert edit.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.events, endpoint.active) == ("https://b.example/hook", ["order.delivered"], True)

    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    refused = browser.post(base, {"url": "https://10.0.0.1/hook", "active": "on"})
    assert 'data-testid="error-url"' in refused.content.decode()
    endpoint.refresh_from_db()
    assert endpoint.url == "https://b.example/hook"

    page = browser.get(base).content.decode()
    assert 'data-confirm="Disable this endpoint?' in page
    assert 'data-confirm="Delete the endpoint https://b.example/hook?' in page
    browser.post(f"{base}active/", {"active": "0"})
    endpoint.refresh_from_db()
    assert endpoint.active is False
    browser.post(f"{base}active/", {"active": "1"})
    endpoint.refresh_from_db()
    assert endpoint.active is True

    deleted = browser.post(f"{base}delete/", follow=True)
    assert deleted.redirect_chain == [("/dashboard/settings/webhooks/", 302)]
    assert not WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()


def _delivery(endpoint, *, status=WebhookDelivery.Status.FAILED, code=500):
    event = SellerEvent.objects.create(seller=endpoint.seller, type="order.paid", data={"id": "ord_x"})
    return WebhookDelivery.objects.create(
        endpoint=endpoint,
        url=endpoint.url,
        event=event,
        webhook_id=f"msg_{event.id}",
        body="{}",
        status=status,
        attempts=8,
        last_status_code=code,
        last_error="HTTP 500",
    )


def test_the_delivery_log_shows_status_attempts_and_code_and_resends(
    browser, me, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    endpoint = seller_endpoints.webhook_endpoint_create(seller=me, url="https://a.example/hook")
    delivery = _delivery(endpoint)

    page = browser.get(f"/dashboard/settings/webhooks/{endpoint.id}/")
    html = page.content.decode()
    assert f'data-delivery="{delivery.id}"' in html
    assert "order.paid" in html
    assert "HTTP 500" in html
    assert "<td>8</td>" in html

    with django_capture_on_commit_callbacks() as callbacks:
        response = browser.post(
            f"/dashboard/settings/webhooks/{endpoint.id}/deliveries/{delivery.id}/resend/", follow=True
        )
    assert "queued again" in response.content.decode()
    assert len(callbacks) == 1
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.PENDING


def test_resend_on_a_disabled_endpoint_says_why(browser, me, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    endpoint = seller_endpoints.webhook_endpoint_create(seller=me, url="https://a.example/hook", active=False)
    delivery = _delivery(endpoint)
    response = browser.post(f"/dashboard/settings/webhooks/{endpoint.id}/deliveries/{delivery.id}/resend/", follow=True)
    assert "The endpoint is disabled: enable it first." in response.content.decode()
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.FAILED


def test_another_sellers_endpoint_and_delivery_are_not_found(browser, other, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    theirs = seller_endpoints.webhook_endpoint_create(seller=other, url="https://theirs.example/hook")
    delivery = _delivery(theirs)
    base = f"/dashboard/settings/webhooks/{theirs.id}/"

    assert browser.get(base).status_code == 404
    assert browser.post(base, {"url": "https://mine.example/x", "active": "on"}).status_code == 404
    assert browser.post(f"{base}active/", {"active": "0"}).status_code == 404
    assert browser.post(f"{base}delete/").status_code == 404
    assert browser.post(f"{base}deliveries/{delivery.id}/resend/").status_code == 404
    theirs.refresh_from_db()
    assert (theirs.url, theirs.active) == ("https://theirs.example/hook", True)
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert "theirs.example" not in browser.get("/dashboard/settings/webhooks/").content.decode()


def test_rolling_the_order_urls_secret_shows_the_new_one_once(browser, me):
    first = browser.post("/dashboard/settings/webhooks/order-urls/roll/")
    endpoint = seller_endpoints.order_urls_endpoint(seller_id=me.pk)
    assert first["Cache-Control"] == "no-store"
    assert endpoint.secret in first.content.decode()

    second = browser.post("/dashboard/settings/webhooks/order-urls/roll/")
    endpoint.refresh_from_db()
    html = second.content.decode()
    assert endpoint.secret in html
    assert "Roll the secret" in html
    assert endpoint.secret not in browser.get("/dashboard/settings/webhooks/").content.decode()
    assert WebhookEndpoint.objects.filter(seller=me, kind="order_urls").count() == 1
    # Its log is reachable, without endpoint settings.
    log = browser.get(f"/dashboard/settings/webhooks/{endpoint.id}/")
    assert log.status_code == 200
    assert 'id="endpoint-form"' not in log.content.decode()


# --- Discount codes ------------------------------------------------------------------------------


def _discount_post(**overrides):
    data = {
        "code": "save5",
        "kind": "fixed",
        "value": "5.00",
        "currency": "USD",
        "min_quantity": "1",
        "max_uses": "",
        "starts_at": "",
        "expires_at": "",
        "active": "on",
    }
    data.update(overrides)
    return data


def test_discounts_empty_state(browser):
    html = browser.get("/dashboard/settings/discounts/").content.decode()
    assert 'data-testid="empty-discounts"' in html
    assert 'href="/dashboard/settings/discounts/new/"' in html


def test_a_fixed_discount_typed_as_money_is_stored_in_minor_units(browser, me):
    product = ProductFactory(seller=me, title="Gift card", currency="USD")
    VariantFactory(product=product)

    response = browser.post("/dashboard/settings/discounts/new/", _discount_post(products=[product.id]), follow=True)

    assert response.redirect_chain == [("/dashboard/settings/discounts/", 302)]
    discount = Discount.objects.get(seller=me)
    assert (discount.code, discount.kind, discount.value, discount.currency) == ("SAVE5", "fixed", 500, "USD")
    assert [p.id for p in discount.products.all()] == [product.id]
    html = response.content.decode()
    assert "Discount SAVE5 created." in html
    assert "$5.00" in html
    assert "Gift card" in html


def test_a_percent_discount_with_dates_in_the_sellers_time_zone(browser, me):
    me.time_zone = "Asia/Dhaka"  # UTC+6
    me.save()
    response = browser.post(
        "/dashboard/settings/discounts/new/",
        _discount_post(
            code="TEN",
            kind="percent",
            value="10%",
            currency="",
            max_uses="3",
            min_quantity="2",
            starts_at="2026-12-01T00:00",
            expires_at="2026-12-31T23:59",
        ),
    )
    assert response.status_code == 302
    discount = Discount.objects.get(seller=me, code="TEN")
    assert (discount.value, discount.currency, discount.max_uses, discount.min_quantity) == (10, "", 3, 2)
    assert discount.starts_at == datetime(2026, 11, 30, 18, 0, tzinfo=UTC)
    assert discount.expires_at == datetime(2026, 12, 31, 17, 59, tzinfo=UTC)
    edit = browser.get(f"/dashboard/settings/discounts/{discount.id}/").content.decode()
    assert 'value="2026-12-01T00:00"' in edit
    assert "Asia/Dhaka" in edit


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"value": "5.001"}, "value", "Enter a positive amount with at most 2 decimal places."),
        ({"value": "five"}, "value", "Enter an amount such as 12.50."),
        ({"currency": ""}, "currency", "Choose the currency the amount is in."),
        ({"kind": "percent", "value": "150"}, "value", "A percent discount is from 1 to 100."),
        ({"kind": "percent", "value": "12.5"}, "value", "A percent is a whole number from 1 to 100."),
        ({"code": "no spaces"}, "code", "Letters, digits, - and _ only, 1–64 characters."),
        (
            {"starts_at": "2026-12-02T00:00", "expires_at": "2026-12-01T00:00"},
            "expires_at",
            "Must be after starts_at.",
        ),
    ],
)
def test_discount_errors_are_shown_next_to_the_field(browser, me, overrides, field, message):
    response = browser.post("/dashboard/settings/discounts/new/", _discount_post(**overrides))
    assert response.status_code == 200
    assert response.context["form"].errors[field] == [message]
    assert f'data-testid="error-{field}"' in response.content.decode()
    assert Discount.objects.filter(seller=me).count() == 0


def test_a_taken_code_is_shown_next_to_the_code(browser, me):
    browser.post("/dashboard/settings/discounts/new/", _discount_post())
    response = browser.post("/dashboard/settings/discounts/new/", _discount_post(code="SAVE5"))
    assert response.context["form"].errors["code"] == ["You already have a discount with this code."]
    assert Discount.objects.filter(seller=me).count() == 1


def test_editing_and_deactivating_a_discount(browser, me):
    browser.post("/dashboard/settings/discounts/new/", _discount_post())
    discount = Discount.objects.get(seller=me)
    form = browser.get(f"/dashboard/settings/discounts/{discount.id}/").content.decode()
    assert 'value="5.00"' in form

    browser.post(f"/dashboard/settings/discounts/{discount.id}/", _discount_post(value="7.50", max_uses="10"))
    discount.refresh_from_db()
    assert (discount.value, discount.max_uses, discount.active) == (750, 10, True)

    listing = browser.get("/dashboard/settings/discounts/").content.decode()
    assert 'data-confirm="Deactivate SAVE5?' in listing
    assert "0 / 10" in listing
    response = browser.post(f"/dashboard/settings/discounts/{discount.id}/deactivate/", follow=True)
    assert "deactivated" in response.content.decode()
    discount.refresh_from_db()
    assert discount.active is False
    assert (discount.value, discount.max_uses) == (750, 10)


def test_another_sellers_discount_is_not_found(browser, other):
    theirs = Discount.objects.create(seller=other, code="THEIRS", kind="percent", value=10)
    assert browser.get(f"/dashboard/settings/discounts/{theirs.id}/").status_code == 404
    assert browser.post(f"/dashboard/settings/discounts/{theirs.id}/", _discount_post()).status_code == 404
    assert browser.post(f"/dashboard/settings/discounts/{theirs.id}/deactivate/").status_code == 404
    theirs.refresh_from_db()
    assert (theirs.code, theirs.active, theirs.value) == ("THEIRS", True, 10)
    assert "THEIRS" not in browser.get("/dashboard/settings/discounts/").content.decode()


def test_a_discount_cannot_name_another_sellers_product(browser, me, other):
    theirs = ProductFactory(seller=other)
    response = browser.post("/dashboard/settings/discounts/new/", _discount_post(products=[theirs.id]))
    assert "products" in response.context["form"].errors
    assert Discount.objects.filter(seller=me).count() == 0


def test_seller_sets_their_time_zone_and_a_bad_one_is_refused() -> None:
    from django.test import Client

    from marketplace.accounts.tests.factories import SellerFactory

    seller = SellerFactory()
    browser = Client()
    browser.force_login(seller)
    page = browser.get("/dashboard/settings/")
    assert 'name="time_zone"' in page.content.decode()
    browser.post("/dashboard/settings/", {"name": "Shop", "support_email": "", "time_zone": "Asia/Dhaka"})
    seller.refresh_from_db()
    assert seller.time_zone == "Asia/Dhaka"
    bad = browser.post("/dashboard/settings/", {"name": "Shop", "support_email": "", "time_zone": "Mars/Base"})
    assert bad.status_code == 200
    seller.refresh_from_db()
    assert seller.time_zone == "Asia/Dhaka"


def test_operator_sets_a_sellers_platform_fee_in_the_admin() -> None:
    from django.contrib.admin.utils import quote
    from django.test import Client

    from marketplace.accounts.tests.factories import SellerFactory, UserFactory

    seller = SellerFactory()
    browser = Client()
    browser.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = browser.get(f"/admin/accounts/user/{quote(seller.pk)}/change/")
    html = page.content.decode()
    assert 'name="platform_fee_bps"' in html and 'name="platform_fee_fixed"' in html
