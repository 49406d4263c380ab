"""End-to-end fixtures: a live server, and a REAL Celery worker process sharing its database and broker.

The worker is started per test (``celery -A marketplace worker --pool=solo``) with
``CELERY_TASK_ALWAYS_EAGER=false`` and the test database's URL: the file SQLite test database on the
embedded default, or the ``test_...`` PostgreSQL database when ``DATABASE_URL`` is set.

The test process sends its tasks for real (eager mode off) to a queue of this test's own
(``e2e-<pid>-<random>``) that only this worker consumes: a development worker, or another e2e run
on the same broker (``var/broker`` or the same Redis database), can never take them. The queue is
purged before the worker starts, and deleted with its binding afterwards.

``worker_launcher`` starts more workers like the first on the same queue (a restart after
``CeleryWorker.kill()``, a SIGKILL); ``worker_transport_options`` gives them extra broker transport
options (a short Redis ``visibility_timeout``, say); ``worker_env`` extra environment variables (the
settings a test changed, e.g. a gateway's API base pointing at a local fake).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from celery.signals import after_task_publish
from django.conf import settings as django_settings
from django.db import connection

from catalog.models import Product
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory
from marketplace.celery import app as celery_app
from tests.e2e.browser import find_chromium

WORKER_READY_TIMEOUT = 60.0
READY_LINE = re.compile(r"\S+@\S+ ready\.")


# --- Reporting: attach the worker's log to a failing test's report ---------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    funcargs = getattr(item, "funcargs", {})
    launcher = funcargs.get("worker_launcher")
    worker = funcargs.get("live_worker")
    if worker is None:
        worker = getattr(funcargs.get("e2e_site"), "worker", None)
    workers = list(launcher.workers) if isinstance(launcher, WorkerLauncher) else []
    if isinstance(worker, CeleryWorker) and not any(each is worker for each in workers):
        workers.insert(0, worker)
    if report.failed and workers:
        for each in workers:
            report.sections.append((f"celery worker log ({each.log_path})", each.log_text() or "(empty)"))
        report.sections.append(("e2e broker state", broker_diagnostics(workers[0])))


# --- The worker --------------------------------------------------------------------------------------


def worker_database_url() -> str:
    """The URL of the database this test process really uses (the test database, after setup)."""
    db = connection.settings_dict
    name = str(db["NAME"])
    if db["ENGINE"] == "django.db.backends.sqlite3":
        if name == ":memory:" or name.startswith("file:") or "mode=memory" in name:
            pytest.fail(f"e2e tests need a file SQLite test database to share with the worker, not {name!r}")
        return f"sqlite:///{Path(name).resolve()}"
    if db["ENGINE"] == "django.db.backends.postgresql":
        user = quote(str(db.get("USER") or ""), safe="")
        password = quote(str(db.get("PASSWORD") or ""), safe="")
        credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = db.get("HOST") or "127.0.0.1"
        port = f":{db['PORT']}" if db.get("PORT") else ""
        return f"postgres://{credentials}{host}{port}/{quote(name, safe='')}"
    pytest.fail(f"e2e tests do not know how to hand database engine {db['ENGINE']} to the worker")


def purge_queue(queue: str) -> int:
    """Deletes every message waiting in ``queue`` on the test process's broker (filesystem or Redis)."""
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=3)
        return int(conn.default_channel.queue_purge(queue) or 0)


def delete_queue(queue: str) -> None:
    """Purges and unbinds the test's queue; on the filesystem broker also removes its exchange file."""
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=3)
        channel = conn.default_channel
        channel.queue_purge(queue)
        channel.queue_delete(queue)
    control = (celery_app.conf.broker_transport_options or {}).get("control_folder")
    if str(celery_app.conf.broker_url).startswith("filesystem") and control:
        (Path(str(control)) / f"{queue}.exchange").unlink(missing_ok=True)


def broker_diagnostics(worker: CeleryWorker) -> str:
    """What the test process published, and what is waiting on the broker: for a lost task."""
    lines = [
        f"published by the test process: {worker.published}",
        f"broker: {celery_app.conf.broker_url} {celery_app.conf.broker_transport_options}",
    ]
    options = celery_app.conf.broker_transport_options or {}
    if not str(celery_app.conf.broker_url).startswith("filesystem"):
        try:
            with celery_app.connection_for_write() as conn:
                waiting = conn.default_channel.client.llen(worker.queue)  # Redis: the queue is a list
            lines.append(f"waiting in {worker.queue}: {waiting}")
        except Exception as exc:  # noqa: BLE001 - diagnostics only
            lines.append(f"waiting in {worker.queue}: unknown ({exc!r})")
        return "\n".join(lines)
    for key in ("data_folder_in", "control_folder"):
        folder = Path(str(options.get(key, "control" if key == "control_folder" else "")))
        if not str(folder) or not folder.is_dir():
            lines.append(f"{key}: {folder} (missing)")
            continue
        lines.append(f"{key}: {folder.resolve()}: {sorted(p.name for p in folder.iterdir())}")
        if key == "control_folder":
            lines += [f"  {p.name}: {p.read_text()}" for p in sorted(folder.glob("*.exchange"))]
    return "\n".join(lines)


@dataclass
class CeleryWorker:
    process: subprocess.Popen[str]
    log_path: Path
    queue: str
    lines: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)
    published: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _pump(self) -> None:
        assert self.process.stdout is not None
        with self.log_path.open("w", encoding="utf-8") as log:
            for line in self.process.stdout:
                with self._lock:
                    self.lines.append(line)
                log.write(line)
                log.flush()
                if READY_LINE.search(line):
                    self.ready.set()

    def log_text(self) -> str:
        with self._lock:
            return "".join(self.lines)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.2):
            if self.process.poll() is not None:
                time.sleep(0.3)  # let the pump thread read the last lines
                raise RuntimeError(
                    f"The Celery worker exited with code {self.process.returncode} before it was ready.\n"
                    f"--- worker log ---\n{self.log_text()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"The Celery worker was not ready after {timeout:.0f}s.\n--- worker log ---\n{self.log_text()}"
                )

    def wait_for_log(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            found = regex.search(self.log_text())
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not in the worker log after {timeout:.0f}s:\n{self.log_text()}")
            time.sleep(0.1)

    def published_for(self, task_name: str, order_id: str | None = None) -> list[dict[str, Any]]:
        return [p for p in self.published if p["task"] == task_name and (order_id is None or order_id in p["argsrepr"])]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # warm shutdown: finishes the task at hand
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def kill(self) -> int:
        """Kills the worker with SIGKILL, as a crash or the OOM killer would: no warm shutdown, no
        acknowledgement, no clean-up of any kind. Returns the process's exit status (``-SIGKILL``)."""
        os.kill(self.process.pid, signal.SIGKILL)
        returncode = self.process.wait(timeout=10)
        time.sleep(0.2)  # let the pump thread read the last lines
        return returncode


@dataclass
class WorkerLauncher:
    """Starts worker processes for one test, all alike: same command, environment, database and queue.

    ``live_worker`` is the first; a test that kills it starts the next with :meth:`start`.
    """

    command: list[str]
    env: dict[str, str]
    run_dir: Path
    queue: str
    test_name: str
    published: list[dict[str, Any]] = field(default_factory=list)
    workers: list[CeleryWorker] = field(default_factory=list)
    _pumps: list[threading.Thread] = field(default_factory=list)

    def start(self) -> CeleryWorker:
        number = len(self.workers) + 1
        suffix = "" if number == 1 else f"-{number}"
        # The worker runs in var/e2e, so that anything it writes relative to its working directory stays
        # out of the source tree.
        process = subprocess.Popen(  # noqa: S603 - a fixed command line
            self.command,
            cwd=self.run_dir,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        worker = CeleryWorker(
            process=process,
            log_path=self.run_dir / f"worker-{self.test_name}{suffix}.log",
            queue=self.queue,
            published=self.published,
        )
        self.workers.append(worker)
        pump = threading.Thread(target=worker._pump, name=f"celery-worker-log-{number}", daemon=True)
        pump.start()
        self._pumps.append(pump)
        worker.wait_ready(WORKER_READY_TIMEOUT)
        return worker

    def stop_all(self) -> None:
        for worker in self.workers:
            worker.stop()
        for pump in self._pumps:
            pump.join(timeout=5)


@pytest.fixture
def worker_transport_options() -> dict[str, Any]:
    """Broker transport options the test's workers get on top of the project's (none by default).

    Override it in a test module, e.g. for a short Redis ``visibility_timeout``. Only the workers get
    them; the test process publishes with the project's own.
    """
    return {}


@pytest.fixture
def worker_env() -> dict[str, str]:
    """Environment variables the test's workers get on top of the e2e ones (none by default).

    Override it in a test module to hand the workers the settings the test changed in its own
    process (``settings`` only changes this one), e.g. ``STRIPE_API_BASE`` of a local fake.
    """
    return {}


@pytest.fixture
def worker_launcher(
    request: pytest.FixtureRequest,
    transactional_db: None,
    live_server: Any,
    settings: Any,
    worker_transport_options: dict[str, Any],
    worker_env: dict[str, str],
) -> Iterator[WorkerLauncher]:
    """Prepares this test's queue and worker command line; stops every worker it started afterwards.

    Depends on ``transactional_db``, so its workers are stopped before the database is flushed (and,
    on PostgreSQL, before the test database is dropped).
    """
    var_dir = Path(django_settings.VAR_DIR)
    run_dir = var_dir / "e2e"
    run_dir.mkdir(parents=True, exist_ok=True)
    broker_url = str(celery_app.conf.broker_url)

    # The test process sends for real, to this test's queue only.
    queue = f"e2e-{os.getpid()}-{uuid.uuid4().hex[:10]}"
    # Saved before the setting changes: Celery's configuration reads Django's settings, so saving
    # afterwards would "restore" eager mode as off for every later test in this run.
    saved_conf = {key: celery_app.conf.get(key) for key in ("task_always_eager", "task_default_queue")}
    settings.CELERY_TASK_ALWAYS_EAGER = False
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_default_queue = queue
    purge_queue(queue)

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "marketplace.settings.test",
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "DATABASE_URL": worker_database_url(),
        "CELERY_BROKER_URL": broker_url,
        "VAR_DIR": str(var_dir),
        "SITE_URL": live_server.url,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(django_settings.BASE_DIR), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "INFO",
    }
    if django_settings.REDIS_URL:
        env["REDIS_URL"] = django_settings.REDIS_URL
    env.update(worker_env)
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "marketplace",
        "worker",
        "--pool=solo",
        "--loglevel=INFO",
        "-Q",
        queue,
        "-n",
        f"{queue}@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        # No remote control: nothing here broadcasts to it, and no pidbox binding is left behind.
        "worker.enable_remote_control=false",
    ]
    if worker_transport_options:
        # Celery's command-line configuration (``key=(json)value``) replaces the whole setting.
        options = {**(celery_app.conf.broker_transport_options or {}), **worker_transport_options}
        command.append(f"broker.transport_options=(json){json.dumps(options, sort_keys=True)}")
    safe_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:120]
    launcher = WorkerLauncher(command=command, env=env, run_dir=run_dir, queue=queue, test_name=safe_name)

    def on_publish(sender: Any = None, headers: dict[str, Any] | None = None, routing_key: str = "", **_: Any) -> None:
        headers = headers or {}
        launcher.published.append(
            {
                "task": headers.get("task", sender),
                "id": headers.get("id"),
                "argsrepr": str(headers.get("argsrepr", "")),
                "routing_key": routing_key,
            }
        )

    after_task_publish.connect(on_publish, weak=False)
    try:
        yield launcher
    finally:
        after_task_publish.disconnect(on_publish)
        launcher.stop_all()
        for key, value in saved_conf.items():
            celery_app.conf[key] = value
        try:
            delete_queue(queue)
        except Exception as exc:  # noqa: BLE001 - a clean-up failure must not hide the test's own result
            print(f"e2e: could not delete the queue {queue}: {exc!r}", file=sys.stderr)


@pytest.fixture
def live_worker(worker_launcher: WorkerLauncher) -> CeleryWorker:
    """A real Celery worker process on the test database and broker; tasks from this process go to it."""
    return worker_launcher.start()


# --- The browser -------------------------------------------------------------------------------------


@pytest.fixture
def chromium_path() -> str:
    """Chromium's executable, checked before anything is started: skip (or fail with
    ``REQUIRE_BROWSER=1``) without it or without playwright. Ask for it first, so that nothing (the
    worker) is started before; ``tests.e2e.browser.open_page`` opens a page with it."""
    return find_chromium()


# --- The site ---------------------------------------------------------------------------------------


@dataclass
class E2ESite:
    url: str
    worker: CeleryWorker
    http: requests.Session

    def api(self, path: str) -> str:
        return f"{self.url}{path}"


def wait_for_other_sessions_to_close(timeout: float = 10.0) -> None:
    """PostgreSQL drops the test database only when no one else is connected to it: waits until the
    live server's request threads (and the stopped worker) have closed their connections."""
    if connection.vendor != "postgresql":
        return
    deadline = time.monotonic() + timeout
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid, state, left(query, 120) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            others = cursor.fetchall()
        if not others:
            return
        if time.monotonic() > deadline:
            print(f"e2e: sessions still open on the test database: {others}", file=sys.stderr)
            return
        time.sleep(0.1)


@pytest.fixture
def e2e_site(live_server: Any, settings: Any, live_worker: CeleryWorker) -> Iterator[E2ESite]:
    """The live server configured as the outside world sees it: absolute URLs point at it, and the
    sandbox gateway talks to the marketplace over HTTP (webhooks and re-verification)."""
    settings.SITE_URL = live_server.url
    settings.SANDBOX_WEBHOOK_URL = f"{live_server.url}/api/v1/payments/webhooks/sandbox"
    settings.SANDBOX_API_URL = live_server.url
    # The live server's request threads close their database connection after each request (they
    # keep it for CONN_MAX_AGE otherwise, for as long as a client keeps its HTTP connection alive),
    # so that nothing holds the PostgreSQL test database open when it is dropped.
    db_settings = connection.settings_dict
    saved_max_age = db_settings.get("CONN_MAX_AGE", 0)
    db_settings["CONN_MAX_AGE"] = 0
    try:
        with requests.Session() as http:
            yield E2ESite(url=live_server.url, worker=live_worker, http=http)
    finally:
        db_settings["CONN_MAX_AGE"] = saved_max_age
        wait_for_other_sessions_to_close()


@pytest.fixture
def text_product(transactional_db: None) -> Product:
    seller = SellerFactory(name="Ada's Shop")
    product = ProductFactory(
        seller=seller,
        slug="e2e-secret-text",
        title="Secret Text",
        currency="USD",
        description="A shared secret, delivered the moment you pay.",
        delivery_content="The secret is OPEN-SESAME-E2E",
    )
    VariantFactory(product=product, name="Standard", price=1999)
    return product
