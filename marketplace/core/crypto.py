"""Secrets at rest: Fernet encryption with a rotating key list, and a blind index to find duplicates.

``FERNET_KEYS`` is a list: the first key encrypts, every key decrypts, so a new key is put first and
``manage.py rotate_code_keys`` re-encrypts old rows. A value that no key can decrypt raises
``UndecryptableValue`` — ciphertext is never passed off as a code.
"""

import hashlib
import hmac
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from encrypted_fields.fields import EncryptedFieldMixin


class UndecryptableValue(Exception):
    """No configured key decrypts this value: a missing or wrong FERNET_KEYS entry."""


@lru_cache(maxsize=8)
def _fernet_for(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FERNET_KEYS is empty: at least one Fernet key is required.")
    try:
        return MultiFernet([Fernet(key.encode() if isinstance(key, str) else key) for key in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"FERNET_KEYS holds a key that is not a Fernet key: {exc}") from None


def fernet() -> MultiFernet:
    return _fernet_for(tuple(settings.FERNET_KEYS))


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def encrypt_many(plaintexts: list[str | None]) -> list[str | None]:
    """Encrypts a batch (``None`` stays ``None``): one Fernet encryption per value, which is the
    floor, and nothing else per value — the key list is looked up once for the batch. Tokens are
    the same as ``encrypt``'s and as the encrypted model fields write."""
    f = fernet()
    return [None if value is None else f.encrypt(value.encode()).decode() for value in plaintexts]


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise UndecryptableValue(
            "A stored secret cannot be decrypted with any key in FERNET_KEYS. "
            "Restore the key it was written with; nothing was returned."
        ) from None


def is_under_newest_key(token: str) -> bool:
    try:
        Fernet(settings.FERNET_KEYS[0].encode()).decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def rotate(token: str) -> str:
    """Re-encrypts a token under the first (newest) key."""
    try:
        return fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise UndecryptableValue("A stored secret cannot be decrypted with any key in FERNET_KEYS.") from None


def blind_index(value: str, *, scope: str = "") -> str:
    """A keyed hash of a secret: equal inputs give equal hashes, and the hash reveals nothing."""
    key = settings.CODE_HASH_KEY.encode()
    return hmac.new(key, f"{scope}\x00{value}".encode(), hashlib.sha256).hexdigest()


def blind_indexes(values: list[str], *, scope: str = "") -> list[str]:
    """``blind_index`` of each value, for a batch: the keyed HMAC's key schedule is done once and
    copied per value instead of redone for each."""
    keyed = hmac.new(settings.CODE_HASH_KEY.encode(), digestmod=hashlib.sha256)
    prefix = f"{scope}\x00".encode()
    keyed.update(prefix)
    hashes = []
    for value in values:
        h = keyed.copy()
        h.update(value.encode())
        hashes.append(h.hexdigest())
    return hashes


def hint(value: str, visible: int = 4) -> str:
    """The last characters only: what lists, the admin and logs may show."""
    return value[-visible:] if len(value) > visible else value[-1:] if value else ""


def mask(value: str) -> str:
    tail = hint(value)
    return f"••••{tail}"


class EncryptedTextField(EncryptedFieldMixin, models.TextField):  # type: ignore[misc]
    """django-fernet-encrypted-fields' field, keyed from ``FERNET_KEYS`` and made strict: a value
    no key decrypts raises instead of being handed back as if it were the plaintext."""

    @property  # type: ignore[override]
    def f(self) -> MultiFernet:
        return fernet()

    @property  # type: ignore[override]
    def keys(self) -> list[bytes]:
        return [key.encode() for key in settings.FERNET_KEYS]

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None:
            return None
        return decrypt(value)

    def to_python(self, value: Any) -> Any:
        return value  # values in Python are plaintext; decryption happens only in from_db_value

    def encrypt_many(self, values: list[str | None]) -> list[str | None]:
        """What this field would write for each value, for a bulk write that bypasses the model
        (the code importer's ``COPY``): the same tokens, encrypted as one batch."""
        return encrypt_many(values)
