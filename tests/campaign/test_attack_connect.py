"""Sellers get paid by Stripe Connect: an Express account made once with its onboarding links, payout
settings that take ``stripe_connect`` only once the account can receive payouts, a payout whose
transfer is made once (however often or concurrently its task runs), Connect's webhooks believed only
as far as Stripe confirms them and only for the account's own seller, and an endpoint that refuses
anything unsigned, forged or malformed — all against the project's fake Stripe, never the network."""

import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from ledger.models import Account, BalanceTransaction, LedgerLine, Payout, PayoutEvent, PayoutSettings
from ledger.models import StripeConnectAccount as ConnectAccount
from ledger.payouts import (
    BankAccountInput,
    payout_approve,
    payout_create,
    payout_mark_paid,
    payout_settings_update,
    payouts_schedule_run,
)
from ledger.stripe_connect import (
    payout_transfer_send,
    payouts_transfer_sweep,
    stripe_account_refresh_for,
    stripe_connect_onboarding_link,
)
from ledger.tasks import payout_transfer
from ledger.tests.factories import order_paid, product_for
from marketplace.accounts.tests.factories import SellerFactory, UserFactory
from marketplace.core.errors import InvalidTransition
from marketplace.core.tests.test_settings_production import BASE_DIR, SETUP, production_env
from marketplace.settings import embedded_secrets
from payments.gateways import GatewayUnavailable
from payments.gateways import stripe_connect as connect_gateway
from payments.gateways.stripe import StripeGateway
from payments.models import WebhookEvent
from payments.tests.fake_stripe import FakeStripe, fake_stripe, sign_webhook  # noqa: F401
from tests.campaign.concurrency import run_concurrently

from . import secrets_registry
from .test_attack_payouts import available, bank, ledger_agrees

WEBHOOK_URL = "/api/v1/payments/webhooks/stripe-connect"
CONNECT_SECRET = "whsec_test_Y29ubmVjdC13ZWJob29rLXNlY3JldC1mb3ItdGVzdHM"
PAYMENTS_SECRET = "whsec_test_c3RyaXBlLXdlYmhvb2stc2VjcmV0LWZvci10ZXN0cw"
RETURN_URL = "https://shop.test/dashboard/payouts/stripe/return/"
REFRESH_URL = "https://shop.test/dashboard/payouts/stripe/refresh/"


@pytest.fixture(autouse=True)
def _fees(settings):
    settings.PLATFORM_FEE_BPS, settings.PLATFORM_FEE_FIXED, settings.PAYOUT_HOLD_DAYS = 1000, 30, 0


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch):
    """Any attempt to resolve a host other than this machine fails the test."""
    resolve = socket.getaddrinfo

    def local_only(host, *args, **kwargs):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise AssertionError(f"A test tried to reach {host}.")
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", local_only)


@pytest.fixture(autouse=True)
def _no_retry_sleep(monkeypatch):
    from stripe._http_client import HTTPClient

    monkeypatch.setattr(HTTPClient, "_sleep_time_seconds", lambda self, num_retries: 0)


@pytest.fixture
def stripe(settings, fake_stripe):  # noqa: F811
    settings.STRIPE_SECRET_KEY = fake_stripe.api_key
    settings.STRIPE_WEBHOOK_SECRET = PAYMENTS_SECRET
    settings.STRIPE_CONNECT_WEBHOOK_SECRET = CONNECT_SECRET
    settings.STRIPE_API_BASE = fake_stripe.url
    return fake_stripe


def client_for(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def seller_with_sales(*, count=1, price=1999):
    seller = SellerFactory()
    product = product_for(seller, currency="USD", price=price)
    for _ in range(count):
        order_paid(product)
    return seller


def onboarded(fake, seller):
    """The seller started onboarding, finished it at Stripe, came back, and chose Stripe Connect."""
    link = stripe_connect_onboarding_link(seller=seller, return_url=RETURN_URL, refresh_url=REFRESH_URL)
    secrets_registry.register(link, kind="Stripe onboarding link")
    account = ConnectAccount.objects.get(seller=seller)
    fake.connect.complete_onboarding(account.account_id)
    stripe_account_refresh_for(seller=seller)
    payout_settings_update(
        seller=seller, method="stripe_connect", schedule="manual", minimum_amount=0, bank_account=None
    )
    return ConnectAccount.objects.get(seller=seller)


def post_event(client, event, *, secret=CONNECT_SECRET, timestamp=None):
    body, headers = sign_webhook(event, secret, timestamp=timestamp)
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    return client.generic("POST", WEBHOOK_URL, body, content_type="application/json", **extra)


def connect_payout(fake, seller, capture):
    """A payout the seller asks for by Stripe Connect; its transfer task runs once it commits."""
    with capture(execute=True):
        response = client_for(seller).post("/api/v1/payouts", {"currency": "USD"}, format="json")
    assert response.status_code == 201, response.json()
    return Payout.objects.get(pk=response.json()["data"]["id"])


def books(payout):
    return sorted(BalanceTransaction.objects.filter(payout_id=payout.id).values_list("type", "amount"))


# --- Onboarding ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_onboarding_makes_the_express_account_once_and_a_fresh_link_each_time(stripe):
    seller = SellerFactory()
    first = stripe_connect_onboarding_link(seller=seller, return_url=RETURN_URL, refresh_url=REFRESH_URL)
    second = stripe_connect_onboarding_link(seller=seller, return_url=RETURN_URL, refresh_url=REFRESH_URL)
    [created] = stripe.requests_to("POST", "/v1/accounts")
    assert created.params == {
        "type": "express",
        "email": seller.email,
        "capabilities": {"transfers": {"requested": "true"}},
        "metadata": {"seller_id": str(seller.pk)},
    }
    assert created.headers["idempotency-key"] == f"connect-account-{seller.pk}"
    account = ConnectAccount.objects.get(seller=seller)
    assert account.account_id in stripe.connect.accounts and account.status == "pending"
    assert account.requirements_due == sorted(
        stripe.connect.accounts[account.account_id]["requirements"]["currently_due"]
    )
    links = stripe.requests_to("POST", "/v1/account_links")
    assert [link.params for link in links] == 2 * [
        {
            "account": account.account_id,
            "type": "account_onboarding",
            "return_url": RETURN_URL,
            "refresh_url": REFRESH_URL,
        }
    ]
    assert first != second and [first, second] == [link["url"] for link in stripe.connect.links]
    # The seller sees their own account in their settings; another seller sees none.
    settings_body = client_for(seller).get("/api/v1/payout-settings").json()["data"]
    assert settings_body["stripe_account"] == {"id": account.account_id, "status": "pending"}
    assert client_for(SellerFactory()).get("/api/v1/payout-settings").json()["data"]["stripe_account"] is None


@pytest.mark.django_db
def test_the_country_of_a_known_bank_account_goes_to_stripe(stripe):
    seller = SellerFactory()
    payout_settings_update(
        seller=seller,
        method="bank_transfer",
        schedule="manual",
        minimum_amount=0,
        bank_account=BankAccountInput(holder="Ada", number="DE89370400440532013000", bank="B", country="DE"),
    )
    stripe_connect_onboarding_link(seller=seller, return_url=RETURN_URL, refresh_url=REFRESH_URL)
    [created] = stripe.requests_to("POST", "/v1/accounts")
    assert created.params["country"] == "DE"


@pytest.mark.django_db
def test_dashboard_start_sends_the_seller_to_stripe_and_return_refreshes_the_status(client, stripe):
    seller = SellerFactory()
    client.force_login(seller)
    assert client.get("/dashboard/payouts/stripe/start/").status_code == 405  # a button, never a link
    assert not ConnectAccount.objects.exists()
    response = client.post("/dashboard/payouts/stripe/start/")
    assert response.status_code == 302
    [link] = stripe.connect.links
    assert response["Location"] == link["url"]
    assert link["_params"]["return_url"] == "http://127.0.0.1:8000/dashboard/payouts/stripe/return/"
    assert link["_params"]["refresh_url"] == "http://127.0.0.1:8000/dashboard/payouts/stripe/refresh/"
    account = ConnectAccount.objects.get(seller=seller)
    # Back from Stripe, not finished: still pending, and the seller is told so.
    response = client.get("/dashboard/payouts/stripe/return/", follow=True)
    assert response.redirect_chain[0] == ("/dashboard/balance/settings/", 302)
    assert "onboarding is not finished yet" in response.content.decode()
    # Finished at Stripe: the return page stores it.
    stripe.connect.complete_onboarding(account.account_id)
    response = client.get("/dashboard/payouts/stripe/return/", follow=True)
    assert "Your Stripe account is ready" in response.content.decode()
    account.refresh_from_db()
    assert (account.status, account.payouts_enabled, account.requirements_due) == ("enabled", True, [])
    # Stripe asks for more later; the refresh page (an expired link) says so and stores it.
    stripe.connect.restrict(account.account_id)
    response = client.get("/dashboard/payouts/stripe/refresh/", follow=True)
    assert "onboarding link expired" in response.content.decode()
    account.refresh_from_db()
    assert (account.status, account.requirements_due) == ("restricted", ["individual.verification.document"])
    assert len(stripe.requests_to("POST", "/v1/accounts")) == 1


@pytest.mark.django_db
def test_dashboard_onboarding_is_for_signed_in_sellers_only(client, stripe):
    response = client.post("/dashboard/payouts/stripe/start/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    client.force_login(UserFactory())
    assert client.post("/dashboard/payouts/stripe/start/").status_code == 403
    assert client.get("/dashboard/payouts/stripe/return/").status_code == 403
    assert stripe.requests == [] and not ConnectAccount.objects.exists()


@pytest.mark.django_db
def test_dashboard_start_when_stripe_is_down_says_so_and_makes_nothing(client, stripe):
    seller = SellerFactory()
    client.force_login(seller)
    stripe.fail_next(500, times=3)  # the first try and Stripe's two retries
    response = client.post("/dashboard/payouts/stripe/start/", follow=True)
    assert response.redirect_chain[0] == ("/dashboard/balance/settings/", 302)
    assert "Stripe could not be reached" in response.content.decode()
    assert not ConnectAccount.objects.exists()


# --- Settings ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_settings_refuse_stripe_connect_until_the_account_can_receive_payouts(stripe):
    seller = SellerFactory()
    client = client_for(seller)
    body = {"method": "stripe_connect", "schedule": "weekly", "minimum_amount": 1000}

    def refused():
        response = client.put("/api/v1/payout-settings", body, format="json")
        assert response.status_code == 409, response.json()
        assert response.json()["error"]["code"] == "stripe_onboarding_incomplete"
        assert "Finish your Stripe onboarding" in response.json()["error"]["message"]
        assert not PayoutSettings.objects.filter(seller=seller).exists()

    refused()  # no account at all
    stripe_connect_onboarding_link(seller=seller, return_url=RETURN_URL, refresh_url=REFRESH_URL)
    refused()  # started, not finished
    account = ConnectAccount.objects.get(seller=seller)
    stripe.connect.complete_onboarding(account.account_id)
    refused()  # finished at Stripe, but we have not heard yet
    stripe_account_refresh_for(seller=seller)
    response = client.put("/api/v1/payout-settings", body, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["data"] == {
        "method": "stripe_connect",
        "schedule": "weekly",
        "minimum_amount": 1000,
        "bank_account": None,
        "stripe_account": {"id": account.account_id, "status": "enabled"},
    }


# --- A payout, end to end -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_connect_payout_is_transferred_once_then_paid_by_the_accounts_payout(
    stripe, django_capture_on_commit_callbacks
):
    seller = seller_with_sales(count=2)
    account = onboarded(stripe, seller)
    before = available(seller)
    payout = connect_payout(stripe, seller, django_capture_on_commit_callbacks)
    assert (payout.amount, payout.method, payout.status) == (before, "stripe_connect", "in_transit")
    assert available(seller) == 0
    [request] = stripe.requests_to("POST", "/v1/transfers")
    assert request.headers["idempotency-key"] == payout.id
    assert request.params == {
        "amount": str(before),
        "currency": "usd",
        "destination": account.account_id,
        "transfer_group": payout.id,
        "metadata": {"payout_id": payout.id, "seller_id": str(seller.pk)},
    }
    [transfer] = stripe.connect.transfers.values()
    assert (payout.transfer_id, payout.transfer_payment_id) == (transfer["id"], transfer["destination_payment"])
    # The task again (a redelivery, the sweeper): nothing more is sent.
    assert payout_transfer.delay(payout.id).get() == "in_transit"
    payout_transfer_send(payout_id=payout.id)
    assert len(stripe.requests_to("POST", "/v1/transfers")) == 1
    assert list(PayoutEvent.objects.filter(payout=payout).values_list("kind", flat=True)) == ["created", "transfer"]
    assert books(payout) == [("payout", -before)]

    # The account pays out to the seller's bank: Stripe's event names its payout, not ours.
    stripe_payout = stripe.connect.pay_out(account.account_id, status="paid")
    event = stripe.connect.payout_event("payout.paid", stripe_payout["id"])
    api = APIClient()
    with django_capture_on_commit_callbacks(execute=True):
        response = post_event(api, event)
    assert response.status_code == 200, response.json()
    assert response.json()["data"] == {
        "received": True,
        "event_id": event["id"],
        "status": "processed",
        "duplicate": False,
    }
    payout.refresh_from_db()
    assert (payout.status, payout.stripe_payout_id) == ("paid", stripe_payout["id"])
    [retrieve] = stripe.requests_to("GET", f"/v1/payouts/{stripe_payout['id']}")
    assert retrieve.headers["stripe-account"] == account.account_id  # asked on the connected account
    [listed] = stripe.requests_to("GET", "/v1/balance_transactions")
    assert listed.params == {"payout": stripe_payout["id"], "type": "payment", "limit": "100"}
    assert listed.headers["stripe-account"] == account.account_id
    # in transit → clearing; the seller's statement shows it taken, then arrived; an email says so.
    assert books(payout) == [("payout", -before), ("payout", 0)]
    assert sum(LedgerLine.objects.filter(account=Account.PAYOUTS_IN_TRANSIT).values_list("amount", flat=True)) == 0
    clearing = LedgerLine.objects.filter(account=Account.GATEWAY_CLEARING, transaction__source_id=f"{payout.id}:paid")
    assert list(clearing.values_list("amount", flat=True)) == [before]
    [sent] = mail.outbox
    assert sent.to == [seller.email] and "was sent" in sent.subject and payout.id in sent.body
    # The same event again: a duplicate, nothing moves, no second email.
    again = post_event(api, event)
    assert again.status_code == 200 and again.json()["data"]["duplicate"] is True
    assert len(mail.outbox) == 1 and books(payout) == [("payout", -before), ("payout", 0)]
    # A second delivery under another event id (Stripe may): Stripe's payout is re-read, nothing moves.
    other = dict(event, id="evt_test_second_delivery")
    assert post_event(api, other).json()["data"]["status"] == "processed"
    assert len(mail.outbox) == 1 and books(payout) == [("payout", -before), ("payout", 0)]
    assert ledger_agrees()


@pytest.mark.django_db
def test_a_failed_connect_payout_reverses_the_transfer_and_returns_the_money(
    stripe, django_capture_on_commit_callbacks
):
    seller = seller_with_sales(count=2)
    account = onboarded(stripe, seller)
    payout = connect_payout(stripe, seller, django_capture_on_commit_callbacks)
    amount = payout.amount
    stripe_payout = stripe.connect.pay_out(
        account.account_id,
        status="failed",
        failure_code="account_closed",
        failure_message="The bank account has been closed.",
    )
    event = stripe.connect.payout_event("payout.failed", stripe_payout["id"])
    with django_capture_on_commit_callbacks(execute=True):
        response = post_event(APIClient(), event)
    assert response.status_code == 200, response.json()
    payout.refresh_from_db()
    assert payout.status == "failed"
    assert payout.failure_reason == "Stripe could not pay it out: The bank account has been closed."
    # The money came back from the connected account before the balance got it back.
    [reversal] = stripe.requests_to("POST", f"/v1/transfers/{payout.transfer_id}/reversals")
    assert reversal.headers["idempotency-key"] == f"{payout.id}:reversal"
    assert stripe.connect.transfers[payout.transfer_id]["reversed"] is True
    assert available(seller) == amount
    assert books(payout) == [("payout", -amount), ("payout_failure", amount)]
    assert list(PayoutEvent.objects.filter(payout=payout).values_list("kind", flat=True)) == [
        "created",
        "transfer",
        "failed",
        "reversal",
    ]
    [sent] = mail.outbox
    assert "failed" in sent.subject and "The bank account has been closed." in sent.body
    assert "bank account Stripe pays you at" in sent.body and "holder, account number" not in sent.body
    assert "bank account Stripe pays you at" in sent.alternatives[0][0]
    # Replayed under another id: no second reversal, no second refund of the balance.
    post_event(APIClient(), dict(event, id="evt_test_failed_again"))
    assert len(stripe.requests_to("POST", f"/v1/transfers/{payout.transfer_id}/reversals")) == 1
    assert available(seller) == amount and len(mail.outbox) == 1
    assert ledger_agrees()


@pytest.mark.django_db
def test_a_refused_reversal_keeps_the_payout_in_transit_and_the_event_for_a_replay(
    stripe, django_capture_on_commit_callbacks
):
    seller = seller_with_sales()
    account = onboarded(stripe, seller)
    payout = connect_payout(stripe, seller, django_capture_on_commit_callbacks)
    stripe_payout = stripe.connect.pay_out(account.account_id, status="failed", failure_message="Closed.")
    stripe.connect.transfers[payout.transfer_id]["amount_reversed"] = payout.amount  # nothing left to reverse
    response = post_event(APIClient(), stripe.connect.payout_event("payout.failed", stripe_payout["id"]))
    assert response.status_code == 503  # Stripe sends it again; an operator sees it failed
    event = WebhookEvent.objects.get(gateway="stripe_connect")
    assert event.status == "failed" and "reverse the transfer" in event.error
    payout.refresh_from_db()
    assert payout.status == "in_transit" and available(seller) == 0 and mail.outbox == []


@pytest.mark.django_db
def test_a_transfer_stripe_refuses_fails_the_payout_and_returns_the_money(stripe, django_capture_on_commit_callbacks):
    seller = seller_with_sales()
    onboarded(stripe, seller)
    stripe.connect.refuse_transfers("Insufficient funds in Stripe account. In test mode, add funds first.")
    payout = connect_payout(stripe, seller, django_capture_on_commit_callbacks)
    payout.refresh_from_db()
    assert payout.status == "failed" and payout.transfer_id == ""
    assert "Insufficient funds in Stripe account" in payout.failure_reason
    assert available(seller) == payout.amount == 1769
    assert books(payout) == [("payout", -1769), ("payout_failure", 1769)]
    [sent] = mail.outbox
    assert "failed" in sent.subject and "Insufficient funds" in sent.body
    assert ledger_agrees()


@pytest.mark.django_db
def test_stripe_down_leaves_the_payout_pending_and_the_sweeper_sends_it_later(stripe):
    seller = seller_with_sales()
    onboarded(stripe, seller)
    payout = payout_create(seller=seller, currency="USD")  # its task is not run: as if the broker lost it
    stripe.fail_next(503, times=3)
    with pytest.raises(GatewayUnavailable):
        payout_transfer_send(payout_id=payout.id)
    payout.refresh_from_db()
    assert (payout.status, payout.transfer_id) == ("pending", "")
    assert payouts_transfer_sweep() == []  # too recent: its own task's retries still run
    Payout.objects.filter(pk=payout.pk).update(created_at=timezone.now() - timedelta(hours=1))
    assert payouts_transfer_sweep() == [payout.id]  # the eager task makes the transfer now
    payout.refresh_from_db()
    assert payout.status == "in_transit" and len(stripe.connect.transfers) == 1


@pytest.mark.django_db
def test_a_connect_payout_waits_for_an_enabled_account(stripe):
    seller = seller_with_sales()
    account = onboarded(stripe, seller)
    stripe.connect.restrict(account.account_id)
    response = post_event(APIClient(), stripe.connect.account_event(account.account_id))
    assert response.status_code == 200 and response.json()["data"]["status"] == "processed"
    account.refresh_from_db()
    assert account.status == "restricted"
    answer = client_for(seller).post("/api/v1/payouts", {"currency": "USD"}, format="json")
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "stripe_onboarding_incomplete"
    assert not Payout.objects.exists() and available(seller) == 1769
    assert client_for(seller).get("/api/v1/payout-settings").json()["data"]["stripe_account"]["status"] == "restricted"


@pytest.mark.django_db
def test_operators_cannot_move_a_connect_payout_by_hand(stripe, django_capture_on_commit_callbacks):
    seller = seller_with_sales()
    onboarded(stripe, seller)
    operator = UserFactory(is_staff=True, is_superuser=True)
    pending = payout_create(seller=seller, currency="USD")
    with pytest.raises(InvalidTransition):
        payout_approve(payout_id=pending.id, actor=operator)  # its transfer moves it
    payout_transfer_send(payout_id=pending.id)
    with pytest.raises(InvalidTransition):
        payout_mark_paid(payout_id=pending.id, actor=operator)  # Stripe's webhook does
    assert Payout.objects.get(pk=pending.id).status == "in_transit"


@pytest.mark.django_db
def test_the_schedule_pays_enabled_connect_sellers(stripe, django_capture_on_commit_callbacks):
    seller = seller_with_sales()
    onboarded(stripe, seller)
    PayoutSettings.objects.filter(seller=seller).update(schedule="weekly")
    restricted = seller_with_sales()
    account = onboarded(stripe, restricted)
    PayoutSettings.objects.filter(seller=restricted).update(schedule="weekly")
    stripe.connect.restrict(account.account_id)
    stripe_account_refresh_for(seller=restricted)
    with django_capture_on_commit_callbacks(execute=True):
        [made] = payouts_schedule_run()
    made.refresh_from_db()
    assert (made.seller_id, made.method, made.status) == (seller.pk, "stripe_connect", "in_transit")


# --- The webhook endpoint under attack --------------------------------------------------------------


@pytest.fixture
def in_transit(stripe, django_capture_on_commit_callbacks):
    seller = seller_with_sales()
    account = onboarded(stripe, seller)
    payout = connect_payout(stripe, seller, django_capture_on_commit_callbacks)
    stripe_payout = stripe.connect.pay_out(account.account_id, status="paid")
    return seller, account, payout, stripe_payout


def unchanged(payout):
    payout.refresh_from_db()
    told = [message for message in mail.outbox if payout.seller.email in message.to]
    return payout.status == "in_transit" and books(payout) == [("payout", -payout.amount)] and told == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "attack",
    [
        "unsigned",
        "payments_secret",
        "published_secret",
        "stale",
        "future",
        "tampered",
        "no_account",
        "bad_account",
        "object_not_a_dict",
        "null_body",
        "list_body",
        "huge_id",
    ],
)
def test_forged_unsigned_or_malformed_connect_webhooks_are_a_400_that_changes_nothing(in_transit, stripe, attack):
    seller, account, payout, stripe_payout = in_transit
    event = stripe.connect.payout_event("payout.paid", stripe_payout["id"])
    api = APIClient()
    if attack == "unsigned":
        response = api.post(WEBHOOK_URL, event, format="json")
    elif attack == "payments_secret":  # the Checkout endpoint's secret does not sign Connect events
        response = post_event(api, event, secret=PAYMENTS_SECRET)
    elif attack == "published_secret":
        response = post_event(api, event, secret=embedded_secrets.SANDBOX_WEBHOOK_SECRET)
    elif attack == "stale":
        response = post_event(api, event, timestamp=int(time.time()) - 301)
    elif attack == "future":
        response = post_event(api, event, timestamp=int(time.time()) + 3600)
    elif attack == "tampered":
        body, headers = sign_webhook(event, CONNECT_SECRET)
        body = body.replace(account.account_id.encode(), b"acct_test_someone_else00")
        extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
        response = api.generic("POST", WEBHOOK_URL, body, content_type="application/json", **extra)
    else:
        forged = {
            "no_account": {k: v for k, v in event.items() if k != "account"},
            "bad_account": dict(event, account="cus_123"),
            "object_not_a_dict": dict(event, data={"object": stripe_payout["id"]}),
            "null_body": None,
            "list_body": [event],
            "huge_id": dict(event, id="evt_" + "x" * 300),
        }[attack]
        response = post_event(api, forged)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_signature"
    assert not WebhookEvent.objects.exists()
    assert unchanged(payout)


@pytest.mark.django_db
def test_a_webhook_whose_body_lies_is_not_believed(in_transit, stripe):
    """A signed event says paid; Stripe says the payout is still in transit: nothing moves."""
    seller, account, payout, stripe_payout = in_transit
    stripe_payout["status"] = "in_transit"
    event = stripe.connect.payout_event("payout.paid", stripe_payout["id"])
    event["data"]["object"]["status"] = "paid"
    response = post_event(APIClient(), event)
    assert response.status_code == 200 and response.json()["data"]["status"] == "ignored"
    assert unchanged(payout)


@pytest.mark.django_db
def test_another_sellers_account_cannot_touch_this_sellers_payouts(
    in_transit, stripe, django_capture_on_commit_callbacks
):
    seller, account, payout, stripe_payout = in_transit
    other = seller_with_sales()
    other_account = onboarded(stripe, other)
    other_payout = connect_payout(stripe, other, django_capture_on_commit_callbacks)
    api = APIClient()
    # The other account naming this seller's Stripe payout: Stripe does not know it on that account.
    crossed = stripe.connect.payout_event("payout.paid", stripe_payout["id"], account_id=other_account.account_id)
    response = post_event(api, crossed)
    assert response.status_code == 200 and response.json()["data"]["status"] == "rejected"
    assert unchanged(payout)
    # The other account's own payout: it pays only the other seller's payout.
    theirs = stripe.connect.pay_out(other_account.account_id, status="paid")
    with django_capture_on_commit_callbacks(execute=True):
        assert post_event(api, stripe.connect.payout_event("payout.paid", theirs["id"])).status_code == 200
    other_payout.refresh_from_db()
    assert other_payout.status == "paid"
    assert unchanged(payout)
    # An account that is not ours at all, and an event type we do not act on.
    stranger = dict(crossed, id="evt_test_stranger", account="acct_test_notours000000")
    assert post_event(api, stranger).json()["data"]["status"] == "ignored"
    noise = stripe.connect.payout_event("payout.created", stripe_payout["id"])
    assert post_event(api, noise).json()["data"]["status"] == "ignored"
    assert unchanged(payout)
    assert ConnectAccount.objects.get(seller=seller).account_id == account.account_id


@pytest.mark.django_db
def test_connect_webhooks_are_refused_while_no_secret_is_configured(in_transit, stripe, settings):
    seller, account, payout, stripe_payout = in_transit
    settings.STRIPE_CONNECT_WEBHOOK_SECRET = ""
    response = post_event(APIClient(), stripe.connect.payout_event("payout.paid", stripe_payout["id"]))
    assert response.status_code == 400 and not WebhookEvent.objects.exists()
    assert unchanged(payout)


@pytest.mark.django_db
def test_a_stored_connect_event_replays_from_the_admin(in_transit, stripe, client, django_capture_on_commit_callbacks):
    seller, account, payout, stripe_payout = in_transit
    stripe.fail_next(503, times=3)  # Stripe cannot be asked: stored, failed, answered 503
    event = stripe.connect.payout_event("payout.paid", stripe_payout["id"])
    assert post_event(APIClient(), event).status_code == 503
    stored = WebhookEvent.objects.get(gateway="stripe_connect")
    assert stored.status == "failed" and unchanged(payout)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/admin/payments/webhookevent/", {"action": "replay", "_selected_action": [stored.id]})
    stored.refresh_from_db()
    payout.refresh_from_db()
    assert (stored.status, payout.status) == ("processed", "paid")


# --- One door to Stripe ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_connect_call_goes_through_the_stripe_client_setup(
    stripe, monkeypatch, django_capture_on_commit_callbacks
):
    made = []
    original = StripeGateway._client

    def counted(self):
        made.append(type(self).__name__)
        return original(self)

    monkeypatch.setattr(StripeGateway, "_client", counted)
    seller = seller_with_sales()
    account = onboarded(stripe, seller)
    connect_payout(stripe, seller, django_capture_on_commit_callbacks)
    stripe_payout = stripe.connect.pay_out(account.account_id)
    with django_capture_on_commit_callbacks(execute=True):
        post_event(APIClient(), stripe.connect.payout_event("payout.paid", stripe_payout["id"]))
    # Every request the fake saw came through the one client (with the platform's key); none elsewhere.
    assert len(made) == len(stripe.requests) == 6, [r.path for r in stripe.requests]
    assert set(made) == {"StripeConnectRail"}
    assert {r.headers["authorization"] for r in stripe.requests} == {f"Bearer {stripe.api_key}"}


# --- Production refuses a published Connect secret --------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            embedded_secrets.SANDBOX_WEBHOOK_SECRET,
            "STRIPE_CONNECT_WEBHOOK_SECRET holds a secret the repository publishes",
        ),
        ("replace-me", "STRIPE_CONNECT_WEBHOOK_SECRET must be the Connect endpoint's signing secret"),
        ("same", "STRIPE_CONNECT_WEBHOOK_SECRET must be the Connect endpoint's own secret"),
    ],
)
def test_production_refuses_a_published_or_shared_connect_secret(value, message):
    env = production_env()
    env["STRIPE_CONNECT_WEBHOOK_SECRET"] = env["STRIPE_WEBHOOK_SECRET"] if value == "same" else value
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", SETUP], env=env, cwd=BASE_DIR, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0 and message in result.stderr, result.stderr[-2000:]


# --- Concurrency (PostgreSQL) ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_eight_connect_payout_requests_at_once_pay_out_once_with_one_transfer(stripe):
    if connection.vendor == "sqlite":
        pytest.skip("Needs row locks between real concurrent transactions (PostgreSQL).")
    seller = seller_with_sales(count=3)
    onboarded(stripe, seller)
    token = RefreshToken.for_user(seller).access_token

    def call(_):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client.post("/api/v1/payouts", {"currency": "USD"}, format="json").status_code

    results = run_concurrently(8, call)
    assert Counter(results) == Counter({201: 1, 409: 7}), results
    [payout] = Payout.objects.all()
    assert (payout.amount, payout.status) == (3 * 1769, "in_transit")
    assert len(stripe.requests_to("POST", "/v1/transfers")) == 1
    assert available(seller) == 0
    assert ledger_agrees()


@pytest.mark.django_db(transaction=True)
def test_the_transfer_task_running_twice_at_once_makes_one_transfer(stripe):
    if connection.vendor == "sqlite":
        pytest.skip("Needs row locks between real concurrent transactions (PostgreSQL).")
    seller = seller_with_sales(count=2)
    onboarded(stripe, seller)
    payout = payout_create(seller=seller, currency="USD")  # outside a test transaction: its task already ran
    Payout.objects.filter(pk=payout.pk).update(status="pending", transfer_id="", transfer_payment_id="")
    stripe.requests.clear()
    stripe._idempotent.clear()  # so only our own lock can keep the second run from a second transfer

    results = run_concurrently(4, lambda _: payout_transfer_send(payout_id=payout.id).status)
    assert results == ["in_transit"] * 4, results
    assert len(stripe.requests_to("POST", "/v1/transfers")) == 1
    payout.refresh_from_db()
    assert payout.status == "in_transit" and payout.transfer_id


@pytest.mark.django_db
def test_the_bank_file_never_carries_a_connect_payout(stripe, client, django_capture_on_commit_callbacks):
    by_bank = seller_with_sales()
    bank(by_bank)
    wire = payout_create(seller=by_bank, currency="USD")
    by_stripe = seller_with_sales()
    onboarded(stripe, by_stripe)
    connect = payout_create(seller=by_stripe, currency="USD")  # pending: its task is not run here
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    response = client.post(
        "/admin/ledger/payout/", {"action": "export_bank_file", "_selected_action": [wire.id, connect.id]}
    )
    rows = response.content.decode().splitlines()
    assert len(rows) == 2 and rows[1].startswith(wire.id) and connect.id not in response.content.decode()
    assert not PayoutEvent.objects.filter(payout=connect, kind="exported").exists()
    # The admin shows the sellers' accounts, read-only.
    page = client.get("/admin/ledger/stripeconnectaccount/").content.decode()
    assert ConnectAccount.objects.get(seller=by_stripe).account_id in page


@pytest.mark.django_db
def test_one_stripe_payout_carrying_several_transfers_pays_each_of_them(
    stripe, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(connect_gateway, "PAGE_SIZE", 2)  # three transfers: two pages of balance transactions
    seller = seller_with_sales()
    account = onboarded(stripe, seller)
    product = product_for(seller, currency="USD", price=1999)
    ours = []
    for _ in range(3):
        ours.append(connect_payout(stripe, seller, django_capture_on_commit_callbacks))
        order_paid(product)
    ours.append(connect_payout(stripe, seller, django_capture_on_commit_callbacks))
    stripe_payout = stripe.connect.pay_out(account.account_id)  # carries the four transfers
    with django_capture_on_commit_callbacks(execute=True):
        response = post_event(APIClient(), stripe.connect.payout_event("payout.paid", stripe_payout["id"]))
    assert response.json()["data"]["status"] == "processed"
    assert len(stripe.requests_to("GET", "/v1/balance_transactions")) == 2
    assert {p.id: Payout.objects.get(pk=p.id).status for p in ours} == {p.id: "paid" for p in ours}
    assert len(mail.outbox) == 4
    assert ledger_agrees()
