"""A pytest plugin (loaded by the root conftest) that records every log record of the whole run and,
at the end, fails the run if one of them holds a secret the suite made.

Secrets are registered where they are made, whatever test or service makes them:
- anything written through an encrypted field (codes, PINs, licence keys, webhook secrets), one by
  one or in a batch for a bulk write (the code importer's ``EncryptedTextField.encrypt_many``),
- API keys as they are hashed (on creation, and a presented key on use),
- passwords as they are set on a user,
- gift claim link tokens as they are hashed (when the link is made, and when one is opened),
- order ids as orders are created: an ``ord_`` id is the buyer's capability (their email, codes and
  downloads), so logs name an order by its ``order_number`` only.
"""

import logging
from typing import Any

import pytest

from . import secrets_registry

_handler = secrets_registry.RecordingHandler()
# The project's own loggers log at every level during the run, so a secret in a debug line is found too.
_PROJECT_LOGGERS = ("catalog", "orders", "payments", "marketplace")
_patched: list[tuple[Any, str, Any]] = []
_disconnect: list[Any] = []
_ORDER_RECEIVER = "secrets-plugin-order-ids"


def _patch(owner: Any, name: str, wrapper_factory: Any) -> None:
    original = getattr(owner, name)
    _patched.append((owner, name, original))
    setattr(owner, name, wrapper_factory(original))


def _install_registrations() -> None:
    from django.contrib.auth.base_user import AbstractBaseUser

    from marketplace.accounts import services as account_services
    from marketplace.core.crypto import EncryptedTextField

    def prep_value(original: Any) -> Any:
        def get_prep_value(self: Any, value: Any) -> Any:
            secrets_registry.register(value, kind=f"encrypted {self.model.__name__}.{self.name}")
            return original(self, value)

        return get_prep_value

    def encrypt_many(original: Any) -> Any:
        def wrapper(self: Any, values: list[Any]) -> Any:
            for value in values:
                secrets_registry.register(value, kind=f"encrypted {self.model.__name__}.{self.name}")
            return original(self, values)

        return wrapper

    def hash_api_key(original: Any) -> Any:
        def wrapper(raw_key: str) -> str:
            secrets_registry.register(raw_key, kind="API key")
            return original(raw_key)

        return wrapper

    def set_password(original: Any) -> Any:
        def wrapper(self: Any, raw_password: Any) -> None:
            secrets_registry.register(raw_password, kind="password")
            original(self, raw_password)

        return wrapper

    from django.db.models.signals import post_save

    from orders.models import Order

    def order_created(sender: Any, instance: Order, created: bool, **kwargs: Any) -> None:
        if created:
            secrets_registry.register(instance.pk, kind="order id (the buyer's capability)")

    post_save.connect(order_created, sender=Order, weak=False, dispatch_uid=_ORDER_RECEIVER)
    _disconnect.append(lambda: post_save.disconnect(sender=Order, dispatch_uid=_ORDER_RECEIVER))

    from orders.services import gifts

    def claim_token_hash(original: Any) -> Any:
        def wrapper(token: str) -> str:
            secrets_registry.register(token, kind="gift claim link token")
            return original(token)

        return wrapper

    _patch(gifts, "claim_token_hash", claim_token_hash)
    _patch(EncryptedTextField, "get_prep_value", prep_value)
    _patch(EncryptedTextField, "encrypt_many", encrypt_many)
    _patch(account_services, "hash_api_key", hash_api_key)
    _patch(AbstractBaseUser, "set_password", set_password)


def _attach() -> None:
    root = logging.getLogger()
    if _handler not in root.handlers:  # a test that re-runs dictConfig drops it; put it back
        root.addHandler(_handler)


def pytest_sessionstart(session: pytest.Session) -> None:
    _install_registrations()
    for name in _PROJECT_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    _attach()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _handler.where = item.nodeid
    _attach()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    logging.getLogger().removeHandler(_handler)
    for owner, name, original in reversed(_patched):
        setattr(owner, name, original)
    _patched.clear()
    for disconnect in _disconnect:
        disconnect()
    _disconnect.clear()
    leaks = secrets_registry.find_leaks(secrets_registry.registered(), secrets_registry.records())
    session.config.stash[_LEAKS] = leaks
    if leaks and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_LEAKS = pytest.StashKey[list[secrets_registry.Leak]]()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    leaks = config.stash.get(_LEAKS, [])
    registered = len(secrets_registry.registered())
    logged = len(secrets_registry.records())
    if leaks:
        terminalreporter.section("secrets found in logs", sep="=", red=True, bold=True)
        for leak in leaks:
            terminalreporter.line(leak.describe(), red=True)
        terminalreporter.line(f"FAILED: {len(leaks)} secret(s) of {registered} appeared in {logged} log records.")
    else:
        terminalreporter.write_line(f"secrets check: none of {registered} secrets in {logged} log records.")
