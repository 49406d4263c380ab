"""Outgoing webhooks to sellers, against real local HTTP receivers that verify our signatures."""

import json
import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest import mock

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from marketplace.accounts.tests.factories import SellerFactory
from orders.models import SellerEvent, WebhookDelivery, WebhookEndpoint
from orders.seller_events.endpoints import webhook_endpoint_create
from orders.seller_events.outbox import seller_event_record
from orders.tasks import deliver_webhook, sweep_webhooks

from .helpers import make_order, pay

pytestmark = pytest.mark.django_db
REAL_GETADDRINFO = socket.getaddrinfo


class Receiver:
    """A seller's webhook receiver: verifies each request's signature, then answers from a script."""

    def __init__(self, secret: str = ""):
        self.secret = secret
        self.script = [200]  # status codes, one per request; the last one repeats
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                Webhook(receiver.secret).verify(body, headers)  # raises (→ no answer) if forged
                receiver.requests.append({"headers": headers, "body": json.loads(body)})
                status = receiver.script.pop(0) if len(receiver.script) > 1 else receiver.script[0]
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(f"answer {status} ".encode() + b"x" * 3000)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def types(self) -> list[str]:
        return [r["body"]["type"] for r in self.requests]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def eager_retries(settings):
    """Celery's retries run at once in eager mode; the schedule shrinks to three quick attempts."""
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 0, 0]
    conf = deliver_webhook.app.conf
    previous = conf.task_eager_propagates
    conf.task_eager_propagates = False
    yield
    conf.task_eager_propagates = previous


def endpoint_for(seller, receiver, **kwargs) -> WebhookEndpoint:
    endpoint = webhook_endpoint_create(seller=seller, url=receiver.url, **kwargs)
    receiver.secret = endpoint.secret
    return endpoint


def emit(seller, capture, type="order.paid", data=None) -> SellerEvent:
    """Records a seller event in a committed transaction, as a status change would."""
    payload = {"type": type, "timestamp": "2026-01-02T03:04:05Z", "data": data or {"id": "ord_x", "meta": {}}}
    with capture(execute=True):
        return seller_event_record(seller_id=seller.pk, type=type, data=payload)


def resolving_to(address: str):
    """``socket.getaddrinfo`` for a made-up host name that answers ``address``."""

    def fake(host, port, *args, **kwargs):
        if host.endswith(".example.test"):
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (address, port))]
        return REAL_GETADDRINFO(host, port, *args, **kwargs)

    return mock.patch("socket.getaddrinfo", side_effect=fake)


# --- Delivery ------------------------------------------------------------------------------------


def test_paid_order_sends_created_paid_delivered_signed_with_its_meta(
    seller, text_product, seller_client, receiver, django_capture_on_commit_callbacks
):
    created = seller_client.post("/api/v1/webhook-endpoints", {"url": receiver.url}, format="json")
    assert created.status_code == 201
    receiver.secret = created.json()["data"]["secret"]
    with django_capture_on_commit_callbacks(execute=True):
        order = make_order(text_product, meta={"campaign": "fall", "ref": 7})
    order = pay(order, django_capture_on_commit_callbacks)

    assert order.status == "delivered"
    assert receiver.types == ["order.created", "order.paid", "order.delivered"]
    events = list(SellerEvent.objects.filter(seller=seller).order_by("created_at", "id"))
    for request, event in zip(receiver.requests, events, strict=True):
        assert request["headers"]["content-type"] == "application/json"
        assert request["headers"]["webhook-id"] == "msg_" + event.id.removeprefix("evt_")
        assert request["body"] == event.data
        assert request["body"]["data"]["id"] == order.id
        assert request["body"]["data"]["meta"] == {"campaign": "fall", "ref": 7}
        assert event.dispatched_at is not None
    assert [r["body"]["data"]["status"] for r in receiver.requests] == ["pending", "paid", "delivered"]
    assert "OPEN-SESAME" not in json.dumps([r["body"] for r in receiver.requests])
    deliveries = WebhookDelivery.objects.order_by("created_at", "id")
    assert [(d.status, d.attempts, d.last_status_code) for d in deliveries] == [("succeeded", 1, 200)] * 3
    assert all(len(d.last_response) == 1024 and d.last_response.startswith("answer 200 ") for d in deliveries)


def test_receiver_that_fails_twice_then_succeeds_gets_the_same_signed_event(
    seller, receiver, eager_retries, django_capture_on_commit_callbacks
):
    endpoint = endpoint_for(seller, receiver)
    receiver.script = [500, 503, 200]
    event = emit(seller, django_capture_on_commit_callbacks)

    assert len(receiver.requests) == 3
    assert {r["headers"]["webhook-id"] for r in receiver.requests} == {"msg_" + event.id.removeprefix("evt_")}
    assert all(r["body"] == event.data for r in receiver.requests)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 3, 200)
    assert [a["status_code"] for a in delivery.attempt_log] == [500, 503, 200]
    assert delivery.attempt_log[0]["error"] == "The endpoint answered 500."
    assert delivery.last_error == ""
    assert delivery.next_attempt_at is None
    endpoint.refresh_from_db()
    assert (endpoint.active, endpoint.consecutive_failures) == (True, 0)


def test_a_delivery_that_fails_every_retry_counts_and_many_in_a_row_disable_the_endpoint(
    seller, receiver, eager_retries, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 2
    endpoint = endpoint_for(seller, receiver)
    receiver.script = [502]
    emit(seller, django_capture_on_commit_callbacks)
    endpoint.refresh_from_db()
    assert len(receiver.requests) == 3  # the shrunk schedule: three attempts
    assert WebhookDelivery.objects.get().status == "failed"
    assert (endpoint.active, endpoint.consecutive_failures, len(mail.outbox)) == (True, 1, 0)

    emit(seller, django_capture_on_commit_callbacks)
    endpoint.refresh_from_db()
    assert len(receiver.requests) == 6
    assert (endpoint.active, endpoint.consecutive_failures) == (False, 2)
    assert endpoint.disabled_reason == "2 deliveries in a row failed after every retry."
    assert [m.to for m in mail.outbox] == [[seller.email]]
    assert receiver.url in mail.outbox[0].body

    emit(seller, django_capture_on_commit_callbacks)  # a disabled endpoint gets nothing more
    assert len(receiver.requests) == 6
    assert WebhookDelivery.objects.count() == 2


def test_410_gone_disables_the_endpoint_at_once(seller, receiver, eager_retries, django_capture_on_commit_callbacks):
    endpoint = endpoint_for(seller, receiver)
    receiver.script = [410]
    emit(seller, django_capture_on_commit_callbacks)
    endpoint.refresh_from_db()
    assert len(receiver.requests) == 1
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 1, 410)
    assert (endpoint.active, endpoint.disabled_reason) == (False, "The endpoint answered 410 Gone.")
    assert [m.to for m in mail.outbox] == [[seller.email]]
    emit(seller, django_capture_on_commit_callbacks, type="order.delivered")
    assert len(receiver.requests) == 1


def test_endpoint_receives_only_the_events_it_asked_for_and_out_of_stock_is_wrapped(
    seller, receiver, django_capture_on_commit_callbacks
):
    endpoint_for(seller, receiver, events=["order.paid", "product.out_of_stock"])
    emit(seller, django_capture_on_commit_callbacks, type="order.created")
    emit(seller, django_capture_on_commit_callbacks, type="order.paid")
    with django_capture_on_commit_callbacks(execute=True):
        stock = seller_event_record(
            seller_id=seller.pk,
            type="product.out_of_stock",
            data={"product_id": "prd_1", "variant_id": "var_1", "variant_name": "Gold"},
        )
    assert receiver.types == ["order.paid", "product.out_of_stock"]
    wrapped = receiver.requests[1]["body"]
    assert wrapped["data"] == {"product_id": "prd_1", "variant_id": "var_1", "variant_name": "Gold"}
    assert wrapped["timestamp"] == stock.created_at.isoformat().replace("+00:00", "Z")


def test_an_orders_own_webhook_urls_receive_its_events_signed_with_the_order_urls_secret(
    seller, text_product, seller_client, receiver, django_capture_on_commit_callbacks
):
    assert seller_client.get("/api/v1/webhook-endpoints/order-urls").status_code == 404
    rolled = seller_client.post("/api/v1/webhook-endpoints/order-urls")
    assert rolled.status_code == 201
    receiver.secret = rolled.json()["data"]["secret"]
    shared_id = rolled.json()["data"]["id"]
    with django_capture_on_commit_callbacks(execute=True):
        order = make_order(text_product, meta={"sku": "A-1"}, webhook_urls=[receiver.url])
    pay(order, django_capture_on_commit_callbacks)

    assert receiver.types == ["order.created", "order.paid", "order.delivered"]
    assert {r["body"]["data"]["meta"]["sku"] for r in receiver.requests} == {"A-1"}
    listed = seller_client.get(f"/api/v1/webhook-endpoints/{shared_id}/deliveries").json()["data"]
    assert [d["event_type"] for d in listed["results"]] == ["order.delivered", "order.paid", "order.created"]
    assert seller_client.get("/api/v1/webhook-endpoints").json()["data"]["results"] == []  # never listed
    shown = seller_client.get("/api/v1/webhook-endpoints/order-urls").json()["data"]
    assert set(shown) == {"id", "created_at", "updated_at"}


# --- SSRF ----------------------------------------------------------------------------------------


# Every address form reads the same to the seller: nothing about what a name resolved to.
UNREACHABLE = "The URL could not be reached."
REFUSED_URLS = [
    ("http://hooks.example.com/in", "Must be a valid https:// URL."),
    ("https://10.0.0.1/in", UNREACHABLE),
    ("https://127.0.0.1:8443/in", UNREACHABLE),
    ("https://169.254.169.254/latest/meta-data", UNREACHABLE),
    ("https://[::1]/in", UNREACHABLE),
    ("https://[::ffff:10.1.2.3]/in", UNREACHABLE),
    ("https://0.0.0.0/in", UNREACHABLE),
    ("https://224.0.0.1/in", UNREACHABLE),
    ("https://inside.example.test/in", UNREACHABLE),
    ("https://user:pw@hooks.example.com/in", "Must not carry a user name or password."),
]


@pytest.mark.parametrize(("url", "message"), REFUSED_URLS)
def test_unsafe_urls_are_refused_when_saved(seller_client, settings, url, message):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    with resolving_to("127.0.0.1"):
        response = seller_client.post("/api/v1/webhook-endpoints", {"url": url}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"url": [message]}
    assert WebhookEndpoint.objects.count() == 0


def test_a_public_https_url_is_accepted_and_an_unsafe_one_refused_on_patch(seller, seller_client, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    with resolving_to("93.184.215.14"):
        created = seller_client.post(
            "/api/v1/webhook-endpoints", {"url": "https://hooks.example.test/in"}, format="json"
        )
    assert created.status_code == 201
    endpoint_id = created.json()["data"]["id"]
    with resolving_to("10.9.8.7"):
        patched = seller_client.patch(
            f"/api/v1/webhook-endpoints/{endpoint_id}", {"url": "https://other.example.test/in"}, format="json"
        )
    assert patched.status_code == 400
    assert patched.json()["error"]["fields"] == {"url": [UNREACHABLE]}
    assert WebhookEndpoint.objects.get().url == "https://hooks.example.test/in"


def test_unsafe_urls_are_refused_at_delivery_and_nothing_is_sent(
    seller, text_product, receiver, settings, django_capture_on_commit_callbacks
):
    """URLs saved while local receivers were allowed, called once they no longer are (or once a
    name points somewhere else): nothing is sent, no retry, and the seller reads one neutral text."""
    endpoint = endpoint_for(seller, receiver)  # saved while local URLs were allowed
    WebhookEndpoint.objects.create(seller=seller, url="https://metadata.example.test/x", secret=endpoint.secret)
    with django_capture_on_commit_callbacks() as callbacks:
        make_order(text_product, webhook_urls=[receiver.url, "https://10.0.0.1/order-hook"])
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    with resolving_to("169.254.169.254"), django_capture_on_commit_callbacks(execute=True):
        for callback in callbacks:
            callback()

    assert receiver.requests == []
    got = sorted(
        (d.endpoint.kind, d.url, d.status, d.attempts, d.last_status_code, d.last_error)
        for d in WebhookDelivery.objects.select_related("endpoint")
    )
    assert got == [
        ("endpoint", receiver.url, "failed", 1, None, UNREACHABLE),
        ("endpoint", "https://metadata.example.test/x", "failed", 1, None, UNREACHABLE),
        ("order_urls", receiver.url, "failed", 1, None, UNREACHABLE),
        ("order_urls", "https://10.0.0.1/order-hook", "failed", 1, None, UNREACHABLE),
    ]


def test_the_socket_itself_refuses_a_private_address_even_if_the_first_lookup_was_public(
    seller, receiver, settings, django_capture_on_commit_callbacks
):
    """DNS rebinding: the name answered a public address when saved, a private one when called."""
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    with resolving_to("93.184.215.14"):
        endpoint = webhook_endpoint_create(seller=seller, url="https://hooks.example.test/in")
    receiver.secret = endpoint.secret
    with resolving_to("127.0.0.1"):
        emit(seller, django_capture_on_commit_callbacks)
    assert receiver.requests == []
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 1, None)
    assert delivery.last_error == UNREACHABLE


# --- The API -------------------------------------------------------------------------------------


def test_secret_is_shown_on_create_only(seller_client, receiver):
    created = seller_client.post(
        "/api/v1/webhook-endpoints", {"url": receiver.url, "events": ["order.paid"]}, format="json"
    ).json()["data"]
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(secret) == 50
    assert created["events"] == ["order.paid"] and created["active"] is True
    assert WebhookEndpoint.objects.get().secret == secret
    listed = seller_client.get("/api/v1/webhook-endpoints")
    detail = seller_client.get(f"/api/v1/webhook-endpoints/{created['id']}")
    patched = seller_client.patch(f"/api/v1/webhook-endpoints/{created['id']}", {"active": False}, format="json")
    for response in (listed, detail, patched):
        assert response.status_code == 200
        assert secret not in response.content.decode()
        assert secret.removeprefix("whsec_")[:20] not in response.content.decode()
    assert [e["id"] for e in listed.json()["data"]["results"]] == [created["id"]]
    assert "secret" not in listed.json()["data"]["results"][0]
    # At rest the secret is encrypted.
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM orders_webhookendpoint")
        stored = cursor.fetchone()[0]
    assert secret not in stored


def test_unknown_event_names_are_refused(seller_client, receiver):
    response = seller_client.post(
        "/api/v1/webhook-endpoints", {"url": receiver.url, "events": ["order.paid", "order.teleported"]}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"events": ["Unknown event type: order.teleported."]}
    assert WebhookEndpoint.objects.count() == 0


def test_patch_and_delete(seller, seller_client, receiver):
    endpoint = endpoint_for(seller, receiver)
    WebhookEndpoint.objects.filter(id=endpoint.id).update(
        active=False, consecutive_failures=15, disabled_reason="The endpoint answered 410 Gone."
    )
    patched = seller_client.patch(
        f"/api/v1/webhook-endpoints/{endpoint.id}",
        {"active": True, "events": ["order.refunded", "order.created"]},
        format="json",
    ).json()["data"]
    assert (patched["active"], patched["consecutive_failures"], patched["disabled_reason"]) == (True, 0, "")
    assert patched["events"] == ["order.created", "order.refunded"]
    assert seller_client.delete(f"/api/v1/webhook-endpoints/{endpoint.id}").status_code == 204
    assert WebhookEndpoint.objects.count() == 0


def test_another_sellers_endpoint_is_not_found(seller, seller_client, receiver, django_capture_on_commit_callbacks):
    other = SellerFactory()
    endpoint = endpoint_for(other, receiver)
    emit(other, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get()
    base = f"/api/v1/webhook-endpoints/{endpoint.id}"
    responses = [
        seller_client.get(base),
        seller_client.patch(base, {"active": False}, format="json"),
        seller_client.delete(base),
        seller_client.get(f"{base}/deliveries"),
        seller_client.post(f"{base}/deliveries/{delivery.id}/resend"),
    ]
    assert [r.status_code for r in responses] == [404] * 5
    assert {r.json()["error"]["code"] for r in responses} == {"not_found"}
    endpoint.refresh_from_db()
    assert endpoint.active is True
    assert len(receiver.requests) == 1
    assert seller_client.get("/api/v1/webhook-endpoints").json()["data"]["results"] == []


def test_resend_is_a_new_attempt_with_the_same_webhook_id(
    seller, seller_client, receiver, eager_retries, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_RETRY_SCHEDULE = [0]  # a single attempt
    endpoint = endpoint_for(seller, receiver)
    receiver.script = [500, 200]
    emit(seller, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 1)

    with django_capture_on_commit_callbacks(execute=True):
        response = seller_client.post(f"/api/v1/webhook-endpoints/{endpoint.id}/deliveries/{delivery.id}/resend")
    assert response.status_code == 202
    assert response.json()["data"]["id"] == delivery.id
    assert response.json()["data"]["status"] == "pending"  # queued; the attempt runs after the commit
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 2, 200)
    assert [r["headers"]["webhook-id"] for r in receiver.requests] == [delivery.webhook_id] * 2
    assert receiver.requests[0]["body"] == receiver.requests[1]["body"]


def test_resend_to_a_disabled_endpoint_is_a_conflict(
    seller, seller_client, receiver, django_capture_on_commit_callbacks
):
    endpoint = endpoint_for(seller, receiver)
    emit(seller, django_capture_on_commit_callbacks)
    WebhookEndpoint.objects.filter(id=endpoint.id).update(active=False)
    delivery = WebhookDelivery.objects.get()
    response = seller_client.post(f"/api/v1/webhook-endpoints/{endpoint.id}/deliveries/{delivery.id}/resend")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "endpoint_disabled"
    assert len(receiver.requests) == 1
    assert WebhookDelivery.objects.get().attempts == 1


def test_deliveries_are_listed_newest_first_with_their_attempts_in_constant_queries(
    seller, seller_client, receiver, django_capture_on_commit_callbacks
):
    endpoint = endpoint_for(seller, receiver)
    for type in ("order.created", "order.paid", "order.delivered"):
        emit(seller, django_capture_on_commit_callbacks, type=type)
    url = f"/api/v1/webhook-endpoints/{endpoint.id}/deliveries"
    with CaptureQueriesContext(connection) as few:
        page = seller_client.get(url, {"limit": 2}).json()["data"]
    assert [d["event_type"] for d in page["results"]] == ["order.delivered", "order.paid"]
    assert page["pagination"] == {"page": 1, "limit": 2, "total_items": 3, "total_pages": 2}
    first = page["results"][0]
    assert (first["status"], first["attempts"], first["last_status_code"]) == ("succeeded", 1, 200)
    assert [a["status_code"] for a in first["attempt_log"]] == [200]
    assert first["payload"]["type"] == "order.delivered"
    assert first["webhook_id"].startswith("msg_")
    for type in ("order.refunded", "order.cancelled"):
        emit(seller, django_capture_on_commit_callbacks, type=type)
    with CaptureQueriesContext(connection) as many:
        page = seller_client.get(url, {"limit": 5}).json()["data"]
    assert len(page["results"]) == 5
    assert len(many) == len(few)


# --- Recovery ------------------------------------------------------------------------------------


def test_the_sweeper_dispatches_events_whose_on_commit_was_lost_and_requeues_stuck_deliveries(seller, receiver):
    endpoint = endpoint_for(seller, receiver)
    event = seller_event_record(seller_id=seller.pk, type="order.paid", data={"type": "order.paid"})  # never committed
    SellerEvent.objects.filter(id=event.id).update(created_at=timezone.now() - timedelta(minutes=2))
    WebhookEndpoint.objects.filter(id=endpoint.id).update(created_at=timezone.now() - timedelta(minutes=5))
    assert sweep_webhooks.apply().get() == {"dispatched": 1, "requeued": 0}
    assert WebhookDelivery.objects.count() == 1  # made; its task waits for a commit that a test never has
    WebhookDelivery.objects.update(updated_at=timezone.now() - timedelta(minutes=11), next_attempt_at=None)
    assert sweep_webhooks.apply().get() == {"dispatched": 0, "requeued": 1}
    deliver_webhook.apply(args=(WebhookDelivery.objects.get().id,))
    assert receiver.types == ["order.paid"]
    assert sweep_webhooks.apply().get() == {"dispatched": 0, "requeued": 0}
