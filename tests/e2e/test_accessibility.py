"""Every kind of page, checked with axe-core in real Chromium: no serious or critical violations.

The buyer's pages (checkout on a desktop and on a 390×844 phone, the sandbox payment page, the success
page while pending and once delivered, the library's request, sign-in and list pages) and the
seller's (sign-in, sign-up, password reset, the orders list and an order, products and the product
form, a code pool, settings: profile, API keys, webhooks, discounts; analytics), against
a live server and a real Celery worker. Each test checks all its pages and then fails with one list of
what axe found on each, so that one run shows everything.

axe-core is vendored in ``tests/e2e/vendor/axe-core`` (see its README for the version); nothing is
downloaded. Screenshots go to ``var/e2e/a11y-*.png``. Skipped without Chromium unless
``REQUIRE_BROWSER=1``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core import mail

from catalog.inventory import CodeRow, codes_import
from catalog.models import DeliveryType, Product
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import DEFAULT_PASSWORD
from orders.models import Order
from orders.tests.helpers import make_order
from tests.e2e.accessibility import assert_accessible
from tests.e2e.browser import open_page
from tests.e2e.test_seller_orders_browser import paid_order

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHOTS = Path(settings.VAR_DIR) / "e2e"
DESKTOP = {"viewport": {"width": 1200, "height": 900}}
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
DELIVERY_TIMEOUT_MS = 60_000
ANALYTICS_PATH = "/dashboard/analytics/"


@dataclass
class Audit:
    """Checks page after page; fails once at the end with everything that was found."""

    page: Any
    failures: list[str] = field(default_factory=list)
    # Per page checked: the minor and moderate findings (not failed on), kept in var/e2e/a11y-report.json.
    others: dict[str, list[str]] = field(default_factory=dict)

    def check(self, name: str) -> None:
        self.page.wait_for_load_state("load")
        self.page.screenshot(path=str(SHOTS / f"a11y-{name}.png"), full_page=True)
        try:
            minor = assert_accessible(self.page, where=f"{name} ({self.page.url})")
        except AssertionError as exc:
            self.failures.append(str(exc))
            minor = []
        self.others[name] = [f"{v['id']} [{v['impact']}] x{len(v['nodes'])}" for v in minor]

    def finish(self) -> None:
        report = SHOTS / "a11y-report.json"
        saved = json.loads(report.read_text()) if report.exists() else {}
        report.write_text(json.dumps({**saved, **self.others}, indent=2, sort_keys=True))
        assert self.others, "no page was checked"
        assert not self.failures, "\n\n".join(self.failures)


def _open(chromium: str, monkeypatch: pytest.MonkeyPatch, context_options: dict[str, Any]) -> Iterator[Any]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with open_page(chromium, monkeypatch=monkeypatch, **context_options) as page:
        yield page


@pytest.fixture
def chromium(chromium_path: str) -> str:
    """Chromium's executable (``conftest.chromium_path``): skip, or fail in CI, without it.
    Tests ask for it first, so that nothing (the worker) is started before."""
    return chromium_path


@pytest.fixture
def desktop(chromium: str, monkeypatch: pytest.MonkeyPatch, e2e_site: Any) -> Iterator[Any]:
    yield from _open(chromium, monkeypatch, DESKTOP)


@pytest.fixture
def phone(chromium: str, monkeypatch: pytest.MonkeyPatch, e2e_site: Any) -> Iterator[Any]:
    yield from _open(chromium, monkeypatch, PHONE)


@pytest.fixture
def gift_cards(text_product: Product) -> Product:
    """A code-pool product of the same seller as ``text_product``, with codes and PINs."""
    product = ProductFactory(
        seller=text_product.seller,
        slug="a11y-gift-card",
        title="Game Gift Card",
        currency="USD",
        delivery_type=DeliveryType.CODE_POOL,
        delivery_content="",
        redemption_instructions="Open the game's store, choose Redeem, and enter the code and PIN.",
    )
    variant = VariantFactory(product=product, name="$25 card", price=2500)
    VariantFactory(product=product, name="$50 card", price=5000)
    codes_import(
        variant=variant,
        rows=[
            CodeRow(1, "GC-AAAA-1111-A11Y", pin="1111"),
            CodeRow(2, "GC-BBBB-2222-A11Y", pin="2222"),
            CodeRow(3, "GC-CCCC-3333-A11Y", pin="3333"),
        ],
    )
    return product


def sign_in(page: Any, url: str, email: str) -> None:
    page.goto(f"{url}/accounts/login/")
    page.fill("#id_email", email)
    page.fill("#id_password", DEFAULT_PASSWORD)
    page.click('button[type=submit]:has-text("Sign in")')
    page.wait_for_url(f"{url}/dashboard/")


def test_checkout_on_a_phone_is_accessible(chromium: str, e2e_site: Any, gift_cards: Product, phone: Any) -> None:
    from playwright.sync_api import expect

    page = phone
    audit = Audit(page)
    page.goto(f"{e2e_site.url}/c/{gift_cards.slug}")
    expect(page.locator("h1")).to_have_text("Game Gift Card")
    audit.check("phone-checkout")
    # With the live quote's error next to the discount field.
    page.fill("#id_discount_code", "NOSUCHCODE")
    expect(page.get_by_test_id("discount_code-error")).to_have_text("This discount code is not valid.")
    audit.check("phone-checkout-invalid-code")
    page.fill("#id_discount_code", "")
    page.fill("#id_buyer_email", "phone.buyer@example.com")
    page.click("#pay")
    page.wait_for_url(re.compile(re.escape(f"{e2e_site.url}/sandbox/pay/") + r"pay_\w+$"))
    audit.check("phone-sandbox")
    page.click("#sandbox-pay")
    page.wait_for_url(re.compile(re.escape(f"{e2e_site.url}/c/{gift_cards.slug}/orders/") + r"ord_\w+$"))
    expect(page.locator("#status")).to_have_text("Delivered", timeout=DELIVERY_TIMEOUT_MS)
    expect(page.get_by_test_id("code")).to_have_count(1)
    audit.check("phone-success-delivered")
    audit.finish()


def test_buyer_pages_are_accessible(
    chromium: str, e2e_site: Any, text_product: Product, gift_cards: Product, desktop: Any
) -> None:
    from playwright.sync_api import expect

    page = desktop
    url = e2e_site.url
    audit = Audit(page)

    # Checkout, with a server-side error after a refused submission, then the sandbox's page.
    page.goto(f"{url}/c/{gift_cards.slug}")
    expect(page.locator("h1")).to_have_text("Game Gift Card")
    audit.check("checkout")
    page.click("#pay")  # no email: refused next to the field
    audit.check("checkout-errors")
    page.fill("#id_buyer_email", "desk.buyer@example.com")
    page.click("#pay")
    page.wait_for_url(re.compile(re.escape(f"{url}/sandbox/pay/") + r"pay_\w+$"))
    audit.check("sandbox-pay")

    # The success page while the order is pending, and once delivered (codes with copy buttons).
    pending = make_order(text_product, email="waiting.buyer@example.com")
    page.goto(f"{url}/c/{text_product.slug}/orders/{pending.pk}")
    expect(page.locator("#status")).to_have_text(re.compile(r"\S"))
    audit.check("success-pending")
    # The calm explanation when an order needs the seller's attention (the page only shows the status).
    Order.objects.filter(pk=pending.pk).update(status="needs_attention")
    page.reload()
    expect(page.get_by_test_id("needs-attention")).to_be_visible()
    audit.check("success-needs-attention")
    # A declined payment, and a product that does not exist.
    page.goto(f"{url}/c/{text_product.slug}")
    page.fill("#id_buyer_email", "declined.buyer@example.com")
    page.click("#pay")
    page.wait_for_url(re.compile(re.escape(f"{url}/sandbox/pay/") + r"pay_\w+$"))
    page.click("#sandbox-decline")
    expect(page.get_by_test_id("try-again")).to_be_visible(timeout=DELIVERY_TIMEOUT_MS)
    audit.check("success-failed")
    page.goto(f"{url}/c/no-such-product")
    audit.check("checkout-not-found")
    page.goto(f"{url}/c/{gift_cards.slug}")
    page.fill("#id_buyer_email", "desk.buyer@example.com")
    page.fill("#id_quantity", "2")
    page.click("#pay")
    page.wait_for_url(re.compile(re.escape(f"{url}/sandbox/pay/") + r"pay_\w+$"))
    page.click("#sandbox-pay")
    page.wait_for_url(re.compile(re.escape(f"{url}/c/{gift_cards.slug}/orders/") + r"ord_\w+$"))
    expect(page.locator("#status")).to_have_text("Delivered", timeout=DELIVERY_TIMEOUT_MS)
    expect(page.get_by_test_id("code")).to_have_count(2)
    audit.check("success-delivered")

    # The library: the request form, "sent", the one-time sign-in page and the list of purchases.
    mail.outbox.clear()
    page.goto(f"{url}/library")
    audit.check("library-request")
    page.fill("#id_email", "desk.buyer@example.com")
    page.click("#send-link")
    expect(page.get_by_test_id("link-sent")).to_be_visible()
    audit.check("library-sent")
    [message] = mail.outbox
    link = re.search(r"http://\S+/library/signin/\S+", message.body)
    assert link is not None
    page.goto(link.group(0))
    audit.check("library-signin")
    page.click("#sign-in")
    page.wait_for_url(f"{url}/library")
    expect(page.get_by_test_id("code").first).to_be_visible()
    audit.check("library-list")
    audit.finish()


def test_sign_in_sign_up_password_reset_and_empty_dashboard_pages_are_accessible(
    chromium: str, e2e_site: Any, text_product: Product, desktop: Any
) -> None:
    from playwright.sync_api import expect

    page = desktop
    url = e2e_site.url
    audit = Audit(page)

    page.goto(f"{url}/accounts/login/")
    audit.check("login")
    page.fill("#id_email", text_product.seller.email)
    page.fill("#id_password", "not-the-password")
    page.click('button[type=submit]:has-text("Sign in")')
    audit.check("login-error")

    page.goto(f"{url}/accounts/signup/")
    expect(page.locator("h1")).to_have_text("Start selling")
    audit.check("signup")
    page.fill("#id_name", "Grace")
    page.fill("#id_email", "grace@example.com")
    page.fill("#id_password", "password")
    page.click("#signup")
    expect(page.get_by_test_id("error-password")).to_be_visible()
    audit.check("signup-errors")

    mail.outbox.clear()
    page.goto(f"{url}/accounts/password-reset/")
    audit.check("password-reset")
    page.fill("#id_email", text_product.seller.email)
    page.click('button[type=submit]:has-text("Send reset link")')
    page.wait_for_url(f"{url}/accounts/password-reset/sent/")
    audit.check("password-reset-sent")
    [message] = mail.outbox
    link = re.search(r"http://\S+/accounts/reset/\S+/", message.body)
    assert link is not None
    page.goto(link.group(0))
    expect(page.locator("h1")).to_have_text("Choose a new password")
    audit.check("password-reset-confirm")
    page.fill("#id_new_password1", "a-new-unusual-passphrase")
    page.fill("#id_new_password2", "a-new-unusual-passphrase")
    page.click('button[type=submit]:has-text("Set new password")')
    page.wait_for_url(f"{url}/accounts/reset/done/")
    audit.check("password-reset-complete")

    # A new seller: signs up and sees the empty products and orders lists.
    page.goto(f"{url}/accounts/signup/")
    page.fill("#id_name", "Grace")
    page.fill("#id_email", "grace@example.com")
    page.fill("#id_password", "a-long-unusual-passphrase")
    page.click("#signup")
    page.wait_for_url(f"{url}/dashboard/products/")
    expect(page.get_by_test_id("empty")).to_be_visible()
    audit.check("dashboard-products-empty")
    page.goto(f"{url}/dashboard/")
    audit.check("dashboard-orders-empty")
    audit.finish()


def test_seller_dashboard_pages_are_accessible(
    chromium: str, e2e_site: Any, text_product: Product, gift_cards: Product, desktop: Any
) -> None:
    from playwright.sync_api import expect

    page = desktop
    url = e2e_site.url
    audit = Audit(page)
    order = paid_order(text_product, "paying.buyer@example.com")
    make_order(text_product, email="window.shopper@example.com")
    sign_in(page, url, text_product.seller.email)

    # Orders: the list, filtered, and an order's page.
    expect(page.locator("#orders tbody tr")).to_have_count(2)
    audit.check("dashboard-orders")
    page.check("input[name=status][value=delivered]")
    page.click("#apply-filters")
    page.wait_for_url("**/dashboard/?**")
    audit.check("dashboard-orders-filtered")
    page.goto(f"{url}/dashboard/orders/{order.order_number}/")
    expect(page.locator("h1")).to_have_text(f"Order #{order.order_number}")
    audit.check("dashboard-order")
    page.goto(f"{url}/dashboard/orders/no-such-order/")
    audit.check("dashboard-order-not-found")

    # Products: the list, the form (new, with an error, and editing), a code pool.
    page.goto(f"{url}/dashboard/products/")
    audit.check("dashboard-products")
    page.goto(f"{url}/dashboard/products/new/")
    expect(page.locator("h1")).to_have_text("New product")
    audit.check("dashboard-product-new")
    page.click("#save-product")  # nothing filled in: errors next to the fields
    audit.check("dashboard-product-new-errors")
    page.goto(f"{url}/dashboard/products/{gift_cards.pk}/edit/")
    audit.check("dashboard-product-edit")
    variant = gift_cards.variants.order_by("position").first()
    assert variant is not None
    page.goto(f"{url}/dashboard/products/{gift_cards.pk}/variants/{variant.pk}/codes/")
    expect(page.locator("#codes tbody tr")).to_have_count(3)
    audit.check("dashboard-codes")

    # Settings: profile, API keys (one shown once), webhooks (an endpoint and its log), discounts.
    page.goto(f"{url}/dashboard/settings/")
    audit.check("settings-profile")
    page.goto(f"{url}/dashboard/settings/api-keys/")
    audit.check("settings-api-keys")
    page.fill("#id_name", "Shop backend")
    page.click("#create-key")
    expect(page.get_by_test_id("new-key-value")).to_be_visible()
    audit.check("settings-api-key-created")
    page.goto(f"{url}/dashboard/settings/webhooks/")
    audit.check("settings-webhooks")
    page.fill("#id_url", "not a url")
    page.click("#add-endpoint")
    expect(page.get_by_test_id("error-url")).to_be_visible()
    audit.check("settings-webhooks-errors")
    page.fill("#id_url", "https://hooks.example.com/marketplace")
    page.check("input[name=events][value='order.paid']")
    page.click("#add-endpoint")
    endpoint = page.locator(
        'a[href^="/dashboard/settings/webhooks/whe_"], a[href*="/dashboard/settings/webhooks/"]'
        ':not([href$="/webhooks/"])'
    ).first
    expect(endpoint).to_be_visible()
    endpoint.click()
    page.wait_for_load_state("load")
    audit.check("settings-webhook-detail")
    page.goto(f"{url}/dashboard/settings/discounts/")
    audit.check("settings-discounts-empty")
    page.goto(f"{url}/dashboard/settings/discounts/new/")
    audit.check("settings-discount-new")
    page.fill("#id_code", "save5")
    page.check("input[name=kind][value=fixed]")
    page.fill("#id_value", "5.00")
    page.select_option("#id_currency", "USD")
    page.click("#save-discount")
    expect(page.locator("tr[data-discount]")).to_have_count(1)
    audit.check("settings-discounts")

    # Balance: the pending sale, the statement, no payouts yet, payout settings refused then saved.
    page.click("[data-testid=nav-balance]")
    expect(page.get_by_test_id("release")).to_have_count(1)
    audit.check("balance")
    page.goto(f"{url}/dashboard/balance/statement/?currency=ZZZ")
    expect(page.get_by_test_id("error-currency")).to_be_visible()
    audit.check("balance-statement-error")
    page.goto(f"{url}/dashboard/balance/statement/")
    expect(page.locator("#statement tbody tr")).to_have_count(2)
    audit.check("balance-statement")
    page.goto(f"{url}/dashboard/balance/payouts/")
    audit.check("balance-payouts-empty")
    page.goto(f"{url}/dashboard/balance/settings/")
    page.fill("#id_holder", "Ada Lovelace")
    page.fill("#id_number", "!!")
    page.click("#save-payout-settings")
    expect(page.get_by_test_id("error-bank")).to_be_visible()
    audit.check("balance-settings-errors")
    audit.finish()


def test_analytics_page_is_accessible(chromium: str, e2e_site: Any, text_product: Product, desktop: Any) -> None:
    page = desktop
    audit = Audit(page)
    paid_order(text_product, "paying.buyer@example.com")
    sign_in(page, e2e_site.url, text_product.seller.email)
    response = page.goto(f"{e2e_site.url}{ANALYTICS_PATH}")
    assert response is not None and response.status == 200, response and response.status
    page.wait_for_load_state("networkidle")
    audit.check("dashboard-analytics")
    audit.finish()


@pytest.fixture
def bare_page(chromium: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    yield from _open(chromium, monkeypatch, DESKTOP)


def test_the_check_fails_on_serious_and_critical_violations_only(chromium: str, bare_page: Any) -> None:
    """The check is not vacuous: a page with known faults fails with a readable list."""
    page = bare_page
    page.set_content(
        "<html><head><title>Faulty</title></head><body><main><h1>Faulty</h1>"
        '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="><button></button>'
        '<p style="color:#bbb;background:#fff">Pale text</p></main></body></html>'
    )
    with pytest.raises(AssertionError) as failed:
        assert_accessible(page, where="the faulty page")
    message = str(failed.value)
    assert "on the faulty page" in message
    for rule in (
        "image-alt [critical]",
        "button-name [critical]",
        "color-contrast [serious]",
        "html-has-lang [serious]",
    ):
        assert f"- {rule}" in message
    assert "    button: Fix any of the following" in message

    page.set_content('<html lang="en"><head><title>Fine</title></head><body><main><h1>Fine</h1></main></body></html>')
    assert assert_accessible(page) == []


def test_gift_pages_are_accessible_and_the_seller_sends_a_gift_now(
    chromium: str, e2e_site: Any, text_product: Product, gift_cards: Product, desktop: Any
) -> None:
    """A delayed gift with a claim link: the seller's order page (scheduled, "Send now"), the
    buyer's order page (sent, not claimed), the recipient's claim page before and after opening."""
    import time
    from datetime import timedelta

    from django.utils import timezone
    from playwright.sync_api import expect

    from payments.sandbox_server.server import sandbox_complete
    from payments.services import payment_initiate

    page = desktop
    url = e2e_site.url
    audit = Audit(page)
    order = make_order(
        gift_cards,
        email="giver@example.com",
        recipient_email="friend@example.com",
        deliver_at=timezone.now() + timedelta(days=3),
        claim_link=True,
    )
    payment = payment_initiate(order=order, gateway_name="sandbox", return_url="https://shop.test/return")
    sandbox_complete(payment_id=payment.id, outcome="succeeded")
    deadline = time.monotonic() + DELIVERY_TIMEOUT_MS / 1000
    while Order.objects.get(pk=order.pk).status != "delivered":
        assert time.monotonic() < deadline, "the gift order was not delivered"
        time.sleep(0.2)

    sign_in(page, url, gift_cards.seller.email)
    page.goto(f"{url}/dashboard/orders/{order.order_number}/")
    expect(page.get_by_test_id("gift-state")).to_contain_text("Scheduled for")
    audit.check("dashboard-order-gift")
    mail.outbox.clear()
    page.click("#gift-send-now")
    expect(page.get_by_test_id("gift-state")).to_contain_text("not claimed yet")
    audit.check("dashboard-order-gift-sent")
    [gift_mail] = mail.outbox
    assert gift_mail.to == ["friend@example.com"]
    link = re.search(r"http://\S+/gift/[A-Za-z0-9_\-]+", gift_mail.body)
    assert link is not None

    page.goto(f"{url}/c/{gift_cards.slug}/orders/{order.id}")
    expect(page.get_by_test_id("gift-unclaimed")).to_be_visible()
    audit.check("success-gift")

    page.goto(link.group(0))
    expect(page.get_by_test_id("gift-code")).to_have_count(0)
    audit.check("gift-claim")
    page.click("[data-testid=open-gift]")
    expect(page.get_by_test_id("gift-code")).to_have_count(1)
    audit.check("gift-claim-opened")
    assert Order.objects.get(pk=order.pk).gift_claimed_at is not None
    audit.finish()
