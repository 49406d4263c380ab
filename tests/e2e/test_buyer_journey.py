"""A buyer's whole journey over HTTP, against a live server and a real Celery worker.

checkout API → the sandbox gateway's hosted page → the signed webhook over HTTP (verified, then
re-verified with the gateway's status API over HTTP) → the fulfillment task, run by the worker
process → the buyer's order endpoint shows the delivery.
"""

import re
import time
from typing import Any

import pytest
from django.conf import settings

from orders.models import Order, OrderEvent
from payments.models import WebhookEvent

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

FULFIL = "orders.tasks.fulfil_order"
POLL_TIMEOUT = 60.0


def start_checkout(site: Any, product: Any, email: str) -> dict[str, Any]:
    response = site.http.post(
        site.api(f"/api/v1/public/checkout/{product.slug}/pay"), json={"buyer_email": email, "quantity": 1}, timeout=30
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["success"] is True
    order = body["data"]
    assert order["status"] == "pending"
    assert order["total_amount"] == 1999
    assert order["currency"] == "USD"
    assert order["payment"]["gateway"] == "sandbox"
    assert order["payment"]["redirect_url"] == f"{site.url}/sandbox/pay/{order['payment']['id']}"
    return order


def choose_on_sandbox(site: Any, redirect_url: str, outcome: str) -> str:
    """Opens the sandbox's hosted page and presses Pay or Decline; returns where it sends the buyer."""
    page = site.http.get(redirect_url, timeout=30)
    assert page.status_code == 200, page.text
    assert 'id="sandbox-pay"' in page.text and 'id="sandbox-decline"' in page.text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token, "the sandbox page has no CSRF token"
    done = site.http.post(
        redirect_url,
        data={"outcome": outcome, "csrfmiddlewaretoken": token.group(1)},
        allow_redirects=False,
        timeout=60,
    )
    assert done.status_code == 302, done.text
    return done.headers["Location"]


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


def test_buyer_pays_and_the_worker_delivers(e2e_site: Any, text_product: Any) -> None:
    assert settings.CELERY_TASK_ALWAYS_EAGER is False
    order = start_checkout(e2e_site, text_product, "Buyer@Example.com")
    order_id = order["id"]

    success_url = choose_on_sandbox(e2e_site, order["payment"]["redirect_url"], "succeeded")
    assert success_url == f"{e2e_site.url}/c/{text_product.slug}/orders/{order_id}"

    delivered = poll_order(e2e_site, text_product.slug, order_id, until="delivered")

    # What the buyer sees.
    assert delivered["buyer_email"] == "buyer@example.com"
    assert delivered["delivery_content"] == "The secret is OPEN-SESAME-E2E"
    assert delivered["content_type"] == "text"
    [item] = delivered["items"]
    assert item["fulfilled"] is True
    assert item["fulfillment_status"] == "succeeded"
    assert item["delivery"]["content_type"] == "text"
    assert item["delivery"]["content"] == "The secret is OPEN-SESAME-E2E"
    assert delivered["dispatched_email"] is True
    assert delivered["email_sent_at"] is not None
    assert delivered["paid_at"] is not None and delivered["delivered_at"] is not None
    assert [(p["gateway"], p["status"]) for p in delivered["payments"]] == [("sandbox", "succeeded")]

    # The success page shows it too.
    page = e2e_site.http.get(success_url, timeout=30)
    assert page.status_code == 200
    assert 'data-testid="delivery">The secret is OPEN-SESAME-E2E<' in page.text

    # The webhook crossed HTTP, passed its signature check and was processed once.
    [webhook] = WebhookEvent.objects.filter(gateway="sandbox")
    assert (webhook.type, webhook.status) == ("payment.succeeded", WebhookEvent.Status.PROCESSED)

    # Exactly one email, and the timeline in order: pending → paid → delivered.
    stored = Order.objects.get(pk=order_id)
    assert stored.status == "delivered"
    assert stored.dispatched_email is True
    assert OrderEvent.objects.filter(order_id=order_id, type="email_sent").count() == 1
    assert status_moves(order_id) == [("pending", "paid"), ("paid", "delivered")]
    timeline = OrderEvent.objects.filter(order_id=order_id).order_by("created_at", "id")
    types = list(timeline.values_list("type", flat=True))
    assert types[0] == "order_created"
    assert types.count("item_fulfilled") == 1
    paid_at = types.index("status_changed")
    delivered_at = len(types) - 1 - types[::-1].index("status_changed")
    assert paid_at < types.index("item_fulfilled") < types.index("email_sent") < delivered_at

    # The worker process ran the fulfillment: this process only published it (eager mode is off).
    [published] = e2e_site.worker.published_for(FULFIL)
    assert order_id in published["argsrepr"]
    assert published["routing_key"] == e2e_site.worker.queue
    e2e_site.worker.wait_for_log(
        rf"Task {re.escape(FULFIL)}\[{re.escape(published['id'])}\] succeeded in [\d.]+s: "
        r"'delivered'",
        timeout=10,
    )


def test_declined_payment_fails_the_order_and_delivers_nothing(e2e_site: Any, text_product: Any) -> None:
    order = start_checkout(e2e_site, text_product, "decliner@example.com")
    order_id = order["id"]

    success_url = choose_on_sandbox(e2e_site, order["payment"]["redirect_url"], "failed")
    assert success_url == f"{e2e_site.url}/c/{text_product.slug}/orders/{order_id}"

    failed = poll_order(e2e_site, text_product.slug, order_id, until="failed")
    assert failed["paid_at"] is None and failed["delivered_at"] is None
    assert failed["delivery_content"] is None
    assert failed["voucher_codes"] == []
    [item] = failed["items"]
    assert item["fulfilled"] is False
    assert item["delivery"] is None
    assert failed["dispatched_email"] is False
    assert failed["email_sent_at"] is None
    assert [(p["gateway"], p["status"]) for p in failed["payments"]] == [("sandbox", "failed")]

    [webhook] = WebhookEvent.objects.filter(gateway="sandbox")
    assert (webhook.type, webhook.status) == ("payment.failed", WebhookEvent.Status.PROCESSED)

    # Nothing was delivered, emailed or even queued; the page offers another try.
    assert status_moves(order_id) == [("pending", "failed")]
    assert not OrderEvent.objects.filter(order_id=order_id, type__in=["item_fulfilled", "email_sent"]).exists()
    assert e2e_site.worker.published_for(FULFIL) == []
    page = e2e_site.http.get(success_url, timeout=30)
    assert page.status_code == 200
    markup = re.sub(r"<script\b.*?</script>", "", page.text, flags=re.S)  # the poller's template has one
    assert 'data-testid="delivery"' not in markup
    assert "OPEN-SESAME" not in page.text
    assert f'<form method="post" action="/c/{text_product.slug}" data-testid="try-again-form">' in page.text
    assert '<button type="submit" data-testid="try-again">Try again</button>' in page.text
    assert f"Task {FULFIL}[" not in e2e_site.worker.log_text()
