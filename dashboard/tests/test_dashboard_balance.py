"""The seller's Balance pages: balances with their holds and the next payout, the statement (filters,
keyset pages, CSV), payout history and detail, payout settings and "Request payout" — each read from
the real ledger written by the real order and payout services."""

import csv
import io
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from ledger.models import BalanceTransaction, Payout, PayoutSettings, StripeConnectAccount
from ledger.payouts import BankAccountInput, payout_approve, payout_create, payout_mark_failed, payout_settings_update
from ledger.tests.factories import order_paid, order_refunded, product_for
from marketplace.accounts.tests.factories import SellerFactory, UserFactory

pytestmark = pytest.mark.django_db

PAGES = [
    "/dashboard/balance/",
    "/dashboard/balance/statement/",
    "/dashboard/balance/statement.csv",
    "/dashboard/balance/payouts/",
    "/dashboard/balance/settings/",
]


@pytest.fixture
def me():
    return SellerFactory(name="Ada's Shop", email="ada@example.com", time_zone="Europe/Berlin")


@pytest.fixture
def other():
    return SellerFactory(name="Other Shop", email="other@example.com")


@pytest.fixture
def browser(client, me):
    client.force_login(me)
    return client


def bank(seller, *, schedule="manual", minimum=0):
    return payout_settings_update(
        seller=seller,
        method="bank_transfer",
        schedule=schedule,
        minimum_amount=minimum,
        bank_account=BankAccountInput(holder="Ada Lovelace", number="DE89370400440532013000", bank="N26", country="DE"),
    )


def available_now(seller):
    """The operator's override: no hold, so sales are available at once (as after the hold)."""
    seller.payout_hold_days = 0
    seller.save(update_fields=["payout_hold_days"])


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def field_errors(response) -> dict[str, str]:
    """The page's errors by field, as shown next to each field."""
    found = re.findall(r'data-testid="error-(\w+)"[^>]*>([^<]*)<', response.content.decode())
    return {name: message.strip() for name, message in found}


# --- Access --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [*PAGES, "/dashboard/balance/payouts/po_x/"])
def test_balance_pages_need_a_signed_in_seller(client, path):
    anonymous = client.get(path)
    assert (anonymous.status_code, anonymous["Location"]) == (302, f"/accounts/login/?next={path}")
    client.force_login(UserFactory())
    assert client.get(path).status_code == 403


def test_request_payout_needs_a_seller_and_a_post(client, me):
    available_now(me)
    order_paid(product_for(me))
    bank(me)
    client.force_login(UserFactory())
    assert client.post("/dashboard/balance/payouts/request/", {"currency": "USD"}).status_code == 403
    client.force_login(me)
    assert client.get("/dashboard/balance/payouts/request/").status_code == 405
    assert not Payout.objects.exists()


def test_request_payout_is_refused_without_the_csrf_token(me):
    available_now(me)
    order_paid(product_for(me))
    bank(me)
    client = Client(enforce_csrf_checks=True)
    client.force_login(me)
    assert client.post("/dashboard/balance/payouts/request/", {"currency": "USD"}).status_code == 403
    assert client.post("/dashboard/balance/settings/", {"schedule": "weekly"}).status_code == 403
    assert not Payout.objects.exists()
    assert PayoutSettings.objects.get(seller=me).schedule == "manual"


def test_the_nav_and_the_home_balance_card_link_to_the_balance_page(browser):
    html = browser.get("/dashboard/").content.decode()
    assert 'data-testid="nav-balance"' in html
    assert 'href="/dashboard/balance/" data-testid="balance-link"' in html
    settings_html = browser.get("/dashboard/settings/").content.decode()
    assert 'href="/dashboard/balance/settings/" data-testid="settings-payouts"' in settings_html


# --- Balance -------------------------------------------------------------------------------------


def test_a_pending_sale_shows_its_amount_release_date_and_hold(browser, me):
    order = order_paid(product_for(me, price=1999))
    earnings = order.seller_earnings
    assert 0 < earnings < 1999
    page = text(browser.get("/dashboard/balance/"))
    pending = f"${earnings // 100}.{earnings % 100:02d}"
    assert f'data-testid="pending-USD">{pending}<' in page
    assert 'data-testid="available-USD">$0.00<' in page
    day = timezone.localtime(order.paid_at + timedelta(days=7), timezone=me_zone(me)).strftime("%-d %b %Y")
    assert f"<strong>{pending}</strong> available on <time datetime=" in page
    assert f">{day}</time> — held 7 days after the sale" in page
    # No bank account yet: the next payout says why there is none.
    assert "No payout yet: add a bank account" in page
    # Nothing is available yet: nothing to ask for.
    assert 'data-testid="nothing-available-USD"' in page and "request-payout-USD" not in page


def me_zone(seller):
    from zoneinfo import ZoneInfo

    return ZoneInfo(seller.time_zone)


def test_after_the_hold_the_money_is_available_and_a_manual_seller_can_ask(browser, me):
    available_now(me)
    order = order_paid(product_for(me, price=1999))
    bank(me)
    page = text(browser.get("/dashboard/balance/"))
    money = f"${order.seller_earnings // 100}.{order.seller_earnings % 100:02d}"
    assert f'data-testid="available-USD">{money}<' in page
    assert 'data-testid="pending-USD">$0.00<' in page
    assert 'data-testid="nothing-pending"' in page
    assert "Your payouts are manual" in page
    assert f'id="request-payout-USD">Request payout of {money}</button>' in page


def test_a_weekly_seller_sees_the_next_payout_date_and_amount(browser, me):
    available_now(me)
    order = order_paid(product_for(me, price=1999))
    bank(me, schedule="weekly")
    page = text(browser.get("/dashboard/balance/"))
    money = f"${order.seller_earnings // 100}.{order.seller_earnings % 100:02d}"
    today = timezone.localdate().strftime("%-d %b %Y")
    assert f'data-testid="next-payout-scheduled"><strong>{money}</strong> on <time' in page
    assert f">{today}</time> by bank transfer (your payouts run every Monday)" in page
    assert "request-payout-USD" not in page


def test_a_weekly_seller_below_the_minimum_is_told_why(browser, me):
    available_now(me)
    order_paid(product_for(me, price=1999))
    bank(me, schedule="weekly", minimum=500_00)
    page = text(browser.get("/dashboard/balance/"))
    assert "No payout this time: your available balance is below your minimum payout ($500.00)." in page


def test_a_balance_below_zero_is_explained(browser, me):
    available_now(me)
    order = order_paid(product_for(me, price=1999))
    bank(me)
    payout_create(seller=me, currency="USD")
    order_refunded(order, 1999, reason="Changed my mind")
    page = text(browser.get("/dashboard/balance/"))
    assert 'data-testid="negative-explained"' in page
    assert "recovered from your next sales" in page
    assert 'class="num amount-negative" data-testid="available-USD">-$' in page


def test_other_sellers_balances_are_never_shown(browser, me, other):
    available_now(other)
    order_paid(product_for(other, currency="EUR", price=5000))
    page = text(browser.get("/dashboard/balance/"))
    assert "EUR" not in page and "€" not in page
    assert "Nothing earned yet" in page


# --- Request payout ------------------------------------------------------------------------------


def test_request_payout_without_a_bank_account_says_so_and_writes_nothing(browser, me):
    available_now(me)
    order_paid(product_for(me))
    response = browser.post("/dashboard/balance/payouts/request/", {"currency": "USD"}, follow=True)
    assert response.redirect_chain == [("/dashboard/balance/", 302)]
    assert "Add a bank account in your payout settings before asking for a payout." in text(response)
    assert not Payout.objects.exists()


def test_request_payout_below_the_minimum_says_so_and_writes_nothing(browser, me):
    available_now(me)
    order_paid(product_for(me))
    bank(me, minimum=100_00)
    response = browser.post("/dashboard/balance/payouts/request/", {"currency": "USD"}, follow=True)
    page = text(response)
    assert 'data-testid="message-error"' in page
    assert "the minimum payout is $100.00." in page
    assert not Payout.objects.exists()
    assert not BalanceTransaction.objects.filter(type="payout").exists()


def test_request_payout_pays_out_the_available_balance(browser, me):
    available_now(me)
    order = order_paid(product_for(me))
    bank(me)
    response = browser.post("/dashboard/balance/payouts/request/", {"currency": "usd"}, follow=True)
    payout = Payout.objects.get()
    assert (payout.seller, payout.amount, payout.currency, payout.status) == (
        me,
        order.seller_earnings,
        "USD",
        "pending",
    )
    assert response.redirect_chain == [(f"/dashboard/balance/payouts/{payout.id}/", 302)]
    page = text(response)
    assert f"Payout {payout.id} of $" in page
    assert "Waiting for our team to send it" in page
    # Its transaction, linked back to the payout.
    assert f'href="/dashboard/balance/payouts/{payout.id}/" data-testid="payout-link"' in page
    # A second request finds nothing left.
    again = text(browser.post("/dashboard/balance/payouts/request/", {"currency": "USD"}, follow=True))
    assert "Your available balance is $0.00" in again
    assert Payout.objects.count() == 1


def test_request_payout_with_a_bad_currency_is_a_message(browser, me):
    response = browser.post("/dashboard/balance/payouts/request/", {"currency": "ZZ"}, follow=True)
    page = text(response)
    assert 'data-testid="message-error" style="padding:10px;margin:12px 0">An ISO 4217 currency code.<' in page
    assert not Payout.objects.exists()


# --- Statement -----------------------------------------------------------------------------------


def test_the_statement_links_each_transaction_to_its_order_and_payout(browser, me, other):
    available_now(me)
    order = order_paid(product_for(me, price=1999))
    bank(me)
    payout = payout_create(seller=me, currency="USD")
    order_paid(product_for(other, price=777))
    page = text(browser.get("/dashboard/balance/statement/"))
    rows = BalanceTransaction.objects.filter(seller=me)
    assert sorted(rows.values_list("type", flat=True)) == ["payout", "platform_fee", "sale"]
    for btx in rows:
        assert f'data-btx="{btx.id}"' in page
    assert page.count(f'href="/dashboard/orders/{order.order_number}/" data-testid="order-link"') == 2
    assert page.count(f'href="/dashboard/balance/payouts/{payout.id}/" data-testid="payout-link"') == 1
    assert "$7.77" not in page
    assert not any(
        f'data-btx="{b}"' in page for b in BalanceTransaction.objects.filter(seller=other).values_list("id", flat=True)
    )
    # The order page the link goes to is the seller's.
    assert browser.get(f"/dashboard/orders/{order.order_number}/").status_code == 200


def test_pending_rows_show_until_when(browser, me):
    order = order_paid(product_for(me))
    page = text(browser.get("/dashboard/balance/statement/"))
    day = timezone.localtime(order.paid_at + timedelta(days=7), timezone=me_zone(me)).strftime("%-d %b %Y")
    assert page.count('data-testid="available-on">until <time') == 2
    assert f">{day}</time>" in page


def test_statement_filters_by_type_order_and_payout(browser, me):
    available_now(me)
    first = order_paid(product_for(me, price=1000))
    second = order_paid(product_for(me, price=2000))
    bank(me)
    payout = payout_create(seller=me, currency="USD")

    sales = text(browser.get("/dashboard/balance/statement/?type=sale"))
    assert sales.count('data-type="sale"') == 2 and 'data-type="platform_fee"' not in sales

    by_order = text(browser.get(f"/dashboard/balance/statement/?order={second.order_number}"))
    assert by_order.count("data-btx=") == 2 and f"/dashboard/orders/{first.order_number}/" not in by_order

    by_payout = text(browser.get(f"/dashboard/balance/statement/?payout={payout.id}"))
    assert by_payout.count("data-btx=") == 1 and 'data-type="payout"' in by_payout


def test_statement_filter_errors_are_shown_next_to_their_fields(browser, me, other):
    order_paid(product_for(me))
    others = order_paid(product_for(other))
    response = browser.get(f"/dashboard/balance/statement/?currency=ZZZ&order={others.order_number}&payout=nope")
    page = text(response)
    assert response.status_code == 200
    assert 'data-testid="error-currency">Unknown currency: ZZZ.' in page
    assert f'data-testid="error-order">No order {others.order_number} in your shop.' in page
    assert 'data-testid="error-payout">Not an id starting po_: nope.' in page
    # The valid rest still applies: the seller's own rows, never the other seller's.
    assert page.count("data-btx=") == 2


def test_statement_filters_by_date_in_the_sellers_time_zone(browser, me):
    order_paid(product_for(me))
    today = timezone.localdate(timezone=me_zone(me))
    shown = text(browser.get(f"/dashboard/balance/statement/?created_from={today}&created_to={today}"))
    assert shown.count("data-btx=") == 2
    tomorrow = today + timedelta(days=1)
    assert "data-btx=" not in text(browser.get(f"/dashboard/balance/statement/?created_from={tomorrow}"))
    backwards = text(
        browser.get(f"/dashboard/balance/statement/?created_from={today}&created_to={today - timedelta(days=1)}")
    )
    assert 'data-testid="error-created_to">Must be on or after the start date.' in backwards


def test_statement_pages_by_keyset_newest_first(browser, me):
    product = product_for(me, price=1000)
    for _ in range(26):
        order_paid(product)  # 52 transactions: a sale and a fee each
    expected = list(
        BalanceTransaction.objects.filter(seller=me).order_by("-created_at", "-id").values_list("id", flat=True)
    )
    assert len(expected) == 52
    first = browser.get("/dashboard/balance/statement/").content.decode()
    first_ids = re.findall(r'data-btx="(btx_[^"]+)"', first)
    assert first_ids == expected[:50]
    assert 'data-testid="newer"' not in first
    older = re.search(r'href="\?([^"]+)" rel="next" data-testid="older"', first).group(1).replace("&amp;", "&")
    second = browser.get(f"/dashboard/balance/statement/?{older}").content.decode()
    assert re.findall(r'data-btx="(btx_[^"]+)"', second) == expected[50:]
    assert 'data-testid="older"' not in second
    newer = re.search(r'href="\?([^"]+)" rel="prev" data-testid="newer"', second).group(1).replace("&amp;", "&")
    back = browser.get(f"/dashboard/balance/statement/?{newer}").content.decode()
    assert re.findall(r'data-btx="(btx_[^"]+)"', back) == expected[:50]
    # The filters travel with the page links.
    filtered = browser.get("/dashboard/balance/statement/?type=sale").content.decode()
    assert re.findall(r'data-btx="(btx_[^"]+)"', filtered) == [
        b for b in expected if BalanceTransaction.objects.get(pk=b).type == "sale"
    ]
    assert 'data-testid="older"' not in filtered


def test_a_broken_page_link_shows_the_newest(browser, me):
    order_paid(product_for(me))
    page = text(browser.get("/dashboard/balance/statement/?before=garbage"))
    assert 'data-testid="broken-cursor"' in page and page.count("data-btx=") == 2


def test_statement_csv_streams_the_filtered_statement(browser, me, other):
    available_now(me)
    order = order_paid(product_for(me, price=1999))
    order_paid(product_for(other, price=1999))
    page = browser.get("/dashboard/balance/statement/?type=sale").content.decode()
    assert 'href="/dashboard/balance/statement.csv?type=sale" data-testid="statement-csv"' in page
    response = browser.get("/dashboard/balance/statement.csv?type=sale")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Cache-Control"] == "no-store"
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    sale = BalanceTransaction.objects.get(seller=me, type="sale")
    assert rows[0][:3] == ["id", "created_at", "type"]
    assert rows[1:] == [
        [
            sale.id,
            rows[1][1],
            "sale",
            f"Sale, order {order.order_number}",
            order.id,
            "",
            "USD",
            "19.99",
            "available",
            rows[1][9],
        ]
    ]


def test_statement_csv_with_a_bad_filter_is_a_400(browser, me):
    response = browser.get("/dashboard/balance/statement.csv?currency=ZZZ")
    assert response.status_code == 400
    assert "Unknown currency: ZZZ." in text(response)


# --- Payouts -------------------------------------------------------------------------------------


def test_payout_history_shows_status_method_arrival_and_failure(browser, me):
    available_now(me)
    order_paid(product_for(me))
    bank(me)
    failed = payout_create(seller=me, currency="USD")
    payout_mark_failed(payout_id=failed.id, actor=None, reason="The bank refused the account number")
    sent = payout_approve(payout_id=payout_create(seller=me, currency="USD").id, actor=None)
    page = text(browser.get("/dashboard/balance/payouts/"))
    assert f'data-payout="{failed.id}"' in page and f'data-payout="{sent.id}"' in page
    assert "The bank refused the account number" in page
    assert "Bank transfer" in page
    assert f"Expected {sent.arrival_date.strftime('%-d %b %Y')}" in page
    detail = text(browser.get(f"/dashboard/balance/payouts/{failed.id}/"))
    assert 'data-testid="failure-reason">The bank refused the account number — the money is back' in detail
    assert detail.count("data-btx=") == 2  # the payout and its failure
    assert 'data-type="payout_failure"' in detail


def test_another_sellers_payout_is_not_found(browser, other):
    available_now(other)
    order_paid(product_for(other))
    bank(other)
    payout = payout_create(seller=other, currency="USD")
    response = browser.get(f"/dashboard/balance/payouts/{payout.id}/")
    assert response.status_code == 404
    assert payout.id not in response.content.decode()
    assert payout.id not in browser.get("/dashboard/balance/payouts/").content.decode()


# --- Payout settings -----------------------------------------------------------------------------

SETTINGS = {
    "method": "bank_transfer",
    "schedule": "weekly",
    "minimum_amount": "2500",
    "holder": "Ada Lovelace",
    "number": "DE89 3704 0044 0532 0130 00",
    "bank": "N26",
    "country": "de",
}


def test_payout_settings_are_saved_and_the_number_shown_only_as_a_hint(browser, me):
    response = browser.post("/dashboard/balance/settings/", SETTINGS, follow=True)
    assert "Payout settings saved." in text(response)
    row = PayoutSettings.objects.get(seller=me)
    assert (row.schedule, row.minimum_amount, row.bank_holder, row.bank_country) == (
        "weekly",
        2500,
        "Ada Lovelace",
        "DE",
    )
    assert (row.bank_number, row.bank_number_hint) == ("DE89370400440532013000", "3000")
    page = text(browser.get("/dashboard/balance/settings/"))
    assert "Stored: ending 3000. Leave empty to keep it" in page
    assert "DE8937" not in page and "0532013000" not in page
    assert 'data-field="number"' in page
    # Blank keeps the stored number.
    browser.post("/dashboard/balance/settings/", {**SETTINGS, "number": "", "schedule": "monthly"})
    row.refresh_from_db()
    assert (row.schedule, row.bank_number) == ("monthly", "DE89370400440532013000")


def test_payout_settings_errors_are_shown_next_to_fields_and_nothing_is_saved(browser, me):
    bank(me)
    before = PayoutSettings.objects.values().get(seller=me)
    response = browser.post("/dashboard/balance/settings/", {**SETTINGS, "number": "!!", "country": "D1"})
    assert response.status_code == 400
    assert field_errors(response) == {"number": "4 to 34 letters and digits (an IBAN or account number)."}
    assert PayoutSettings.objects.values().get(seller=me) == before
    response = browser.post("/dashboard/balance/settings/", {**SETTINGS, "country": "D1"})
    assert field_errors(response) == {"country": "An ISO 3166 two-letter country code."}
    response = browser.post("/dashboard/balance/settings/", {**SETTINGS, "holder": "", "minimum_amount": "-1"})
    assert field_errors(response) == {
        "holder": "This field is required.",
        "minimum_amount": "Ensure this value is greater than or equal to 0.",
    }
    assert PayoutSettings.objects.values().get(seller=me) == before


def test_the_first_bank_account_needs_its_number(browser, me):
    response = browser.post("/dashboard/balance/settings/", {**SETTINGS, "number": ""})
    assert response.status_code == 400
    assert field_errors(response) == {"number": "This field is required."}
    assert not PayoutSettings.objects.exists()


def test_stripe_connect_is_not_offered_yet(browser, me):
    response = browser.post("/dashboard/balance/settings/", {**SETTINGS, "method": "stripe_connect"})
    assert response.status_code == 400
    assert list(field_errors(response)) == ["method"]
    assert not PayoutSettings.objects.exists()


# --- Query counts --------------------------------------------------------------------------------


def _queries_for(browser, path, django_assert_max_num_queries, limit):
    with django_assert_max_num_queries(limit) as captured:
        assert browser.get(path).status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize(
    ("path", "limit"),
    [
        ("/dashboard/balance/", 7),
        ("/dashboard/balance/statement/", 4),
        ("/dashboard/balance/statement/?type=sale,payout&currency=USD", 4),
        ("/dashboard/balance/payouts/", 4),
    ],
)
def test_balance_pages_do_not_grow_with_transactions(browser, me, path, limit, django_assert_max_num_queries):
    available_now(me)
    product = product_for(me)
    bank(me)
    order_paid(product)
    payout_create(seller=me, currency="USD")
    few = _queries_for(browser, path, django_assert_max_num_queries, limit)
    for _ in range(30):
        order_paid(product)
    payout_create(seller=me, currency="USD")
    order_paid(product_for(me, currency="EUR"))
    assert _queries_for(browser, path, django_assert_max_num_queries, limit) == few


def test_payout_detail_queries_do_not_grow(browser, me, django_assert_max_num_queries):
    available_now(me)
    product = product_for(me)
    bank(me)
    for _ in range(10):
        order_paid(product)
    payout = payout_create(seller=me, currency="USD")
    with django_assert_max_num_queries(6):
        assert browser.get(f"/dashboard/balance/payouts/{payout.id}/").status_code == 200


# --- Stripe Connect on the payout settings ------------------------------------------------------------


def connected(seller, status):
    return StripeConnectAccount.objects.create(
        seller=seller, account_id=f"acct_{seller.pk}test", status=status, payouts_enabled=status == "enabled"
    )


def test_payout_settings_offer_to_connect_with_stripe_and_only_bank_transfer_before(browser, me):
    page = text(browser.get("/dashboard/balance/settings/"))
    assert "Connect with Stripe" in page
    assert 'action="/dashboard/payouts/stripe/start/"' in page
    assert 'value="stripe_connect"' not in page
    response = browser.post("/dashboard/balance/settings/", {**SETTINGS, "method": "stripe_connect"})
    assert response.status_code == 400
    assert "stripe_connect is not one of the available choices" in field_errors(response)["method"]
    assert not PayoutSettings.objects.exists()


def test_an_unfinished_stripe_account_asks_to_continue_onboarding(browser, me):
    connected(me, "restricted")
    page = text(browser.get("/dashboard/balance/settings/"))
    assert "Continue onboarding" in page and "Stripe needs more information" in page
    assert 'value="stripe_connect"' not in page


def test_an_enabled_stripe_account_can_be_chosen_without_bank_details(browser, me, other):
    connected(me, "enabled")
    page = text(browser.get("/dashboard/balance/settings/"))
    assert "Your Stripe account is ready" in page and "Connect with Stripe" not in page
    assert 'value="stripe_connect"' in page
    empty_bank = {"holder": "", "number": "", "bank": "", "country": ""}
    response = browser.post(
        "/dashboard/balance/settings/", {**SETTINGS, **empty_bank, "method": "stripe_connect"}, follow=True
    )
    assert "Payout settings saved." in text(response)
    row = PayoutSettings.objects.get(seller=me)
    assert (row.method, row.bank_number_hint) == ("stripe_connect", "")
    # Switching back to bank transfers needs the whole bank account again.
    response = browser.post("/dashboard/balance/settings/", {**SETTINGS, **empty_bank})
    assert response.status_code == 400
    assert set(field_errors(response)) == {"holder", "number", "bank", "country"}
    row.refresh_from_db()
    assert row.method == "stripe_connect"
    # Another seller's enabled account does not make the method available to me.
    StripeConnectAccount.objects.filter(seller=me).update(seller=other)
    assert 'value="stripe_connect"' not in text(browser.get("/dashboard/balance/settings/"))
