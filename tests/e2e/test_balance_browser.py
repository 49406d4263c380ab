"""A seller is paid, in real Chromium, from the sale to the bank: the seller sells (the sandbox
gateway's signed webhook over HTTP to the live server, delivery by the real worker), sees the pending
amount with its release date on the Balance page, the hold passes, the seller saves bank details and
asks for a payout, an operator approves it and marks it paid in the Django admin's payouts queue, and
the seller's statement shows the sale, the platform fee and the payout, linked to the order and the
payout. Screenshots are kept under ``var/e2e/``.

The hold passes by moving the clock of the process the live server runs in (``django.utils.timezone.now``,
which the ledger, the sessions and the admin all read) eight days forward: nothing in the ledger is
touched, so the pages read the books exactly as the services wrote them.
"""

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.utils import timezone

from ledger.models import BalanceTransaction, Payout, PayoutSettings
from marketplace.accounts.models import User
from marketplace.accounts.tests.factories import DEFAULT_PASSWORD
from tests.e2e.accessibility import assert_accessible
from tests.e2e.browser import new_page, open_browser
from tests.e2e.test_seller_orders_browser import paid_order

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

HOLD_DAYS = 7
VIEWPORT = {"width": 1200, "height": 900}


class Clock:
    """The server process's clock, ``shift`` ahead of the real one."""

    def __init__(self) -> None:
        self.shift = timedelta(0)
        self._real = timezone.now

    def now(self) -> datetime:
        return self._real() + self.shift


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    moved = Clock()
    monkeypatch.setattr(timezone, "now", moved.now)
    return moved


@pytest.fixture
def browser(chromium_path: str, monkeypatch: pytest.MonkeyPatch, e2e_site: Any) -> Iterator[Any]:
    with open_browser(chromium_path, monkeypatch=monkeypatch) as opened:
        yield opened


def money(amount: int) -> str:
    return f"${amount // 100}.{amount % 100:02d}"


def sign_in_seller(page: Any, url: str, email: str) -> None:
    page.goto(f"{url}/accounts/login/")
    page.fill("#id_email", email)
    page.fill("#id_password", DEFAULT_PASSWORD)
    page.click('button[type=submit]:has-text("Sign in")')
    page.wait_for_url(f"{url}/dashboard/")


def admin_action(page: Any, url: str, payout_id: str, action: str, expected: str) -> None:
    """Runs one action of the payouts queue on one payout, as an operator does."""
    from playwright.sync_api import expect

    page.goto(f"{url}/admin/ledger/payout/")
    page.check(f'input[name=_selected_action][value="{payout_id}"]')
    page.select_option("select[name=action]", action)
    page.click("button[name=index]")
    expect(page.locator("ul.messagelist li.success")).to_have_text(expected)


def test_a_seller_is_paid_from_the_sale_to_the_bank(
    e2e_site: Any, text_product: Any, browser: Any, clock: Clock
) -> None:
    from playwright.sync_api import expect

    shots = Path(settings.VAR_DIR) / "e2e"
    shots.mkdir(parents=True, exist_ok=True)
    url = e2e_site.url
    seller = text_product.seller
    order = paid_order(text_product, "paying.buyer@example.com")
    earnings, fee = order.seller_earnings, order.platform_fee
    assert (order.total_amount, earnings + fee) == (1999, 1999) and fee > 0
    release = timezone.localtime(order.paid_at + timedelta(days=HOLD_DAYS), timezone=ZoneInfo(seller.time_zone))

    with new_page(browser, viewport=VIEWPORT) as page:
        dialogs: list[str] = []

        def accept(dialog: Any) -> None:
            dialogs.append(dialog.message)
            dialog.accept()

        page.on("dialog", accept)

        # The sale is pending, with the day it becomes available and why.
        sign_in_seller(page, url, seller.email)
        page.click("[data-testid=nav-balance]")
        page.wait_for_url(f"{url}/dashboard/balance/")
        expect(page.get_by_test_id("pending-USD")).to_have_text(money(earnings))
        expect(page.get_by_test_id("available-USD")).to_have_text("$0.00")
        expect(page.get_by_test_id("release")).to_have_text(
            f"{money(earnings)} available on {release.day} {release:%b %Y} — held 7 days after the sale"
        )
        expect(page.get_by_test_id("next-payout-reason")).to_contain_text("add a bank account")
        page.screenshot(path=str(shots / "balance-1-pending.png"), full_page=True)
        assert_accessible(page, where="the Balance page with a pending sale")

        # The hold passes.
        clock.shift = timedelta(days=HOLD_DAYS + 1)
        page.reload()
        expect(page.get_by_test_id("pending-USD")).to_have_text("$0.00")
        expect(page.get_by_test_id("available-USD")).to_have_text(money(earnings))
        expect(page.get_by_test_id("nothing-pending")).to_be_visible()

        # Bank details, then a payout.
        page.click("[data-testid=balance-nav-settings]")
        page.fill("#id_holder", "Ada Lovelace")
        page.fill("#id_number", "DE89 3704 0044 0532 0130 00")
        page.fill("#id_bank", "N26")
        page.fill("#id_country", "de")
        page.click("#save-payout-settings")
        expect(page.get_by_test_id("message-success")).to_have_text("Payout settings saved.")
        expect(page.locator("#id_number_helptext")).to_contain_text("Stored: ending 3000.")
        expect(page.locator("#id_number")).to_have_value("")
        assert_accessible(page, where="the payout settings")
        assert PayoutSettings.objects.get(seller=seller).bank_number == "DE89370400440532013000"

        page.click("[data-testid=balance-nav-overview]")
        expect(page.get_by_test_id("next-payout-reason")).to_contain_text("Your payouts are manual")
        page.click("#request-payout-USD")
        expect(page.get_by_test_id("message-success")).to_contain_text(f"of {money(earnings)} requested")
        assert dialogs == ["Pay out your available USD balance to your bank account now?"]
        payout = Payout.objects.get(seller=seller)
        assert (payout.amount, payout.status, payout.method) == (earnings, "pending", "bank_transfer")
        page.wait_for_url(f"{url}/dashboard/balance/payouts/{payout.id}/")
        expect(page.get_by_test_id("payout-status")).to_have_text("Pending")
        page.screenshot(path=str(shots / "balance-2-payout-requested.png"), full_page=True)

    # An operator approves it, then marks it paid, in the admin's payouts queue.
    User.objects.create_superuser(email="operator@example.com", password=DEFAULT_PASSWORD)
    with new_page(browser, viewport=VIEWPORT) as admin:
        admin.goto(f"{url}/admin/login/?next=/admin/ledger/payout/")
        admin.fill("#id_username", "operator@example.com")
        admin.fill("#id_password", DEFAULT_PASSWORD)
        admin.click("input[type=submit]")
        admin.wait_for_url(f"{url}/admin/ledger/payout/")
        admin_action(admin, url, payout.id, "approve", "1 payout(s) approved.")
        admin_action(admin, url, payout.id, "mark_paid", "1 payout(s) marked paid.")
        admin.screenshot(path=str(shots / "balance-3-admin-paid.png"), full_page=True)
    payout.refresh_from_db()
    assert payout.status == "paid"

    # The seller's statement: the sale and its fee (linked to the order), the payout (linked to it).
    with new_page(browser, viewport=VIEWPORT) as page:
        sign_in_seller(page, url, seller.email)
        page.goto(f"{url}/dashboard/balance/statement/")
        books = {btx.type: btx for btx in BalanceTransaction.objects.filter(seller=seller, amount__lt=0)}
        sale = BalanceTransaction.objects.get(seller=seller, type="sale")
        rows = page.locator("#statement tbody tr")
        # Newest first: the payout's arrival (no change to the balance), the payout, then the sale and
        # its fee (written at the same moment).
        expect(rows).to_have_count(4)
        types = [row.get_attribute("data-type") for row in rows.all()]
        assert (types[:2], sorted(types[2:])) == (["payout", "payout"], ["platform_fee", "sale"])
        sale_row = page.locator(f'tr[data-btx="{sale.id}"]')
        fee_row = page.locator(f'tr[data-btx="{books["platform_fee"].id}"]')
        payout_row = page.locator(f'tr[data-btx="{books["payout"].id}"]')
        expect(sale_row.get_by_test_id("amount")).to_have_text(money(1999))
        expect(fee_row.get_by_test_id("amount")).to_have_text(f"-{money(fee)}")
        expect(payout_row.get_by_test_id("amount")).to_have_text(f"-{money(earnings)}")
        for row in (sale_row, fee_row):
            expect(row.get_by_test_id("order-link")).to_have_text(f"#{order.order_number}")
        expect(payout_row.get_by_test_id("payout-link")).to_have_text(payout.id)
        page.screenshot(path=str(shots / "balance-4-statement.png"), full_page=True)
        assert_accessible(page, where="the statement")

        # From the sale to its order, and from the payout to what it carried.
        sale_row.get_by_test_id("order-link").click()
        expect(page.locator("h1")).to_have_text(f"Order #{order.order_number}")
        page.go_back()
        payout_row.get_by_test_id("payout-link").click()
        page.wait_for_url(f"{url}/dashboard/balance/payouts/{payout.id}/")
        expect(page.get_by_test_id("payout-status")).to_have_text("Paid")
        expect(page.locator("#payout")).to_contain_text("Arrived")
        expect(page.locator("#payout-transactions tbody tr")).to_have_count(2)
        page.get_by_test_id("earlier").click()
        earlier = page.locator("#statement tbody tr")
        expect(earlier).to_have_count(2)
        assert sorted(row.get_attribute("data-type") for row in earlier.all()) == ["platform_fee", "sale"]
        page.screenshot(path=str(shots / "balance-5-before-the-payout.png"), full_page=True)

        # The balance is back to zero, the payout in the history; the CSV carries the same rows.
        page.click("[data-testid=balance-nav-overview]")
        expect(page.get_by_test_id("total-USD")).to_have_text("$0.00")
        page.click("[data-testid=balance-nav-payouts]")
        expect(page.locator(f'tr[data-payout="{payout.id}"] [data-testid=payout-status]')).to_have_text("Paid")
        assert_accessible(page, where="the payout history")
        csv_text = page.request.get(f"{url}/dashboard/balance/statement.csv").text()
        csv_types = re.findall(r"^btx_\S+?,\S+?,(\w+),", csv_text, flags=re.M)
        assert (csv_types[:2], sorted(csv_types[2:])) == (["payout", "payout"], ["platform_fee", "sale"])
