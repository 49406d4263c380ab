"""Gifting: ``deliver_at`` (the recipient's e-mail at that time, by the beat task; the buyer's receipt
at once), ``claim_link`` (a link instead of the codes, the claim recorded), ``sub_status``, and the
seller's and buyer's actions on a gift."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from catalog.inventory import CodeRow, codes_import
from catalog.models import DeliveryType
from catalog.tests.factories import ProductFactory, VariantFactory
from orders.models import Order, OrderEvent
from orders.services.gifts import claim_token_hash, gifts_send_due
from orders.tasks import send_due_gifts
from orders.tests.helpers import buyer_mails

from .helpers import pay

pytestmark = pytest.mark.django_db

CODES = ["GIFT-AAAA-0001", "GIFT-AAAA-0002"]


@pytest.fixture
def gift_product(seller):
    product = ProductFactory(
        seller=seller,
        slug="gift-card",
        title="Gift Card",
        currency="USD",
        delivery_type=DeliveryType.CODE_POOL,
        delivery_content="",
    )
    variant = VariantFactory(product=product, name="Card", price=2500)
    codes_import(variant=variant, rows=[CodeRow(i + 1, code) for i, code in enumerate(CODES)])
    return product


def buy(body, capture):
    response = APIClient().post(
        "/api/v1/public/checkout/gift-card/pay",
        {"buyer_email": "giver@example.com", "init_payment": False, **body},
        format="json",
    )
    assert response.status_code == 201, response.json()
    order = Order.objects.get(pk=response.json()["data"]["id"])
    mail.outbox.clear()
    return pay(order, capture)


def claim_url(message) -> str:
    found = re.search(r"https?://\S+/gift/([A-Za-z0-9_\-]+)", message.body)
    assert found, message.body
    return found.group(0).replace("http://testserver", "").split("://", 1)[-1].split("/", 1)[-1]


def detail(seller_client, order):
    return seller_client.get(f"/api/v1/orders/{order.id}").json()["data"]


class TestDelayedClaimLink:
    def test_nothing_reaches_the_recipient_before_deliver_at_then_one_link_then_codes_on_claim(
        self, gift_product, seller_client, client, django_capture_on_commit_callbacks
    ):
        deliver_at = timezone.now() + timedelta(days=2)
        order = buy(
            {"recipient_email": "friend@example.com", "deliver_at": deliver_at.isoformat(), "claim_link": True},
            django_capture_on_commit_callbacks,
        )
        assert order.status == "delivered"
        # The buyer's receipt at once, to the buyer alone, without a code.
        assert [m.to for m in buyer_mails()] == [["giver@example.com"]]
        assert not buyer_mails()[0].cc
        assert not any(code in buyer_mails()[0].body for code in CODES)
        data = detail(seller_client, order)
        assert data["sub_status"] == "DELAYED"
        assert data["gift"] == {"claim_link": True, "claimed_at": None, "sent_at": None}
        assert data["deliver_at"] is not None

        # Not due: the beat sends nothing.
        assert send_due_gifts() == {"due": 0, "sent": 0, "failed": 0}
        assert len(buyer_mails()) == 1

        # Due: one e-mail to the recipient, a link and no code; a second beat sends nothing more.
        later = deliver_at + timedelta(seconds=1)
        assert gifts_send_due(now=later) == {"due": 1, "sent": 1, "failed": 0}
        assert gifts_send_due(now=later) == {"due": 0, "sent": 0, "failed": 0}
        assert len(buyer_mails()) == 2
        gift_mail = buyer_mails()[1]
        assert gift_mail.to == ["friend@example.com"] and not gift_mail.cc
        assert not any(code in gift_mail.body for code in CODES)
        path = "/" + claim_url(gift_mail)
        token = path.rsplit("/", 1)[-1]
        order.refresh_from_db()
        assert order.gift_claim_token_hash == claim_token_hash(token)
        assert token not in order.gift_claim_token_hash
        assert detail(seller_client, order)["sub_status"] == "GV_LINK_UNCLAIMED"

        # Opening the page does not claim (a mail scanner may follow links); the button does.
        page = client.get(path)
        assert page.status_code == 200
        assert page["Referrer-Policy"] == "same-origin"
        assert not any(code in page.content.decode() for code in CODES)
        assert Order.objects.get(pk=order.pk).gift_claimed_at is None
        opened = client.post(path)
        html = opened.content.decode()
        assert opened.status_code == 200
        assert sum(code in html for code in CODES) == 1  # the one code the order holds
        data = detail(seller_client, order)
        assert data["sub_status"] == "GV_LINK_CLAIMED"
        assert data["gift"]["claimed_at"] is not None
        claimed = [e for e in data["events"] if e["type"] == "gift_claimed"]
        assert len(claimed) == 1 and claimed[0]["data"]["claimed_at"]
        client.post(path)  # a second opening is not a second claim
        assert OrderEvent.objects.filter(order=order, type="gift_claimed").count() == 1

    def test_the_buyer_sees_the_claim_but_not_the_codes_and_can_resend(
        self, gift_product, client, django_capture_on_commit_callbacks
    ):
        order = buy({"recipient_email": "friend@example.com", "claim_link": True}, django_capture_on_commit_callbacks)
        # No date: the recipient's e-mail went out with the delivery.
        assert [m.to for m in buyer_mails()] == [["giver@example.com"], ["friend@example.com"]]
        old_path = "/" + claim_url(buyer_mails()[1])
        buyer_url = f"/api/v1/public/checkout/gift-card/order/{order.id}"
        data = APIClient().get(buyer_url).json()["data"]
        assert data["voucher_codes"] == [] and data["items"][0]["voucher_codes"] == []
        assert data["gift"]["claimed_at"] is None and data["sub_status"] == "GV_LINK_UNCLAIMED"

        resent = APIClient().post(f"{buyer_url}/gift/resend")
        assert resent.status_code == 200, resent.json()
        assert len(buyer_mails()) == 3 and buyer_mails()[2].to == ["friend@example.com"]
        new_path = "/" + claim_url(buyer_mails()[2])
        assert new_path != old_path
        assert client.post(old_path).status_code == 404  # the old link no longer opens the gift
        assert client.post(new_path).status_code == 200
        assert APIClient().get(buyer_url).json()["data"]["sub_status"] == "GV_LINK_CLAIMED"
        assert APIClient().post(f"{buyer_url}/gift/resend", {"x": 1}, format="json").status_code == 400

    def test_an_unknown_link_is_404(self, client, db):
        assert client.get("/gift/not-a-real-token").status_code == 404
        assert client.post("/gift/not-a-real-token").status_code == 404


class TestDelayedWithCodes:
    def test_the_recipient_gets_the_codes_at_deliver_at(self, gift_product, django_capture_on_commit_callbacks):
        deliver_at = timezone.now() + timedelta(hours=3)
        order = buy(
            {"recipient_email": "friend@example.com", "deliver_at": deliver_at.isoformat()},
            django_capture_on_commit_callbacks,
        )
        assert len(buyer_mails()) == 1
        gifts_send_due(now=deliver_at + timedelta(seconds=1))
        assert len(buyer_mails()) == 2
        assert buyer_mails()[1].to == ["friend@example.com"]
        assert sum(code in buyer_mails()[1].body for code in CODES) == 1
        order.refresh_from_db()
        assert order.gift_sent_at is not None and order.gift_claim_token_hash == ""


class TestSellerActions:
    def test_reschedule_then_send_now(self, gift_product, seller_client, django_capture_on_commit_callbacks):
        order = buy(
            {
                "recipient_email": "friend@example.com",
                "deliver_at": (timezone.now() + timedelta(days=30)).isoformat(),
                "claim_link": True,
            },
            django_capture_on_commit_callbacks,
        )
        new_time = timezone.now() + timedelta(days=5)
        moved = seller_client.put(
            f"/api/v1/orders/{order.id}/gift", {"deliver_at": new_time.isoformat()}, format="json"
        )
        assert moved.status_code == 200, moved.json()
        assert Order.objects.get(pk=order.pk).deliver_at == new_time
        assert moved.json()["data"]["sub_status"] == "DELAYED"
        assert len(buyer_mails()) == 1

        sent = seller_client.post(f"/api/v1/orders/{order.id}/gift/send")
        assert sent.status_code == 200, sent.json()
        assert sent.json()["data"]["sub_status"] == "GV_LINK_UNCLAIMED"
        assert len(buyer_mails()) == 2 and buyer_mails()[1].to == ["friend@example.com"]
        again = seller_client.post(f"/api/v1/orders/{order.id}/gift/send")
        assert again.status_code == 409 and again.json()["error"]["code"] == "gift_already_sent"
        late = seller_client.put(f"/api/v1/orders/{order.id}/gift", {"deliver_at": new_time.isoformat()}, format="json")
        assert late.status_code == 409
        assert len(buyer_mails()) == 2
        types = set(OrderEvent.objects.filter(order=order).values_list("type", flat=True))
        assert {"gift_rescheduled", "gift_send_now", "gift_sent"} <= types

    def test_not_a_gift_is_409(self, gift_product, seller_client, django_capture_on_commit_callbacks):
        order = buy({"recipient_email": "friend@example.com"}, django_capture_on_commit_callbacks)
        # A plain recipient: one e-mail with the codes, the buyer in copy, as before.
        assert len(buyer_mails()) == 1 and buyer_mails()[0].cc == ["giver@example.com"]
        assert detail(seller_client, order)["sub_status"] == "COMPLETED"
        assert detail(seller_client, order)["gift"] is None
        response = seller_client.post(f"/api/v1/orders/{order.id}/gift/send")
        assert response.status_code == 409 and response.json()["error"]["code"] == "not_a_gift"


class TestInput:
    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"deliver_at": "2030-01-01T00:00:00Z"}, "deliver_at"),
            ({"claim_link": True}, "claim_link"),
            ({"recipient_email": "f@example.com", "deliver_at": "2999-01-01T00:00:00Z"}, "deliver_at"),
            ({"recipient_email": "f@example.com", "deliver_at": "soon"}, "deliver_at"),
        ],
    )
    def test_refused_gift_options_create_nothing(self, gift_product, body, field):
        response = APIClient().post(
            "/api/v1/public/checkout/gift-card/pay", {"buyer_email": "giver@example.com", **body}, format="json"
        )
        assert response.status_code == 400
        assert field in response.json()["error"]["fields"]
        assert Order.objects.count() == 0

    def test_sub_status_of_a_pending_order(self, gift_product, seller_client):
        response = APIClient().post(
            "/api/v1/public/checkout/gift-card/pay",
            {"buyer_email": "giver@example.com", "init_payment": False},
            format="json",
        )
        assert response.json()["data"]["sub_status"] == "INITIAL"
        assert response.json()["data"]["gift"] is None


class TestDashboard:
    def test_the_seller_sees_the_gift_changes_its_date_and_sends_it_now(
        self, gift_product, seller, client, django_capture_on_commit_callbacks
    ):
        order = buy(
            {
                "recipient_email": "friend@example.com",
                "deliver_at": (timezone.now() + timedelta(days=30)).isoformat(),
                "claim_link": True,
            },
            django_capture_on_commit_callbacks,
        )
        client.force_login(seller)
        page = client.get(f"/dashboard/orders/{order.order_number}/").content.decode()
        assert 'id="gift-send-now"' in page and "Scheduled for" in page
        url = f"/dashboard/orders/{order.order_number}/gift/"
        when = (timezone.now() + timedelta(days=10)).replace(second=0, microsecond=0)
        moved = client.post(url, {"action": "reschedule", "deliver_at": when.strftime("%Y-%m-%dT%H:%M")})
        assert moved.status_code == 302
        assert Order.objects.get(pk=order.pk).deliver_at == when
        too_late = (timezone.now() + timedelta(days=400)).strftime("%Y-%m-%dT%H:%M")
        client.post(url, {"action": "reschedule", "deliver_at": too_late})
        assert Order.objects.get(pk=order.pk).deliver_at == when
        assert len(buyer_mails()) == 1
        assert client.post(url, {"action": "send"}).status_code == 302
        assert len(buyer_mails()) == 2 and buyer_mails()[1].to == ["friend@example.com"]
        page = client.get(f"/dashboard/orders/{order.order_number}/").content.decode()
        assert "not claimed yet" in page and 'id="gift-send-now"' not in page


class TestBuyerPage:
    def test_the_order_page_shows_the_claim_and_resends(self, gift_product, client, django_capture_on_commit_callbacks):
        order = buy({"recipient_email": "friend@example.com", "claim_link": True}, django_capture_on_commit_callbacks)
        page_url = f"/c/gift-card/orders/{order.id}"
        html = client.get(page_url).content.decode()
        assert 'data-testid="gift-unclaimed"' in html
        assert not any(code in html for code in CODES)
        response = client.post(f"{page_url}/gift/resend")
        assert response.status_code == 302 and response["Location"] == page_url
        assert len(buyer_mails()) == 3 and buyer_mails()[2].to == ["friend@example.com"]
        client.post("/" + claim_url(buyer_mails()[2]))
        html = client.get(page_url).content.decode()
        assert 'data-testid="gift-claimed"' in html
        assert not any(code in html for code in CODES)


@pytest.mark.django_db(transaction=True)
def test_concurrent_beats_send_a_gift_once(seller, django_capture_on_commit_callbacks):
    """Two beat runs (or a beat run and the seller's "send now") racing for one due gift: the send
    is claimed under the order's row lock, so one e-mail goes out and one link is valid."""
    if connection.vendor == "sqlite":
        pytest.skip("Needs row locks between real concurrent transactions (PostgreSQL).")
    from orders.services.gifts import order_gift_send
    from tests.campaign.concurrency import run_concurrently

    product = ProductFactory(
        seller=seller,
        slug="gift-card",
        title="Gift Card",
        currency="USD",
        delivery_type=DeliveryType.CODE_POOL,
        delivery_content="",
    )
    variant = VariantFactory(product=product, name="Card", price=2500)
    codes_import(variant=variant, rows=[CodeRow(1, "RACE-0001")])
    deliver_at = timezone.now() + timedelta(hours=1)
    order = buy(
        {"recipient_email": "friend@example.com", "deliver_at": deliver_at.isoformat(), "claim_link": True},
        django_capture_on_commit_callbacks,
    )
    due = deliver_at + timedelta(seconds=1)
    results = run_concurrently(4, lambda i: order_gift_send(order_id=order.id, now=due))
    assert sorted(results, key=str) == [False, False, False, True]
    gift_mails = [m for m in buyer_mails() if m.to == ["friend@example.com"]]
    assert len(gift_mails) == 1
    stored = Order.objects.get(pk=order.pk)
    token = claim_url(gift_mails[0]).rsplit("/", 1)[-1]
    assert stored.gift_claim_token_hash == claim_token_hash(token)
    assert OrderEvent.objects.filter(order=order, type="gift_sent").count() == 1


class TestLibrary:
    def test_the_recipient_s_library_shows_a_gift_s_codes_once_sent_the_buyer_s_never(
        self, gift_product, client, settings, django_capture_on_commit_callbacks
    ):
        from .test_library import path_of, signin_link

        deliver_at = timezone.now() + timedelta(days=1)
        order = buy(
            {"recipient_email": "friend@example.com", "deliver_at": deliver_at.isoformat()},
            django_capture_on_commit_callbacks,
        )
        [code] = order.items.get().codes.values_list("code", flat=True)

        def library_of(email):
            mail.outbox.clear()
            browser = type(client)()
            browser.post(path_of(signin_link(browser, email), settings))
            return browser.get("/library").content.decode()

        assert order.id in library_of("friend@example.com") and code not in library_of("friend@example.com")
        gifts_send_due(now=deliver_at + timedelta(seconds=1))
        assert code in library_of("friend@example.com")
        giver = library_of("giver@example.com")
        assert order.id in giver and code not in giver
