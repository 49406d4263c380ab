"""Sellers get paid by bank transfer: payout settings with the account number encrypted, payouts that
take exactly the available balance in the same transaction as their ledger lines, the operators' queue
(approve, bank file, paid, failed with a reason) with its audit trail and emails, the schedule once per
period, and two requests at once that never overdraw."""

import csv
import io
from collections import Counter
from datetime import timedelta

import pytest
from django.contrib.admin.utils import quote as admin_quote
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from ledger.models import Account, BalanceTransaction, LedgerLine, Payout, PayoutEvent, PayoutSettings
from ledger.payouts import (
    BankAccountInput,
    payout_approve,
    payout_create,
    payout_mark_failed,
    payout_mark_paid,
    payout_settings_update,
    payouts_schedule_run,
)
from ledger.selectors import balances_for_seller
from ledger.tasks import payouts_schedule
from ledger.tests.factories import order_paid, order_refunded, product_for
from marketplace.accounts.tests.factories import SellerFactory, UserFactory
from orders.models import Order
from tests.campaign.concurrency import run_concurrently

from . import secrets_registry

NUMBER = "DE89 3704 0044 0532 0130 00"


@pytest.fixture(autouse=True)
def _fees(settings):
    settings.PLATFORM_FEE_BPS, settings.PLATFORM_FEE_FIXED, settings.PAYOUT_HOLD_DAYS = 1000, 30, 0


def client_for(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def bank(seller, *, schedule="manual", minimum=0):
    secrets_registry.register("DE89370400440532013000", kind="bank account number")  # never in a log line
    return payout_settings_update(
        seller=seller,
        method="bank_transfer",
        schedule=schedule,
        minimum_amount=minimum,
        bank_account=BankAccountInput(holder="Ada Lovelace", number=NUMBER, bank="Commerzbank", country="de"),
    )


def available(seller, currency="USD"):
    for row in balances_for_seller(seller=seller):
        if row["currency"] == currency:
            return row["available"]
    return 0


def seller_with_sales(*, count=1, price=1999, currency="USD"):
    seller = SellerFactory()
    product = product_for(seller, currency=currency, price=price)
    for _ in range(count):
        order_paid(product)
    return seller


def ledger_agrees():
    out = io.StringIO()
    call_command("ledger_check", stdout=out)
    return "agrees" in out.getvalue()


# --- Settings ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_settings_store_the_number_encrypted_and_show_only_its_last_four():
    seller = SellerFactory()
    client = client_for(seller)
    assert client.get("/api/v1/payout-settings").json()["data"]["bank_account"] is None
    body = {
        "method": "bank_transfer",
        "schedule": "weekly",
        "minimum_amount": 5000,
        "bank_account": {"holder": "Ada Lovelace", "number": NUMBER, "bank": "Commerzbank", "country": "de"},
    }
    response = client.put("/api/v1/payout-settings", body, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["data"] == {
        "method": "bank_transfer",
        "schedule": "weekly",
        "minimum_amount": 5000,
        "bank_account": {"holder": "Ada Lovelace", "number_hint": "3000", "bank": "Commerzbank", "country": "DE"},
        "stripe_account": None,
    }
    with connection.cursor() as cursor:
        cursor.execute("SELECT bank_number FROM ledger_payoutsettings")
        (stored,) = cursor.fetchone()
    assert "3704" not in stored and stored.startswith("gAAAA")  # a Fernet token, not the number
    assert PayoutSettings.objects.get(seller=seller).bank_number == "DE89370400440532013000"
    assert "DE8937" not in client.get("/api/v1/payout-settings").content.decode()
    # A later PUT may leave the number out and keeps it.
    body["bank_account"].pop("number")
    body["schedule"] = "monthly"
    assert client.put("/api/v1/payout-settings", body, format="json").status_code == 200
    row = PayoutSettings.objects.get(seller=seller)
    assert (row.schedule, row.bank_number) == ("monthly", "DE89370400440532013000")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"method": "paypal"}, 400, "method"),
        ({"iban": "x"}, 400, "iban"),
        (
            {"bank_account": {"holder": "A", "number": "123456", "bank": "B", "country": "DE", "swift": "X"}},
            400,
            "bank_account.swift",
        ),
        ({"minimum_amount": "100"}, 400, "minimum_amount"),
        ({"minimum_amount": -1}, 400, "minimum_amount"),
        ({"schedule": "daily"}, 400, "schedule"),
        ({"bank_account": None}, 400, "bank_account"),
        ({"bank_account": {"holder": "A", "number": "12", "bank": "B", "country": "DE"}}, 400, "bank_account.number"),
        ({"bank_account": {"holder": "A", "bank": "B", "country": "DE"}}, 400, "bank_account.number"),
        (
            {"bank_account": {"holder": "A", "number": "123456", "bank": "B", "country": "1X"}},
            400,
            "bank_account.country",
        ),
    ],
)
def test_bad_settings_are_a_400_that_changes_nothing(change, status, field):
    seller = SellerFactory()
    body = {
        "method": "bank_transfer",
        "schedule": "manual",
        "minimum_amount": 0,
        "bank_account": {"holder": "A", "number": "123456", "bank": "B", "country": "DE"},
        **change,
    }
    response = client_for(seller).put("/api/v1/payout-settings", body, format="json")
    assert response.status_code == status
    error = response.json()["error"]
    assert field in error["fields"], error
    assert not PayoutSettings.objects.exists()


@pytest.mark.django_db
def test_stripe_connect_is_refused_until_the_seller_has_onboarded():
    # (tests/campaign/test_attack_connect.py follows the whole Stripe Connect path.)
    seller = SellerFactory()
    bank(seller)
    body = {"method": "stripe_connect", "schedule": "manual", "minimum_amount": 0}
    response = client_for(seller).put("/api/v1/payout-settings", body, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "stripe_onboarding_incomplete"
    assert "Finish your Stripe onboarding" in response.json()["error"]["message"]
    assert PayoutSettings.objects.get(seller=seller).method == "bank_transfer"


# --- Payouts -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_payout_takes_the_available_balance_in_its_own_balanced_transaction():
    seller = seller_with_sales(count=2)
    bank(seller)
    before = available(seller)
    assert before == 2 * (1999 - 230)
    response = client_for(seller).post("/api/v1/payouts", {"currency": "USD"}, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()["data"]
    assert data["id"].startswith("po_")
    assert (data["amount"], data["currency"], data["status"], data["method"]) == (
        before,
        "USD",
        "pending",
        "bank_transfer",
    )
    assert available(seller) == 0
    btx = BalanceTransaction.objects.get(type="payout", payout_id=data["id"])
    assert btx.amount == -before
    assert sorted(btx.lines.values_list("account", "amount")) == [
        (Account.PAYOUTS_IN_TRANSIT, before),
        (Account.SELLER_BALANCE, -before),
    ]
    assert list(PayoutEvent.objects.filter(payout_id=data["id"]).values_list("kind", "actor")) == [
        ("created", seller.pk)
    ]
    listed = client_for(seller).get("/api/v1/payouts").json()["data"]["results"]
    assert [p["id"] for p in listed] == [data["id"]]
    statement = client_for(seller).get(f"/api/v1/balance/transactions?payout={data['id']}").json()["data"]["results"]
    assert [(t["type"], t["amount"]) for t in statement] == [("payout", -before)]
    assert ledger_agrees()


@pytest.mark.django_db
def test_pending_money_is_not_paid_out(settings):
    settings.PAYOUT_HOLD_DAYS = 7
    seller = seller_with_sales()
    bank(seller)
    response = client_for(seller).post("/api/v1/payouts", {"currency": "USD"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "below_minimum"
    assert not Payout.objects.exists() and not BalanceTransaction.objects.filter(type="payout").exists()


@pytest.mark.django_db
def test_below_the_minimum_is_a_409_that_writes_nothing():
    seller = seller_with_sales()
    bank(seller, minimum=5000)
    lines = LedgerLine.objects.count()
    response = client_for(seller).post("/api/v1/payouts", {"currency": "USD"}, format="json")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "below_minimum"
    assert "$17.69" in error["message"] and "$50.00" in error["message"]
    assert not Payout.objects.exists() and LedgerLine.objects.count() == lines


@pytest.mark.django_db
def test_no_bank_account_is_a_409_that_writes_nothing():
    seller = seller_with_sales()
    lines = LedgerLine.objects.count()
    response = client_for(seller).post("/api/v1/payouts", {"currency": "USD"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "payout_settings_missing"
    assert not Payout.objects.exists() and LedgerLine.objects.count() == lines


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [({"currency": "USD", "amount": 5}, "amount"), ({}, "currency"), ({"currency": "ZZZ"}, "currency")],
)
def test_a_bad_payout_request_is_a_400_that_writes_nothing(body, field):
    seller = seller_with_sales()
    bank(seller)
    response = client_for(seller).post("/api/v1/payouts", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not Payout.objects.exists() and available(seller) == 1769


@pytest.mark.django_db
def test_another_sellers_payout_is_a_404_and_only_sellers_see_payouts():
    owner = seller_with_sales()
    bank(owner)
    payout = payout_create(seller=owner, currency="USD")
    other = SellerFactory()
    assert client_for(other).get(f"/api/v1/payouts/{payout.id}").status_code == 404
    assert client_for(other).get("/api/v1/payouts").json()["data"]["results"] == []
    assert client_for(owner).get("/api/v1/payouts?status=paid").status_code == 400  # unknown filter
    assert client_for(owner).get(f"/api/v1/payouts/{payout.id}").json()["data"]["id"] == payout.id
    buyer = UserFactory()
    assert client_for(buyer).get("/api/v1/payouts").status_code == 403
    assert client_for(buyer).post("/api/v1/payouts", {"currency": "USD"}, format="json").status_code == 403
    assert Payout.objects.count() == 1


@pytest.mark.django_db
def test_paid_moves_in_transit_to_clearing_and_failed_returns_the_money_with_emails(
    django_capture_on_commit_callbacks,
):
    seller = seller_with_sales(count=2)
    bank(seller)
    operator = UserFactory(is_staff=True, is_superuser=True)
    first = payout_create(seller=seller, currency="USD")
    payout_approve(payout_id=first.id, actor=operator)
    with django_capture_on_commit_callbacks(execute=True):
        paid = payout_mark_paid(payout_id=first.id, actor=operator)
    assert paid.status == "paid"
    [sent] = mail.outbox
    assert sent.to == [seller.email] and "was sent" in sent.subject and first.id in sent.body
    assert sorted(BalanceTransaction.objects.filter(payout_id=first.id).values_list("type", "amount")) == [
        ("payout", -3538),
        ("payout", 0),
    ]  # the seller's statement shows the payout taken, then arrived
    in_transit = LedgerLine.objects.filter(account=Account.PAYOUTS_IN_TRANSIT)
    assert sum(in_transit.values_list("amount", flat=True)) == 0
    assert available(seller) == 0
    # Another sale, a payout that fails: the money is back, available.
    order_paid(Order.objects.filter(seller=seller).first().product)
    second = payout_create(seller=seller, currency="USD")
    with pytest.raises(Exception) as raised:
        payout_mark_failed(payout_id=second.id, actor=operator, reason=" ")
    assert raised.value.status_code == 400
    with django_capture_on_commit_callbacks(execute=True):
        payout_mark_failed(payout_id=second.id, actor=operator, reason="Account closed")
    assert available(seller) == second.amount == 1769
    failed = mail.outbox[-1]
    assert "failed" in failed.subject and "Account closed" in failed.body and "payout settings" in failed.body
    assert sorted(BalanceTransaction.objects.filter(payout_id=second.id).values_list("type", "amount")) == [
        ("payout", -1769),
        ("payout_failure", 1769),
    ]
    # A failed or paid payout moves no further.
    with pytest.raises(Exception) as raised:
        payout_mark_paid(payout_id=second.id, actor=operator)
    assert raised.value.status_code == 409
    assert Payout.objects.get(pk=second.id).status == "failed"
    assert ledger_agrees()


@pytest.mark.django_db
def test_ledger_check_names_a_payout_without_its_books():
    seller = seller_with_sales()
    bank(seller)
    payout = payout_create(seller=seller, currency="USD")
    Payout.objects.filter(pk=payout.pk).update(status="failed")  # failed without its payout_failure
    from django.core.management.base import CommandError

    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("ledger_check", stdout=io.StringIO(), stderr=err)
    assert f"Payout {payout.id} (failed) took 1769" in err.getvalue()


# --- The schedule and next_payout -----------------------------------------------------------------------


@pytest.mark.django_db
def test_the_beat_task_pays_scheduled_sellers_once_per_period(settings):
    assert settings.CELERY_BEAT_SCHEDULE["payouts-schedule"]["task"] == "ledger.tasks.payouts_schedule"
    weekly = seller_with_sales()
    bank(weekly, schedule="weekly")
    small = seller_with_sales()
    bank(small, schedule="monthly", minimum=10_000)
    manual = seller_with_sales()
    bank(manual)
    assert payouts_schedule.delay().get() == 1
    [payout] = Payout.objects.all()
    assert (payout.seller_id, payout.amount) == (weekly.pk, 1769)
    assert payout.period == timezone.localdate().strftime("%G-W%V")
    order_paid(Order.objects.filter(seller=weekly).first().product)
    assert payouts_schedule_run() == []  # the same week: nothing more
    assert Payout.objects.count() == 1
    assert payouts_schedule_run(now=timezone.now() + timedelta(days=7))[0].amount == 1769
    assert ledger_agrees()


@pytest.mark.django_db
def test_next_payout_is_filled_for_scheduled_sellers_and_null_for_manual():
    seller = seller_with_sales()
    bank(seller, schedule="weekly")
    client = client_for(seller)
    today = timezone.localdate()
    assert client.get("/api/v1/balance").json()["data"]["next_payout"] == {
        "date": today.isoformat(),
        "amount": 1769,
        "currency": "USD",
    }
    payouts_schedule_run()
    monday = today + timedelta(days=7 - today.weekday())
    assert client.get("/api/v1/balance").json()["data"]["next_payout"] == {
        "date": monday.isoformat(),
        "amount": 0,
        "currency": "USD",
    }
    bank(seller, schedule="manual")
    assert client.get("/api/v1/balance").json()["data"]["next_payout"] is None


# --- Admin ---------------------------------------------------------------------------------------------


@pytest.fixture
def operator_client(client):
    operator = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(operator)
    client.operator = operator
    return client


@pytest.mark.django_db
def test_admin_queue_approves_exports_and_marks_paid_with_an_audit_trail(operator_client):
    seller = seller_with_sales()
    bank(seller)
    payout = payout_create(seller=seller, currency="USD")
    url = reverse("admin:ledger_payout_changelist")
    assert payout.id in operator_client.get(url + "?status__exact=pending").content.decode()
    assert payout.id not in operator_client.get(url + "?status__exact=paid").content.decode()
    post = {"action": "approve", "_selected_action": [payout.id]}
    assert operator_client.post(url, post).status_code == 302
    assert Payout.objects.get(pk=payout.id).status == "in_transit"
    response = operator_client.post(url, {"action": "export_bank_file", "_selected_action": [payout.id]})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows == [
        ["payout_id", "holder", "account_number", "bank", "country", "amount", "currency", "reference"],
        [
            payout.id,
            "Ada Lovelace",
            "DE89370400440532013000",
            "Commerzbank",
            "DE",
            "17.69",
            "USD",
            f"Payout {payout.id}",
        ],
    ]
    operator_client.post(url, {"action": "mark_paid", "_selected_action": [payout.id]})
    assert Payout.objects.get(pk=payout.id).status == "paid"
    events = list(PayoutEvent.objects.filter(payout=payout).values_list("kind", "actor"))
    op = operator_client.operator.pk
    assert events == [("created", None), ("approved", op), ("exported", op), ("paid", op)]
    # The change page never shows the full number.
    page = operator_client.get(reverse("admin:ledger_payout_change", args=[admin_quote(payout.id)]))
    assert page.status_code == 200 and payout.id in page.content.decode()
    assert "DE8937" not in page.content.decode()


@pytest.mark.django_db
def test_admin_mark_failed_first_asks_for_the_reason(operator_client):
    seller = seller_with_sales()
    bank(seller)
    payout = payout_create(seller=seller, currency="USD")
    url = reverse("admin:ledger_payout_changelist")
    first = operator_client.post(url, {"action": "mark_failed", "_selected_action": [payout.id]})
    assert first.status_code == 200
    assert 'name="reason"' in first.content.decode() and payout.id in first.content.decode()
    assert Payout.objects.get(pk=payout.id).status == "pending"
    empty = operator_client.post(url, {"action": "mark_failed", "_selected_action": [payout.id], "apply": "1"})
    assert empty.status_code == 200 and Payout.objects.get(pk=payout.id).status == "pending"
    done = operator_client.post(
        url, {"action": "mark_failed", "_selected_action": [payout.id], "apply": "1", "reason": "IBAN rejected"}
    )
    assert done.status_code == 302
    payout.refresh_from_db()
    assert (payout.status, payout.failure_reason) == ("failed", "IBAN rejected")
    assert available(seller) == 1769
    assert PayoutEvent.objects.filter(payout=payout, kind="failed", actor=operator_client.operator).exists()
    assert ledger_agrees()


# --- Concurrency (PostgreSQL) ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_eight_payout_requests_at_once_pay_out_the_balance_once():
    if connection.vendor == "sqlite":
        pytest.skip("Needs row locks between real concurrent transactions (PostgreSQL).")
    seller = seller_with_sales(count=3)
    bank(seller)
    client_token = RefreshToken.for_user(seller).access_token

    def call(_):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {client_token}")
        return client.post("/api/v1/payouts", {"currency": "USD"}, format="json").status_code

    results = run_concurrently(8, call)
    assert Counter(results) == Counter({201: 1, 409: 7}), results
    [payout] = Payout.objects.all()
    assert payout.amount == 3 * 1769
    assert available(seller) == 0
    assert ledger_agrees()


@pytest.mark.django_db(transaction=True)
def test_a_refund_racing_a_payout_never_lets_the_books_disagree():
    if connection.vendor == "sqlite":
        pytest.skip("Needs row locks between real concurrent transactions (PostgreSQL).")
    seller = seller_with_sales(count=2)
    bank(seller)
    order = Order.objects.filter(seller=seller).first()

    def call(index):
        if index == 0:
            return payout_create(seller=seller, currency="USD").amount
        order_refunded(Order.objects.get(pk=order.pk), 1999)
        return "refunded"

    results = run_concurrently(2, call)
    assert results[1] == "refunded", results
    # The payout took what was available when it held the lock: both sales, or one after the refund.
    assert results[0] in (2 * 1769, 1769), results
    assert available(seller) == 1769 * 2 - 1769 - results[0]
    assert ledger_agrees()
