"""Every secret the test suite makes — codes, PINs, licence keys, webhook secrets, API keys,
passwords, order ids (the buyer's capability) — and every log record the suite writes, so that one
can be searched for the other.

Secrets are registered where they are made (see ``secrets_plugin``): a value written through an
encrypted field, an API key hashed at creation or use, a password set on a user. Values shorter than
``MIN_LENGTH`` or with fewer than ``MIN_DISTINCT`` distinct characters are not kept: a four-digit
PIN or ``00000000`` would be found by chance in any log, and such a check could only cry wolf.
"""

import logging
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

MIN_LENGTH = 8
MIN_DISTINCT = 4

_lock = threading.Lock()
_secrets: dict[str, str] = {}
_records: list[tuple[str, str]] = []  # (where, text)
_paused = 0


@contextmanager
def paused() -> Iterator[None]:
    """For fuzzers only: the values a fuzzer invents (hypothesis draws from one list of words for
    passwords, paths and query strings alike) come back verbatim in its other requests, where they
    are input echoed in a 404's log line, not a leak. Secrets made before or outside stay checked."""
    global _paused
    with _lock:
        _paused += 1
    try:
        yield
    finally:
        with _lock:
            _paused -= 1


def register(value: object, *, kind: str) -> None:
    if not isinstance(value, str) or _paused:
        return
    value = value.strip()
    if len(value) < MIN_LENGTH or len(set(value)) < MIN_DISTINCT:
        return
    with _lock:
        _secrets.setdefault(value, kind)


def registered() -> dict[str, str]:
    with _lock:
        return dict(_secrets)


_STANDARD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def record_text(record: logging.LogRecord) -> str:
    """Everything a handler could write out for a record: the message with its arguments, the
    exception and stack, and any ``extra`` fields."""
    parts = [record.getMessage()]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    elif record.exc_text:
        parts.append(record.exc_text)
    if record.stack_info:
        parts.append(record.stack_info)
    for name, value in record.__dict__.items():
        if name not in _STANDARD_ATTRIBUTES:
            parts.append(f"{name}={value!r}")
    return "\n".join(parts)


class RecordingHandler(logging.Handler):
    """Keeps the text of every record (at any level) that reaches the root logger."""

    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.where = "session"

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record_text(record)
        except Exception as exc:  # noqa: BLE001 - a broken record must not break the test that logged it
            text = f"<unformattable record from {record.name}: {exc!r}>"
        with _lock:
            _records.append((self.where, f"{record.levelname} {record.name}: {text}"))


def records() -> list[tuple[str, str]]:
    with _lock:
        return list(_records)


@dataclass(frozen=True)
class Leak:
    kind: str
    secret: str
    where: str
    line: str

    def describe(self) -> str:
        shown = self.secret[:3] + "…" + self.secret[-2:]
        return f"{self.kind} {shown!r} (len {len(self.secret)}) logged in {self.where}: {self.line[:300]}"


def find_leaks(secrets: dict[str, str], logged: list[tuple[str, str]]) -> list[Leak]:
    """Each secret found in a logged text, with the first record it appears in."""
    if not secrets or not logged:
        return []
    separator = "\x00\n"
    blob = separator.join(text for _, text in logged)
    leaks = []
    for secret, kind in secrets.items():
        if secret not in blob:
            continue
        found = _found_in(secret)
        for where, text in logged:
            if found(text):
                leaks.append(Leak(kind, secret, where, text))
                break
    return leaks


def _found_in(secret: str) -> Callable[[str], bool]:
    """How to look for one secret in a text. A secret of digits only (a numeric PIN) counts only as a
    number of its own: inside a longer run of digits — a duration such as ``0.0123456789s`` or a
    timestamp — it is chance, not a leak (eight random digits turn up in a long run's floats)."""
    if not secret.isdigit():
        return lambda text: secret in text
    pattern = re.compile(rf"(?<![\d.]){re.escape(secret)}(?!\d)")
    return lambda text: pattern.search(text) is not None
