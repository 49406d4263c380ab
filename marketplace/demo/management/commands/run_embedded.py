"""``manage.py run_embedded``: the whole marketplace on one machine, with no services to install.

Starts two children and watches them:

- the web server (``runserver 127.0.0.1:$PORT --noreload``), and
- a Celery worker with beat embedded (``celery -A marketplace worker -B``), which runs the
  fulfillment tasks and the periodic order sweeper.

Every setting stays environment-driven: the children get this process's environment as it is,
plus ``SITE_URL=http://127.0.0.1:$PORT`` when ``SITE_URL`` isn't set. Ctrl-C or SIGTERM stops
both children (and everything they started); if one child dies, the other is stopped and the
command exits non-zero.
"""

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import Resolver404, resolve

from catalog.models import Product
from marketplace.accounts.models import User

from .seed_demo import ADMIN_EMAIL, DEMO_PRODUCTS, SELLER_EMAIL, admin_password, seller_password

STOP_TIMEOUT_SECONDS = 20


def _has_page(path: str) -> bool:
    """Whether the site answers ``path`` with a page of its own (``/`` only once a front page exists)."""
    try:
        resolve(path)
    except Resolver404:
        return False
    return True


def _where_emails_go() -> str:
    backend = settings.EMAIL_BACKEND
    if backend.endswith("filebased.EmailBackend"):
        return f"written as files to {Path(settings.EMAIL_FILE_PATH)}/"
    if backend.endswith("console.EmailBackend"):
        return "printed to the worker's and the web server's output"
    if backend.endswith("smtp.EmailBackend"):
        return f"sent through SMTP at {settings.EMAIL_HOST}:{settings.EMAIL_PORT}"
    return f"handed to {backend}"


def banner_lines(site_url: str) -> list[str]:
    """What ``run_embedded`` prints once the server answers: only addresses that open a page (the
    dashboard's sign-in, every demo product's checkout), the demo logins and where emails go."""
    lines = []
    if _has_page("/"):
        lines.append(f"Marketplace running at {site_url}/")
    else:
        lines.append(f"Marketplace running: open {site_url}/dashboard/ (it asks you to sign in)")
    lines += [
        f"  Dashboard: {site_url}/dashboard/   (sign in at {site_url}/accounts/login/)",
        f"  Admin:     {site_url}/admin/",
        f"  API docs:  {site_url}/api/docs/   (schema: {site_url}/api/schema/)",
        f"  Health:    {site_url}/healthz, {site_url}/readyz",
        f"  Emails:    {_where_emails_go()}",
    ]
    try:
        emails = set(User.objects.filter(email__in=[SELLER_EMAIL, ADMIN_EMAIL]).values_list("email", flat=True))
        slugs = set(Product.objects.filter(slug__in=[d.slug for d in DEMO_PRODUCTS]).values_list("slug", flat=True))
    except Exception:  # noqa: BLE001 - e.g. not migrated yet; the banner must not stop the run
        emails, slugs = set(), set()
    if not emails:
        lines.append("  No demo accounts yet: run `manage.py seed_demo` (make run does).")
        return lines
    if SELLER_EMAIL in emails:
        lines.append(f"  Demo seller:   {SELLER_EMAIL} / {seller_password()}")
        for demo in DEMO_PRODUCTS:
            if demo.slug in slugs:
                lines.append(f"    checkout: {site_url}/c/{demo.slug}   {demo.title} ({demo.delivery_type})")
    if ADMIN_EMAIL in emails:
        lines.append(f"  Demo operator: {ADMIN_EMAIL} / {admin_password()}")
    return lines


START_TIMEOUT_SECONDS = 60


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if this command is killed without a chance to clean up."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def _port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


class Child:
    def __init__(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.argv = argv
        # A session of its own: a terminal's Ctrl-C reaches only us, and we stop each child (and
        # whatever it started, e.g. the embedded beat) in the order and the way it expects.
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
            argv, env=env, start_new_session=True, preexec_fn=_die_with_parent
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> int | None:
        return self.process.poll()

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass


class Command(BaseCommand):
    help = "Run the web server and a Celery worker with embedded beat, stopping both on Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--port", type=int, default=int(os.environ.get("PORT", "8000")), help="default: $PORT or 8000"
        )
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"), help="default: $HOST or 127.0.0.1")
        parser.add_argument(
            "--concurrency",
            type=int,
            default=int(os.environ.get("WORKER_CONCURRENCY", "2")),
            help="worker threads (default: $WORKER_CONCURRENCY or 2)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        host: str = options["host"]
        port: int = options["port"]
        if _port_open(host, port):
            raise CommandError(f"Port {port} on {host} is already in use; set PORT to another one.")

        site_url = (os.environ.get("SITE_URL") or f"http://{host}:{port}").rstrip("/")
        env = dict(os.environ)
        env["SITE_URL"] = site_url
        env["DJANGO_SETTINGS_MODULE"] = settings.SETTINGS_MODULE or os.environ["DJANGO_SETTINGS_MODULE"]
        env["PYTHONUNBUFFERED"] = "1"
        var_dir = Path(settings.CELERY_BEAT_SCHEDULE_FILENAME).parent
        var_dir.mkdir(parents=True, exist_ok=True)

        manage_py = str(Path(settings.BASE_DIR) / "manage.py")
        commands = {
            "web": [sys.executable, manage_py, "runserver", f"{host}:{port}", "--noreload"],
            "worker": [
                sys.executable, "-m", "celery", "-A", "marketplace", "worker", "-B",
                "--loglevel=INFO", "--pool=threads", f"--concurrency={options['concurrency']}",
                f"--schedule={settings.CELERY_BEAT_SCHEDULE_FILENAME}",
            ],
        }  # fmt: skip

        stop_requested: list[int] = []

        def request_stop(signum: int, frame: FrameType | None) -> None:
            stop_requested.append(signum)

        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        children: list[Child] = []
        try:
            for name, argv in commands.items():
                children.append(Child(name, argv, env))
            failed = self._wait_until_up(children, host, port, stop_requested)
            if failed is None and not stop_requested:
                self._banner(site_url, children)
                failed = self._watch(children, stop_requested)
        finally:
            self._stop(children)
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        if failed is not None:
            raise CommandError(f"The {failed.name} process exited with code {failed.poll()}; stopped the rest.")
        self.stdout.write("Stopped.")

    def _wait_until_up(self, children: list[Child], host: str, port: int, stop: list[int]) -> Child | None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not stop and time.monotonic() < deadline:
            dead = next((c for c in children if c.poll() is not None), None)
            if dead is not None:
                return dead
            if _port_open(host, port):
                return None
            time.sleep(0.2)
        if not stop:
            self.stderr.write(f"The web server did not answer on {host}:{port} within {START_TIMEOUT_SECONDS}s.")
            return children[0]
        return None

    def _watch(self, children: list[Child], stop: list[int]) -> Child | None:
        while not stop:
            for child in children:
                if child.poll() is not None:
                    return child
            time.sleep(0.5)
        self.stdout.write(f"\nReceived {signal.Signals(stop[0]).name}; stopping the web server and the worker...")
        return None

    def _stop(self, children: list[Child]) -> None:
        running = [c for c in children if c.poll() is None]
        for child in running:
            # runserver stops on SIGINT; Celery's warm shutdown (finish the task at hand) is SIGTERM.
            child.signal_group(signal.SIGINT if child.name == "web" else signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for child in running:
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stderr.write(f"The {child.name} process did not stop in {STOP_TIMEOUT_SECONDS}s; killing it.")
                child.signal_group(signal.SIGKILL)
                child.process.wait()
        for child in children:  # anything a child started and left behind in its group
            child.signal_group(signal.SIGKILL)

    def _banner(self, site_url: str, children: list[Child]) -> None:
        write = self.stdout.write
        pids = ", ".join(f"{c.name} pid {c.pid}" for c in children)
        write("")
        for line in banner_lines(site_url):
            write(line)
        self.stdout.write(self.style.SUCCESS(f"  ({pids})"))
        write("Press Ctrl-C to stop.\n")
