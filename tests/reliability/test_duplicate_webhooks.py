"""A duplicate storm: one signed ``payment.succeeded`` webhook, sent 50 times at once over HTTP.

``orders/tests/test_concurrency.py`` races six copies through the test client, in one process with
eager tasks. Here the copies cross HTTP to a live server whose request threads really run side by
side, each re-verifies with the gateway over HTTP, and a real worker fulfills: whatever the
interleaving, the order is paid once, one fulfillment task is queued, one delivery email is sent, and
the seller's endpoint receives one ``order.paid``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from orders.models import Order, OrderEvent, SellerEvent, WebhookDelivery
from orders.seller_events.endpoints import webhook_endpoint_create
from payments.models import WebhookEvent
from tests.e2e.test_buyer_journey import status_moves
from tests.reliability.conftest import Site, mail_to, paid_at_gateway, signed_payment_event, text_of

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

COPIES = 50
FULFIL = "orders.tasks.fulfil_order"


class SellerReceiver:
    """The seller's webhook endpoint: records every POST it gets, answers 200."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver._lock:
                    receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the http.server API
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, name="seller-receiver", daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"the seller's endpoint got {len(self.received)} of {count} POSTs"
            time.sleep(0.1)
        with self._lock:
            return list(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[SellerReceiver]:
    server = SellerReceiver()
    yield server
    server.close()


def test_fifty_copies_of_one_paid_webhook_at_once_deliver_once(
    site: Site, text_product: Any, receiver: SellerReceiver
) -> None:
    endpoint = webhook_endpoint_create(seller=text_product.seller, url=receiver.url, events=["order.paid"])
    created = site.checkout(text_product, "storm@example.com")
    assert created.status_code == 201, created.text
    order = created.json()["data"]
    paid_at_gateway(order["payment"]["id"])
    body, headers = signed_payment_event(order, "evt_storm_0001")

    start = threading.Barrier(COPIES)

    def deliver(_: int) -> tuple[int, dict[str, Any]]:
        start.wait(timeout=30)
        response = site.post_webhook(body, headers)
        return response.status_code, json.loads(response.text)

    with ThreadPoolExecutor(max_workers=COPIES) as pool:
        answers = list(pool.map(deliver, range(COPIES)))

    # Every copy is acknowledged (a gateway would stop sending it), as the one stored event.
    assert Counter(status for status, _ in answers) == Counter({200: COPIES}), answers
    assert {(a["data"]["event_id"], a["data"]["status"]) for _, a in answers} == {("evt_storm_0001", "processed")}
    assert any(a["data"]["duplicate"] for _, a in answers)  # the late ones found it done
    [stored_event] = WebhookEvent.objects.all()
    assert (stored_event.event_id, stored_event.status) == ("evt_storm_0001", WebhookEvent.Status.PROCESSED)

    site.wait_for_status(text_product.slug, [order["id"]], "delivered")

    # Paid once, one fulfillment task, delivered once.
    assert status_moves(order["id"]) == [("pending", "paid"), ("paid", "delivered")]
    assert len(site.worker.published_for(FULFIL, order["id"])) == 1
    assert OrderEvent.objects.filter(order_id=order["id"], type="email_sent").count() == 1
    assert Order.objects.get(pk=order["id"]).dispatched_email is True

    # One email, really sent by the worker, with the delivery in it.
    [message] = mail_to(site.mail_dir, "storm@example.com")
    assert "The secret is RELIABLE" in text_of(message)

    # One order.paid in the outbox, one delivery of it, one POST at the seller's endpoint.
    [paid_event] = SellerEvent.objects.filter(type="order.paid")
    assert paid_event.data["data"]["id"] == order["id"]
    [(hook_headers, hook_body)] = receiver.wait_for(1)
    payload = Webhook(endpoint.secret).verify(hook_body, hook_headers)
    assert (payload["type"], payload["data"]["id"]) == ("order.paid", order["id"])
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 1
    assert len(receiver.received) == 1
