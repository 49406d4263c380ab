"""Secrets at rest and in logs: codes, PINs, licence keys and webhook secrets are ciphertext in the
database, API keys and passwords are hashes; the operators' admin shows none of them; and the
session-wide log check (``secrets_plugin``) really records and finds them."""

import hashlib
import logging
from typing import Any

import pytest
from cryptography.fernet import MultiFernet
from django.conf import settings
from django.contrib.admin.utils import quote
from django.db import connection
from django.test import Client

from catalog.models import Code
from marketplace.accounts.models import APIKey, User
from marketplace.core.crypto import fernet
from orders.models import License, WebhookEndpoint

from . import secrets_registry
from .world import Tenant, build_tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def tenant(settings: Any, tmp_path: Any) -> Tenant:
    settings.STORAGES = {
        **settings.STORAGES,
        "private": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }
    return build_tenant("Vault")


def raw_rows(model: Any, columns: list[str], where: str, params: list[Any]) -> list[tuple[Any, ...]]:
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {names} FROM {table} WHERE {where}", params)  # noqa: S608 - fixed names
        return list(cursor.fetchall())


def assert_ciphertext(stored: str, plaintext: str, box: MultiFernet) -> None:
    assert plaintext not in stored
    assert stored.startswith("gAAAA")  # a Fernet token
    assert box.decrypt(stored.encode()).decode() == plaintext


def test_codes_and_pins_are_ciphertext_in_the_database(tenant: Tenant) -> None:
    box = fernet()
    codes = list(Code.objects.filter(variant=tenant.variant))
    assert len(codes) == 3
    for code in codes:
        [(stored_code, stored_pin, code_hash, code_hint)] = raw_rows(
            Code, ["code", "pin", "code_hash", "code_hint"], "id = %s", [code.id]
        )
        assert_ciphertext(stored_code, code.code, box)
        assert_ciphertext(stored_pin, code.pin, box)
        assert code.code not in code_hash and len(code_hash) == 64
        assert code_hint == code.code[-4:]


def test_api_keys_and_passwords_are_hashes(tenant: Tenant) -> None:
    [(hashed, prefix)] = raw_rows(APIKey, ["hashed_key", "prefix"], "id = %s", [tenant.api_key.id])
    assert hashed == hashlib.sha256(tenant.raw_api_key.encode()).hexdigest()
    assert tenant.raw_api_key not in hashed and tenant.raw_api_key[10:] not in prefix
    user = User.objects.create_user(email="vault-user@example.com", password="a-password-at-rest-42", name="V")
    [(stored,)] = raw_rows(User, ["password"], "id = %s", [user.id])
    assert "a-password-at-rest-42" not in stored
    assert stored.split("$")[0] in {
        h.rsplit(".", 1)[-1].removesuffix("PasswordHasher").lower() for h in settings.PASSWORD_HASHERS
    }
    assert user.check_password("a-password-at-rest-42")


def test_licence_keys_and_webhook_secrets_are_ciphertext(tenant: Tenant) -> None:
    box = fernet()
    licence = tenant.license  # issued by licenses_issue in tests/campaign/world.py
    [(stored_key,)] = raw_rows(License, ["key"], "id = %s", [licence.id])
    assert_ciphertext(stored_key, licence.key, box)
    [(stored_secret,)] = raw_rows(WebhookEndpoint, ["secret"], "id = %s", [tenant.endpoint.id])
    assert_ciphertext(stored_secret, tenant.endpoint.secret, box)


def test_admin_pages_show_no_secret(tenant: Tenant) -> None:
    operator = User.objects.create_superuser(email="ops-vault@example.com", password="ops-vault-pass-123", name="O")
    browser = Client()
    browser.force_login(operator)
    licence = tenant.license  # issued by licenses_issue in tests/campaign/world.py
    secrets = [code.code for code in Code.objects.filter(variant=tenant.variant)]
    secrets += [code.pin for code in Code.objects.filter(variant=tenant.variant)]
    secrets += [licence.key, tenant.endpoint.secret, tenant.raw_api_key, tenant.api_key.hashed_key]
    pages = [
        "/admin/catalog/code/",
        f"/admin/catalog/code/{quote(tenant.code.id)}/change/",
        "/admin/orders/license/",
        f"/admin/orders/license/{quote(licence.id)}/change/",
        "/admin/orders/webhookendpoint/",
        f"/admin/orders/webhookendpoint/{quote(tenant.endpoint.id)}/change/",
        "/admin/accounts/apikey/",
        f"/admin/accounts/apikey/{quote(tenant.api_key.id)}/change/",
    ]
    for url in pages:
        response = browser.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert [s for s in secrets if s in html] == [], url


def test_the_log_check_records_every_log_and_registers_what_the_suite_makes(tenant: Tenant) -> None:
    registered = secrets_registry.registered()
    for code in Code.objects.filter(variant=tenant.variant):
        assert registered.get(code.code, "").startswith("encrypted Code.code")
    assert tenant.raw_api_key in registered and tenant.endpoint.secret in registered
    User.objects.create_user(email="logcheck@example.com", password="log-check-password-77", name="L")
    assert secrets_registry.registered().get("log-check-password-77") == "password"
    logging.getLogger("catalog.inventory").debug("marker %s", "campaign-log-marker-31")
    assert any("campaign-log-marker-31" in text for _, text in secrets_registry.records())


def test_the_scanner_finds_a_secret_in_a_message_argument_exception_or_extra() -> None:
    secrets = {"GIFT-LEAKED-CODE-1": "encrypted Code.code", "sk_live_leaked_key_xyz": "API key"}

    def texts(*records: logging.LogRecord) -> list[tuple[str, str]]:
        return [("t", secrets_registry.record_text(record)) for record in records]

    harmless = logging.makeLogRecord({"msg": "code %s (••••%s) blocked", "args": ("cod_1", "DE-1")})
    assert secrets_registry.find_leaks(secrets, texts(harmless)) == []
    in_args = logging.makeLogRecord({"msg": "imported %s", "args": ("GIFT-LEAKED-CODE-1",)})
    in_extra = logging.makeLogRecord({"msg": "auth", "api_key": "sk_live_leaked_key_xyz"})
    try:
        raise ValueError("bad GIFT-LEAKED-CODE-1")
    except ValueError:
        import sys

        in_exception = logging.makeLogRecord({"msg": "failed", "exc_info": sys.exc_info()})
    for record, kind in (
        (in_args, "encrypted Code.code"),
        (in_extra, "API key"),
        (in_exception, "encrypted Code.code"),
    ):
        [leak] = secrets_registry.find_leaks(secrets, texts(harmless, record))
        assert leak.kind == kind
    # Too short or too plain to search for without false alarms: not registered.
    secrets_registry.register("1234", kind="pin")
    secrets_registry.register("00000000", kind="pin")
    assert "1234" not in secrets_registry.registered() and "00000000" not in secrets_registry.registered()


def test_a_numeric_pin_is_a_leak_as_a_number_of_its_own_not_inside_a_longer_one() -> None:
    secrets = {"48213957": "encrypted Code.pin"}

    def found(message: str) -> bool:
        record = logging.makeLogRecord({"msg": message})
        return bool(secrets_registry.find_leaks(secrets, [("t", secrets_registry.record_text(record))]))

    assert found("pin 48213957 shown")
    assert found("pin=48213957")
    assert found("PIN:48213957.")
    # Chance: the same eight digits inside a task's runtime or a longer number.
    assert not found("Task succeeded in 0.0048213957s")
    assert not found("id 1048213957")
    assert not found("id 482139571")
