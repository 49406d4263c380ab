"""Production settings refuse to start without their secrets, and pass ``manage.py check --deploy``.

Each case runs in a fresh interpreter with a crafted environment, the way a container starts.
"""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

BASE_DIR = Path(__file__).resolve().parents[3]
SETUP = "import django; django.setup()"

REQUIRED = [
    "SECRET_KEY",
    "FERNET_KEYS",
    "CODE_HASH_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "SITE_URL",
    "ALLOWED_HOSTS",
    "AWS_STORAGE_BUCKET_NAME",
    "EMAIL_HOST",
]


def production_env(**overrides: str | None) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(BASE_DIR)),
        "PYTHONDONTWRITEBYTECODE": "1",
        "DJANGO_SETTINGS_MODULE": "marketplace.settings.production",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "FERNET_KEYS": f"{Fernet.generate_key().decode()},{Fernet.generate_key().decode()}",
        "CODE_HASH_KEY": secrets.token_urlsafe(48),
        "DATABASE_URL": "postgres://marketplace:secret@db.internal:5432/marketplace",
        "REDIS_URL": "redis://cache.internal:6379/0",
        "SITE_URL": "https://shop.example.com",
        "ALLOWED_HOSTS": "shop.example.com",
        "AWS_STORAGE_BUCKET_NAME": "marketplace-private",
        "AWS_S3_ENDPOINT_URL": "https://s3.example.com",
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "example-secret",
        "EMAIL_HOST": "smtp.example.com",
        # A real shop takes real money: Stripe, and so (nothing else said) no sandbox.
        "STRIPE_SECRET_KEY": "sk_live_" + secrets.token_hex(24),
        "STRIPE_WEBHOOK_SECRET": "whsec_" + secrets.token_hex(24),
    }
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_starts_with_the_full_environment() -> None:
    result = run([sys.executable, "-c", SETUP + "; from django.conf import settings; print(settings.DEBUG)"],
                 production_env())  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("name", REQUIRED)
@pytest.mark.parametrize("how", ["missing", "empty"])
def test_refuses_to_start_without(name: str, how: str) -> None:
    env = production_env(**{name: None if how == "missing" else ""})

    result = run([sys.executable, "-c", SETUP], env)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert name in result.stderr


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SECRET_KEY", "too-short", "SECRET_KEY must be a long random value"),
        ("SECRET_KEY", "dev-only-insecure-key-change-me-0123456789abcdefghijklmnop", "SECRET_KEY holds a secret"),
        ("SECRET_KEY", "dev-only-" + "x" * 60, "SECRET_KEY must be a long"),
        ("FERNET_KEYS", "not-a-fernet-key", "FERNET_KEYS must be"),
        ("DATABASE_URL", "sqlite:////tmp/db.sqlite3", "DATABASE_URL must point at PostgreSQL"),
    ],
)
def test_refuses_weak_or_wrong_values(name: str, value: str, message: str) -> None:
    result = run([sys.executable, "-c", SETUP], production_env(**{name: value}))

    assert result.returncode != 0
    assert message in result.stderr


def test_webhook_secret_is_required_only_while_the_sandbox_is_enabled() -> None:
    without = run([sys.executable, "-c", SETUP], production_env(SANDBOX_WEBHOOK_SECRET=None))
    sandbox = production_env(ENABLED_PAYMENT_GATEWAYS="stripe,sandbox", SANDBOX_IN_PRODUCTION="true")
    refused = run([sys.executable, "-c", SETUP], {**sandbox, "SANDBOX_WEBHOOK_SECRET": ""})

    assert without.returncode == 0, without.stderr
    assert refused.returncode != 0
    assert "SANDBOX_WEBHOOK_SECRET must be set in production" in refused.stderr


def _check_deploy() -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "manage.py", "check", "--deploy"], production_env())


def test_check_deploy_passes_djangos_security_checks() -> None:
    result = _check_deploy()
    output = result.stdout + result.stderr

    assert result.returncode == 0, output
    assert re.findall(r"\(security\.\w+\)", output) == []


def test_check_deploy_prints_no_warning() -> None:
    result = _check_deploy()
    output = result.stdout + result.stderr

    assert result.returncode == 0, output
    assert "WARNINGS" not in output, output
    assert "System check identified some issues" not in output, output
    assert "System check identified no issues" in output


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"WEBHOOK_ALLOW_PRIVATE_URLS": "true"}, "WEBHOOK_ALLOW_PRIVATE_URLS must not be set"),
        ({"STRIPE_WEBHOOK_SECRET": None}, "STRIPE_WEBHOOK_SECRET must be set"),
        ({"STRIPE_SECRET_KEY": None, "ENABLED_PAYMENT_GATEWAYS": "stripe"}, "STRIPE_SECRET_KEY and STRIPE_WEBHOOK"),
        ({"STRIPE_SECRET_KEY": "replace-me"}, "STRIPE_SECRET_KEY must be a Stripe secret"),
        ({"STRIPE_WEBHOOK_SECRET": "replace-me"}, "STRIPE_WEBHOOK_SECRET must be the endpoint's signing secret"),
    ],
)
def test_refuses_unsafe_webhook_and_half_configured_stripe_settings(overrides: dict[str, str], message: str) -> None:
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", SETUP], env=production_env(**overrides), cwd=BASE_DIR, capture_output=True, text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert message in result.stderr
