"""The production topology, natively, on one machine without Docker: the processes of
``docker-compose.yml`` on PostgreSQL and Redis at 127.0.0.1, with a local S3 server (moto) and a
local SMTP sink (aiosmtpd) in place of MinIO and a mail relay.

    .venv/bin/python scripts/topology.py [--port 8010] [--database-url postgres://postgres@127.0.0.1:5432/postgres]
                                         [--redis-url redis://127.0.0.1:6379/10] [--run-dir var/topology]

It creates a fresh database (``topology_<random>``) on the server of ``--database-url``, generates
throwaway secrets, runs ``migrate`` and ``collectstatic`` with ``marketplace.settings.production``,
starts gunicorn (web), a Celery worker and Celery beat, waits until ``/readyz`` answers 200 and the
worker is ready, and prints ``topology: ready <url>``. Ctrl-C (or SIGTERM) stops every process,
the S3 and SMTP servers, and drops the database. Needs ``requirements-dev.txt`` (moto, aiosmtpd).

Plain HTTP on loopback: ``SECURE_SSL_REDIRECT=false``; cookies stay ``Secure`` and HSTS stays on, as
behind a TLS proxy (send ``X-Forwarded-Proto: https`` to look like one). The Redis database given is
this topology's own: its default Celery queue is emptied at start.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
BUCKET = "marketplace-private"
S3_KEY = "topology"  # moto accepts any credentials; these are not secrets


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def say(message: str) -> None:
    print(f"topology: {message}", flush=True)


@dataclass
class Topology:
    port: int
    admin_database_url: str
    redis_url: str
    run_dir: Path
    keep_database: bool = False
    database_name: str = field(default_factory=lambda: f"topology_{secrets.token_hex(6)}")
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database_url(self) -> str:
        parts = urlsplit(self.admin_database_url)
        return urlunsplit(parts._replace(path=f"/{self.database_name}"))

    # --- the services the processes need ---------------------------------------------------------

    def create_database(self) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.admin_database_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database_name)))
        self.cleanups.append(self.drop_database)
        say(f"database {self.database_name} created")

    def drop_database(self) -> None:
        if self.keep_database:
            say(f"database {self.database_name} kept")
            return
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.admin_database_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.database_name)))
        say(f"database {self.database_name} dropped")

    def empty_default_queue(self) -> None:
        import redis

        redis.Redis.from_url(self.redis_url, socket_connect_timeout=5).delete("celery")

    def start_s3(self) -> str:
        import boto3
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request lines
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        self.cleanups.append(server.stop)
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        boto3.client(
            "s3", endpoint_url=endpoint, aws_access_key_id=S3_KEY, aws_secret_access_key=S3_KEY, region_name="us-east-1"
        ).create_bucket(Bucket=BUCKET)
        say(f"S3 (moto) {endpoint}, bucket {BUCKET}")
        return endpoint

    def start_smtp(self) -> int:
        from aiosmtpd.controller import Controller
        from aiosmtpd.handlers import Mailbox

        port = free_port()
        controller = Controller(Mailbox(self.run_dir / "mail"), hostname="127.0.0.1", port=port)
        controller.start()
        self.cleanups.append(controller.stop)
        say(f"SMTP sink 127.0.0.1:{port}, a Maildir in {self.run_dir / 'mail'}")
        return port

    def environment(self, *, s3_endpoint: str, smtp_port: int) -> dict[str, str]:
        """Production settings with throwaway secrets; they live in this process's children only."""
        from cryptography.fernet import Fernet

        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "marketplace.settings.production",
            "PYTHONUNBUFFERED": "1",
            "VAR_DIR": str(self.run_dir),
            "STATIC_ROOT": str(self.run_dir / "staticfiles"),
            "SECRET_KEY": secrets.token_urlsafe(64),
            "FERNET_KEYS": Fernet.generate_key().decode(),
            "CODE_HASH_KEY": secrets.token_urlsafe(48),
            "SANDBOX_WEBHOOK_SECRET": "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(),
            # A throwaway shop: buyers pay on the sandbox's page, which says that no money moves.
            "ENABLED_PAYMENT_GATEWAYS": "sandbox",
            "SANDBOX_IN_PRODUCTION": "true",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "SITE_URL": self.url,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "false",
            "AWS_STORAGE_BUCKET_NAME": BUCKET,
            "AWS_S3_ENDPOINT_URL": s3_endpoint,
            "AWS_S3_REGION_NAME": "us-east-1",
            "AWS_ACCESS_KEY_ID": S3_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_KEY,
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(smtp_port),
            "EMAIL_USE_TLS": "false",
            "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
        }

    # --- the processes -----------------------------------------------------------------------------

    def run_once(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        log = self.run_dir / f"{name}.log"
        with log.open("wb") as out:
            result = subprocess.run(  # noqa: S603 - fixed command lines
                argv, cwd=BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT, check=False
            )
        if result.returncode != 0:
            raise RuntimeError(
                f"{name} failed with exit code {result.returncode}; see {log}:\n{log.read_text()[-3000:]}"
            )
        say(f"{name} done")

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        out = (self.run_dir / f"{name}.log").open("wb")
        self.processes[name] = subprocess.Popen(  # noqa: S603 - fixed command lines
            argv, cwd=BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        out.close()
        say(f"{name} started (pid {self.processes[name].pid}), log {self.run_dir / f'{name}.log'}")

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                log = (self.run_dir / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with code {process.returncode}:\n{log}")

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        web_ready = worker_ready = False
        last = ""
        while not (web_ready and worker_ready):
            self.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready after {timeout:.0f}s (web: {web_ready}, worker: {worker_ready}) {last}")
            if not web_ready:
                try:
                    with urllib.request.urlopen(f"{self.url}/readyz", timeout=5) as response:  # noqa: S310 - loopback
                        web_ready = response.status == 200
                except urllib.error.HTTPError as exc:
                    last = exc.read().decode(errors="replace")
                except OSError as exc:
                    last = str(exc)
            if not worker_ready:
                worker_ready = " ready." in (self.run_dir / "worker.log").read_text(errors="replace")
            time.sleep(0.2)

    def stop(self) -> None:
        for name in ("web", "beat", "worker"):
            process = self.processes.get(name)
            if process is not None and process.poll() is None:
                process.terminate()
        for name, process in self.processes.items():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            say(f"{name} stopped ({process.returncode})")
        self.processes.clear()
        while self.cleanups:
            cleanup = self.cleanups.pop()
            try:
                cleanup()
            except Exception as exc:  # noqa: BLE001 - clean up the rest whatever one step says
                say(f"clean-up step failed: {exc!r}")

    def up(self, ready_timeout: float) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.create_database()
        self.empty_default_queue()
        env = self.environment(s3_endpoint=self.start_s3(), smtp_port=self.start_smtp())
        python = sys.executable
        self.run_once("migrate", [python, "manage.py", "migrate", "--noinput"], env)
        self.run_once("collectstatic", [python, "manage.py", "collectstatic", "--noinput"], env)
        self.start(
            "worker",
            [python, "-m", "celery", "-A", "marketplace", "worker", "--loglevel=INFO", "--concurrency=1",
             "-n", f"{self.database_name}@%h", "--without-gossip", "--without-mingle"],
            env,
        )  # fmt: skip
        self.start(
            "beat",
            [python, "-m", "celery", "-A", "marketplace", "beat", "--loglevel=INFO",
             f"--schedule={self.run_dir / 'celerybeat-schedule'}"],
            env,
        )  # fmt: skip
        self.start(
            "web",
            [python, "-m", "gunicorn", "marketplace.wsgi", "--bind", f"127.0.0.1:{self.port}", "--workers", "2"],
            env,
        )
        self.wait_ready(ready_timeout)
        (self.run_dir / "topology.json").write_text(
            json.dumps(
                {"url": self.url, "database": self.database_name, "pids": {n: p.pid for n, p in self.processes.items()}}
            )
        )
        say(f"ready {self.url}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0, help="web port (default: a free one)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("TOPOLOGY_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL database on the server to create the fresh database on",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("TOPOLOGY_REDIS_URL", "redis://127.0.0.1:6379/10"),
        help="broker (the cache takes the next database)",
    )
    parser.add_argument("--run-dir", type=Path, default=BASE_DIR / "var" / "topology", help="logs, static files, mail")
    parser.add_argument("--ready-timeout", type=float, default=60.0)
    parser.add_argument("--keep-database", action="store_true", help="do not drop the database on exit")
    args = parser.parse_args(argv)

    topology = Topology(
        port=args.port or free_port(),
        admin_database_url=args.database_url,
        redis_url=args.redis_url,
        run_dir=args.run_dir.resolve(),
        keep_database=args.keep_database,
    )
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        topology.up(args.ready_timeout)
        while True:
            topology.check_alive()
            time.sleep(0.5)
    except KeyboardInterrupt:
        say("stopping")
        return_code = 0
    except Exception as exc:  # noqa: BLE001 - report, then clean up
        say(f"failed: {exc}")
        return_code = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        topology.stop()
    say("stopped")
    return return_code


if __name__ == "__main__":
    sys.exit(main())
