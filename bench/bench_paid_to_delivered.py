"""Paid to delivered: how long from the gateway's webhook to ``delivered``, against the same
broker's floor — a no-op Celery task.

Starts gunicorn (``bench.settings``) and a real Celery worker (prefork, one process per core, as
docker-compose runs it) on a throwaway PostgreSQL database and Redis, on a queue of the run's own.
Before the clock starts it creates N pending orders for one unit of a code-pool gift card through
the real checkout service, opens each one's sandbox payment and records the buyer's payment on the
sandbox's side (what its hosted page does), without sending the webhook. Then 20 clients, each with
one order in flight at a time, send each order's Standard Webhooks-signed ``payment.succeeded`` to
``POST /api/v1/payments/webhooks/sandbox`` over HTTP — signature check, stored event,
re-verification with the sandbox, ``pending → paid`` — and the worker's ``fulfill_order`` allocates
the code, sends the e-mail and moves the order to ``delivered``. The latency of an order is its
``delivered_at`` (stamped by the worker) minus the moment its webhook was sent. The clients learn
that an order changed status from PostgreSQL itself, without polling it: a trigger that exists only
in the throwaway database sends ``NOTIFY`` with the order's status and ``delivered_at``, and one
connection ``LISTEN``s (the ``--watch`` poller, every 250 ms, is the alternative).

The baseline, at the same concurrency on the same broker and worker: a no-op task
(``bench.tasks.noop``), from ``apply_async`` to the moment it ran in the worker (the time it returns,
read back from the Redis result backend every 50 ms; the latency comes from that timestamp, not from
when it was read). No-op and orders alternate in ``--rounds`` short slices (no-op, orders, no-op,
orders, ...); each pair gives its ratios and each figure is their median.

Beside the latency ratios, a CPU-cost ratio (``bench/cpu.py``): the CPU seconds that gunicorn, the
worker, their PostgreSQL backends and Redis spent in a slice (``/proc/<pid>/stat``), per order ÷ per
no-op task.

    .venv/bin/python -m bench.bench_paid_to_delivered [--orders 1000] [--concurrency 20] [--rounds 6]
    .venv/bin/python -m bench.bench_paid_to_delivered --orders 200          # a quick run

``DATABASE_URL`` (server of the throwaway database; default postgres://postgres@127.0.0.1:5432/test)
and ``REDIS_URL`` (default redis://127.0.0.1:6379/12). Exits 1 if an order is not delivered, a webhook
is refused, or anything times out (``--timeout`` seconds per order or task).
"""

import argparse
import os
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import bench_product, print_machine, throwaway_database
from bench.cpu import Cost, CpuMeter, describe, ratio, redis_pid
from bench.servers import celery_worker, delete_queue, gunicorn, log_tail, service_env, use_services

NOOP_POLL_SECONDS = 0.05  # the no-op results, in Redis
ORDER_POLL_SECONDS = 0.25  # only with --watch poll; by default PostgreSQL tells (LISTEN/NOTIFY)
WARM_UP = 20
CHANNEL = "bench_orders"


@dataclass
class Run:
    name: str
    latencies: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    cpu: Cost = field(default_factory=lambda: Cost(0.0, 0.0, 0.0))

    def add(self, other: "Run") -> None:
        self.latencies += other.latencies
        self.failures.update(other.failures)
        self.seconds += other.seconds
        self.cpu = Cost(
            self.cpu.server + other.cpu.server, self.cpu.backends + other.cpu.backends, self.cpu.redis + other.cpu.redis
        )


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def closed_loop(
    name: str,
    jobs: list[Any],
    *,
    concurrency: int,
    timeout: float,
    send: Callable[[Any], str | None],
    poll: Callable[[list[Any]], dict[Any, float | str]],
    pause: float,
) -> Run:
    """``concurrency`` clients, each with one job in flight: ``send(job)`` starts it (returns an
    error message, or None); one watcher thread calls ``poll(in_flight)`` (then sleeps ``pause``)
    and gets, for the jobs that ended, the time they finished (a float, time.time()) or why they
    failed. The latency of a job is its finish time minus the time just before ``send``: how often
    the watcher looks only paces the clients."""
    run = Run(name)
    lock = threading.Lock()
    pending = list(reversed(jobs))
    in_flight: dict[Any, tuple[float, threading.Event]] = {}
    outcome: dict[Any, float | str] = {}
    stop = threading.Event()

    def watcher() -> None:
        from django.db import connections

        try:
            while not stop.is_set():
                with lock:
                    watched = list(in_flight)
                ended = poll(watched) if watched else {}
                with lock:
                    for job, result in ended.items():
                        if job in in_flight:
                            outcome[job] = result
                            in_flight.pop(job)[1].set()
                if pause:
                    time.sleep(pause)
        finally:
            connections.close_all()  # this thread's connection only

    def client() -> None:
        while True:
            with lock:
                if not pending:
                    return
                job = pending.pop()
                done = threading.Event()
            sent_at = time.time()
            with lock:
                in_flight[job] = (sent_at, done)
            error = send(job)
            if error is None and not done.wait(timeout):
                error = f"not done after {timeout:.0f} s"
            with lock:
                in_flight.pop(job, None)
                result = outcome.pop(job, None)
                if error is not None:
                    run.failures[error] += 1
                elif isinstance(result, str):
                    run.failures[result] += 1
                elif result is not None:
                    run.latencies.append(result - sent_at)

    watch = threading.Thread(target=watcher, name=f"{name}-watcher", daemon=True)
    watch.start()
    clients = [threading.Thread(target=client, name=f"{name}-client-{n}") for n in range(concurrency)]
    began = time.perf_counter()
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join()
    run.seconds = time.perf_counter() - began
    stop.set()
    watch.join(timeout=5)
    return run


def prepare_orders(count: int) -> tuple[list[tuple[str, str, int, str]], Any]:
    """``count`` pending orders for one unit of a code-pool gift card, each with a sandbox payment
    that the buyer has paid on the sandbox's side; the webhook is not sent yet."""
    from django.utils import timezone

    from catalog.inventory import CodeRow, codes_import
    from catalog.models import DeliveryType
    from marketplace.core.ids import make_id
    from orders.services import CheckoutLine, order_create
    from payments.models import SandboxPayment
    from payments.services import payment_initiate

    product, variant = bench_product(
        slug="bench-gift-card",
        title="Bench gift card",
        delivery_type=DeliveryType.CODE_POOL,
        variant_name="$25",
        price=2500,
        seller_email="bench-seller@example.com",
        redemption_instructions="Redeem at example.com/redeem",
    )
    loaded = codes_import(variant=variant, rows=(CodeRow(i, f"GIFT-{i:08d}") for i in range(1, count + 1)))
    assert loaded.imported == count
    orders = []
    for i in range(count):
        order = order_create(
            product=product, buyer_email=f"buyer{i}@example.com", lines=[CheckoutLine(variant.id, 1)]
        ).order
        payment = payment_initiate(order=order, gateway_name="sandbox", return_url="https://shop.test/return")
        orders.append((order.id, payment.id, payment.amount, payment.currency))
    now = timezone.now()
    paid = list(SandboxPayment.objects.filter(id__in=[o[1] for o in orders]))
    for sandbox_payment in paid:
        sandbox_payment.status = "succeeded"
        sandbox_payment.completed_at = now
        sandbox_payment.charge_id = make_id("sbxch")
    SandboxPayment.objects.bulk_update(paid, ["status", "completed_at", "charge_id"], batch_size=500)
    return orders, product


def database_conninfo() -> str:
    """The throwaway database's connection string, for a connection of the benchmark's own."""
    from django.db import connection

    params = connection.get_connection_params()
    keys = ("host", "port", "user", "password", "dbname")
    return " ".join(f"{key}={params[key]}" for key in keys if params.get(key) not in (None, ""))


def order_listener(conninfo: str, table: str) -> Any:
    """A connection that hears every change of an order's status: a trigger (in the throwaway
    database only; the app knows nothing of it) sends ``NOTIFY bench_orders, '<id> <status>
    <delivered_at epoch>'`` from the transaction that changed it, delivered when that commits."""
    import psycopg
    from psycopg import sql

    conn = psycopg.connect(conninfo, autocommit=True)
    conn.execute(
        "CREATE OR REPLACE FUNCTION bench_order_notify() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        f" PERFORM pg_notify('{CHANNEL}', NEW.id || ' ' || NEW.status || ' '"
        " || COALESCE(extract(epoch FROM NEW.delivered_at)::text, '')); RETURN NULL; END $$"
    )
    conn.execute(
        sql.SQL(
            "CREATE OR REPLACE TRIGGER bench_order_notify AFTER UPDATE OF status ON {} FOR EACH ROW"
            " WHEN (NEW.status IS DISTINCT FROM OLD.status) EXECUTE FUNCTION bench_order_notify()"
        ).format(sql.Identifier(table))
    )
    conn.execute(f"LISTEN {CHANNEL}")
    return conn


def main() -> int:
    cores = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1000, help="orders (and no-op tasks) measured")
    parser.add_argument("--concurrency", type=int, default=20, help="orders (or tasks) in flight")
    parser.add_argument("--rounds", type=int, default=6, help="no-op/orders pairs of slices the counts are split into")
    parser.add_argument(
        "--watch",
        choices=["notify", "poll"],
        default="notify",
        help="how the clients learn an order ended: LISTEN/NOTIFY, or a poll every 250 ms",
    )
    parser.add_argument("--workers", type=int, default=2 * cores + 1, help="gunicorn sync workers")
    parser.add_argument("--worker-concurrency", type=int, default=cores, help="Celery worker processes")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds an order or a task may take")
    args = parser.parse_args()

    use_services("postgres://postgres@127.0.0.1:5432/test", "redis://127.0.0.1:6379/12")
    queue = f"bench-{os.getpid()}"
    os.environ["CELERY_TASK_DEFAULT_QUEUE"] = queue
    os.environ["CELERY_RESULT_BACKEND"] = os.environ["REDIS_URL"]

    with throwaway_database() as database:
        import requests
        from django.db import connection

        from bench.tasks import noop
        from marketplace.celery import app
        from orders.models import Order, OrderStatus
        from payments.sandbox_server.server import sign_event

        print(f"database: {database.label}")
        print_machine()
        total = args.orders + WARM_UP
        started = time.perf_counter()
        orders, product = prepare_orders(total)
        print(f"prepared {total:,} paid-on-the-sandbox orders in {time.perf_counter() - started:.1f} s")
        print(
            f"gunicorn: {args.workers} sync workers; Celery worker: prefork, {args.worker_concurrency} processes; "
            f"{args.concurrency} in flight; queue {queue}"
        )

        http = threading.local()

        def send_webhook(job: tuple[str, str, int, str]) -> str | None:
            order_id, payment_id, amount, currency = job
            event = {
                "id": f"evt_bench_{payment_id}",
                "type": "payment.succeeded",
                "data": {"payment_id": payment_id, "order_id": order_id, "amount": amount, "currency": currency},
            }
            body, headers = sign_event(event)  # signed now: the timestamp is checked against a 5-minute window
            if not hasattr(http, "session"):
                http.session = requests.Session()
            try:
                response = http.session.post(
                    webhook_url, data=body, headers={**headers, "Content-Type": "application/json"}, timeout=60
                )
            except requests.RequestException as exc:
                return f"webhook: {type(exc).__name__}"
            return None if response.status_code == 200 else f"webhook answered HTTP {response.status_code}"

        terminal_failures = {OrderStatus.NEEDS_ATTENTION, OrderStatus.FAILED, OrderStatus.CANCELLED}
        job_of = {job[0]: job for job in orders}

        def ended_order(order_id: str, status: str, delivered_at: float | None) -> tuple[Any, float | str] | None:
            job = job_of.get(order_id)
            if job is None:
                return None
            if status == OrderStatus.DELIVERED and delivered_at is not None:
                return job, delivered_at
            if status in terminal_failures:
                return job, f"order ended {status}"
            return None

        def poll_orders_table(jobs: list[tuple[str, str, int, str]]) -> dict[Any, float | str]:
            ended: dict[Any, float | str] = {}
            rows = Order.objects.filter(id__in=[job[0] for job in jobs]).exclude(
                status__in=[OrderStatus.PENDING, OrderStatus.PAID]
            )
            for order_id, status, delivered_at in rows.values_list("id", "status", "delivered_at"):
                found = ended_order(order_id, status, delivered_at.timestamp() if delivered_at else None)
                if found:
                    ended[found[0]] = found[1]
            return ended

        listener = order_listener(database_conninfo(), Order._meta.db_table)
        heard: dict[str, float | str] = {}
        heard_lock = threading.Lock()
        listening = threading.Event()

        def listen() -> None:
            """Takes every notification as it arrives (a generator run to its deadline loses none)
            and notes which orders ended; the clients' watcher only reads this dict."""
            from django.db import connections

            try:
                while not listening.is_set():
                    for note in listener.notifies(timeout=0.5):
                        order_id, status, delivered = (note.payload.split(" ") + ["", ""])[:3]
                        at = float(delivered) if delivered else None
                        if at is None and status == OrderStatus.DELIVERED:  # delivered_at set apart: read it
                            stamp = Order.objects.filter(id=order_id).values_list("delivered_at", flat=True).first()
                            at = stamp.timestamp() if stamp else None
                        found = ended_order(order_id, status, at)
                        if found:
                            with heard_lock:
                                heard[order_id] = found[1]
            finally:
                connections.close_all()  # this thread's connection only

        def notified_orders(jobs: list[tuple[str, str, int, str]]) -> dict[Any, float | str]:
            ended: dict[Any, float | str] = {}
            with heard_lock:
                for job in jobs:
                    if job[0] in heard:
                        ended[job] = heard.pop(job[0])
            return ended

        listener_thread = threading.Thread(target=listen, name="order-listener", daemon=True)
        listener_thread.start()

        if args.watch == "notify":
            poll_orders, order_pause = notified_orders, 0.005  # reads the dict above, not the database
        else:
            poll_orders, order_pause = poll_orders_table, ORDER_POLL_SECONDS

        task_ids: dict[int, str] = {}

        def send_noop(job: int) -> str | None:
            task_ids[job] = noop.apply_async().id
            return None

        def poll_noops(jobs: list[int]) -> dict[Any, float | str]:
            known = [job for job in jobs if job in task_ids]
            if not known:
                return {}
            backend: Any = app.backend
            keys = [backend.get_key_for_task(task_ids[job]) for job in known]
            ended: dict[Any, float | str] = {}
            for job, key, raw in zip(known, keys, backend.client.mget(keys), strict=True):
                if raw is None:
                    continue
                meta = backend.decode_result(raw)
                ended[job] = float(meta["result"]) if meta["status"] == "SUCCESS" else f"noop {meta['status']}"
                backend.client.delete(key)
            return ended

        loop: dict[str, Any] = {"concurrency": args.concurrency, "timeout": args.timeout}
        noop_total, orders_total = Run("noop"), Run("orders")
        pairs: list[tuple[Run, Run]] = []
        try:
            with (
                gunicorn(workdir=database.workdir, workers=args.workers, env=service_env()) as served,
                celery_worker(
                    workdir=database.workdir, queue=queue, concurrency=args.worker_concurrency, env=service_env()
                ) as worker,
            ):
                webhook_url = f"{served.url}/api/v1/payments/webhooks/sandbox"
                noops: dict[str, Any] = {"send": send_noop, "poll": poll_noops, "pause": NOOP_POLL_SECONDS}
                deliveries: dict[str, Any] = {"send": send_webhook, "poll": poll_orders, "pause": order_pause}
                # Warm-up: every gunicorn and worker process imports, connects and fills its caches.
                closed_loop("warm-up", list(range(-WARM_UP, 0)), **noops, **loop)
                warm = closed_loop("warm-up", orders[:WARM_UP], **deliveries, **loop)
                if warm.failures:
                    print(f"warm-up failed: {dict(warm.failures)}")
                meter = CpuMeter(
                    roots=[served.pid, worker.process.pid],
                    database=str(connection.settings_dict["NAME"]),
                    driver_backends={listener.info.backend_pid},
                    redis_pid=redis_pid(os.environ["REDIS_URL"]),
                )
                measured = orders[WARM_UP:]
                size = -(-len(measured) // args.rounds)
                for number, first in enumerate(range(0, len(measured), size), start=1):
                    batch = measured[first : first + size]
                    before = meter.snapshot()
                    tasks = closed_loop("noop", list(range(first, first + len(batch))), **noops, **loop)
                    middle = meter.snapshot()
                    delivered = closed_loop("orders", batch, **deliveries, **loop)
                    tasks.cpu, delivered.cpu = meter.cost(before, middle), meter.cost(middle, meter.snapshot())
                    for run in (tasks, delivered):
                        print(
                            f"  round {number} {run.name:<6} {len(run.latencies):>5,} in {run.seconds:5.1f} s   "
                            f"p50 {percentile(run.latencies, 50) * 1000:7.1f} ms   "
                            f"p99 {percentile(run.latencies, 99) * 1000:7.1f} ms   failed {sum(run.failures.values())}"
                            f"   {describe(run.cpu, len(run.latencies))}"
                        )
                    pairs.append((tasks, delivered))
                    noop_total.add(tasks)
                    orders_total.add(delivered)
        finally:
            listening.set()
            listener_thread.join(timeout=5)
            listener.close()
            delete_queue(queue)

        def per_round(figure: Callable[[Run], float]) -> tuple[float, str]:
            values = [ratio(figure(o), figure(n)) for n, o in pairs]
            return statistics.median(values), ", ".join(f"{v:.1f}" for v in values)

        n50, n99 = percentile(noop_total.latencies, 50), percentile(noop_total.latencies, 99)
        o50, o99 = percentile(orders_total.latencies, 50), percentile(orders_total.latencies, 99)
        print(
            f"no-op task, sent → ran:   p50 {n50 * 1000:7.1f} ms   p99 {n99 * 1000:7.1f} ms   "
            f"mean {statistics.fmean(noop_total.latencies) * 1000:7.1f} ms   ({len(noop_total.latencies):,} tasks)"
        )
        print(
            f"webhook → delivered:      p50 {o50 * 1000:7.1f} ms   p99 {o99 * 1000:7.1f} ms   "
            f"mean {statistics.fmean(orders_total.latencies) * 1000:7.1f} ms   "
            f"({len(orders_total.latencies):,} orders, "
            f"{len(orders_total.latencies) / orders_total.seconds:.1f} orders/s)"
        )
        print(f"CPU per no-op task:       {describe(noop_total.cpu, len(noop_total.latencies))}")
        print(f"CPU per order:            {describe(orders_total.cpu, len(orders_total.latencies))}")
        p50_ratio, p50_rounds = per_round(lambda run: percentile(run.latencies, 50))
        p99_ratio, p99_rounds = per_round(lambda run: percentile(run.latencies, 99))
        cpu_ratio, cpu_rounds = per_round(lambda run: run.cpu.per(len(run.latencies)))
        print(f"delivered / no-op, p50:   median {p50_ratio:6.1f}x   (per round: {p50_rounds})")
        print(f"delivered / no-op, p99:   median {p99_ratio:6.1f}x   (per round: {p99_rounds})")
        print(f"CPU-cost ratio, per order / per no-op: median {cpu_ratio:6.1f}x   (per round: {cpu_rounds})")
        failures = noop_total.failures + orders_total.failures
        for message, n in failures.most_common(5):
            print(f"  failed {n} × {message[:160]}")
        delivered_count = Order.objects.filter(product=product, status=OrderStatus.DELIVERED).count()
        ok = not failures and delivered_count == total
        if not ok:
            print(f"FAILED: {sum(failures.values())} failures; {delivered_count:,} of {total:,} orders delivered.")
            for name in ("gunicorn.log", "worker.log"):
                print(f"--- end of the {name} ---\n{log_tail(database.workdir / name)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
