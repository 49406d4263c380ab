"""Opaque, prefixed identifiers: ``ord_5KfG...``.

Every id carries 128 random bits (22 base62 characters), so an ``ord_`` id can serve as the buyer's
capability for their order.
"""

import functools
import secrets
from typing import Any

from django.db import models

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
RANDOM_BITS = 128


def random_token(bits: int = RANDOM_BITS) -> str:
    number = secrets.randbits(bits)
    length = 22 if bits == RANDOM_BITS else max(1, -(-bits * 1000 // 5954))  # log2(62) ~ 5.954
    chars = []
    for _ in range(length):
        number, rem = divmod(number, 62)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def make_id(prefix: str) -> str:
    return f"{prefix}_{random_token()}"


# Random bytes below 248 (= 4 x 62) map uniformly onto the alphabet; the others are dropped.
_BYTE_TO_CHAR = bytes(ord(_ALPHABET[b % 62]) for b in range(256))
_ABOVE_248 = bytes(range(248, 256))
_ID_CHARS = 22  # 22 x log2(62) = 131 random bits, at least RANDOM_BITS


def make_ids(prefix: str, count: int) -> list[str]:
    """``count`` ids like ``make_id``'s (22 base62 characters, at least 128 random bits each),
    drawn together: one read of the system's random source and one translation in C for the lot,
    instead of 22 Python divisions per id, for writers of many rows (the code importer)."""
    need = count * _ID_CHARS
    chars = b""
    while len(chars) < need:
        chars += secrets.token_bytes(need - len(chars) + need // 30 + 8).translate(_BYTE_TO_CHAR, _ABOVE_248)
    text = chars[:need].decode("ascii")
    return [f"{prefix}_{text[i : i + _ID_CHARS]}" for i in range(0, need, _ID_CHARS)]


class PrefixedIdField(models.CharField):
    """A primary key such as ``prd_...``, generated on creation."""

    def __init__(self, *args: Any, prefix: str = "", **kwargs: Any) -> None:
        self.prefix = prefix
        kwargs["max_length"] = 40
        kwargs["primary_key"] = True
        kwargs["editable"] = False
        kwargs["default"] = functools.partial(make_id, prefix)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        for key in ("max_length", "primary_key", "editable", "default"):
            kwargs.pop(key, None)
        kwargs["prefix"] = self.prefix
        return name, path, args, kwargs
