"""Starts and stops the real services of the service benchmarks: gunicorn serving the app and a
Celery worker, each a subprocess on 127.0.0.1 with a free port (gunicorn) and a queue of the run's
own (the worker), both on the throwaway database and on Redis, with ``bench.settings``.

Their output goes to log files in the run's temp folder; a service that does not come up within
its time limit stops the benchmark with the end of its log.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import ROOT

START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
WORKER_READY = re.compile(r"\S+@\S+ ready\.")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_env(**extra: str) -> dict[str, str]:
    """The benchmark process's environment (its ``DATABASE_URL`` is the throwaway database by now)
    with ``bench.settings`` and the project on the path."""
    from django.conf import settings

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
        "VAR_DIR": str(settings.VAR_DIR),
    }
    env.update(extra)
    return env


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)

    def fail(self, why: str) -> SystemExit:
        return SystemExit(f"{self.name}: {why}\n--- end of {self.log_path} ---\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # gunicorn and Celery: graceful shutdown
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _start(name: str, command: list[str], env: dict[str, str], log_path: Path) -> Service:
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - a fixed command line
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    return Service(name, process, log_path)


@dataclass
class Served:
    url: str  # the base URL
    pid: int  # gunicorn's master; its workers are its children


@contextmanager
def gunicorn(*, workdir: Path, workers: int, env: dict[str, str]) -> Iterator[Served]:
    """gunicorn with ``workers`` sync workers (its default worker class, as the Dockerfile runs it);
    yields its base URL and master's pid once ``/healthz`` answers."""
    import requests

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "marketplace.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--timeout",
        "60",
        "--backlog",
        "256",
    ]
    service = _start("gunicorn", command, {**env, "SITE_URL": url}, workdir / "gunicorn.log")
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if service.process.poll() is not None:
                raise service.fail(f"exited with code {service.process.returncode} before answering")
            try:
                if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise service.fail(f"/healthz did not answer within {START_TIMEOUT:.0f} s")
            time.sleep(0.2)
        yield Served(url, service.process.pid)
    finally:
        service.stop()


@contextmanager
def celery_worker(*, workdir: Path, queue: str, concurrency: int, env: dict[str, str]) -> Iterator[Service]:
    """A Celery worker (prefork, ``concurrency`` processes, as docker-compose runs it) on ``queue``
    only, with the benchmark's no-op task; yields once it logs that it is ready."""
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "marketplace",
        "worker",
        "--loglevel=INFO",
        f"--concurrency={concurrency}",
        "-Q",
        queue,
        "-n",
        f"{queue}@%h",
        "-I",
        "bench.tasks",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "worker.enable_remote_control=false",
    ]
    service = _start("celery worker", command, env, workdir / "worker.log")
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not WORKER_READY.search(service.log_tail(200)):
            if service.process.poll() is not None:
                raise service.fail(f"exited with code {service.process.returncode} before it was ready")
            if time.monotonic() > deadline:
                raise service.fail(f"not ready within {START_TIMEOUT:.0f} s")
            time.sleep(0.2)
        yield service
    finally:
        service.stop()


def delete_queue(queue: str) -> None:
    """Purges and deletes the run's queue on the broker (tasks nobody consumed must not linger)."""
    from marketplace.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=3)
        channel: Any = conn.default_channel
        channel.queue_purge(queue)
        channel.queue_delete(queue)


def use_services(default_database: str, default_redis: str) -> None:
    """Points the benchmark at PostgreSQL and Redis (the defaults unless ``DATABASE_URL`` and
    ``REDIS_URL`` are set) with ``bench.settings``; call before ``throwaway_database``."""
    os.environ.setdefault("DATABASE_URL", default_database)
    os.environ.setdefault("REDIS_URL", default_redis)
    if not os.environ["DATABASE_URL"].startswith("postgres"):
        raise SystemExit("This benchmark runs on PostgreSQL: set DATABASE_URL=postgres://…")
    os.environ.pop("CELERY_BROKER_URL", None)  # the broker is REDIS_URL's
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
