"""The sellers' ledger: every money event is one balanced, immutable transaction written with its cause,
once; balances are sums of lines with a hold; the API shows a seller only their own books."""

import csv
import importlib
import io
from datetime import timedelta

import pytest
from django.apps import apps as django_apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from ledger.adjustments import ledger_adjustment_record
from ledger.models import (
    Account,
    Adjustment,
    BalanceRollup,
    BalanceTransaction,
    ImmutableError,
    LedgerLine,
    Payout,
)
from ledger.payouts import (
    BankAccountInput,
    payout_approve,
    payout_create,
    payout_mark_failed,
    payout_mark_paid,
    payout_settings_update,
)
from ledger.selectors import balances_for_seller
from ledger.services import ledger_refund_record, ledger_sale_record
from ledger.tests.factories import order_paid, order_refunded, product_for
from marketplace.accounts.services import api_key_create
from marketplace.accounts.tests.factories import SellerFactory, UserFactory
from marketplace.core.errors import Conflict
from orders.books import ledger_differences
from orders.models import Order
from orders.services import order_mark_paid
from orders.services.disputes import order_dispute_blocks_refund
from payments.disputes import dispute_apply
from payments.gateways.base import GatewayDispute
from payments.models import Dispute, Payment, Refund

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fees(settings):
    settings.PLATFORM_FEE_BPS, settings.PLATFORM_FEE_FIXED, settings.PAYOUT_HOLD_DAYS = 1000, 30, 7


def client_for(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def books(order_id):
    return sorted(
        BalanceTransaction.objects.filter(order_id=order_id).values_list("type", "amount", "currency"),
    )


def lines_balance():
    """Every transaction's lines sum to zero, per currency."""
    rows = LedgerLine.objects.values("transaction_id", "currency").annotate(total=Sum("amount"))
    return all(row["total"] == 0 for row in rows)


# --- Written by orders ---------------------------------------------------------------------------


def test_a_paid_order_writes_its_sale_and_fee_once_balanced_and_held():
    seller = SellerFactory()
    order = order_paid(product_for(seller), quantity=2)  # 3998; fee 10% + 30 = 430
    assert (order.platform_fee, order.seller_earnings) == (430, 3568)
    assert books(order.id) == [("platform_fee", -430, "USD"), ("sale", 3998, "USD")]
    assert lines_balance()
    assert set(LedgerLine.objects.filter(transaction__order_id=order.id).values_list("account", "amount")) == {
        (Account.GATEWAY_CLEARING, -3998),
        (Account.SELLER_BALANCE, 3998),
        (Account.SELLER_BALANCE, -430),
        (Account.PLATFORM_FEES, 430),
    }
    sale = BalanceTransaction.objects.get(order_id=order.id, type="sale")
    assert sale.available_on == order.paid_at + timedelta(days=7)
    # A replayed payment event, or the hook called again, writes nothing.
    order_mark_paid(order_id=order.id, payment_id=order.payments.first().id)
    assert ledger_sale_record(order=order) == []
    assert BalanceTransaction.objects.count() == 2 and LedgerLine.objects.count() == 4


def test_the_paid_path_costs_at_most_three_more_statements(monkeypatch):
    """Three, exactly: the transactions, their lines, and the day's balance rollup row (one upsert for
    the sale and its fee together), with the seller the paid path already loaded."""
    product = product_for(SellerFactory())
    order_paid(product)  # warm-up: content types, first-time caches
    with CaptureQueriesContext(connection) as with_ledger:
        order_paid(product)
    monkeypatch.setattr("orders.services.payment_outcomes.ledger_sale_record", lambda **kwargs: [])
    with CaptureQueriesContext(connection) as without_ledger:
        order_paid(product)
    assert len(with_ledger.captured_queries) - len(without_ledger.captured_queries) == 3
    rollup = [q["sql"] for q in with_ledger.captured_queries if "ledger_balancerollup" in q["sql"]]
    assert len(rollup) == 1 and rollup[0].startswith("INSERT")


def test_a_refund_follows_the_orders_fee_rules_exactly_and_is_written_once():
    seller = SellerFactory()
    order = order_paid(product_for(seller), quantity=2)  # 3998: fee 430, earnings 3568
    order, first = order_refunded(order, 998, reason="one was faulty")  # net 3000: fee 330, earnings 2670
    assert (order.platform_fee, order.seller_earnings) == (330, 2670)
    refund = BalanceTransaction.objects.get(source_id=first.id)
    assert (refund.type, refund.amount, refund.order_id) == ("refund", -898, order.id)
    assert set(refund.lines.values_list("account", "amount")) == {
        (Account.SELLER_BALANCE, -898),
        (Account.PLATFORM_FEES, -100),
        (Account.GATEWAY_CLEARING, 998),
    }
    # The seller's part is held like the sale it reverses: pending drops, available does not.
    assert refund.available_on == BalanceTransaction.objects.get(order_id=order.id, type="sale").available_on
    assert balances_for_seller(seller=seller)[0]["pending"] == 2670
    # Replaying the same refund writes nothing.
    assert ledger_refund_record(order=order, refund_id=first.id) is None
    order, _ = order_refunded(order, 3000)
    assert (order.platform_fee, order.seller_earnings, order.refunded_amount) == (0, 0, 3998)
    assert balances_for_seller(seller=seller)[0]["total"] == 0
    assert BalanceTransaction.objects.filter(type="refund").count() == 2
    assert lines_balance()
    call_command("ledger_check", stdout=io.StringIO())


def test_the_books_are_never_edited_nor_deleted():
    order = order_paid(product_for(SellerFactory()))
    sale = BalanceTransaction.objects.get(order_id=order.id, type="sale")
    sale.amount = 1
    with pytest.raises(ImmutableError):
        sale.save()
    with pytest.raises(ImmutableError):
        sale.lines.first().delete()
    assert BalanceTransaction.objects.get(pk=sale.pk).amount == 1999


# --- Hold ----------------------------------------------------------------------------------------


def test_earnings_are_pending_until_the_hold_ends_then_available_without_a_job():
    seller = SellerFactory()
    order = order_paid(product_for(seller, currency="EUR", price=1000))  # fee 130, earnings 870
    now = timezone.now()
    pending = balances_for_seller(seller=seller, now=now)
    assert pending == [
        {
            "currency": "EUR",
            "pending": 870,
            "available": 0,
            "reserved": 0,
            "total": 870,
            "next_available_on": order.paid_at + timedelta(days=7),
        }
    ]
    later = balances_for_seller(seller=seller, now=order.paid_at + timedelta(days=7))
    assert (later[0]["pending"], later[0]["available"], later[0]["next_available_on"]) == (0, 870, None)


def test_an_operators_hold_override_applies_to_the_seller(settings):
    seller = SellerFactory()
    seller.payout_hold_days = 0
    seller.save()
    order = order_paid(product_for(seller))
    assert BalanceTransaction.objects.get(order_id=order.id, type="sale").available_on == order.paid_at
    body = client_for(seller).get("/api/v1/balance").json()["data"]
    assert body["hold_days"] == 0
    assert body["balances"][0]["available"] == order.seller_earnings


# --- API -----------------------------------------------------------------------------------------


@pytest.fixture
def two_sellers():
    ada, bob = SellerFactory(), SellerFactory()
    usd = order_paid(product_for(ada, currency="USD", price=1000))  # fee 130, earnings 870
    eur = order_paid(product_for(ada, currency="EUR", price=2000))  # fee 230, earnings 1770
    order_refunded(eur, 500)
    bob_order = order_paid(product_for(bob, currency="USD", price=5000))
    return ada, bob, usd, eur, bob_order


def test_balance_shows_each_currency_and_only_the_sellers_own(two_sellers):
    ada, bob, usd, eur, bob_order = two_sellers
    eur.refresh_from_db()
    body = client_for(ada).get("/api/v1/balance").json()
    assert body["success"] is True
    data = body["data"]
    assert data["hold_days"] == 7 and data["next_payout"] is None
    assert [(b["currency"], b["pending"], b["available"], b["reserved"], b["total"]) for b in data["balances"]] == [
        ("EUR", eur.seller_earnings, 0, 0, eur.seller_earnings),
        ("USD", 870, 0, 0, 870),
    ]
    assert eur.seller_earnings == 1770 - (500 - 50)


def test_transactions_list_filters_pages_and_hides_other_sellers(two_sellers):
    ada, bob, usd, eur, bob_order = two_sellers
    client = client_for(ada)
    body = client.get("/api/v1/balance/transactions").json()["data"]
    assert body["pagination"] == {"page": 1, "limit": 20, "total_items": 5, "total_pages": 1}
    assert all(row["id"].startswith("btx_") for row in body["results"])
    assert bob_order.id not in {row["order_id"] for row in body["results"]}
    refund = client.get("/api/v1/balance/transactions?type=refund").json()["data"]["results"]
    assert [(r["type"], r["amount"], r["currency"], r["order_id"], r["status"]) for r in refund] == [
        ("refund", -450, "EUR", eur.id, "pending")
    ]
    both = client.get("/api/v1/balance/transactions", {"filter.type": "$in:sale,platform_fee", "currency": "usd"})
    assert sorted(r["type"] for r in both.json()["data"]["results"]) == ["platform_fee", "sale"]
    by_order = client.get("/api/v1/balance/transactions", {"filter.orderId": f"$eq:{usd.id}", "limit": 1})
    assert by_order.json()["data"]["pagination"]["total_items"] == 2
    assert len(by_order.json()["data"]["results"]) == 1
    # Another seller's order filters to nothing, never to its books.
    other = client.get("/api/v1/balance/transactions", {"order": bob_order.id}).json()["data"]
    assert other["results"] == [] and other["pagination"]["total_items"] == 0


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("type=bonus", "type"),
        ("currency=XXQ", "currency"),
        ("order=prd_123", "order"),
        ("payout=ord_1", "payout"),
        ("filter.type=$gt:sale", "filter.type"),
        ("filter.amount=$eq:1", "filter.amount"),
        ("sort=amount", "sort"),
        ("type=sale&type=refund", "type"),
        ("type=", "type"),
    ],
)
@pytest.mark.parametrize("path", ["/api/v1/balance/transactions", "/api/v1/balance/transactions.csv"])
def test_a_bad_filter_is_a_400_in_the_envelope(two_sellers, query, field, path):
    response = client_for(two_sellers[0]).get(f"{path}?{query}")
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False and body["error"]["code"] == "validation_error"
    assert field in body["error"]["fields"]
    assert BalanceTransaction.objects.count() == 7  # a read: nothing written, nothing changed


@pytest.mark.parametrize(("query", "field"), [("limit=101", "limit"), ("page=0", "page"), ("page=x", "page")])
def test_bad_paging_is_a_400(two_sellers, query, field):
    response = client_for(two_sellers[0]).get(f"/api/v1/balance/transactions?{query}")
    assert response.status_code == 400 and field in response.json()["error"]["fields"]


def test_balance_takes_no_parameters():
    response = client_for(SellerFactory()).get("/api/v1/balance?currency=USD")
    assert response.status_code == 400 and "currency" in response.json()["error"]["fields"]


def test_only_sellers_see_money(two_sellers):
    for path in ("/api/v1/balance", "/api/v1/balance/transactions", "/api/v1/balance/transactions.csv"):
        assert APIClient().get(path).status_code == 401
        buyer = client_for(UserFactory())
        response = buyer.get(path)
        assert response.status_code == 403 and response.json()["success"] is False


def test_an_api_key_reads_the_balance(two_sellers):
    ada = two_sellers[0]
    _, raw = api_key_create(user=ada, name="books")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert [b["currency"] for b in client.get("/api/v1/balance").json()["data"]["balances"]] == ["EUR", "USD"]


def test_the_statement_csv_is_streamed_and_filtered(two_sellers):
    ada, bob, usd, eur, bob_order = two_sellers
    response = client_for(ada).get("/api/v1/balance/transactions.csv?currency=EUR")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert sorted((r["type"], r["amount"], r["currency"]) for r in rows) == [
        ("platform_fee", "-2.30", "EUR"),
        ("refund", "-4.50", "EUR"),
        ("sale", "20.00", "EUR"),
    ]
    assert {r["order_id"] for r in rows} == {eur.id}


def test_the_money_api_is_in_the_openapi_schema():
    response = APIClient().get("/api/schema/?format=json")
    paths = response.json()["paths"]
    for path in ("/api/v1/balance", "/api/v1/balance/transactions", "/api/v1/balance/transactions.csv"):
        assert "get" in paths[path]


# --- Data migration and ledger_check -------------------------------------------------------------


def _paid_before_the_ledger(product, *, refunded=0, status="delivered"):
    """An order paid (and refunded) as the engine left it before the ledger: its books then removed."""
    order = order_paid(product, quantity=2)
    if refunded:
        order, _ = order_refunded(order, refunded)
    Order.objects.filter(pk=order.pk).update(status=status)
    LedgerLine.objects.filter(transaction__order_id=order.id)._raw_delete(LedgerLine.objects.db)
    BalanceTransaction.objects.filter(order_id=order.id)._raw_delete(BalanceTransaction.objects.db)
    BalanceRollup.objects.all().delete()  # made from the lines by migration 0005, after 0002's backfill
    order.refresh_from_db()
    return order


def test_the_data_migration_writes_the_books_of_orders_already_paid():
    seller = SellerFactory()
    product = product_for(seller)
    plain = _paid_before_the_ledger(product)
    partly = _paid_before_the_ledger(product, refunded=998, status="partially_refunded")
    full = _paid_before_the_ledger(product, refunded=3998, status="refunded")
    assert BalanceTransaction.objects.count() == 0
    with pytest.raises(CommandError):
        call_command("ledger_check", stdout=io.StringIO(), stderr=io.StringIO())
    migration = importlib.import_module("ledger.migrations.0002_backfill_paid_orders")
    migration.backfill(django_apps, None)
    importlib.import_module("ledger.migrations.0005_balance_rollups").fill(django_apps, None)
    assert books(plain.id) == [("platform_fee", -430, "USD"), ("sale", 3998, "USD")]
    partly_refund = Refund.objects.get(order=partly)
    assert books(partly.id) == [("platform_fee", -330, "USD"), ("refund", -998, "USD"), ("sale", 3998, "USD")]
    assert BalanceTransaction.objects.get(order_id=partly.id, type="refund").source_id == partly_refund.id
    assert books(full.id) == [("refund", -3998, "USD"), ("sale", 3998, "USD")]
    assert balances_for_seller(seller=seller)[0]["total"] == plain.seller_earnings + partly.seller_earnings
    assert lines_balance()
    out = io.StringIO()
    call_command("ledger_check", stdout=out)
    assert "agrees" in out.getvalue()
    count = LedgerLine.objects.count()
    migration.backfill(django_apps, None)  # run twice: writes nothing more
    assert LedgerLine.objects.count() == count


def test_ledger_check_exits_1_naming_the_difference():
    seller = SellerFactory(email="ada@example.com")
    order = order_paid(product_for(seller))
    call_command("ledger_check", stdout=io.StringIO())
    Order.objects.filter(pk=order.pk).update(seller_earnings=order.seller_earnings - 100)
    err = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("ledger_check", stdout=io.StringIO(), stderr=err)
    assert raised.value.returncode == 1
    text = err.getvalue()
    assert f"order {order.order_number}" in text and "seller earnings is 1669 on the order but 1769" in text
    assert "Seller ada@example.com, USD: balance is 1769 in the ledger" in text
    assert BalanceTransaction.objects.count() == 2  # the check writes nothing


# --- Property --------------------------------------------------------------------------------------

CURRENCIES = ["USD", "EUR", "JPY", "KWD"]
step = st.one_of(
    st.tuples(st.just("sale"), st.sampled_from(CURRENCIES), st.integers(1, 50_000), st.integers(0, 1)),
    st.tuples(st.just("refund"), st.integers(0, 1_000), st.integers(1, 60_000), st.booleans()),
    # A payout of a seller (c) in a currency (a), then left pending (b=0), paid (1) or failed (2).
    st.tuples(st.just("payout"), st.sampled_from(CURRENCIES), st.integers(0, 2), st.integers(0, 1)),
    # A dispute of an order (a) for an amount (b) or the whole charge (c[0]), left open or at once won
    # or lost (c[1]).
    st.tuples(
        st.just("dispute"),
        st.integers(0, 1_000),
        st.integers(1, 60_000),
        st.tuples(st.booleans(), st.sampled_from(["open", "won", "lost"])),
    ),
    # The open dispute (a) closes: won (b=0), lost (1).
    st.tuples(st.just("close"), st.integers(0, 1_000), st.integers(0, 1), st.just(0)),
    # An operator's adjustment of a seller (c) in a currency (a) by b (signed, non-zero).
    st.tuples(
        st.just("adjust"),
        st.sampled_from(CURRENCIES),
        st.one_of(st.integers(-20_000, -1), st.integers(1, 20_000)),
        st.integers(0, 1),
    ),
)


@hsettings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=1, max_size=14))
def test_any_sequence_of_sales_refunds_disputes_payouts_and_adjustments_keeps_the_books_balanced(steps, settings):
    """Sales, partial and full refunds, disputes opened then won or lost, payouts paid and failed,
    and operators' adjustments, in several currencies. After every step: every transaction's lines
    sum to zero; each seller's balance is its earnings less payouts and lost disputes plus
    adjustments, of which exactly the open disputes' parts are reserved; a payout takes what was
    available and no more; and ledger_check agrees."""
    settings.PAYOUT_HOLD_DAYS = 0  # earnings are available at once, so payouts have something to take
    sellers = [SellerFactory(), SellerFactory()]
    operator = UserFactory(is_staff=True, is_superuser=True)
    for seller in sellers:
        payout_settings_update(
            seller=seller,
            method="bank_transfer",
            schedule="manual",
            minimum_amount=0,
            bank_account=BankAccountInput(holder="A", number="12345678", bank="B", country="DE"),
        )
    products = {}
    orders = []
    for kind, a, b, c in steps:
        if kind == "sale":
            seller = sellers[c]
            product = products.get((seller.pk, a)) or product_for(seller, currency=a, price=b)
            products[(seller.pk, a)] = product
            orders.append(order_paid(product))
        elif kind == "refund":
            if orders:
                order = Order.objects.get(pk=orders[a % len(orders)].pk)
                left = order.total_amount - order.refunded_amount
                # A disputed order takes no refund (order_refund_create answers 409 order_disputed).
                if left > 0 and not order_dispute_blocks_refund(order):
                    order_refunded(order, left if c else min(b, left))
        elif kind == "dispute":
            if orders:
                order = Order.objects.get(pk=orders[a % len(orders)].pk)
                payment = Payment.objects.get(order=order)
                if not Dispute.objects.filter(order=order).exists():
                    whole, outcome = c
                    amount = payment.amount if whole else min(b, payment.amount)
                    opened = _gateway_dispute(order, amount, "needs_response")
                    dispute = dispute_apply(payment=payment, confirmed=opened)
                    event("dispute opened")
                    if outcome != "open":
                        closed = _gateway_dispute(order, amount, outcome, dispute.gateway_dispute_id)
                        dispute_apply(payment=payment, confirmed=closed)
                        event(f"dispute {outcome}")
                    # Never more than the seller still held from the order.
                    assert 0 <= dispute.reserved_amount <= order.seller_earnings
                    assert dispute.reserved_amount + dispute.fee_amount == min(
                        amount, order.total_amount - order.refunded_amount
                    )
        elif kind == "close":
            still_open = list(Dispute.objects.filter(status="needs_response").order_by("created_at", "id"))
            if still_open:
                dispute = still_open[a % len(still_open)]
                order = Order.objects.get(pk=dispute.order_id)
                outcome = "lost" if b else "won"
                closed = _gateway_dispute(order, dispute.amount, outcome, dispute.gateway_dispute_id)
                dispute_apply(payment=dispute.payment, confirmed=closed)
                event(f"dispute {outcome}")
        elif kind == "adjust":
            ledger_adjustment_record(seller=sellers[c], currency=a, amount=b, reason="Property test", actor=operator)
        else:
            seller = sellers[c]
            before = {x["currency"]: x["available"] for x in balances_for_seller(seller=seller)}.get(a, 0)
            try:
                payout = payout_create(seller=seller, currency=a)
            except Conflict:
                assert before <= 0  # refused only when nothing is available
            else:
                assert 0 < payout.amount == before  # never more than was available
                if b:
                    payout_approve(payout_id=payout.id, actor=operator)
                if b == 1:
                    payout_mark_paid(payout_id=payout.id, actor=operator)
                elif b == 2:
                    payout_mark_failed(payout_id=payout.id, actor=operator, reason="Account closed")
        assert lines_balance()
        for seller in sellers:
            want: dict[str, int] = {}
            reserved: dict[str, int] = {}
            for order in Order.objects.filter(seller=seller):
                want[order.currency] = want.get(order.currency, 0) + order.seller_earnings
            for payout in Payout.objects.filter(seller=seller).exclude(status="failed"):
                want[payout.currency] = want.get(payout.currency, 0) - payout.amount
            for dispute in Dispute.objects.filter(seller=seller):
                if dispute.status == "lost":
                    want[dispute.currency] = want.get(dispute.currency, 0) - dispute.reserved_amount
                elif dispute.is_open:
                    reserved[dispute.currency] = reserved.get(dispute.currency, 0) + dispute.reserved_amount
            for adjustment in Adjustment.objects.filter(seller=seller):
                want[adjustment.currency] = want.get(adjustment.currency, 0) + adjustment.amount
            rows = balances_for_seller(seller=seller)
            got = {row["currency"]: row["total"] for row in rows}
            assert got == {k: v for k, v in want.items() if v or k in got}
            assert {row["currency"]: row["reserved"] for row in rows if row["reserved"]} == {
                k: v for k, v in reserved.items() if v
            }
        assert ledger_differences() == []
    call_command("ledger_check", stdout=io.StringIO())


def _gateway_dispute(order, amount, status, dispute_id=None):
    return GatewayDispute(
        id=dispute_id or f"dp_prop_{order.id}",
        payment_intent="",
        amount=amount,
        currency=order.currency,
        status=status,
        reason="fraudulent",
        due_by=None,
    )
