"""Checkout throughput: ``pay`` requests per second at 16 concurrent clients against the real app
served by gunicorn on PostgreSQL + Redis, divided by the same server's requests per second for a
minimal endpoint — the ceiling of the stack: a DRF view that parses and validates a JSON body and
inserts one row, through the same middleware (``bench/views.py``).

Starts gunicorn (``bench.settings``: the app's URLs plus ``POST /bench/insert-one-row``, which the
app's own URLs never have) on a throwaway database and a free port on 127.0.0.1. Then, in short
alternating slices (ceiling, pay, ceiling, pay, ...: ``--rounds`` pairs of ``--seconds`` each), 16
client threads (one HTTP connection per request: gunicorn's sync workers close it after each
answer) drive the two endpoints; each pair gives one throughput ratio, and the figure is their
median, so that the machine's changing load falls on both sides alike. Every ``pay`` creates a
pending order for a text product with its sandbox payment (``init_payment``, the default) and a
fresh idempotency key, exactly as the checkout page does.

Beside each throughput ratio, a CPU-cost ratio (``bench/cpu.py``): the CPU seconds that gunicorn's
processes, their PostgreSQL backends and Redis spent in the slice (``/proc/<pid>/stat``), per
request, ceiling ÷ pay — the same orientation as the throughput ratio, and far steadier on a
shared machine.

    .venv/bin/python -m bench.bench_checkout_throughput [--clients 16] [--seconds 3] [--rounds 6]
        [--workers 2*cores+1] [--max-requests 20000]

PostgreSQL and Redis: ``DATABASE_URL`` (the server on which the throwaway ``bench_<pid>`` database
is made; default postgres://postgres@127.0.0.1:5432/test) and ``REDIS_URL`` (default
redis://127.0.0.1:6379/12; the throttle's cache is on the database after it). Exits 1 if any request
failed or the orders in the database are not the ``pay`` answers counted.
"""

import argparse
import http.client
import json
import os
import secrets
import statistics
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import bench_product, print_machine, throwaway_database
from bench.cpu import Cost, CpuMeter, describe, ratio, redis_pid
from bench.servers import delete_queue, gunicorn, log_tail, service_env, use_services

CEILING = "/bench/insert-one-row"


@dataclass
class Phase:
    name: str
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    cpu: Cost = field(default_factory=lambda: Cost(0.0, 0.0, 0.0))

    @property
    def cpu_per_request(self) -> float:
        return self.cpu.per(self.ok)

    @property
    def ok(self) -> int:
        return len(self.latencies)

    @property
    def per_second(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def drive(base_url: str, path: str, body: Any, *, clients: int, seconds: float, max_requests: int, name: str) -> Phase:
    """``clients`` threads POST ``body()`` to ``path`` until ``seconds`` have passed or
    ``max_requests`` were sent; counts 201 answers and their latencies."""
    host = urlsplit(base_url)
    phase = Phase(name)
    lock = threading.Lock()
    sent = 0
    start = threading.Barrier(clients + 1)
    deadline = 0.0

    def client() -> None:
        nonlocal sent
        start.wait()
        while time.perf_counter() < deadline:
            with lock:
                if sent >= max_requests:
                    return
                sent += 1
            payload = json.dumps(body()).encode()
            began = time.perf_counter()
            conn = http.client.HTTPConnection(host.hostname or "127.0.0.1", host.port, timeout=60)
            try:
                conn.request("POST", path, payload, {"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                status = response.status
            except OSError as exc:
                status = 0
                with lock:
                    phase.failures[f"{type(exc).__name__}: {exc}"] += 1
            finally:
                conn.close()
            elapsed = time.perf_counter() - began
            with lock:
                if status == 201:
                    phase.latencies.append(elapsed)
                elif status:
                    phase.failures[f"HTTP {status}"] += 1

    threads = [threading.Thread(target=client, name=f"client-{n}") for n in range(clients)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    deadline = began + seconds
    start.wait()
    for thread in threads:
        thread.join()
    phase.seconds = time.perf_counter() - began
    return phase


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def main() -> int:
    cores = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each slice")
    parser.add_argument("--rounds", type=int, default=6, help="ceiling/pay pairs of slices, alternating")
    parser.add_argument("--workers", type=int, default=2 * cores + 1, help="gunicorn sync workers")
    parser.add_argument("--max-requests", type=int, default=20_000, help="cap on requests per phase")
    args = parser.parse_args()

    use_services("postgres://postgres@127.0.0.1:5432/test", "redis://127.0.0.1:6379/12")
    queue = f"bench-{os.getpid()}"
    os.environ["CELERY_TASK_DEFAULT_QUEUE"] = queue  # whatever pay queues stays in the run's own queue

    with throwaway_database() as database:
        from django.db import connection

        from catalog.models import DeliveryType
        from orders.models import Order

        print(f"database: {database.label}")
        print_machine()
        product, variant = bench_product(
            slug="bench-text",
            title="Bench Text",
            delivery_type=DeliveryType.TEXT,
            variant_name="Standard",
            price=1999,
            seller_email="bench-seller@example.com",
            delivery_content="The secret is OPEN-SESAME",
        )
        pay_path = f"/api/v1/public/checkout/{product.slug}/pay"

        def pay_body() -> dict[str, Any]:
            token = secrets.token_hex(8)
            return {
                "buyer_email": f"buyer-{token}@example.com",
                "variant_id": variant.id,
                "quantity": 1,
                "idempotency_key": f"bench-{token}",
            }

        def ceiling_body() -> dict[str, Any]:
            return {"note": f"bench-{secrets.token_hex(8)}"}

        print(
            f"gunicorn: {args.workers} sync workers; {args.clients} concurrent clients; "
            f"{args.rounds} rounds of {args.seconds:g} s slices per endpoint, alternating"
        )
        phases: list[Phase] = []
        try:
            with gunicorn(workdir=database.workdir, workers=args.workers, env=service_env()) as served:
                url = served.url
                common = {"clients": args.clients, "max_requests": args.max_requests}
                # Warm-up: every worker imports, connects and fills its caches before anything counts.
                drive(url, CEILING, ceiling_body, seconds=2, name="warm-up", **common)
                drive(url, pay_path, pay_body, seconds=2, name="warm-up", **common)
                warm_orders = Order.objects.count()
                meter = CpuMeter(
                    roots=[served.pid],
                    database=str(connection.settings_dict["NAME"]),
                    redis_pid=redis_pid(os.environ["REDIS_URL"]),
                )
                for number in range(1, args.rounds + 1):
                    for name, path, body in (("ceiling", CEILING, ceiling_body), ("pay", pay_path, pay_body)):
                        before = meter.snapshot()
                        phase = drive(url, path, body, seconds=args.seconds, name=name, **common)
                        phase.cpu = meter.cost(before, meter.snapshot())
                        phases.append(phase)
                        print(
                            f"  round {number} {name:<8} {phase.ok:>6,} in {phase.seconds:5.1f} s = "
                            f"{phase.per_second:7.1f}/s   p50 {percentile(phase.latencies, 50) * 1000:6.1f} ms"
                            f"   p99 {percentile(phase.latencies, 99) * 1000:6.1f} ms"
                            f"   failed {sum(phase.failures.values())}   {describe(phase.cpu, phase.ok)}"
                        )
        finally:
            delete_queue(queue)

        def total(name: str) -> Phase:
            merged = Phase(name)
            for phase in phases:
                if phase.name == name:
                    merged.seconds += phase.seconds
                    merged.latencies += phase.latencies
                    merged.failures.update(phase.failures)
                    merged.cpu = Cost(
                        merged.cpu.server + phase.cpu.server,
                        merged.cpu.backends + phase.cpu.backends,
                        merged.cpu.redis + phase.cpu.redis,
                    )
            return merged

        ceiling, pay = total("ceiling"), total("pay")
        pairs = list(zip(phases[::2], phases[1::2], strict=True))
        per_round = [p.per_second / c.per_second for c, p in pairs]
        cpu_per_round = [ratio(c.cpu_per_request, p.cpu_per_request) for c, p in pairs]
        orders = Order.objects.count() - warm_orders
        print(f"ceiling (DRF, insert one row): {ceiling.per_second:8.1f} requests/s  ({ceiling.ok:,} requests)")
        print(f"pay:                       {pay.per_second:8.1f} requests/s  ({pay.ok:,} requests, {orders:,} orders)")
        print(f"CPU per request, ceiling:  {describe(ceiling.cpu, ceiling.ok)}")
        print(f"CPU per request, pay:      {describe(pay.cpu, pay.ok)}")
        print(
            f"pay / ceiling, requests/s: median {statistics.median(per_round):.3f}"
            f"   (per round: {', '.join(f'{r:.3f}' for r in per_round)}; all slices together "
            f"{pay.per_second / ceiling.per_second:.3f})"
        )
        print(
            f"CPU-cost ratio, ceiling / pay per request: median {statistics.median(cpu_per_round):.3f}"
            f"   (per round: {', '.join(f'{r:.3f}' for r in cpu_per_round)}; pay costs "
            f"{ratio(pay.cpu_per_request, ceiling.cpu_per_request):.1f}x the ceiling's CPU)"
        )
        failures = ceiling.failures + pay.failures
        for message, n in failures.most_common(5):
            print(f"  failed {n} × {message[:160]}")
        ok = not failures and orders == pay.ok
        if not ok:
            print(f"FAILED: {sum(failures.values())} failed requests; {orders:,} orders for {pay.ok:,} answers.")
            print(f"--- end of the gunicorn log ---\n{log_tail(database.workdir / 'gunicorn.log')}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
