"""Benchmarks that print figures (never assert timings). See bench/README.md.

Each benchmark runs on a database made for the run and removed at its end — a temporary SQLite
file by default, or a throwaway ``bench_<pid>`` database on the server of ``DATABASE_URL`` — so
the developer's ``var/db.sqlite3`` and the server's own databases are never touched.
"""

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, LiteralString
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class BenchDatabase:
    vendor: str  # "sqlite" or "postgresql"
    label: str  # what to print: the engine and where the database lives
    workdir: Path  # a temporary folder for the run's files, removed at the end


@contextmanager
def throwaway_database() -> Iterator[BenchDatabase]:
    """Sets Django up (``marketplace.settings.test``) on a new, migrated database and removes it after."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings.test")
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    # The settings create var/ folders and may put files there: keep them all in the temp folder.
    os.environ["VAR_DIR"] = str(workdir / "var")
    url = os.environ.get("DATABASE_URL", "")
    server_url = ""
    name = ""
    if url:
        parts = urlsplit(url)
        if not parts.scheme.startswith("postgres"):
            raise SystemExit(f"DATABASE_URL must be a PostgreSQL URL for the benchmarks, not {parts.scheme}://")
        server_url = url
        name = f"bench_{os.getpid()}"
        _postgres_admin(server_url, "CREATE DATABASE {}", name)
        os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{name}"))
        database = BenchDatabase("postgresql", f"PostgreSQL, throwaway database {name} on {parts.hostname}", workdir)
    else:
        sqlite_path = workdir / "bench.sqlite3"
        os.environ["SQLITE_PATH"] = str(sqlite_path)
        database = BenchDatabase("sqlite", f"SQLite, temporary file {sqlite_path}", workdir)
    try:
        import django
        from django.conf import settings
        from django.core.management import call_command

        django.setup()
        configured = settings.DATABASES["default"]
        expected = name if server_url else os.environ["SQLITE_PATH"]
        if str(configured["NAME"]) != expected:  # never run against anything but the throwaway database
            raise SystemExit(f"Refusing to run: the settings point at {configured['NAME']}, not {expected}.")
        call_command("migrate", verbosity=0)
        yield database
    finally:
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()
        if server_url:
            os.environ["DATABASE_URL"] = server_url
            _postgres_admin(server_url, "DROP DATABASE IF EXISTS {} WITH (FORCE)", name)
        shutil.rmtree(workdir, ignore_errors=True)


def _postgres_admin(server_url: str, statement: LiteralString, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL(statement).format(sql.Identifier(name)))


def peak_rss_mb() -> float:
    """The process's peak resident set so far (``ru_maxrss`` is in KiB on Linux, bytes on macOS)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def machine() -> dict[str, str]:
    """What the figures were measured on: CPU model, cores, Python, and the database and Redis
    servers the run uses (whatever of them answers)."""
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores": str(os.cpu_count() or "?"),
        "python": platform.python_version(),
        "database": "?",
        "redis": "not used",
    }
    if "django" in sys.modules:
        from django.conf import settings
        from django.db import connection

        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SHOW server_version")
                info["database"] = f"PostgreSQL {cursor.fetchone()[0]}"
        else:
            import sqlite3

            info["database"] = f"SQLite {sqlite3.sqlite_version}"
        redis_url = getattr(settings, "REDIS_URL", "")
        if redis_url:
            import redis

            try:
                info["redis"] = "Redis " + str(redis.Redis.from_url(redis_url).info("server")["redis_version"])
            except redis.RedisError as exc:
                info["redis"] = f"not answering ({exc})"
    return info


def print_machine() -> None:
    info = machine()
    print(
        f"machine: {info['cpu']}, {info['cores']} cores; Python {info['python']}; {info['database']}; {info['redis']}"
    )


def bench_product(
    *, slug: str, title: str, delivery_type: str, variant_name: str, price: int, seller_email: str, **fields: object
) -> tuple[Any, Any]:
    """A seller with one active USD product of one variant, for a benchmark to sell: (product, variant)."""
    from catalog.models import Product, ProductStatus, Variant
    from marketplace.accounts.models import Role, User

    seller = User.objects.create_user(seller_email, None, name="Bench Seller", role=Role.SELLER)
    product = Product.objects.create(
        seller=seller,
        slug=slug,
        title=title,
        status=ProductStatus.ACTIVE,
        currency="USD",
        delivery_type=delivery_type,
        **fields,
    )
    variant = Variant.objects.create(product=product, name=variant_name, price=price)
    return product, variant
