"""The production topology, started natively by ``scripts/topology.py``, sells one file end to end.

Production settings, gunicorn, a Celery worker and beat, PostgreSQL, Redis, S3 (moto) and SMTP
(aiosmtpd): a seller signs up, uploads a file to the bucket and lists it; a buyer checks out, presses
Pay on the sandbox page, the worker delivers, the buyer downloads the file through its signed S3
link and gets the email. The worker's JSON log line for the delivery carries the pay request's id
and the order. On SIGTERM the script stops every process and drops its database.
"""

from __future__ import annotations

import email
import json
import mailbox
import os
import queue
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import requests

BASE_DIR = Path(__file__).resolve().parents[2]
DATABASE_URL = os.environ.get("DATABASE_URL", "")
REDIS_URL = os.environ.get("REDIS_URL", "")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not (DATABASE_URL.startswith("postgres") and REDIS_URL),
        reason="the production topology needs PostgreSQL and Redis: it runs in the PostgreSQL + Redis pass",
    ),
]

READY_TIMEOUT = 90.0


def on_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@dataclass
class Running:
    process: subprocess.Popen[str]
    url: str
    run_dir: Path
    database: str
    pids: dict[str, int]
    output: list[str]

    def log(self, name: str) -> list[dict[str, Any]]:
        """The JSON lines of a process's log (gunicorn's and Celery's banners are not JSON)."""
        lines = []
        for line in (self.run_dir / f"{name}.log").read_text(errors="replace").splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
        return lines


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[Running]:
    run_dir = tmp_path / "topology"
    redis_url = urlunsplit(urlsplit(REDIS_URL)._replace(path="/12"))  # its own: the suite uses 15 and 14
    process = subprocess.Popen(  # noqa: S603 - a fixed command line
        [sys.executable, "scripts/topology.py", "--run-dir", str(run_dir), "--redis-url", redis_url,
         "--database-url", on_database(DATABASE_URL, "postgres"), "--ready-timeout", str(READY_TIMEOUT)],
        cwd=BASE_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL"}},
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    url = ""
    deadline = time.monotonic() + READY_TIMEOUT + 30
    try:
        while not url:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail("scripts/topology.py was not ready in time:\n" + "".join(output))
            found = re.match(r"topology: ready (\S+)", line)
            url = found.group(1) if found else ""
            if line.startswith("topology: failed") or process.poll() is not None and lines.empty() and not url:
                pytest.fail("scripts/topology.py failed:\n" + "".join(output))
        started = json.loads((run_dir / "topology.json").read_text())
        yield Running(process, url, run_dir, started["database"], started["pids"], output)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def test_one_purchase_through_the_production_topology(topology: Running) -> None:
    http = requests.Session()
    api = topology.url

    # The seller signs up, uploads a file (to the S3 bucket) and lists it.
    seller = {"email": "topology@seller.test", "password": "plum-orbit-lantern-42", "name": "Topo", "role": "seller"}
    assert http.post(f"{api}/api/v1/auth/register", json=seller, timeout=30).status_code == 201
    credentials = {"email": seller["email"], "password": seller["password"]}  # unknown fields are a 400
    token = http.post(f"{api}/api/v1/auth/token", json=credentials, timeout=30).json()["data"]["access"]
    auth = {"Authorization": f"Bearer {token}"}
    content = secrets.token_bytes(4096)
    uploaded = http.post(
        f"{api}/api/v1/uploads", files={"file": ("book.pdf", content, "application/pdf")}, headers=auth, timeout=30
    )
    assert uploaded.status_code == 201, uploaded.text
    product = http.post(
        f"{api}/api/v1/products",
        json={"title": "Topology Book", "price": 1250, "currency": "EUR", "status": "active",
              "delivery": {"content_type": "file", "content": uploaded.json()["data"]["url"]}},
        headers=auth, timeout=30,
    )  # fmt: skip
    assert product.status_code == 201, product.text
    slug = product.json()["data"]["slug"]

    # The buyer checks out and presses Pay on the sandbox's hosted page.
    order = http.post(
        f"{api}/api/v1/public/checkout/{slug}/pay", json={"buyer_email": "buyer@topology.test"}, timeout=30
    ).json()["data"]
    assert (order["status"], order["total_amount"], order["currency"]) == ("pending", 1250, "EUR")
    pay_url = order["payment"]["redirect_url"]
    assert pay_url.startswith(f"{api}/sandbox/pay/")
    page = http.get(pay_url, timeout=30)
    assert page.status_code == 200
    assert "Secure" in page.headers["Set-Cookie"]  # production cookies, even on plain HTTP
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert csrf is not None
    request_id = f"topology-pay-{secrets.token_hex(4)}"
    paid = http.post(
        pay_url,
        data={"outcome": "succeeded", "csrfmiddlewaretoken": csrf.group(1)},
        cookies={"csrftoken": str(page.cookies["csrftoken"])},  # a Secure cookie: requests keeps it off plain HTTP
        headers={"X-Request-ID": request_id, "Referer": pay_url},
        allow_redirects=False,
        timeout=60,
    )
    assert paid.status_code == 302, paid.text
    assert paid.headers["X-Request-ID"] == request_id

    # The worker delivers.
    deadline = time.monotonic() + 30
    while True:
        seen = http.get(f"{api}/api/v1/public/checkout/{slug}/order/{order['id']}", timeout=30).json()["data"]
        if seen["status"] == "delivered" or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert seen["status"] == "delivered", (seen["status"], "".join(topology.output))

    # The file comes back from the bucket through its signed link.
    resource = http.get(
        f"{api}/api/v1/orders/{order['id']}/resource", params={"item": seen["items"][0]["id"]},
        allow_redirects=False, timeout=30,
    )  # fmt: skip
    assert resource.status_code == 302, resource.text
    assert re.search(r"[?&](X-Amz-)?Signature=", resource.headers["Location"])
    assert http.get(resource.headers["Location"], timeout=30).content == content

    # The buyer's email went through SMTP.
    messages = [email.message_from_bytes(m.as_bytes()) for m in mailbox.Maildir(topology.run_dir / "mail").values()]
    assert [m["To"] for m in messages if "Topology Book" in str(m["Subject"])] == ["buyer@topology.test"]

    # JSON logs: the worker's delivery line carries the request that paid, and the order.
    delivered = [
        line for line in topology.log("worker")
        if line["logger"] == "orders.lifecycle" and line.get("to_status") == "delivered"
    ]  # fmt: skip
    assert len(delivered) == 1, topology.log("worker")
    # An order is named by its number: its id is the buyer's capability and is never logged.
    number = order["order_number"]
    assert (delivered[0]["request_id"], delivered[0]["order_number"]) == (request_id, number)
    assert delivered[0]["message"] == f"order {number}: paid -> delivered"
    web_paid = [line for line in topology.log("web") if line.get("to_status") == "paid"]
    assert [(line["request_id"], line["order_number"]) for line in web_paid] == [(request_id, number)]
    for service in ("web", "worker", "beat"):
        assert not [line for line in topology.log(service) if order["id"] in json.dumps(line)], service
    assert {line["level"] for line in topology.log("beat")} <= {"INFO", "WARNING"}

    # SIGTERM stops everything and drops the database.
    topology.process.send_signal(signal.SIGTERM)
    assert topology.process.wait(timeout=60) == 0, "".join(topology.output)
    assert not [name for name, pid in topology.pids.items() if alive(pid)]
    with psycopg.connect(on_database(DATABASE_URL, "postgres"), connect_timeout=5) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [topology.database]).fetchall()
    assert found == []
