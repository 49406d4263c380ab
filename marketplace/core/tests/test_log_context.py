"""Request ids: the middleware takes or makes one and answers it; every log record of the request,
and of the Celery tasks it queued, carries it; production writes one JSON object per line."""

import io
import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from celery import current_task
from django.test import Client

from marketplace.celery import app as celery_app
from marketplace.core.log_context import ContextFilter, bound, request_id_var
from marketplace.core.tests.test_settings_production import BASE_DIR, production_env

GENERATED = re.compile(r"[0-9a-f]{32}")


class Collect(logging.Handler):
    """Keeps every record that reaches the root logger, after the context filter, with the task it ran in."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.addFilter(ContextFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        task = current_task._get_current_object()
        record.task_name = task.name if task is not None and task.request.id else None
        self.records.append(record)

    def by(self, logger: str) -> list[logging.LogRecord]:
        return [r for r in self.records if r.name == logger]


@pytest.fixture
def records() -> Iterator[Collect]:
    handler = Collect()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
def client() -> Client:
    return Client()


# --- The middleware ------------------------------------------------------------------------------


def test_a_request_without_an_id_gets_a_new_one(client: Client) -> None:
    first = client.get("/healthz")["X-Request-ID"]
    second = client.get("/healthz")["X-Request-ID"]

    assert GENERATED.fullmatch(first)
    assert GENERATED.fullmatch(second)
    assert first != second


def test_a_sane_id_from_the_client_is_echoed(client: Client) -> None:
    response = client.get("/healthz", HTTP_X_REQUEST_ID="lb-7f3a.2026:edge_1")

    assert response.status_code == 200
    assert response["X-Request-ID"] == "lb-7f3a.2026:edge_1"


@pytest.mark.parametrize(
    "supplied",
    ["", "two words", "forged\nINFO line", "x" * 129, "-leading-dash", "ünïcode", "<script>"],
)
def test_an_unfit_id_is_replaced(client: Client, supplied: str) -> None:
    response = client.get("/healthz", HTTP_X_REQUEST_ID=supplied)

    assert GENERATED.fullmatch(response["X-Request-ID"])


def test_redirects_and_errors_answer_the_id_too(client: Client) -> None:
    assert client.get("/no/such/page", HTTP_X_REQUEST_ID="req-404")["X-Request-ID"] == "req-404"
    assert client.post("/healthz", HTTP_X_REQUEST_ID="req-405")["X-Request-ID"] == "req-405"


def test_the_id_is_unbound_after_the_request(client: Client) -> None:
    client.get("/healthz", HTTP_X_REQUEST_ID="req-gone")

    assert request_id_var.get() is None


# --- Log records ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_log_records_of_a_request_carry_its_id_and_the_order(
    client: Client, records: Collect, text_product: Any, seller: Any
) -> None:
    from rest_framework_simplejwt.tokens import RefreshToken

    from orders.tests.helpers import make_order

    order = make_order(text_product)
    records.records.clear()

    response = client.put(
        f"/api/v1/orders/{order.id}/status",
        {"status": "cancelled"},
        content_type="application/json",
        HTTP_X_REQUEST_ID="req-cancel-1",
        HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(seller).access_token}",
    )

    assert response.status_code == 200, response.content
    [transition] = records.by("orders.lifecycle")
    assert transition.getMessage() == f"order {order.order_number}: pending -> cancelled"
    assert (transition.request_id, transition.order_number) == ("req-cancel-1", order.order_number)
    assert order.id not in transition.getMessage() and not hasattr(transition, "order_id")
    assert (transition.from_status, transition.to_status) == ("pending", "cancelled")
    [access] = records.by("marketplace.request")
    assert access.getMessage() == "PUT /api/v1/orders/<str:ref>/status 200"
    assert (access.request_id, access.status, access.route) == ("req-cancel-1", 200, "/api/v1/orders/<str:ref>/status")
    assert not hasattr(access, "order_number")  # the order was bound only inside the transition


def test_djangos_own_warning_for_a_4xx_carries_the_id(client: Client, records: Collect) -> None:
    client.get("/api/v1/orders", HTTP_X_REQUEST_ID="req-401")

    [warning] = records.by("django.request")
    assert warning.getMessage() == "Unauthorized: /api/v1/orders"
    assert (warning.levelname, warning.request_id) == ("WARNING", "req-401")


def test_records_outside_a_request_have_no_id(records: Collect) -> None:
    logging.getLogger("marketplace.test").info("no request here")

    [record] = records.by("marketplace.test")
    assert record.request_id is None
    assert not hasattr(record, "order_number")


def test_the_embedded_default_writes_readable_text_with_the_id(client: Client) -> None:
    """The console handler of settings.LOGGING itself, not a test double."""
    [console] = [h for h in logging.getLogger().handlers if h.get_name() == "console"]
    stream = io.StringIO()
    previous = console.setStream(stream)  # type: ignore[attr-defined]
    try:
        client.get("/healthz", HTTP_X_REQUEST_ID="req-text-1")
        with bound(request_id="req-text-2", order_number="10000001"):
            logging.getLogger("marketplace.test").warning("plain words")
    finally:
        console.setStream(previous)  # type: ignore[attr-defined]

    lines = stream.getvalue().splitlines()
    assert any(
        re.fullmatch(r"\S+ \S+ INFO marketplace\.request \[req-text-1\] GET /healthz 200", line) for line in lines
    )
    assert any(line.endswith("WARNING marketplace.test [req-text-2] plain words") for line in lines), lines
    assert not any(line.lstrip().startswith("{") for line in lines)


# --- Celery ----------------------------------------------------------------------------------------


@pytest.fixture
def eager() -> Iterator[None]:
    """Tasks run in this process (the test settings' default, set here again: a test that started a
    real worker may have left the app's configuration otherwise)."""
    saved = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        yield
    finally:
        celery_app.conf.task_always_eager = saved


@celery_app.task(name="marketplace.core.tests.log_probe")
def log_probe(order_id: str = "") -> None:
    logging.getLogger("marketplace.test.probe").info("probe ran")


def test_a_task_logs_under_the_request_id_in_its_headers(records: Collect, eager: None) -> None:
    with bound(request_id="outer"):
        log_probe.apply(kwargs={"order_id": "ord_probe"}, headers={"request_id": "from-header"})
        assert request_id_var.get() == "outer"  # restored after the task

    [record] = records.by("marketplace.test.probe")
    assert record.request_id == "from-header"
    assert not hasattr(record, "order_number")  # an order_id argument is a capability: never bound


def test_a_task_without_the_header_does_not_borrow_the_callers_id(records: Collect, eager: None) -> None:
    with bound(request_id="outer"):
        log_probe.apply()  # not through apply_async: nothing adds the header

    [record] = records.by("marketplace.test.probe")
    assert record.request_id is None
    assert not hasattr(record, "order_number")


def test_queuing_a_task_puts_the_bound_request_id_in_its_headers(records: Collect, eager: None) -> None:
    with bound(request_id="req-queued"):
        log_probe.apply_async(args=["ord_positional"])

    [record] = records.by("marketplace.test.probe")
    assert record.request_id == "req-queued"
    assert not hasattr(record, "order_number")


@pytest.mark.django_db(transaction=True)
def test_the_fulfillment_task_logs_under_the_request_that_paid(
    client: Client, records: Collect, text_product: Any, eager: None
) -> None:
    """Pay on the sandbox page: the webhook marks the order paid and queues fulfillment (eager here);
    the task's lifecycle lines carry the pay request's id and the order's number (never its id)."""
    from orders.tests.helpers import make_order
    from payments.services import payment_initiate

    order = make_order(text_product)
    payment = payment_initiate(order=order, gateway_name="sandbox", return_url="https://shop.test/return")
    records.records.clear()

    response = client.post(f"/sandbox/pay/{payment.id}", {"outcome": "succeeded"}, HTTP_X_REQUEST_ID="req-pay-42")

    assert response.status_code == 302
    order.refresh_from_db()
    assert order.status == "delivered"
    moves = {(r.from_status, r.to_status): r for r in records.by("orders.lifecycle")}
    assert set(moves) == {("pending", "paid"), ("paid", "delivered")}
    delivered = moves[("paid", "delivered")]
    assert delivered.task_name == "orders.tasks.fulfil_order"  # logged inside the task
    assert (delivered.request_id, delivered.order_number) == ("req-pay-42", order.order_number)
    assert moves[("pending", "paid")].task_name is None
    assert moves[("pending", "paid")].request_id == "req-pay-42"


# --- Production: JSON lines ------------------------------------------------------------------------

JSON_SCRIPT = """
import logging, django
django.setup()
from marketplace.core.log_context import bound
log = logging.getLogger("orders.lifecycle")
with bound(request_id="req-json-1"):
    with bound(order_number="10000001"):
        log.info("order %s: %s -> %s", "10000001", "paid", "delivered", extra={"to_status": "delivered"})
    with bound(order_number="10000002"):
        logging.getLogger("payments.services").warning("gateway slow")
logging.getLogger("celery.beat").info("outside any request")
try:
    1 / 0
except ZeroDivisionError:
    logging.getLogger("marketplace.test").exception("it broke")
"""


def test_production_writes_one_json_object_per_line_with_the_context() -> None:
    result = subprocess.run(
        [sys.executable, "-c", JSON_SCRIPT], cwd=BASE_DIR, env=production_env(), capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    every = [json.loads(line) for line in result.stderr.splitlines()]  # each line alone is one object
    ours = {"orders.lifecycle", "payments.services", "celery.beat", "marketplace.test"}
    lines = [line for line in every if line["logger"] in ours]
    assert len(lines) == 4, result.stderr
    first, second, third, fourth = lines
    assert set(first) == {"time", "level", "logger", "message", "request_id", "order_number", "to_status"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\+00:00", first["time"])
    assert (first["level"], first["logger"], first["message"]) == (
        "INFO",
        "orders.lifecycle",
        "order 10000001: paid -> delivered",
    )
    assert (first["request_id"], first["order_number"], first["to_status"]) == ("req-json-1", "10000001", "delivered")
    assert (second["level"], second["request_id"], second["order_number"]) == ("WARNING", "req-json-1", "10000002")
    assert third["request_id"] is None and "order_number" not in third
    assert fourth["level"] == "ERROR" and "ZeroDivisionError" in fourth["exc_info"]


def test_the_development_servers_access_lines_go_through_the_redacting_handler(settings):
    """``make run``'s server prints each request's raw path: a success page's carries the order id."""
    import logging

    from django.utils.log import configure_logging

    from marketplace.core.log_context import ContextFilter

    server = settings.LOGGING["loggers"]["django.server"]
    assert (server["handlers"], server["propagate"]) == (["console"], False)
    assert settings.LOGGING["handlers"]["console"]["filters"] == ["context"]
    configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)
    (handler,) = logging.getLogger("django.server").handlers
    assert any(isinstance(f, ContextFilter) for f in handler.filters)
    order_id = "ord_" + "7" * 22
    record = logging.LogRecord(
        "django.server",
        logging.INFO,
        __file__,
        1,
        '"%s" %s %s',
        (f"GET /c/x/orders/{order_id} HTTP/1.1", "200", "9"),
        None,
    )
    assert all(f.filter(record) for f in handler.filters)
    assert record.getMessage() == '"GET /c/x/orders/ord_<redacted> HTTP/1.1" 200 9'


def test_paths_are_logged_without_order_ids_or_gift_claim_tokens():
    from marketplace.core.log_context import redact_path

    assert redact_path("/c/x/orders/ord_0XwDI9xM6kaHqMlqtIpjxd") == "/c/x/orders/ord_<redacted>"
    assert redact_path("/gift/e1EME6aBIN1mXHZA75hRnpsLxuDH-qNLgG6q_uaUs4?x=1") == "/gift/<redacted>?x=1"
