"""Reliability fixtures: the app behind a server shaped like production's, a separate gateway host, a
real Celery worker, and the worker's sent mail on disk.

The worker comes from the e2e fixtures (``worker_launcher``, ``live_worker``, ``CeleryWorker.kill()``),
imported here, so both folders use one implementation.

- ``app_server`` — the marketplace as buyers, gateways and sellers reach it: a WSGI server with a
  fixed pool of request threads (``RELIABILITY_SERVER_THREADS``, default 12), each keeping its
  database connection between requests for ``CONN_MAX_AGE`` with ``CONN_HEALTH_CHECKS`` — what
  gunicorn's threaded workers do. Every connection is accepted at once and waits for a free thread, so
  200 buyers at once queue instead of opening 200 database connections (PostgreSQL allows 100, and
  other test runs share them). It answers one request per connection (``Connection: close``).
- ``pytest-django``'s ``live_server`` plays the sandbox gateway's host: its pay pages and its status
  API, which the app calls to re-verify a webhook. On a separate server, a re-verification never
  waits for a request thread of the app it was called from.
- The worker sends mail with the file backend into ``mail_dir``; :func:`sent_mail` reads it.
"""

from __future__ import annotations

import email
import json
import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import requests
from django.core.handlers.wsgi import WSGIHandler
from django.core.servers.basehttp import WSGIServer
from django.db import connection, connections
from django.test.testcases import QuietWSGIRequestHandler

from catalog.models import DeliveryType, Product
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory
from payments.models import SandboxPayment
from payments.sandbox_server.server import sign_event
from tests.e2e import conftest as e2e
from tests.e2e.conftest import CeleryWorker, WorkerLauncher, wait_for_other_sessions_to_close

# The e2e fixtures and report hook (the worker's log on a failing test's report), shared with tests/e2e.
live_worker = e2e.live_worker
worker_launcher = e2e.worker_launcher
worker_transport_options = e2e.worker_transport_options
pytest_runtest_makereport = e2e.pytest_runtest_makereport

SERVER_THREADS = int(os.environ.get("RELIABILITY_SERVER_THREADS", "12"))
APP_CONN_MAX_AGE = 60  # the production default (marketplace.settings.base)


# --- The app's server -------------------------------------------------------------------------------


class PooledWSGIServer(WSGIServer):
    """Accepts every connection at once and hands it to a fixed pool of request threads."""

    request_queue_size = 512

    def __init__(self, *args: Any, threads: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._waiting: queue.Queue[tuple[Any, Any] | None] = queue.Queue()
        self._pool = [
            threading.Thread(target=self._serve_waiting, name=f"app-request-{n}", daemon=True) for n in range(threads)
        ]
        for thread in self._pool:
            thread.start()

    def process_request(self, request: Any, client_address: Any) -> None:  # socketserver's hook
        self._waiting.put((request, client_address))

    def _serve_waiting(self) -> None:
        try:
            while (item := self._waiting.get()) is not None:
                request, client_address = item
                try:
                    self.finish_request(request, client_address)
                except Exception:  # noqa: BLE001 - socketserver's own contract: report and go on
                    self.handle_error(request, client_address)
                finally:
                    self.shutdown_request(request)
        finally:
            connections.close_all()  # this thread's persistent database connection

    def stop_pool(self) -> None:
        for _ in self._pool:
            self._waiting.put(None)
        for thread in self._pool:
            thread.join(timeout=30)


@dataclass
class AppServer:
    url: str
    server: PooledWSGIServer
    thread: threading.Thread
    threads: int

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.server.stop_pool()
        self.thread.join(timeout=10)


@pytest.fixture
def app_server(transactional_db: None) -> Iterator[AppServer]:
    """The marketplace on a pooled server (see the module's docstring). Depends on ``transactional_db``
    so that its threads' connections are closed before the database is flushed."""
    db_settings = connection.settings_dict
    saved_max_age = db_settings.get("CONN_MAX_AGE", 0)
    db_settings["CONN_MAX_AGE"] = APP_CONN_MAX_AGE
    server = PooledWSGIServer(("127.0.0.1", 0), QuietWSGIRequestHandler, threads=SERVER_THREADS)
    server.set_app(WSGIHandler())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="app-server")
    thread.start()
    app = AppServer(
        url=f"http://127.0.0.1:{server.server_address[1]}", server=server, thread=thread, threads=SERVER_THREADS
    )
    try:
        yield app
    finally:
        app.stop()
        db_settings["CONN_MAX_AGE"] = saved_max_age
        connection.close()
        wait_for_other_sessions_to_close()


# --- The worker's mail --------------------------------------------------------------------------------


@pytest.fixture
def mail_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "mail"
    folder.mkdir()
    return folder


def sent_mail(folder: Path) -> list[Message]:
    """Every message the worker sent (the file backend writes each one, then a line of 79 dashes)."""
    messages: list[Message] = []
    for path in sorted(folder.glob("*.log")):
        for chunk in path.read_bytes().split(b"\n" + b"-" * 79 + b"\n"):
            if chunk.strip():
                messages.append(email.message_from_bytes(chunk))
    return messages


def mail_to(folder: Path, address: str) -> list[Message]:
    return [m for m in sent_mail(folder) if m["To"] == address]


def text_of(message: Message) -> str:
    """The plain-text part of a message, decoded."""
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError(f"no text/plain part in {message['Subject']!r}")


def reliability_worker_env(app_server: AppServer, mail_dir: Path) -> dict[str, str]:
    """The worker's settings (its mail on disk) and the app's public URL for the links it sends."""
    return {
        "DJANGO_SETTINGS_MODULE": "tests.reliability.worker_settings",
        "RELIABILITY_MAIL_DIR": str(mail_dir),
        "SITE_URL": app_server.url,
    }


@pytest.fixture
def worker_env(app_server: AppServer, mail_dir: Path) -> dict[str, str]:
    return reliability_worker_env(app_server, mail_dir)


# --- The site ---------------------------------------------------------------------------------------


@dataclass
class Site:
    url: str  # the marketplace
    gateway_url: str  # the sandbox gateway's host
    worker: CeleryWorker
    launcher: WorkerLauncher
    mail_dir: Path
    http: requests.Session
    app_threads: int  # the app server's request threads

    def api(self, path: str) -> str:
        return f"{self.url}{path}"

    def checkout(self, product: Product, email: str, **extra: Any) -> requests.Response:
        return requests.post(
            self.api(f"/api/v1/public/checkout/{product.slug}/pay"),
            json={"buyer_email": email, "quantity": 1, **extra},
            timeout=60,
        )

    def order(self, slug: str, order_id: str) -> dict[str, Any]:
        response = self.http.get(self.api(f"/api/v1/public/checkout/{slug}/order/{order_id}"), timeout=30)
        assert response.status_code == 200, response.text
        return dict(response.json()["data"])

    def post_webhook(self, body: bytes, headers: dict[str, str]) -> requests.Response:
        return requests.post(
            self.api("/api/v1/payments/webhooks/sandbox"),
            data=body,
            headers={**headers, "Content-Type": "application/json"},
            timeout=60,
        )

    def wait_for_status(self, slug: str, order_ids: list[str], status: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        from orders.models import Order

        while True:
            seen = dict(Order.objects.filter(id__in=order_ids).values_list("id", "status"))
            if all(seen.get(order_id) == status for order_id in order_ids):
                return
            if time.monotonic() > deadline:
                others = {k: v for k, v in seen.items() if v != status}
                raise AssertionError(f"{len(others)} of {len(order_ids)} orders never reached {status!r}: {others}")
            time.sleep(0.25)


@pytest.fixture
def site(
    app_server: AppServer,
    live_server: Any,
    settings: Any,
    live_worker: CeleryWorker,
    worker_launcher: WorkerLauncher,
    mail_dir: Path,
) -> Iterator[Site]:
    settings.SITE_URL = app_server.url
    settings.SANDBOX_WEBHOOK_URL = f"{app_server.url}/api/v1/payments/webhooks/sandbox"
    settings.SANDBOX_API_URL = live_server.url
    with requests.Session() as http:
        yield Site(
            url=app_server.url,
            gateway_url=live_server.url,
            worker=live_worker,
            launcher=worker_launcher,
            mail_dir=mail_dir,
            http=http,
            app_threads=app_server.threads,
        )


# --- Products and payments ----------------------------------------------------------------------------


@pytest.fixture
def text_product(transactional_db: None) -> Product:
    product = ProductFactory(
        seller=SellerFactory(name="Ada's Shop"),
        slug="reliable-text",
        title="Secret Text",
        currency="USD",
        delivery_type=DeliveryType.TEXT,
        delivery_content="The secret is RELIABLE",
    )
    VariantFactory(product=product, name="Standard", price=1999)
    return product


def paid_at_gateway(payment_id: str) -> None:
    """The buyer paid on the sandbox's page: the gateway's own ledger says so (its webhook is the
    test's to send)."""
    updated = SandboxPayment.objects.filter(id=payment_id, status="requires_payment").update(
        status="succeeded", charge_id=f"sbxch_{payment_id[-12:]}"
    )
    assert updated == 1


def signed_payment_event(order: dict[str, Any], event_id: str) -> tuple[bytes, dict[str, str]]:
    """The sandbox's signed ``payment.succeeded`` webhook for an order created over the API."""
    event = {
        "id": event_id,
        "type": "payment.succeeded",
        "data": {
            "payment_id": order["payment"]["id"],
            "order_id": order["id"],
            "amount": order["total_amount"],
            "currency": order["currency"],
        },
    }
    return sign_event(event)


def envelope_error(response: requests.Response) -> dict[str, Any]:
    body = json.loads(response.text)
    assert body["success"] is False, response.text
    return dict(body["error"])
