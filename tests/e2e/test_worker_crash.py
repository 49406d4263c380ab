"""Issue #3: a worker killed in the middle of a delivery ends the order delivered exactly once.

The buyer pays over HTTP (checkout API → the sandbox's hosted page → the signed webhook), the worker
process takes the fulfillment task and asks the seller's partner API for unit 1's code; the partner
holds that first request, and the test kills the worker with SIGKILL while it waits — no warm
shutdown, no acknowledgement. A new worker is started on the same queue, and the order must end
``delivered`` with one email and exactly one stored code per unit.

How the task comes back depends on the broker:

- **Redis** (``REDIS_URL`` set): *redelivery*. The task is ``acks_late``, so the killed worker's
  message stays in the broker's unacknowledged set; once its ``visibility_timeout`` (3 s for these
  workers, and a sweep every second) has passed, the new worker restores it to the queue and runs
  the very same task id. The test process published the task once, and never runs the sweeper.
- **Filesystem** (the embedded default): *the beat sweeper*. kombu's filesystem transport removes a
  message's file from the queue folder when a consumer takes it; its acknowledgement is bookkeeping
  in the consumer's memory, which the SIGKILL destroys, so nothing can redeliver it (the test asserts
  the queue folder holds no message for its queue). ``orders_sweep`` — run here as beat would, with
  ``SWEEP_STUCK_AFTER_SECONDS = 1`` — finds the paid, untouched order and queues a new task, which
  the new worker runs.

Either way the killed attempt left nothing behind: the item was locked and fulfilled in one database
transaction, which died with the worker's connection. The partner is idempotent, as the protocol asks
(``Idempotency-Key`` / ``webhook-id`` is ``{item_id}-{unit}``): asked twice for unit 1, it answers
the same code, and that code is stored once.
"""

from __future__ import annotations

import json
import re
import secrets
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

import pytest
import redis
from django.conf import settings as django_settings
from standardwebhooks.webhooks import Webhook

from catalog.models import Code, DeliveryType, Product
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory
from marketplace.celery import app as celery_app
from orders.models import Order, OrderEvent
from orders.services import orders_sweep
from payments.models import WebhookEvent
from tests.e2e.conftest import CeleryWorker, WorkerLauncher
from tests.e2e.test_buyer_journey import choose_on_sandbox, poll_order, status_moves

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

FULFIL = "orders.tasks.fulfil_order"
PARTNER_SECRET = "whsec_cGFydG5lci1zZWNyZXQtZm9yLWNyYXNoLXRlc3QtMTIzNDU="
VISIBILITY_TIMEOUT = 3
BLOCK_TIMEOUT = 60.0  # the held request gives up by itself if the test never releases it
FLUSHED_HINT = (
    "if the broker's keys vanished, the Redis database was flushed under this test: the suite's autouse "
    "cache.clear() runs FLUSHDB on REDIS_URL, which is also the broker's database. Is another test run "
    "using the same Redis database?"
)


def broker_is_redis() -> bool:
    return str(celery_app.conf.broker_url).startswith(("redis://", "rediss://"))


# --- The seller's partner API -------------------------------------------------------------------------


class IdempotentPartner:
    """A seller's fulfillment endpoint: verifies the signature, answers one code per Idempotency-Key
    (the same code when asked again, like a real idempotent partner), and holds its FIRST request
    until :meth:`release` — so that the worker is mid-delivery when the test kills it."""

    def __init__(self) -> None:
        self.keys: list[str] = []  # the Idempotency-Key of every request, in arrival order
        self.codes: dict[str, str] = {}  # the partner's ledger: the code it issued for each key
        self.first_request = threading.Event()
        self._release = threading.Event()
        self._lock = threading.Lock()
        partner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                Webhook(PARTNER_SECRET).verify(body, dict(self.headers), json_parse=False)  # raises if forged
                payload = json.loads(body)
                key = self.headers["Idempotency-Key"]
                assert key == self.headers["webhook-id"] == f"{payload['item_id']}-{payload['unit']}"
                with partner._lock:
                    first = not partner.keys
                    partner.keys.append(key)
                    code = partner.codes.setdefault(key, f"GC-{payload['unit']}-{secrets.token_hex(6).upper()}")
                if first:
                    partner.first_request.set()
                    partner._release.wait(BLOCK_TIMEOUT)
                answer = json.dumps({"code": code, "pin": "4242"}).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the worker that asked is dead: nobody reads this answer

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the http.server API
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/fulfill"
        self.thread = threading.Thread(target=self.server.serve_forever, name="partner", daemon=True)
        self.thread.start()

    def release(self) -> None:
        self._release.set()

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def partner() -> Iterator[IdempotentPartner]:
    server = IdempotentPartner()
    yield server
    server.close()


@pytest.fixture
def partner_product(transactional_db: None, partner: IdempotentPartner) -> Product:
    assert django_settings.PARTNER_ALLOW_HTTP is True
    seller = SellerFactory(name="Credits Shop")
    product = ProductFactory(
        seller=seller,
        slug="e2e-game-credits",
        title="Game Credits",
        currency="USD",
        delivery_type=DeliveryType.PARTNER_API,
        delivery_content="",
        delivery_options={"partner": {"url": partner.url, "secret": PARTNER_SECRET}},
    )
    VariantFactory(product=product, name="1000 credits", price=999)
    return product


@pytest.fixture
def worker_transport_options() -> dict[str, Any]:
    """On Redis: a short visibility timeout, checked every second, and unacknowledged-message keys of
    this test's own — so that the restarted worker restores only this test's message, never one that
    another run's worker on the same Redis database is still working on."""
    if not broker_is_redis():
        return {}
    tag = f"e2e-crash-{uuid.uuid4().hex[:10]}"
    return {
        "visibility_timeout": VISIBILITY_TIMEOUT,
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
        "unacked_key": f"{tag}-unacked",
        "unacked_index_key": f"{tag}-unacked_index",
        "unacked_mutex_key": f"{tag}-unacked_mutex",
    }


@pytest.fixture
def redis_client(worker_transport_options: dict[str, Any]) -> Iterator[redis.Redis | None]:
    if not broker_is_redis():
        yield None
        return
    client = redis.Redis.from_url(str(celery_app.conf.broker_url))
    try:
        yield client
    finally:
        client.delete(
            *(worker_transport_options[key] for key in ("unacked_key", "unacked_index_key", "unacked_mutex_key"))
        )
        client.close()


# --- Helpers -----------------------------------------------------------------------------------------


def pay_for_two_units(site: Any, product: Product) -> str:
    """Checks out two units over the API and pays on the sandbox's page; returns the order id."""
    response = site.http.post(
        site.api(f"/api/v1/public/checkout/{product.slug}/pay"),
        json={"buyer_email": "gamer@example.com", "quantity": 2},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    order = response.json()["data"]
    assert (order["status"], order["total_amount"], order["currency"]) == ("pending", 1998, "USD")
    success_url = choose_on_sandbox(site, order["payment"]["redirect_url"], "succeeded")
    assert success_url == f"{site.url}/c/{product.slug}/orders/{order['id']}"
    return str(order["id"])


def task_ran(worker: CeleryWorker, task_id: str) -> bool:
    return f"Task {FULFIL}[{task_id}] received" in worker.log_text()


def queued_message_files(queue: str) -> list[str]:
    folder = Path(str((celery_app.conf.broker_transport_options or {})["data_folder_in"]))
    return sorted(p.name for p in folder.iterdir() if p.name.partition(".")[2] == f"{queue}.msg")


def recovery_state(queue: str, client: redis.Redis | None, options: dict[str, Any]) -> str:
    """What the broker holds for this test's queue: for a task that never came back."""
    if client is None:
        return f"queued message files: {queued_message_files(queue)}"
    now = time.time()
    rows = cast(list[tuple[bytes, float]], client.zrange(options["unacked_index_key"], 0, -1, withscores=True))
    unacked = [(tag.decode(), round(now - score, 1)) for tag, score in rows]
    return (
        f"waiting in {queue}: {client.llen(queue)}; unacked (tag, age in s): {unacked}; "
        f"unacked hash: {client.hlen(options['unacked_key'])}; "
        f"restore mutex held: {bool(client.exists(options['unacked_mutex_key']))} "
        f"(ttl {client.ttl(options['unacked_mutex_key'])} s); {FLUSHED_HINT}"
    )


def sweep_until_requeued(order_id: str, timeout: float = 15.0) -> None:
    """What beat's ``sweep_orders`` does, until the order counts as stuck (untouched for 1 s)."""
    deadline = time.monotonic() + timeout
    while True:
        result = orders_sweep()
        if result.requeued:
            assert result.requeued == [order_id]
            assert (result.cancelled, result.paid) == ([], [])
            return
        assert time.monotonic() < deadline, f"the sweeper never re-queued {order_id}"
        time.sleep(0.25)


# --- The test ----------------------------------------------------------------------------------------


def test_worker_killed_mid_delivery_ends_delivered_exactly_once(
    e2e_site: Any,
    worker_launcher: WorkerLauncher,
    partner: IdempotentPartner,
    partner_product: Product,
    worker_transport_options: dict[str, Any],
    redis_client: redis.Redis | None,
    settings: Any,
) -> None:
    first_worker = e2e_site.worker
    order_id = pay_for_two_units(e2e_site, partner_product)
    [webhook] = WebhookEvent.objects.filter(gateway="sandbox")
    assert (webhook.type, webhook.status) == ("payment.succeeded", WebhookEvent.Status.PROCESSED)
    [published] = first_worker.published_for(FULFIL, order_id)
    assert published["routing_key"] == worker_launcher.queue

    # The worker is inside the delivery: it took the task and is waiting for unit 1's code.
    assert partner.first_request.wait(30), f"the partner was never asked:\n{first_worker.log_text()}"
    [item] = Order.objects.get(pk=order_id).items.all()
    unit_1, unit_2 = f"{item.id}-1", f"{item.id}-2"
    assert partner.keys == [unit_1]
    assert task_ran(first_worker, published["id"])
    if redis_client is not None:  # taken, not acknowledged: the message is the broker's unacked set
        assert redis_client.hlen(worker_transport_options["unacked_key"]) == 1, FLUSHED_HINT

    # Killed mid-delivery, with SIGKILL.
    assert first_worker.kill() == -signal.SIGKILL
    assert f"Task {FULFIL}[{published['id']}] succeeded" not in first_worker.log_text()
    stored = Order.objects.get(pk=order_id)
    assert stored.status == "paid" and stored.dispatched_email is False
    assert Code.objects.filter(order_item_id=item.id).count() == 0
    partner.release()  # the held request answers a dead socket; every later request answers at once

    if redis_client is not None:
        # Recovery by redelivery: still unacknowledged after the crash, nothing waiting in the queue.
        assert redis_client.hlen(worker_transport_options["unacked_key"]) == 1, FLUSHED_HINT
        assert redis_client.llen(worker_launcher.queue) == 0
        second_worker = worker_launcher.start()
    else:
        # Recovery by the sweeper: the filesystem transport removed the message when it was taken.
        assert queued_message_files(worker_launcher.queue) == []
        second_worker = worker_launcher.start()
        settings.SWEEP_STUCK_AFTER_SECONDS = 1
        sweep_until_requeued(order_id)

    try:
        delivered = poll_order(e2e_site, partner_product.slug, order_id, until="delivered", timeout=30)
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}\n{recovery_state(worker_launcher.queue, redis_client, worker_transport_options)}"
        ) from None

    # Which path recovered it.
    fulfill_tasks = first_worker.published_for(FULFIL, order_id)
    if redis_client is not None:
        assert fulfill_tasks == [published]  # sent once: the broker gave the same message back
        recovered_id = published["id"]
        assert redis_client.hlen(worker_transport_options["unacked_key"]) == 0
    else:
        assert len(fulfill_tasks) == 2 and fulfill_tasks[0] == published  # the second came from the sweeper
        recovered_id = fulfill_tasks[1]["id"]
        assert recovered_id != published["id"]
        assert not task_ran(second_worker, published["id"])  # the lost message never came back
        assert not task_ran(first_worker, recovered_id)
    second_worker.wait_for_log(
        rf"Task {re.escape(FULFIL)}\[{re.escape(recovered_id)}\] succeeded in [\d.]+s: "
        r"'delivered'",
        timeout=10,
    )

    # The partner: asked for unit 1 twice (the killed attempt, then the new one) and unit 2 once,
    # one code issued per unit.
    assert partner.keys == [unit_1, unit_1, unit_2]
    assert set(partner.codes) == {unit_1, unit_2}
    expected_codes = [partner.codes[unit_1], partner.codes[unit_2]]

    # Stored: exactly one code per unit, the partner's, delivered; the buyer sees the same two.
    codes = list(Code.objects.filter(order_item_id=item.id).order_by("created_at", "id"))
    assert [c.code for c in codes] == expected_codes
    assert [(c.source, c.status, c.pin) for c in codes] == [(Code.Source.PARTNER, "DELIVERED", "4242")] * 2
    assert Code.objects.filter(seller_id=partner_product.seller_id).count() == 2
    assert delivered["voucher_codes"] == expected_codes
    [shown] = delivered["items"]
    assert (shown["quantity"], shown["fulfilled"], shown["fulfillment_status"]) == (2, True, "succeeded")

    # Delivered once, emailed once; the killed attempt left no trace (its transaction died with it).
    stored = Order.objects.get(pk=order_id)
    assert stored.status == "delivered"
    assert stored.dispatched_email is True and stored.email_sent_at is not None
    item.refresh_from_db()
    assert item.attempts == 1
    assert status_moves(order_id) == [("pending", "paid"), ("paid", "delivered")]
    types = list(OrderEvent.objects.filter(order_id=order_id).values_list("type", flat=True))
    assert types.count("email_sent") == 1
    assert types.count("item_fulfilled") == 1
    assert not {"item_failed", "email_failed"} & set(types)
