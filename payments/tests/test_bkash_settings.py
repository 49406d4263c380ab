"""bKash's settings: the public sandbox by default outside production; in production, bKash enabled
refuses to start without its credentials and its live base URL (https), named on purpose."""

import subprocess
import sys

import pytest
from django.conf import settings

from marketplace.core.tests.test_settings_production import BASE_DIR, SETUP, production_env

LIVE = {
    "ENABLED_PAYMENT_GATEWAYS": "stripe,bkash",
    "BKASH_BASE_URL": "https://tokenized.pay.bka.sh/v1.2.0-beta",
    "BKASH_APP_KEY": "live-app-key-example",
    "BKASH_APP_SECRET": "live-app-secret-example",
    "BKASH_USERNAME": "01700000000",
    "BKASH_PASSWORD": "live-password-example",
}


def start(**overrides: str | None) -> subprocess.CompletedProcess[str]:
    code = SETUP + "; from django.conf import settings; print(settings.BKASH_BASE_URL)"
    return subprocess.run(  # noqa: S603
        [sys.executable, "-c", code],
        env=production_env(**overrides),
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_outside_production_bkash_talks_to_its_public_sandbox():
    assert settings.BKASH_SANDBOX_BASE_URL == "https://tokenized.sandbox.bka.sh/v1.2.0-beta"
    assert settings.PAYMENT_STATUS_QUERY_AFTER_MINUTES == 5


def test_production_with_bkash_configured_starts():
    result = start(**LIVE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == LIVE["BKASH_BASE_URL"]


@pytest.mark.parametrize(
    "missing", ["BKASH_BASE_URL", "BKASH_APP_KEY", "BKASH_APP_SECRET", "BKASH_USERNAME", "BKASH_PASSWORD"]
)
def test_production_with_bkash_enabled_refuses_to_start_without_each_setting(missing):
    result = start(**{**LIVE, missing: None})
    assert result.returncode != 0
    assert f"bKash is enabled: {missing} must be set." in result.stderr


def test_production_refuses_a_plain_http_bkash_base_url():
    result = start(**{**LIVE, "BKASH_BASE_URL": "http://tokenized.pay.bka.sh/v1.2.0-beta"})
    assert result.returncode != 0
    assert "BKASH_BASE_URL must be an https:// URL." in result.stderr
