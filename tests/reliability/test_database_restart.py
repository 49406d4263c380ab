"""The database drops every connection while the app is idle (a restart, a failover): the app and
the worker carry on without a restart of their own.

PostgreSQL pass only (SQLite is a file each process opens; there is no server to restart). The test
ends every backend of the test database but its own with ``pg_terminate_backend`` — what a server
restart does to them — while the app's request threads and the worker hold persistent connections
(``CONN_MAX_AGE``). With ``CONN_HEALTH_CHECKS`` (marketplace/settings/base.py) each checks its
connection before the first query of a request or task and opens a new one: every next request
succeeds, and the next payment is delivered by the same worker, on its first attempt.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from django.conf import settings
from django.db import connection

from orders.models import Order
from tests.reliability.conftest import Site, mail_to, paid_at_gateway, signed_payment_event

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="needs PostgreSQL (the PostgreSQL + Redis pass): SQLite has no server whose connections can drop",
    ),
]

FULFIL = "orders.tasks.fulfil_order"


def other_backends() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [row[0] for row in cursor.fetchall()]


def terminate_other_backends() -> list[int]:
    """Ends every other session on the test database, as a restart of the server would."""
    pids = other_backends()
    with connection.cursor() as cursor:
        for pid in pids:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    deadline = time.monotonic() + 10
    while set(other_backends()) & set(pids):
        assert time.monotonic() < deadline, "terminated sessions are still there after 10 s"
        time.sleep(0.05)
    return pids


def buy_and_pay(site: Site, product: Any, email: str, event_id: str) -> str:
    created = site.checkout(product, email)
    assert created.status_code == 201, created.text
    order = created.json()["data"]
    paid_at_gateway(order["payment"]["id"])
    paid = site.post_webhook(*signed_payment_event(order, event_id))
    assert paid.status_code == 200, paid.text
    return str(order["id"])


def test_the_app_and_the_worker_recover_when_the_database_drops_their_connections(
    site: Site, text_product: Any
) -> None:
    before = buy_and_pay(site, text_product, "before@example.com", "evt_db_before")
    site.wait_for_status(text_product.slug, [before], "delivered", timeout=30)
    product_url = site.api(f"/api/v1/public/checkout/{text_product.slug}")

    def read_product(_: int) -> int:
        return requests.get(product_url, timeout=30).status_code

    # Every request thread of the app holds a connection, and so does the worker (it just delivered).
    rounds = 3 * site.app_threads
    with ThreadPoolExecutor(max_workers=site.app_threads) as pool:
        assert Counter(pool.map(read_product, range(rounds))) == Counter({200: rounds})
    held = other_backends()
    assert len(held) >= 2, held

    terminated = terminate_other_backends()
    assert set(held) <= set(terminated)

    # The next requests all succeed: each thread notices its dead connection and opens a new one.
    with ThreadPoolExecutor(max_workers=site.app_threads) as pool:
        answers = Counter(pool.map(read_product, range(rounds)))
    assert answers == Counter({200: rounds}), answers
    ready = requests.get(site.api("/readyz"), timeout=30)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["database"] == "ok"

    # The worker too: the next payment is delivered by it, on the task's first attempt, without the sweeper.
    after = buy_and_pay(site, text_product, "after@example.com", "evt_db_after")
    site.wait_for_status(text_product.slug, [after], "delivered", timeout=30)
    [published] = site.worker.published_for(FULFIL, after)
    site.worker.wait_for_log(rf"Task {re.escape(FULFIL)}\[{re.escape(published['id'])}\] succeeded", timeout=10)
    assert "raised unexpected" not in site.worker.log_text()
    assert Order.objects.get(pk=after).status == "delivered"
    assert len(mail_to(site.mail_dir, "after@example.com")) == 1
