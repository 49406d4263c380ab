"""The API's JSON parser: every JSON body is bounded before it becomes Python objects.

DRF's own parser hands the body straight to ``json.loads``, which recurses once per level of
nesting: 1,000 brackets raise ``RecursionError`` (a 500, unauthenticated, on ``quote``/``pay``).
An ``object_hook`` cannot help, as it runs only after the nested objects are built. So the depth
is measured first, by a scan of the brackets outside strings, and the parse happens only within it.

What the parsed body may hold is then checked in one walk, so that no view, serializer or service
ever sees it:
- no NUL character in any key or string (PostgreSQL text cannot store one: a 500 there),
- no integer outside 64 bits (the widest column; 2**70 overflows the database driver),
- no number that is not finite (``1e309`` parses as ``inf``).

The body itself is read up to ``DATA_UPLOAD_MAX_MEMORY_SIZE``; a larger one is 413.
Every refusal is the envelope's 400 ``validation_error`` (or 413 ``payload_too_large``).
"""

import json
import math
import re
from typing import IO, Any

from django.conf import settings
from rest_framework import exceptions, parsers
from rest_framework.utils.json import strict_constant

from .bounds import MAX_INT64, MIN_INT64
from .errors import PayloadTooLarge

MAX_DEPTH = 32

# A JSON string, unrolled so that a long one is one linear match: quote, runs of plain characters
# and escapes, quote. What is left after removing strings is structure, numbers and literals.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")

NUL_MESSAGE = "Null characters are not allowed."
INTEGER_MESSAGE = f"Must be a whole number from {MIN_INT64} to {MAX_INT64}."
NUMBER_MESSAGE = "Must be a finite number."


def nesting_depth(text: str, *, stop_after: int = MAX_DEPTH) -> int:
    """The deepest nesting of arrays and objects in ``text`` (brackets inside strings do not count);
    it stops counting once past ``stop_after``, so a hostile body costs one scan at most."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub('""', text)):
        if match.group() in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > stop_after:
                    break
        else:
            depth -= 1
    return deepest


def _problems(value: Any, path: str) -> dict[str, list[str]]:
    """The first thing in ``value`` a body may not hold, as ``{"field.path": [message]}``."""
    if isinstance(value, str):
        return {path: [NUL_MESSAGE]} if "\x00" in value else {}
    if isinstance(value, bool) or value is None:
        return {}
    if isinstance(value, int):
        return {} if MIN_INT64 <= value <= MAX_INT64 else {path: [INTEGER_MESSAGE]}
    if isinstance(value, float):
        return {} if math.isfinite(value) else {path: [NUMBER_MESSAGE]}
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                return {path or "non_field_errors": [f"{NUL_MESSAGE} (in a key)"]}
            found = _problems(item, f"{path}.{key}" if path else key)
            if found:
                return found
        return {}
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _problems(item, f"{path}.{index}" if path else str(index))
            if found:
                return found
    return {}


def loads_bounded(text: str) -> Any:
    """``json.loads`` for input from outside: the depth checked before parsing, the content after.

    Raises DRF's ``ValidationError`` (400 ``validation_error``) for a body too deep or holding what
    no field may hold, and ``ValueError`` for text that is not JSON."""
    if nesting_depth(text) > MAX_DEPTH:
        raise exceptions.ValidationError(f"JSON may nest arrays and objects at most {MAX_DEPTH} levels deep.")
    data = json.loads(text, parse_constant=strict_constant)
    problems = _problems(data, "")
    if problems:
        raise exceptions.ValidationError(problems)
    return data


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with the bounds above; the project's only JSON parser (settings and every
    view's ``parser_classes``)."""

    def parse(self, stream: IO[bytes] | None, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1 if limit is not None else -1) if stream is not None else b""
        if limit is not None and len(raw) > limit:
            raise PayloadTooLarge(f"The request body is larger than the limit of {limit} bytes.")
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = raw.decode(encoding)  # bytes.decode refuses codecs that are not text encodings
        except LookupError:
            raise exceptions.ParseError(f'Unsupported charset "{encoding}" in request Content-Type header.') from None
        except ValueError as exc:  # UnicodeDecodeError
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
        try:
            return loads_bounded(text)
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
