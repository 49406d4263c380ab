"""The buyer's journey of ``test_buyer_journey``, once more with the Stripe adapter, over HTTP end to end.

A local fake of Stripe's HTTP API (``payments.tests.fake_stripe``) stands in for api.stripe.com; the
live server's Stripe client and the worker process both point at it. The checkout API opens a real
Checkout Session on the fake → the buyer "pays on Stripe's page" (the fake marks the session paid) →
a ``checkout.session.completed`` event, signed the way Stripe signs it, crosses HTTP to the webhook
endpoint → the web process re-verifies by retrieving the session from the fake → the real Celery
worker delivers → the seller refunds through the API, which goes to Stripe's Refunds API with an
idempotency key → Stripe's own ``charge.refunded`` echo of that refund is not counted twice → the
content answers 410.
"""

import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings

from marketplace.accounts.tests.factories import DEFAULT_PASSWORD
from orders.models import Order, OrderEvent
from payments.models import Payment, Refund, WebhookEvent
from payments.tests.fake_stripe import FakeStripe, fake_stripe, sign_webhook  # noqa: F401 - fake_stripe: a fixture

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

FULFIL = "orders.tasks.fulfil_order"
POLL_TIMEOUT = 60.0
WEBHOOK_SECRET = "whsec_test_ZTJlLXN0cmlwZS13ZWJob29rLXNlY3JldC1mb3ItdGVzdHM"
SECRET_TEXT = "The secret is OPEN-SESAME-E2E"


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test process (and so the live server it runs) resolves no host but this machine: a Stripe
    call that missed the fake would fail the test instead of reaching api.stripe.com."""
    resolve = socket.getaddrinfo

    def local_only(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise AssertionError(f"A test tried to reach {host}.")
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", local_only)


@pytest.fixture
def worker_env(fake_stripe: FakeStripe) -> dict[str, str]:  # noqa: F811 - the imported fixture
    """The worker process talks to the same fake, with the same keys (overrides the conftest's)."""
    return {
        "ENABLED_PAYMENT_GATEWAYS": "sandbox,stripe",
        "STRIPE_SECRET_KEY": fake_stripe.api_key,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": fake_stripe.url,
    }


@pytest.fixture
def stripe_site(e2e_site: Any, settings: Any, fake_stripe: FakeStripe) -> Iterator[Any]:  # noqa: F811
    """The live server with Stripe enabled against the fake (the worker got the same by ``worker_env``)."""
    settings.ENABLED_PAYMENT_GATEWAYS = ["sandbox", "stripe"]
    settings.STRIPE_SECRET_KEY = fake_stripe.api_key
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_API_BASE = fake_stripe.url
    yield e2e_site


def poll_order(site: Any, slug: str, order_id: str, until: str, timeout: float = POLL_TIMEOUT) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while True:
        response = site.http.get(site.api(f"/api/v1/public/checkout/{slug}/order/{order_id}"), timeout=30)
        assert response.status_code == 200, response.text
        order = response.json()["data"]
        if not seen or seen[-1] != order["status"]:
            seen.append(order["status"])
        if order["status"] == until:
            return order
        if time.monotonic() > deadline:
            raise AssertionError(
                f"order {order_id} never reached {until!r} in {timeout:.0f}s; statuses seen: {seen}; "
                f"last: {order['status']} ({order['status_message']})"
            )
        time.sleep(0.25)


def status_moves(order_id: str) -> list[tuple[str, str]]:
    return [
        (e.from_status, e.to_status)
        for e in OrderEvent.objects.filter(order_id=order_id, type="status_changed").order_by("created_at", "id")
    ]


def post_stripe_event(site: Any, event: dict[str, Any]) -> dict[str, Any]:
    """Sends an event the way Stripe delivers it: the JSON body and its ``Stripe-Signature`` header."""
    body, headers = sign_webhook(event, WEBHOOK_SECRET)
    response = site.http.post(
        site.api("/api/v1/payments/webhooks/stripe"),
        data=body,
        headers={
            **headers,
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        },
        timeout=30,
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["success"] is True
    assert answer["data"]["event_id"] == event["id"]
    return answer["data"]


def test_buyer_pays_with_stripe_the_worker_delivers_and_a_refund_revokes(
    stripe_site: Any,
    fake_stripe: FakeStripe,  # noqa: F811
    text_product: Any,
) -> None:
    site, fake, slug = stripe_site, fake_stripe, text_product.slug
    assert settings.CELERY_TASK_ALWAYS_EAGER is False

    # 1. Checkout over HTTP opens a Checkout Session at "Stripe".
    response = site.http.post(
        site.api(f"/api/v1/public/checkout/{slug}/pay"),
        json={"buyer_email": "Buyer@Example.com", "quantity": 1, "payment_method": "stripe"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    order = response.json()["data"]
    order_id = order["id"]
    assert (order["status"], order["total_amount"], order["currency"]) == ("pending", 1999, "USD")
    session = fake.only_session()
    session_id = session["id"]
    assert session_id.startswith("cs_test_")
    assert order["payment"]["gateway"] == "stripe"
    assert order["payment"]["redirect_url"] == session["url"] == f"{fake.url}/c/pay/{session_id}"
    [opened] = fake.requests_to("POST", "/v1/checkout/sessions")
    assert opened.headers["idempotency-key"] == order["payment"]["id"]
    assert opened.params["metadata"] == {"order_id": order_id, "payment_id": order["payment"]["id"]}
    assert opened.params["success_url"] == f"{site.url}/c/{slug}/orders/{order_id}"
    assert (session["amount_total"], session["currency"]) == (1999, "usd")

    # 2. The buyer pays on Stripe's page; Stripe then sends checkout.session.completed.
    fake.mark_paid(session_id)
    intent_id = fake.sessions[session_id]["payment_intent"]
    assert intent_id.startswith("pi_test_")
    retrieved_before = len(fake.requests_to("GET", f"/v1/checkout/sessions/{session_id}"))
    ack = post_stripe_event(site, fake.session_event("checkout.session.completed", session_id))
    assert (ack["status"], ack["duplicate"]) == ("processed", False)

    # The web process did not take the event's word for it: it retrieved the session from "Stripe".
    rechecks = fake.requests_to("GET", f"/v1/checkout/sessions/{session_id}")[retrieved_before:]
    assert len(rechecks) == 1
    assert rechecks[0].params == {"expand": ["payment_intent"]}
    assert rechecks[0].headers["authorization"] == f"Bearer {fake.api_key}"

    # 3. The real worker delivers.
    delivered = poll_order(site, slug, order_id, until="delivered")
    assert delivered["buyer_email"] == "buyer@example.com"
    assert delivered["delivery_content"] == SECRET_TEXT
    assert delivered["content_type"] == "text"
    [item] = delivered["items"]
    assert (item["fulfilled"], item["fulfillment_status"]) == (True, "succeeded")
    assert item["delivery"]["content"] == SECRET_TEXT
    assert delivered["dispatched_email"] is True and delivered["email_sent_at"] is not None
    assert delivered["paid_at"] is not None and delivered["delivered_at"] is not None
    assert [(p["gateway"], p["status"], p["transaction_id"]) for p in delivered["payments"]] == [
        ("stripe", "succeeded", intent_id)
    ]
    payment = Payment.objects.get(order_id=order_id)
    assert (payment.gateway, payment.status, payment.transaction_id) == ("stripe", "succeeded", intent_id)
    assert (payment.amount, payment.currency) == (1999, "USD")

    [webhook] = WebhookEvent.objects.filter(gateway="stripe")
    assert (webhook.type, webhook.status, webhook.payment_id) == (
        "checkout.session.completed",
        WebhookEvent.Status.PROCESSED,
        payment.id,
    )
    assert OrderEvent.objects.filter(order_id=order_id, type="email_sent").count() == 1
    assert status_moves(order_id) == [("pending", "paid"), ("paid", "delivered")]
    timeline = OrderEvent.objects.filter(order_id=order_id).order_by("created_at", "id")
    types = list(timeline.values_list("type", flat=True))
    assert types[0] == "order_created"
    assert types.count("item_fulfilled") == 1
    assert types.index("status_changed") < types.index("item_fulfilled") < types.index("email_sent")

    # The worker process ran the fulfillment; this process only published it.
    [published] = site.worker.published_for(FULFIL)
    assert order_id in published["argsrepr"] and published["routing_key"] == site.worker.queue
    site.worker.wait_for_log(
        rf"Task {re.escape(FULFIL)}\[{re.escape(published['id'])}\] succeeded in [\d.]+s: "
        r"'delivered'",
        timeout=10,
    )

    resource = site.http.get(site.api(f"/api/v1/orders/{order_id}/resource"), timeout=30)
    assert resource.status_code == 200, resource.text
    assert SECRET_TEXT in resource.text

    # 4. The seller signs in and refunds the whole order through the API; it goes to Stripe's Refunds API.
    login = site.http.post(
        site.api("/api/v1/auth/token"),
        json={"email": text_product.seller.email, "password": DEFAULT_PASSWORD},
        timeout=30,
    )
    assert login.status_code == 200, login.text
    seller_auth = {"Authorization": f"Bearer {login.json()['data']['access']}"}
    refunded = site.http.post(
        site.api(f"/api/v1/orders/{order_id}/refund"),
        json={"reason": "requested_by_customer"},
        headers=seller_auth,
        timeout=30,
    )
    assert refunded.status_code == 201, refunded.text
    data = refunded.json()["data"]
    assert (data["status"], data["refunded_amount"]) == ("refunded", 1999)

    [refund] = Refund.objects.filter(order_id=order_id)
    [refund_call] = fake.requests_to("POST", "/v1/refunds")
    assert refund_call.headers["idempotency-key"] == refund.id
    assert refund_call.params["payment_intent"] == intent_id
    assert refund_call.params["amount"] == "1999"
    assert refund_call.params["reason"] == "requested_by_customer"
    [stripe_refund] = fake.refunds.values()
    assert (refund.status, refund.amount, refund.gateway_refund_id) == ("succeeded", 1999, stripe_refund["id"])
    charge = fake.charges[fake.intents[intent_id]["latest_charge"]]
    assert (charge["amount_refunded"], charge["refunded"]) == (1999, True)

    # 5. Stripe reports the same refund as charge.refunded: recorded once, never counted twice.
    echo = post_stripe_event(site, fake.charge_refunded_event(intent_id))
    assert echo["status"] == "processed"
    echoed = WebhookEvent.objects.get(gateway="stripe", type="charge.refunded")
    assert (echoed.payment_id, echoed.refunded_total) == (payment.id, 1999)
    assert Refund.objects.filter(order_id=order_id).count() == 1
    stored = Order.objects.get(pk=order_id)
    assert (stored.status, stored.refunded_amount) == ("refunded", 1999)
    payment.refresh_from_db()
    assert payment.status == "refunded"
    assert status_moves(order_id) == [("pending", "paid"), ("paid", "delivered"), ("delivered", "refunded")]
    assert len(fake.requests_to("POST", "/v1/refunds")) == 1

    # 6. Access is revoked.
    gone = site.http.get(site.api(f"/api/v1/orders/{order_id}/resource"), timeout=30)
    assert gone.status_code == 410, gone.text
    assert gone.json()["error"]["code"] == "order_refunded"
    public = poll_order(site, slug, order_id, until="refunded")
    assert public["delivery_content"] is None and public["items"][0]["delivery"] is None
    assert OrderEvent.objects.filter(order_id=order_id, type="email_sent").count() == 1
