"""CPU seconds spent serving a benchmark's requests, read from ``/proc/<pid>/stat`` (utime + stime).

Throughput and latency on a shared 2-core machine move with everybody else's load; the CPU the
serving side spent per request is far steadier. ``CpuMeter`` adds up, between two snapshots, the
CPU of:

* the server's processes: each root given (gunicorn's master, the Celery worker's parent) and all
  its descendants (gunicorn's workers, Celery's pool processes);
* their PostgreSQL backends: the client backends connected to the benchmark's throwaway database
  (``pg_stat_activity``), except the benchmark driver's own connections, which it names;
* Redis (its ``process_id`` from ``INFO``). Redis is shared with other users of the machine, so its
  share is printed apart and is the noisiest part.

A process that ends between two snapshots takes its CPU with it; the servers keep their processes
(gunicorn's sync workers live on, the app keeps its database connections, ``CONN_MAX_AGE``), and a
warm-up before the first snapshot lets every process start and connect.
"""

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process, in seconds; None if it is gone (or not readable)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) ": state is fields[0]
    return (int(fields[11]) + int(fields[12])) / TICKS


def descendants(roots: Iterable[int]) -> set[int]:
    """The roots and every process below them (one scan of /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(text[text.rindex(")") + 2 :].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid in found:
            continue
        found.add(pid)
        todo.extend(parents.get(pid, []))
    return found


@dataclass
class Snapshot:
    server: dict[int, float] = field(default_factory=dict)
    backends: dict[int, float] = field(default_factory=dict)
    redis: float = 0.0


@dataclass
class Cost:
    """CPU seconds spent between two snapshots, by part."""

    server: float
    backends: float
    redis: float

    @property
    def total(self) -> float:
        return self.server + self.backends + self.redis

    def per(self, requests: int) -> float:
        """Milliseconds of CPU per request (or order, or task)."""
        return self.total * 1000 / requests if requests else float("nan")


@dataclass
class CpuMeter:
    roots: list[int]
    database: str
    driver_backends: set[int] = field(default_factory=set)
    redis_pid: int | None = None

    def snapshot(self) -> Snapshot:
        shot = Snapshot()
        for pid in descendants(self.roots):
            seconds = cpu_seconds(pid)
            if seconds is not None:
                shot.server[pid] = seconds
        for pid in self._backends():
            seconds = cpu_seconds(pid)
            if seconds is not None:
                shot.backends[pid] = seconds
        if self.redis_pid is not None:
            shot.redis = cpu_seconds(self.redis_pid) or 0.0
        return shot

    def _backends(self) -> list[int]:
        from django.db import connection

        with connection.cursor() as cursor:
            self.driver_backends.add(connection.connection.info.backend_pid)
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend'",
                [self.database],
            )
            return [pid for (pid,) in cursor.fetchall() if pid not in self.driver_backends]

    @staticmethod
    def cost(before: Snapshot, after: Snapshot) -> Cost:
        def spent(a: dict[int, float], b: dict[int, float]) -> float:
            return sum(max(0.0, seconds - a.get(pid, 0.0)) for pid, seconds in b.items())

        return Cost(
            spent(before.server, after.server),
            spent(before.backends, after.backends),
            max(0.0, after.redis - before.redis),
        )


def redis_pid(url: str) -> int | None:
    """The Redis server's pid when it runs on this machine (its /proc entry is readable)."""
    import redis

    try:
        pid = int(redis.Redis.from_url(url).info("server")["process_id"])
    except (redis.RedisError, KeyError, ValueError):
        return None
    return pid if cpu_seconds(pid) is not None else None


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


def describe(cost: Cost, count: int) -> str:
    """``12.3 ms/req (server 8.1, PostgreSQL 3.9, Redis 0.3)``"""
    if not count:
        return "—"
    per = 1000 / count
    return (
        f"{cost.per(count):6.2f} ms CPU each (server {cost.server * per:.2f}, "
        f"PostgreSQL {cost.backends * per:.2f}, Redis {cost.redis * per:.2f})"
    )


__all__: list[Any] = ["Cost", "CpuMeter", "Snapshot", "cpu_seconds", "describe", "descendants", "ratio", "redis_pid"]
