"""The broker goes away while payments arrive, and comes back: nothing is lost, nothing is doubled.

PostgreSQL + Redis pass only: the embedded broker is a folder on the same disk as everything else,
which cannot become unreachable on its own.

The test runs a private ``redis-server`` (a free port, a temporary folder, append-only file on, as a
broker's Redis would be configured) and points the live server and the worker at it — never at the
shared Redis other tests use. While it is stopped, for ``RELIABILITY_BROKER_OUTAGE_SECONDS`` (3 s by
default, to keep CI fast; the campaign's minute is ``RELIABILITY_BROKER_OUTAGE_SECONDS=60``), the
gateway's signed webhooks keep arriving and a buyer checks out:

- ``/readyz`` answers 503 naming the broker, then 200 once it is back;
- each webhook is either acknowledged (2xx: stored and processed, the order paid) or refused with a
  clean 503 in the API's envelope, which a gateway retries — never a 500;
- after the broker is back, the refused ones are sent again (as the gateway would), the sweeper
  (``orders_sweep``, beat's ``sweep_orders``, run here with ``SWEEP_STUCK_AFTER_SECONDS = 1``) queues
  what the outage kept from being queued, and every paid order is delivered exactly once: one
  ``paid → delivered`` move, one email.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from marketplace.celery import app as celery_app
from orders.models import Order, OrderEvent
from orders.services import orders_sweep
from payments.models import WebhookEvent
from tests.e2e.test_buyer_journey import status_moves
from tests.reliability.conftest import (
    AppServer,
    Site,
    envelope_error,
    mail_to,
    paid_at_gateway,
    reliability_worker_env,
    signed_payment_event,
)

OUTAGE_SECONDS = float(os.environ.get("RELIABILITY_BROKER_OUTAGE_SECONDS", "3"))
REDIS_SERVER = os.environ.get("REDIS_SERVER", "redis-server")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not str(celery_app.conf.broker_url).startswith("redis://"),
        reason="needs Redis as the broker (the PostgreSQL + Redis pass): the embedded filesystem broker "
        "is a local folder that cannot become unreachable",
    ),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PrivateRedis:
    """A ``redis-server`` of this test's own, stopped and started again on the same port and data."""

    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.folder / "redis.log").open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - a fixed command line
            [
                *(REDIS_SERVER, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.folder)),
                *("--appendonly", "yes", "--appendfsync", "always", "--save", ""),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                assert self.process.poll() is None, (self.folder / "redis.log").read_text()
                assert time.monotonic() < deadline, "the private redis-server did not answer in 10 s"
                time.sleep(0.05)
            finally:
                client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: Redis shuts down cleanly, its append-only file synced
            self.process.wait(timeout=10)


def forget_broker_connections() -> None:
    """The test process's Celery keeps a pool of broker connections (and producers) made for the URL
    of its first use: drop them, so that the next task is sent to the broker the settings name now."""
    celery_app._pool = None
    amqp = celery_app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    folder = tmp_path / "redis"
    folder.mkdir()
    server = PrivateRedis(folder=folder)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def broker(private_redis: PrivateRedis, settings: Any) -> Iterator[PrivateRedis]:
    """The live server's Celery sends to the private Redis (its settings are read at each use)."""
    settings.CELERY_BROKER_URL = private_redis.url
    forget_broker_connections()
    assert celery_app.conf.broker_url == private_redis.url
    yield private_redis
    forget_broker_connections()


@pytest.fixture
def worker_env(app_server: AppServer, mail_dir: Path, broker: PrivateRedis) -> dict[str, str]:
    """Asked for by ``worker_launcher``: so the broker is switched before the worker is started (the
    launcher hands it ``celery_app.conf.broker_url``), and switched back only after it stopped."""
    return reliability_worker_env(app_server, mail_dir)


def readyz(site: Site) -> requests.Response:
    return requests.get(f"{site.url}/readyz", timeout=30)


def test_payments_during_a_broker_outage_are_delivered_once_it_is_back(
    site: Site, text_product: Any, broker: PrivateRedis, settings: Any
) -> None:
    assert f":{broker.port}/" in site.worker.log_text()  # the worker consumes from the private Redis
    buyers = [f"outage{n}@example.com" for n in range(6)]
    orders = {}
    for email in buyers[:5]:
        created = site.checkout(text_product, email)
        assert created.status_code == 201, created.text
        orders[email] = created.json()["data"]
        paid_at_gateway(orders[email]["payment"]["id"])
    events = {email: signed_payment_event(order, f"evt_outage_{n}") for n, (email, order) in enumerate(orders.items())}

    # Before: the first payment is queued and delivered as usual.
    first = buyers[0]
    assert site.post_webhook(*events[first]).status_code == 200
    site.wait_for_status(text_product.slug, [orders[first]["id"]], "delivered", timeout=30)
    assert readyz(site).status_code == 200

    # The broker goes away.
    broker.stop()
    down = readyz(site)
    assert down.status_code == 503, down.text
    error = envelope_error(down)
    assert error["dependency"] == "broker"
    assert error["checks"] == {**error["checks"], "database": "ok", "cache": "ok", "broker": "down"}
    answers: dict[str, requests.Response] = {}
    during = buyers[1:5]
    pause = OUTAGE_SECONDS / (len(during) + 1)
    for email in during:
        answers[email] = site.post_webhook(*events[email])
        time.sleep(pause)
    latecomer = site.checkout(text_product, buyers[5])  # nothing is queued at checkout: still sells
    assert latecomer.status_code == 201, latecomer.text
    orders[buyers[5]] = latecomer.json()["data"]
    time.sleep(pause)
    assert readyz(site).status_code == 503

    # Each webhook was either taken (2xx: stored, processed, the order paid) or refused cleanly (503).
    refused = []
    for email, answer in answers.items():
        assert answer.status_code in (200, 503), f"{email}: {answer.status_code} {answer.text}"
        stored = WebhookEvent.objects.filter(event_id=answer.request.headers["webhook-id"].removeprefix("msg_"))
        if answer.status_code == 200:
            assert stored.get().status == WebhookEvent.Status.PROCESSED
            assert Order.objects.get(pk=orders[email]["id"]).status == "paid"
        else:
            assert envelope_error(answer)["code"] == "service_unavailable", answer.text
            refused.append(email)

    # The broker is back; the gateway sends again what was refused, and the last buyer pays.
    broker.start()
    deadline = time.monotonic() + 20
    while (back := readyz(site)).status_code != 200:
        assert time.monotonic() < deadline, back.text
        time.sleep(0.2)
    assert set(back.json()["checks"].values()) == {"ok"} and "broker" in back.json()["checks"]
    for email in refused:
        assert site.post_webhook(*events[email]).status_code == 200
    last = buyers[5]
    paid_at_gateway(orders[last]["payment"]["id"])
    events[last] = signed_payment_event(orders[last], "evt_outage_5")
    assert site.post_webhook(*events[last]).status_code == 200

    # The sweeper finds what the outage kept from being queued; the worker delivers everything.
    settings.SWEEP_STUCK_AFTER_SECONDS = 1
    order_ids = [orders[email]["id"] for email in buyers]
    deadline = time.monotonic() + 60
    while Order.objects.filter(id__in=order_ids).exclude(status="delivered").exists():
        assert time.monotonic() < deadline, dict(Order.objects.filter(id__in=order_ids).values_list("id", "status"))
        orders_sweep()
        time.sleep(1)

    # Exactly once: one stored event per payment, one paid → delivered, one email each.
    assert WebhookEvent.objects.count() == len(buyers)
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {WebhookEvent.Status.PROCESSED}
    for email in buyers:
        order_id = orders[email]["id"]
        assert status_moves(order_id) == [("pending", "paid"), ("paid", "delivered")], email
        assert OrderEvent.objects.filter(order_id=order_id, type="email_sent").count() == 1, email
        assert len(mail_to(site.mail_dir, email)) == 1, email
