"""Who caused a log line: the request id (and the order's number, when one is known) on every record.

- ``RequestIdMiddleware`` takes ``X-Request-ID`` from the request when it is sane, or makes one,
  answers it in the response's ``X-Request-ID`` and keeps it in a context variable for the request.
- ``ContextFilter`` (on the log handlers) copies the request id, and the order number when one is
  bound, onto every record, so every formatter can show them: text in the embedded default, one JSON
  object per line in production (``JsonFormatter``, python-json-logger's, with our field names).
- Celery: a task queued while a request id is bound carries it in a message header
  (``ContextTask.apply_async``, which also covers eager mode and retries keep their headers); the
  worker binds it for the task's run (``task_prerun`` and ``task_postrun`` below). The services bind
  the order's number once they have loaded the order (``orders.lifecycle``, ``order_fulfill``).

Log lines name ids, never secrets: no codes, PINs, keys or passwords in a message or an ``extra``.
An order is named by its ``order_number``, never its ``ord_`` id: the id is the buyer's capability
(their email, codes and downloads), and logs are read by more people than may hold it. Paths are
logged as their route pattern (``/c/<slug:slug>/orders/<str:order_id>/``), or with ids redacted.
"""

import logging
import logging.config
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any

from celery.contrib.django.task import DjangoTask
from celery.signals import setup_logging, task_postrun, task_prerun
from django.http import HttpRequest, HttpResponse
from django.utils.log import log_response
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from .client_ip import client_address

REQUEST_ID_HEADER = "X-Request-ID"
# What we accept from a client or a proxy: short, printable, no spaces (nothing that could forge a log line).
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
order_number_var: ContextVar[str | None] = ContextVar("order_number", default=None)

access_logger = logging.getLogger("marketplace.request")


def new_request_id() -> str:
    return uuid.uuid4().hex


def sane_request_id(value: str | None) -> str | None:
    """The client's id if it is one we may echo and log, else ``None``."""
    if value and SANE_REQUEST_ID.fullmatch(value):
        return value
    return None


@contextmanager
def bound(*, request_id: str | None = None, order_number: str | None = None) -> Iterator[None]:
    """Binds a request id and/or an order number for the code inside (``None`` leaves one as it is)."""
    tokens: list[tuple[ContextVar[str | None], Token[str | None]]] = []
    if request_id is not None:
        tokens.append((request_id_var, request_id_var.set(request_id)))
    if order_number is not None:
        tokens.append((order_number_var, order_number_var.set(str(order_number))))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class RequestIdMiddleware:
    """Binds the request's id for its whole handling and answers it in ``X-Request-ID``; logs one
    line per request with the URL pattern (never the raw path or query, which may hold tokens) and
    the client's address (``client_ip.client_address``, the one the rate limits count)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = sane_request_id(request.headers.get(REQUEST_ID_HEADER)) or new_request_id()
        request.request_id = request_id  # type: ignore[attr-defined]
        started = time.monotonic()
        with bound(request_id=request_id):
            response = self.get_response(request)
            match = getattr(request, "resolver_match", None)
            route = f"/{match.route}" if match is not None and match.route else None
            access_logger.info(
                "%s %s %s",
                request.method,
                route or "-",
                response.status_code,
                extra={
                    "method": request.method,
                    "route": route,
                    "status": response.status_code,
                    "duration_ms": round((time.monotonic() - started) * 1000, 1),
                    # The address the limits and the lock-out count, never a client's own X-Forwarded-For.
                    "client_address": client_address(request),
                },
            )
            if response.status_code >= 400:
                # Django's own "Not Found: /path" line, here where the id is still bound (it logs
                # each response once, so the handler's later call does nothing), with the route or
                # the redacted path, and without the request itself (whose repr is the raw path).
                log_response("%s: %s", response.reason_phrase, route or redact_path(request.path), response=response)
        response[REQUEST_ID_HEADER] = request_id
        return response


# An order's id (``ord_`` and 22 base62 characters in ours; any length in what a client sends).
ORDER_ID = re.compile(r"ord_[0-9A-Za-z]+")


# The project's own loggers: their lines name orders by number (the suite's log check holds them to
# it, unredacted, so that a slip is found); every other library's lines are redacted below.
OWN_LOGGERS = ("catalog", "orders", "payments", "marketplace")


# A gift's claim link (``/gift/<token>``): the token is the recipient's capability.
GIFT_LINK = re.compile(r"/gift/[^/?#\s]+")


def redact_path(path: str) -> str:
    """A path as it may be logged: order ids (buyers' capabilities) replaced by ``ord_<redacted>``,
    gift claim tokens by ``/gift/<redacted>``."""
    return GIFT_LINK.sub("/gift/<redacted>", ORDER_ID.sub("ord_<redacted>", path))


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact_path(value)
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redacted(item) for item in value)
    return value


def _describe_request(request: Any) -> str:
    match = getattr(request, "resolver_match", None)
    route = f"/{match.route}" if match is not None and match.route else redact_path(str(getattr(request, "path", "")))
    return f"{getattr(request, 'method', '')} {route}"


class ContextFilter(logging.Filter):
    """Adds ``request_id`` (``missing`` when none is bound) and, when one is bound and the record
    has none of its own, ``order_number``.

    Also the last guard for lines other libraries write: Django's ("Internal Server Error: /path",
    with the ``request`` attached, which becomes its method and route) and Celery's (a task's
    arguments, in its ``data``): order ids in their arguments and data are redacted."""

    def __init__(self, name: str = "", missing: str | None = None) -> None:
        super().__init__(name)
        self.missing = missing

    def filter(self, record: logging.LogRecord) -> bool:
        # A value given with ``extra`` wins; one this filter set (for another handler) is set again,
        # so that each handler gets its own placeholder.
        filled = getattr(record, "_context_filled", False)
        if filled or getattr(record, "request_id", None) is None:
            record.request_id = request_id_var.get() or self.missing
            record._context_filled = True
        if getattr(record, "order_number", None) is None:
            order_number = order_number_var.get()
            if order_number is not None:
                record.order_number = order_number
        if isinstance(getattr(record, "request", None), HttpRequest):
            record.__dict__["request"] = _describe_request(record.__dict__["request"])
        if not record.name.startswith(OWN_LOGGERS):
            record.msg = _redacted(record.msg)
            record.args = _redacted(record.args)
            if hasattr(record, "data"):
                record.data = _redacted(record.data)
        return True


class JsonFormatter(_JsonFormatter):
    """One JSON object per line: ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``,
    ``request_id``, ``order_number`` when known, then every ``extra`` field of the record."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("fmt", "%(levelname)s %(name)s %(message)s %(request_id)s")
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", "time")
        kwargs.setdefault("reserved_attrs", [*RESERVED_ATTRS, "_context_filled"])
        super().__init__(*args, **kwargs)


# --- Celery ------------------------------------------------------------------------------------


class ContextTask(DjangoTask):  # type: ignore[misc]
    """Every task of the app (Celery's Django task, with ``delay_on_commit``): queued while a
    request id is bound, it carries that id in a header."""

    def apply_async(self, args: Any = None, kwargs: Any = None, task_id: Any = None, producer: Any = None,
                    link: Any = None, link_error: Any = None, shadow: Any = None, **options: Any) -> Any:  # fmt: skip
        request_id = request_id_var.get()
        headers = dict(options.get("headers") or {})
        if request_id and "request_id" not in headers:
            headers["request_id"] = request_id
            options["headers"] = headers
        return super().apply_async(args, kwargs, task_id, producer, link, link_error, shadow, **options)


def _task_request_id(task: Any) -> str | None:
    request = getattr(task, "request", None)
    if request is None:
        return None
    value = getattr(request, "request_id", None) or (getattr(request, "headers", None) or {}).get("request_id")
    return sane_request_id(value) if isinstance(value, str) else None


@setup_logging.connect
def configure_worker_logging(**_: Any) -> None:
    """Workers and beat log through Django's ``LOGGING`` (JSON in production), not Celery's own format."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


_task_tokens: dict[str, list[tuple[ContextVar[str | None], Token[str | None]]]] = {}


@task_prerun.connect
def bind_task_context(task_id: str = "", task: Any = None, **_: Any) -> None:
    """The task's run is logged under the request id that queued it (or none), and no order: a
    task's ``order_id`` argument is the buyer's capability; the service binds the order's number."""
    _task_tokens[task_id] = [
        (request_id_var, request_id_var.set(_task_request_id(task))),
        (order_number_var, order_number_var.set(None)),
    ]


@task_postrun.connect
def unbind_task_context(task_id: str = "", **_: Any) -> None:
    for var, token in reversed(_task_tokens.pop(task_id, [])):
        try:
            var.reset(token)
        except ValueError:  # set in another context: leave it
            pass
