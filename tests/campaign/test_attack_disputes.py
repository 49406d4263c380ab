"""Disputes (chargebacks) and operators' adjustments, attacked.

A dispute arrives as a signed Stripe event that is only a hint: the dispute is retrieved from Stripe
(the project's fake) and only Stripe's word moves anything. Each change is on the order's timeline
and in the seller's books exactly once; a seller's setting decides whether the buyer keeps access;
``ledger_check`` proves the books against orders + disputes + adjustments. Adjustments are made only
by permitted operators, with a reason, through the admin's form.
"""

import io
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.admin.utils import quote as admin_quote
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from catalog.tests.factories import ProductFactory, VariantFactory
from ledger.adjustments import ledger_adjustment_record
from ledger.models import Account, Adjustment, BalanceTransaction, LedgerLine
from ledger.payouts import BankAccountInput, payout_create, payout_settings_update
from ledger.rollups import rollups_rebuild
from ledger.selectors import balances_for_seller
from marketplace.accounts.tests.factories import SellerFactory, UserFactory
from marketplace.core.errors import PermissionDenied, ValidationFailed
from orders.books import ledger_differences
from orders.models import OrderEvent
from orders.services.refunds import order_refund_create
from orders.tests.helpers import make_order
from payments.models import Dispute, Payment, WebhookEvent
from payments.services import payment_initiate
from payments.tests.fake_stripe import fake_stripe, sign_webhook  # noqa: F401
from tests.campaign.concurrency import run_concurrently

pytestmark = pytest.mark.django_db
SECRET = "whsec_test_ZGlzcHV0ZXMtYXJlLWhpbnRzLW9ubHk"
RETURN_URL = "https://shop.test/return"
PRICE, FEE, EARNINGS = 1999, 230, 1769  # 10 % + 30


@pytest.fixture(autouse=True)
def _fees(settings):
    settings.PLATFORM_FEE_BPS, settings.PLATFORM_FEE_FIXED, settings.PAYOUT_HOLD_DAYS = 1000, 30, 7


@pytest.fixture(autouse=True)
def _no_retry_sleep(monkeypatch):
    from stripe._http_client import HTTPClient

    monkeypatch.setattr(HTTPClient, "_sleep_time_seconds", lambda self, num_retries: 0)


@pytest.fixture
def stripe_on(settings, fake_stripe):  # noqa: F811
    settings.ENABLED_PAYMENT_GATEWAYS = ["sandbox", "stripe"]
    settings.STRIPE_SECRET_KEY = fake_stripe.api_key
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    settings.STRIPE_API_BASE = fake_stripe.url
    return fake_stripe


def post_stripe(event):
    body, headers = sign_webhook(event, SECRET)
    return post_raw(body, headers)


def post_raw(body, headers):
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    return APIClient().generic(
        "POST", "/api/v1/payments/webhooks/stripe", body, content_type="application/json", **extra
    )


def stripe_paid(fake, capture, *, seller=None, price=PRICE):
    seller = seller or SellerFactory()
    product = ProductFactory(seller=seller, currency="USD", delivery_content="THE-SECRET-TEXT")
    VariantFactory(product=product, price=price)
    order = make_order(product)
    payment = payment_initiate(order=order, gateway_name="stripe", return_url=RETURN_URL)
    fake.mark_paid(payment.transaction_id)
    with capture(execute=True):
        assert post_stripe(fake.session_event("checkout.session.completed", payment.transaction_id)).status_code == 200
    order.refresh_from_db()
    payment.refresh_from_db()
    assert order.status == "delivered" and payment.transaction_id.startswith("pi_")
    return order, payment


def send_dispute(fake, type_, dispute_id, *, event_id=None, **changes):
    return post_stripe(fake.dispute_event(type_, dispute_id, event_id=event_id, **changes))


def money(seller):
    [row] = balances_for_seller(seller=seller)
    return row["pending"], row["available"], row["reserved"], row["total"]


def timeline(order):
    return list(OrderEvent.objects.filter(order=order).values_list("type", flat=True))


def ledger_agrees():
    problems = ledger_differences()
    assert problems == [], problems
    call_command("ledger_check", stdout=io.StringIO())
    return True


def resource_status(order):
    return APIClient().get(f"/api/v1/orders/{order.id}/resource").status_code


# --- Opened, updated, won, lost ---------------------------------------------------------------------


def test_an_opened_dispute_reserves_the_sellers_earnings_on_stripes_word(stripe_on, django_capture_on_commit_callbacks):
    order, payment = stripe_paid(stripe_on, django_capture_on_commit_callbacks)
    dp = stripe_on.open_dispute(payment.transaction_id, reason="fraudulent", due_in_days=7)
    response = send_dispute(stripe_on, "charge.dispute.created", dp["id"])
    assert response.status_code == 200 and response.json()["data"]["status"] == "processed"
    assert len(stripe_on.requests_to("GET", f"/v1/disputes/{dp['id']}")) == 1

    dispute = Dispute.objects.get()
    due = datetime.fromtimestamp(dp["evidence_details"]["due_by"], tz=UTC)
    assert (dispute.gateway_dispute_id, dispute.order_id, dispute.payment_id, dispute.seller_id) == (
        dp["id"],
        order.id,
        payment.id,
        order.seller_id,
    )
    assert (dispute.amount, dispute.currency, dispute.status, dispute.reason, dispute.evidence_due_by) == (
        PRICE,
        "USD",
        "needs_response",
        "fraudulent",
        due,
    )
    # A dispute of the whole charge: the seller's part is all its earnings, the fee's part the fee.
    assert (dispute.reserved_amount, dispute.fee_amount) == (EARNINGS, FEE)
    btx = BalanceTransaction.objects.get(type="dispute")
    assert (btx.amount, btx.source_id, btx.order_id, btx.seller_id) == (
        -EARNINGS,
        dispute.id,
        order.id,
        order.seller_id,
    )
    assert sorted(btx.lines.values_list("account", "amount")) == [
        (Account.SELLER_BALANCE, -EARNINGS),
        (Account.SELLER_RESERVED, EARNINGS),
    ]
    # The sale is still on hold, so the dispute takes from pending (same available_on) into reserved.
    sale = BalanceTransaction.objects.get(type="sale", order_id=order.id)
    assert btx.available_on == sale.available_on
    assert money(order.seller) == (0, 0, EARNINGS, EARNINGS)
    token = RefreshToken.for_user(order.seller).access_token
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    [balance] = api.get("/api/v1/balance").json()["data"]["balances"]
    assert (balance["pending"], balance["available"], balance["reserved"]) == (0, 0, EARNINGS)

    opened = OrderEvent.objects.get(order=order, type="dispute_opened")
    assert opened.actor == "gateway"
    assert "fraudulent" in opened.message and due.strftime("%Y-%m-%d %H:%M") in opened.message
    assert opened.data["reserved"] == EARNINGS and opened.data["gateway_dispute_id"] == dp["id"]
    # Default setting: the buyer's access is suspended.
    order.refresh_from_db()
    assert order.access_suspended and "access_suspended" in timeline(order)
    assert resource_status(order) == 410
    assert APIClient().get(f"/api/v1/orders/{order.id}/resource").json()["error"]["code"] == "order_disputed"
    assert ledger_agrees()


def test_updated_then_won_releases_the_reserve_and_restores_access(stripe_on, django_capture_on_commit_callbacks):
    order, payment = stripe_paid(stripe_on, django_capture_on_commit_callbacks)
    dp = stripe_on.open_dispute(payment.transaction_id, reason="product_not_received")
    send_dispute(stripe_on, "charge.dispute.created", dp["id"])
    stripe_on.set_dispute_status(dp["id"], "under_review")
    assert send_dispute(stripe_on, "charge.dispute.updated", dp["id"]).status_code == 200
    assert Dispute.objects.get().status == "under_review"
    updated = OrderEvent.objects.get(order=order, type="dispute_updated")
    assert "under review" in updated.message
    assert money(order.seller)[2] == EARNINGS  # still reserved

    stripe_on.set_dispute_status(dp["id"], "won")
    assert send_dispute(stripe_on, "charge.dispute.closed", dp["id"]).status_code == 200
    dispute = Dispute.objects.get()
    assert dispute.status == "won" and dispute.closed_at is not None
    reversal = BalanceTransaction.objects.get(type="dispute_reversal")
    assert (reversal.amount, reversal.source_id) == (EARNINGS, dispute.id)
    # Back to the seller, on the sale's own hold (still in the future here).
    sale = BalanceTransaction.objects.get(type="sale", order_id=order.id)
    assert reversal.available_on == sale.available_on
    assert money(order.seller) == (EARNINGS, 0, 0, EARNINGS)
    order.refresh_from_db()
    assert not order.access_suspended
    assert timeline(order)[-2:] == ["dispute_won", "access_restored"]
    assert resource_status(order) == 200
    assert ledger_agrees()


def test_a_won_dispute_after_the_hold_is_available_at_once(stripe_on, django_capture_on_commit_callbacks):
    order, payment = stripe_paid(stripe_on, django_capture_on_commit_callbacks)
    BalanceTransaction.objects.filter(order_id=order.id).update(available_on=timezone.now() - timedelta(days=1))
    LedgerLine.objects.filter(transaction__order_id=order.id).update(available_on=timezone.now() - timedelta(days=1))
    rollups_rebuild()  # the hold was moved by hand, past the services: rebuild the lines' cache
    assert money(order.seller) == (0, EARNINGS, 0, EARNINGS)
    dp = stripe_on.open_dispute(payment.transaction_id)
    send_dispute(stripe_on, "charge.dispute.created", dp["id"])
    assert money(order.seller) == (0, 0, EARNINGS, EARNINGS)  # taken from available
    stripe_on.set_dispute_status(dp["id"], "won")
    send_dispute(stripe_on, "charge.dispute.closed", dp["id"])
    reversal = BalanceTransaction.objects.get(type="dispute_reversal")
    assert reversal.available_on <= timezone.now()
    assert money(order.seller) == (0, EARNINGS, 0, EARNINGS)
    assert ledger_agrees()


def test_a_lost_dispute_sends_the_reserve_and_the_fee_to_the_buyers_bank(stripe_on, django_capture_on_commit_callbacks):
    order, payment = stripe_paid(stripe_on, django_capture_on_commit_callbacks)
    dp = stripe_on.open_dispute(payment.transaction_id)
    send_dispute(stripe_on, "charge.dispute.created", dp["id"])
    stripe_on.set_dispute_status(dp["id"], "lost")
    assert send_dispute(stripe_on, "charge.dispute.closed", dp["id"]).status_code == 200
    dispute = Dispute.objects.get()
    lost = BalanceTransaction.objects.get(type="dispute", source_id=f"{dispute.id}:lost")
    assert lost.amount == 0  # the seller's balance moved when the dispute opened, not again
    assert sorted(lost.lines.values_list("account", "seller_id", "amount")) == [
        (Account.GATEWAY_CLEARING, None, PRICE),
        (Account.PLATFORM_FEES, None, -FEE),
        (Account.SELLER_RESERVED, order.seller_id, -EARNINGS),
    ]
    assert money(order.seller) == (0, 0, 0, 0)
    order.refresh_from_db()
    assert order.access_suspended and resource_status(order) == 410  # stays revoked
    assert "dispute_lost" in timeline(order)
    # The order's own figures are not a refund's.
    assert (order.status, order.refunded_amount, order.seller_earnings) == ("delivered", 0, EARNINGS)
    # Nothing can be refunded on top of what the bank took.
    with pytest.raises(Exception) as refused:
        order_refund_create(order=order, amount=None, reason="double")
    assert getattr(refused.value, "code", "") == "order_disputed"
    assert not stripe_on.refunds and order.refunds.count() == 0
    assert ledger_agrees()


def test_a_partial_dispute_follows_the_refunds_fee_rule(stripe_on, django_capture_on_commit_callbacks):
    order, payment = stripe_paid(stripe_on, django_capture_on_commit_callbacks)
    dp = stripe_on.open_dispute(payment.transaction_id, amount=999)
    send_dispute(stripe_on, "charge.dispute.created", dp["id"])
    dispute = Dispute.objects.get()
    # Refunding 999 would leave 1000: fee 130, earnings 870. So the seller gives 1769 - 870.
    assert (dispute.reserved_amount, dispute.fee_amount) == (899, 100)
    assert money(order.seller) == (870, 0, 899, 1769)
    stripe_on.set_dispute_status(dp["id"], "lost")
    send_dispute(stripe_on, "charge.dispute.closed", dp["id"])
    assert money(order.seller) == (870, 0, 0, 870)
    assert ledger_agrees()


def test_a_dispute_after_a_partial_refund_is_capped_at_what_the_seller_still_holds(
    stripe_on, django_capture_on_commit_callbacks
):
    order, payment = stripe_paid(stripe_on, django_capture_on_commit_callbacks)
    order_refund_create(order=order, amount=500, reason="partly")
    order.refresh_from_db()
    assert (order.refunded_amount, order.seller_earnings) == (500, 1499 - 180)
    # The bank disputes more than is left on the charge (Stripe would not, but the cap holds anyway).
    dp = stripe_on.open_dispute(payment.transaction_id, amount=1999)
    send_dispute(stripe_on, "charge.dispute.created", dp["id"])
    dispute = Dispute.objects.get()
    assert (dispute.reserved_amount, dispute.fee_amount) == (order.seller_earnings, order.platform_fee)
    assert money(order.seller)[2:] == (order.seller_earnings, order.seller_earnings)
    assert ledger_agrees()


def test_a_dispute_first_seen_closed_is_opened_then_closed_in_the_books(stripe_on, django_capture_on_commit_callbacks):
    order, payment = stripe_paid(stripe_on, django_capture_on_commit_callbacks)
    dp = stripe_on.open_dispute(payment.transaction_id)
    stripe_on.set_dispute_status(dp["id"], "lost")  # the created event was lost on the way
    assert send_dispute(stripe_on, "charge.dispute.closed", dp["id"]).status_code == 200
    assert sorted(BalanceTransaction.objects.filter(type="dispute").values_list("amount", flat=True)) == [-EARNINGS, 0]
    assert [t for t in timeline(order) if t.startswith("dispute")] == ["dispute_opened", "dispute_lost"]
    assert money(order.seller)[3] == 0
    assert ledger_agrees()


def test_an_inquiry_closed_without_chargeback_counts_as_won(stripe_on, django_capture_on_commit_callbacks):
    order, payment = stripe_paid(stripe_on, django_capture_on_commit_callbacks)
    dp = stripe_on.open_dispute(payment.transaction_id, status="warning_needs_response", reason="general")
    send_dispute(stripe_on, "charge.dispute.created", dp["id"])
    assert money(order.seller)[2] == EARNINGS
    stripe_on.set_dispute_status(dp["id"], "warning_closed")
    send_dispute(stripe_on, "charge.dispute.closed", dp["id"])
    assert money(order.seller) == (EARNINGS, 0, 0, EARNINGS)
    assert BalanceTransaction.objects.filter(type="dispute_reversal").count() == 1
    assert ledger_agrees()


# --- Never believing the body; refusing what is malformed or not ours --------------------------------


def test_the_events_money_and_status_are_never_believed(stripe_on, django_capture_on_commit_callbacks):
    order, payment = stripe_paid(stripe_on, django_capture_on_commit_callbacks)
    dp = stripe_on.open_dispute(payment.transaction_id, amount=500)
    # Signed, but claiming the whole charge and an already-lost dispute: Stripe says 500, open.
    response = send_dispute(stripe_on, "charge.dispute.created", dp["id"], amount=PRICE, status="lost")
    assert response.status_code == 200
    dispute = Dispute.objects.get()
    assert (dispute.amount, dispute.status) == (500, "needs_response")
    assert not BalanceTransaction.objects.filter(source_id=f"{dispute.id}:lost").exists()
    assert ledger_agrees()


def test_an_event_naming_our_payment_for_someone_elses_dispute_is_rejected(
    stripe_on, django_capture_on_commit_callbacks
):
    ours, our_payment = stripe_paid(stripe_on, django_capture_on_commit_callbacks)
    other, other_payment = stripe_paid(stripe_on, django_capture_on_commit_callbacks)
    dp = stripe_on.open_dispute(other_payment.transaction_id)
    response = send_dispute(stripe_on, "charge.dispute.created", dp["id"], payment_intent=our_payment.transaction_id)
    assert response.status_code == 200
    event = WebhookEvent.objects.get(type="charge.dispute.created")
    assert event.status == "rejected" and event.payment_id == our_payment.id
    assert Dispute.objects.count() == 0 and not BalanceTransaction.objects.filter(type="dispute").exists()
    assert OrderEvent.objects.filter(order=ours, type="webhook_rejected").count() == 1
    ours.refresh_from_db()
    assert not ours.access_suspended


def test_a_dispute_id_stripe_does_not_know_is_rejected(stripe_on, django_capture_on_commit_callbacks):
    order, payment = stripe_paid(stripe_on, django_capture_on_commit_callbacks)
    dp = stripe_on.open_dispute(payment.transaction_id)
    response = send_dispute(stripe_on, "charge.dispute.created", dp["id"], id="dp_forged0000000000")
    assert response.status_code == 200 and response.json()["data"]["status"] == "rejected"
    assert Dispute.objects.count() == 0 and BalanceTransaction.objects.filter(type="dispute").count() == 0
    assert OrderEvent.objects.filter(order=order, type="webhook_rejected").exists()


def test_a_dispute_of_a_charge_not_ours_is_ignored_and_recorded(stripe_on, django_capture_on_commit_callbacks):
    order, payment = stripe_paid(stripe_on, django_capture_on_commit_callbacks)
    dp = stripe_on.open_dispute(payment.transaction_id)
    response = send_dispute(stripe_on, "charge.dispute.created", dp["id"], payment_intent="pi_another_integration1")
    assert response.status_code == 200 and response.json()["data"]["status"] == "ignored"
    event = WebhookEvent.objects.get(type="charge.dispute.created")
    assert event.error == "The disputed charge is not a payment of ours." and event.dispute_ref == dp["id"]
    assert stripe_on.requests_to("GET", f"/v1/disputes/{dp['id']}") == []
    assert Dispute.objects.count() == 0


@pytest.mark.parametrize(
    "obj",
    [
        {"object": "dispute"},  # no id
        {"id": 12345, "payment_intent": "pi_x"},
        {"id": "ch_not_a_dispute", "payment_intent": "pi_x"},
        {"id": "dp_ok'; DROP TABLE payments_dispute;--", "payment_intent": "pi_x"},
        {"id": "dp_" + "a" * 400, "payment_intent": "pi_x"},
        {"id": "dp_fine", "payment_intent": {"id": "pi_x"}},
        {"id": "dp_fine", "payment_intent": "cs_wrong_kind"},
        {"id": "dp_fine", "payment_intent": "pi_x", "metadata": ["no"]},
    ],
)
def test_malformed_dispute_bodies_are_a_clear_400_storing_nothing(stripe_on, obj):
    event = stripe_on.event("charge.dispute.created", obj)
    response = post_stripe(event)
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False and body["error"]["code"] == "invalid_signature"
    assert "Malformed" in body["error"]["message"]
    assert WebhookEvent.objects.count() == 0 and Dispute.objects.count() == 0


def test_a_data_object_that_is_not_an_object_is_a_400(stripe_on):
    event = stripe_on.event("charge.dispute.closed", {})
    event["data"]["object"] = ["dp_1"]
    assert post_stripe(event).status_code == 400
    assert WebhookEvent.objects.count() == 0


def test_stripe_answering_a_dispute_we_cannot_read_is_rejected_not_a_500(stripe_on, django_capture_on_commit_callbacks):
    order, payment = stripe_paid(stripe_on, django_capture_on_commit_callbacks)
    dp = stripe_on.open_dispute(payment.transaction_id)
    stripe_on.disputes[dp["id"]]["amount"] = "a lot"
    response = send_dispute(stripe_on, "charge.dispute.created", dp["id"])
    assert response.status_code == 200 and response.json()["data"]["status"] == "rejected"
    assert Dispute.objects.count() == 0


def test_stripe_down_keeps_the_event_for_a_retry(stripe_on, django_capture_on_commit_callbacks):
    order, payment = stripe_paid(stripe_on, django_capture_on_commit_callbacks)
    dp = stripe_on.open_dispute(payment.transaction_id)
    stripe_on.fail_next(500, times=10)
    event = stripe_on.dispute_event("charge.dispute.created", dp["id"])
    assert post_stripe(event).status_code == 503
    assert WebhookEvent.objects.get(event_id=event["id"]).status == "failed" and Dispute.objects.count() == 0
    stripe_on._failures.clear()
    assert post_stripe(event).status_code == 200  # Stripe sends it again
    assert Dispute.objects.count() == 1 and BalanceTransaction.objects.filter(type="dispute").count() == 1


def test_replays_and_reordered_events_change_nothing_twice(stripe_on, django_capture_on_commit_callbacks):
    order, payment = stripe_paid(stripe_on, django_capture_on_commit_callbacks)
    dp = stripe_on.open_dispute(payment.transaction_id)
    created = stripe_on.dispute_event("charge.dispute.created", dp["id"], event_id="evt_dispute_created_1")
    assert post_stripe(created).json()["data"]["duplicate"] is False
    assert post_stripe(created).json()["data"]["duplicate"] is True
    # The same news under another event id (funds withdrawn): Stripe's word has not changed.
    assert send_dispute(stripe_on, "charge.dispute.funds_withdrawn", dp["id"]).status_code == 200
    stripe_on.set_dispute_status(dp["id"], "won")
    closed = stripe_on.dispute_event("charge.dispute.closed", dp["id"])
    post_stripe(closed)
    send_dispute(stripe_on, "charge.dispute.funds_reinstated", dp["id"])
    # The old created event arrives late under a new id: Stripe says won, the dispute is final.
    send_dispute(stripe_on, "charge.dispute.created", dp["id"], status="needs_response")
    from payments.gateway_events import webhook_replay

    webhook_replay(event=WebhookEvent.objects.get(event_id="evt_dispute_created_1"))
    assert Counter(BalanceTransaction.objects.filter(order_id=order.id).values_list("type", flat=True)) == Counter(
        {"sale": 1, "platform_fee": 1, "dispute": 1, "dispute_reversal": 1}
    )
    assert Counter(t for t in timeline(order) if t.startswith(("dispute", "access"))) == Counter(
        {"dispute_opened": 1, "access_suspended": 1, "dispute_won": 1, "access_restored": 1}
    )
    assert money(order.seller) == (EARNINGS, 0, 0, EARNINGS)
    assert ledger_agrees()


# --- The seller's setting ----------------------------------------------------------------------------


def test_a_seller_who_keeps_access_on_disputes_keeps_the_buyers_content(stripe_on, django_capture_on_commit_callbacks):
    seller = SellerFactory(dispute_revokes_access=False)
    order, payment = stripe_paid(stripe_on, django_capture_on_commit_callbacks, seller=seller)
    dp = stripe_on.open_dispute(payment.transaction_id)
    send_dispute(stripe_on, "charge.dispute.created", dp["id"])
    order.refresh_from_db()
    assert not order.access_suspended and "access_suspended" not in timeline(order)
    assert resource_status(order) == 200
    assert money(seller)[2] == EARNINGS  # the money is reserved either way
    stripe_on.set_dispute_status(dp["id"], "lost")
    send_dispute(stripe_on, "charge.dispute.closed", dp["id"])
    assert resource_status(order) == 200


def test_a_suspended_order_serves_no_delivered_content_anywhere(stripe_on, django_capture_on_commit_callbacks):
    from orders.presenters import order_to_dict

    order, payment = stripe_paid(stripe_on, django_capture_on_commit_callbacks)
    assert order_to_dict(order, audience="buyer")["items"][0]["delivery"] is not None
    dp = stripe_on.open_dispute(payment.transaction_id)
    send_dispute(stripe_on, "charge.dispute.created", dp["id"])
    order.refresh_from_db()
    shown = order_to_dict(order, audience="buyer")
    assert shown["items"][0]["delivery"] is None and shown["voucher_codes"] == []
    assert "THE-SECRET-TEXT" not in str(shown)
    assert resource_status(order) == 410


def test_the_seller_sets_it_in_the_dashboard(client):
    seller = SellerFactory(name="Ada")
    client.force_login(seller)
    page = client.get("/dashboard/settings/")
    assert b"dispute_revokes_access" in page.content and b"checked" in page.content
    saved = client.post("/dashboard/settings/", {"name": "Ada", "support_email": "", "time_zone": "UTC"})
    assert saved.status_code == 302
    seller.refresh_from_db()
    assert seller.dispute_revokes_access is False
    client.post(
        "/dashboard/settings/", {"name": "Ada", "support_email": "", "time_zone": "UTC", "dispute_revokes_access": "on"}
    )
    seller.refresh_from_db()
    assert seller.dispute_revokes_access is True
    # A bad form saves nothing, the setting included.
    client.post("/dashboard/settings/", {"name": "", "support_email": "x", "time_zone": "UTC"})
    seller.refresh_from_db()
    assert seller.dispute_revokes_access is True and seller.name == "Ada"


# --- ledger_check -------------------------------------------------------------------------------------


def test_ledger_check_reports_a_wrong_dispute_row(stripe_on, django_capture_on_commit_callbacks):
    order, payment = stripe_paid(stripe_on, django_capture_on_commit_callbacks)
    dp = stripe_on.open_dispute(payment.transaction_id)
    send_dispute(stripe_on, "charge.dispute.created", dp["id"])
    assert ledger_agrees()
    dispute = Dispute.objects.get()
    Dispute.objects.filter(pk=dispute.pk).update(reserved_amount=100)
    problems = ledger_differences()
    assert any("reserved for disputes is 100 on the order but 1769 in the ledger" in p for p in problems), problems
    # Closed as lost in the row, but the books never moved the money out.
    Dispute.objects.filter(pk=dispute.pk).update(reserved_amount=EARNINGS, status="lost")
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("ledger_check", stdout=io.StringIO(), stderr=err)
    assert "money kept from the buyer is 0 on the order but 1999" in err.getvalue()


# --- The admin --------------------------------------------------------------------------------------


@pytest.fixture
def superuser_client():
    browser = Client()
    browser.force_login(UserFactory(is_staff=True, is_superuser=True, email="ops@example.com"))
    return browser


def test_operators_see_disputes_read_only(stripe_on, django_capture_on_commit_callbacks, superuser_client):
    order, payment = stripe_paid(stripe_on, django_capture_on_commit_callbacks)
    dp = stripe_on.open_dispute(payment.transaction_id)
    send_dispute(stripe_on, "charge.dispute.created", dp["id"])
    dispute = Dispute.objects.get()
    listing = superuser_client.get("/admin/payments/dispute/")
    assert listing.status_code == 200 and dispute.id.encode() in listing.content
    page = superuser_client.get(f"/admin/payments/dispute/{admin_quote(dispute.id)}/change/")
    assert page.status_code == 200 and dp["id"].encode() in page.content
    assert superuser_client.get("/admin/payments/dispute/add/").status_code == 403
    deleted = superuser_client.post(f"/admin/payments/dispute/{admin_quote(dispute.id)}/delete/", {"post": "yes"})
    assert deleted.status_code == 403
    assert Dispute.objects.count() == 1


# --- Adjustments ----------------------------------------------------------------------------------------


def test_an_adjustment_moves_the_balance_at_once_with_who_and_why(superuser_client):
    seller = SellerFactory()
    response = superuser_client.post(
        "/admin/ledger/adjustment/add/",
        {"seller": seller.pk, "currency": "eur", "amount_text": "-12.50", "reason": "Chargeback fee for order 123"},
    )
    assert response.status_code == 302, response.content[:2000]
    adjustment = Adjustment.objects.get()
    assert (adjustment.amount, adjustment.currency, adjustment.actor_email) == (-1250, "EUR", "ops@example.com")
    btx = BalanceTransaction.objects.get(type="adjustment")
    assert (btx.amount, btx.source_id, btx.currency) == (-1250, adjustment.id, "EUR")
    assert sorted(btx.lines.values_list("account", "amount")) == [
        (Account.PLATFORM_FEES, 1250),
        (Account.SELLER_BALANCE, -1250),
    ]
    assert money(seller) == (0, -1250, 0, -1250)  # available at once (here: owed)
    # The seller reads why on the statement.
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(seller).access_token}")
    [row] = api.get("/api/v1/balance/transactions?type=adjustment").json()["data"]["results"]
    assert row["amount"] == -1250 and "Chargeback fee for order 123" in row["description"]
    assert "ops@example.com" not in row["description"]
    page = superuser_client.get(f"/admin/ledger/adjustment/{admin_quote(adjustment.id)}/change/")
    assert page.status_code == 200 and b"ops@example.com" in page.content
    assert ledger_agrees()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"amount_text": "0", "reason": "x"}, "amount_text"),
        ({"amount_text": "0.00", "reason": "x"}, "amount_text"),
        ({"amount_text": "ten", "reason": "x"}, "amount_text"),
        ({"amount_text": "1.005", "reason": "x"}, "amount_text"),
        ({"amount_text": "5.00", "reason": "   "}, "reason"),
        ({"amount_text": "5.00", "reason": "x", "currency": "XXQ"}, "currency"),
        ({"amount_text": "99999999999999", "reason": "x"}, "amount_text"),
    ],
)
def test_bad_adjustments_are_form_errors_and_write_nothing(superuser_client, data, field):
    seller = SellerFactory()
    form = {"seller": seller.pk, "currency": "USD", **data}
    response = superuser_client.post("/admin/ledger/adjustment/add/", form)
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert Adjustment.objects.count() == 0 and BalanceTransaction.objects.count() == 0


def test_only_permitted_operators_adjust(superuser_client):
    seller = SellerFactory()
    staff = UserFactory(is_staff=True)
    browser = Client()
    browser.force_login(staff)
    form = {"seller": seller.pk, "currency": "USD", "amount_text": "5.00", "reason": "goodwill"}
    assert browser.post("/admin/ledger/adjustment/add/", form).status_code == 403
    with pytest.raises(PermissionDenied):
        ledger_adjustment_record(seller=seller, currency="USD", amount=500, reason="goodwill", actor=staff)
    with pytest.raises(PermissionDenied):
        ledger_adjustment_record(seller=seller, currency="USD", amount=500, reason="goodwill", actor=seller)
    assert Adjustment.objects.count() == 0
    staff.user_permissions.add(Permission.objects.get(codename="add_adjustment"))
    staff = type(staff).objects.get(pk=staff.pk)  # drop the permission cache
    browser.force_login(staff)
    assert browser.post("/admin/ledger/adjustment/add/", form).status_code == 302
    assert Adjustment.objects.get().actor == staff
    # Never edited nor deleted, even by a superuser.
    adjustment = Adjustment.objects.get()
    deleted = superuser_client.post(f"/admin/ledger/adjustment/{admin_quote(adjustment.id)}/delete/", {"post": "yes"})
    assert deleted.status_code == 403
    assert Adjustment.objects.count() == 1


def test_the_service_refuses_bad_input_naming_each_field():
    operator = UserFactory(is_staff=True, is_superuser=True)
    buyer = UserFactory()
    with pytest.raises(ValidationFailed) as raised:
        ledger_adjustment_record(seller=buyer, currency="usd1", amount=True, reason="", actor=operator)
    assert set(raised.value.fields) == {"seller", "currency", "amount", "reason"}
    assert Adjustment.objects.count() == 0 and BalanceTransaction.objects.count() == 0


# --- Concurrency (PostgreSQL) -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_dispute_racing_a_payout_never_pays_out_the_reserved_money(settings):
    """The dispute locks the seller's row as payouts do, so the two run one after the other: either
    the dispute first (the payout takes what is left after the reserve) or the payout first (it takes
    all that was available; the reserve then takes the balance below zero by exactly the seller's
    part, which later sales pay back)."""
    if connection.vendor == "sqlite":
        pytest.skip("Needs row locks between real concurrent transactions (PostgreSQL).")
    from ledger.tests.factories import order_paid, product_for
    from payments.disputes import dispute_apply
    from payments.gateways.base import GatewayDispute

    settings.PAYOUT_HOLD_DAYS = 0
    seller = SellerFactory()
    payout_settings_update(
        seller=seller,
        method="bank_transfer",
        schedule="manual",
        minimum_amount=0,
        bank_account=BankAccountInput(holder="A", number="12345678", bank="B", country="DE"),
    )
    product = product_for(seller)
    first, _second = order_paid(product), order_paid(product)
    payment = Payment.objects.get(order=first)
    Payment.objects.filter(pk=payment.pk).update(transaction_id="pi_race_1")
    payment.refresh_from_db()
    assert money(seller) == (0, 2 * EARNINGS, 0, 2 * EARNINGS)
    confirmed = GatewayDispute(
        id="dp_race_1",
        payment_intent="pi_race_1",
        amount=PRICE,
        currency="USD",
        status="needs_response",
        reason="fraudulent",
        due_by=None,
    )

    def call(index):
        if index == 0:
            return payout_create(seller=seller, currency="USD").amount
        dispute_apply(payment=payment, confirmed=confirmed)
        return "disputed"

    results = run_concurrently(2, call)
    assert results[1] == "disputed", results
    assert results[0] in (2 * EARNINGS, EARNINGS), results
    pending, available, reserved, total = money(seller)
    assert reserved == EARNINGS
    if results[0] == EARNINGS:  # the dispute went first: the payout never saw the reserved money
        assert available == 0
    else:  # the payout went first: the reserve takes the balance below zero, exactly by its part
        assert available == -EARNINGS
    assert total == 2 * EARNINGS - results[0]
    assert ledger_agrees()
    # A later sale pays the negative balance back first.
    order_paid(product)
    assert money(seller)[1] == available + EARNINGS
    assert ledger_agrees()


@pytest.mark.django_db(transaction=True)
def test_a_payout_asked_while_a_dispute_is_being_written_waits_and_leaves_the_reserve(settings):
    """The dispute's transaction has written the reserve but not committed yet; a payout asked for
    then waits on the seller's row and, once the dispute commits, pays out only what is left."""
    if connection.vendor == "sqlite":
        pytest.skip("Needs row locks between real concurrent transactions (PostgreSQL).")
    import threading
    import time

    from django.db import transaction

    from ledger.tests.factories import order_paid, product_for
    from payments.disputes import dispute_apply
    from payments.gateways.base import GatewayDispute

    settings.PAYOUT_HOLD_DAYS = 0
    seller = SellerFactory()
    payout_settings_update(
        seller=seller,
        method="bank_transfer",
        schedule="manual",
        minimum_amount=0,
        bank_account=BankAccountInput(holder="A", number="12345678", bank="B", country="DE"),
    )
    product = product_for(seller)
    first, _second = order_paid(product), order_paid(product)
    Payment.objects.filter(order=first).update(transaction_id="pi_race_2")
    payment = Payment.objects.get(order=first)
    confirmed = GatewayDispute(
        id="dp_race_2",
        payment_intent="pi_race_2",
        amount=PRICE,
        currency="USD",
        status="needs_response",
        reason="fraudulent",
        due_by=None,
    )
    written = threading.Event()
    results: dict[str, object] = {}

    def dispute() -> None:
        try:
            with transaction.atomic():
                dispute_apply(payment=payment, confirmed=confirmed)
                written.set()
                time.sleep(1.0)  # hold the transaction (and its locks) open while the payout is asked
            results["dispute"] = "committed"
        finally:
            written.set()
            connection.close()

    def payout() -> None:
        try:
            assert written.wait(10)
            results["payout"] = payout_create(seller=seller, currency="USD").amount
        except Exception as exc:  # noqa: BLE001 - asserted below
            results["payout"] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=dispute), threading.Thread(target=payout)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == {"dispute": "committed", "payout": EARNINGS}, results
    assert money(seller) == (0, 0, EARNINGS, EARNINGS)
    assert ledger_agrees()
