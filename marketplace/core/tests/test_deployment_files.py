"""docker-compose.yml and .env.example, read as data (Docker does not run here): every service of
the production stack is there with its health check, one-shots run in order, data lives in named
volumes, and .env.example lists every variable production settings read, without a usable secret."""

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from marketplace.core.tests.test_settings_production import BASE_DIR

COMPOSE = BASE_DIR / "docker-compose.yml"
ENV_EXAMPLE = BASE_DIR / ".env.example"
PRODUCTION = BASE_DIR / "marketplace" / "settings" / "production.py"

LONG_RUNNING = {"web", "worker", "beat", "postgres", "redis", "minio"}
ONE_SHOTS = {"migrate", "createbucket"}
APP_SERVICES = {"web", "worker", "beat", "migrate"}
# Read by production settings, but refused there: nothing to set.
REFUSED_IN_PRODUCTION = {"WEBHOOK_ALLOW_PRIVATE_URLS", "SSLCOMMERZ_API_BASE"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def env_example() -> tuple[dict[str, str], set[str]]:
    """(variables set, variables only mentioned in a commented-out ``# NAME=`` line)."""
    assigned: dict[str, str] = {}
    commented: set[str] = set()
    for line in ENV_EXAMPLE.read_text().splitlines():
        if match := re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line):
            assigned[match.group(1)] = match.group(2)
        elif match := re.fullmatch(r"#\s*([A-Z][A-Z0-9_]*)=.*", line):
            commented.add(match.group(1))
    return assigned, commented


def production_variables() -> tuple[set[str], set[str]]:
    """(every variable production.py reads, those it requires)."""
    text = PRODUCTION.read_text()
    read = set(re.findall(r"(?:env\.\w+|_required)\(\s*\"([A-Z][A-Z0-9_]*)\"", text))
    required = set(re.findall(r"_required\(\s*\"([A-Z][A-Z0-9_]*)\"", text))
    return read, required


def test_the_stack_has_every_service(services: dict[str, Any]) -> None:
    assert set(services) == LONG_RUNNING | ONE_SHOTS


def test_each_long_running_service_has_a_health_check(services: dict[str, Any]) -> None:
    for name in LONG_RUNNING:
        check = services[name].get("healthcheck")
        assert check and not check.get("disable"), name
        assert check["test"][0] in {"CMD", "CMD-SHELL"}, name
        assert check["interval"] and check["retries"] >= 3, name
        assert services[name]["restart"] == "unless-stopped", name
    web_check = " ".join(services["web"]["healthcheck"]["test"])
    assert "/readyz" in web_check


def test_one_shots_run_once_and_in_order(services: dict[str, Any]) -> None:
    for name in ONE_SHOTS:
        assert services[name]["restart"] == "no", name
        assert services[name]["healthcheck"] == {"disable": True}, name
    assert services["createbucket"]["depends_on"] == {"minio": {"condition": "service_healthy"}}
    assert "mc mb --ignore-existing" in services["createbucket"]["entrypoint"][-1]
    for name in APP_SERVICES:
        needs = services[name]["depends_on"]
        assert needs["postgres"] == {"condition": "service_healthy"}, name
        assert needs["redis"] == {"condition": "service_healthy"}, name
        assert needs["createbucket"] == {"condition": "service_completed_successfully"}, name
        if name != "migrate":
            assert needs["migrate"] == {"condition": "service_completed_successfully"}, name


def test_the_app_services_run_production_settings_from_one_image(services: dict[str, Any]) -> None:
    commands = {name: services[name]["command"] for name in APP_SERVICES}
    assert commands["web"][:2] == ["gunicorn", "marketplace.wsgi"]
    assert commands["worker"][:4] == ["celery", "-A", "marketplace", "worker"]
    assert commands["beat"][:4] == ["celery", "-A", "marketplace", "beat"]
    assert commands["migrate"] == ["python", "manage.py", "migrate", "--noinput"]
    for name in APP_SERVICES:
        assert services[name]["image"] == "marketplace:latest", name
        assert services[name]["environment"]["DJANGO_SETTINGS_MODULE"] == "marketplace.settings.production"


def test_data_lives_in_named_volumes(compose: dict[str, Any], services: dict[str, Any]) -> None:
    mounts = {"postgres": "pgdata:/var/lib/postgresql/data", "redis": "redisdata:/data", "minio": "miniodata:/data"}
    for name, mount in mounts.items():
        assert services[name]["volumes"] == [mount], name
    assert set(compose["volumes"]) == {"pgdata", "redisdata", "miniodata"}


def test_every_variable_compose_uses_is_in_env_example(services: dict[str, Any]) -> None:
    assigned, commented = env_example()
    text = COMPOSE.read_text()
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))
    required = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*):\?", text))

    assert used, "compose interpolates no variable at all?"
    assert required <= set(assigned), sorted(required - set(assigned))
    assert used <= set(assigned) | commented, sorted(used - set(assigned) - commented)


def test_env_example_lists_every_variable_production_reads(services: dict[str, Any]) -> None:
    assigned, commented = env_example()
    read, required = production_variables()

    assert {"SECRET_KEY", "FERNET_KEYS", "CODE_HASH_KEY", "DATABASE_URL"} <= required  # the parse found them
    assert required <= set(assigned), sorted(required - set(assigned))
    assert read - REFUSED_IN_PRODUCTION <= set(assigned) | commented, sorted(
        read - REFUSED_IN_PRODUCTION - set(assigned) - commented
    )
    # ... and compose hands every required one to the app's processes.
    app_env = services["web"]["environment"]
    assert required <= set(app_env), sorted(required - set(app_env))


def test_every_variable_in_env_example_has_a_comment_above_it() -> None:
    lines = ENV_EXAMPLE.read_text().splitlines()
    for number, line in enumerate(lines):
        if re.fullmatch(r"#?\s*[A-Z][A-Z0-9_]*=.*", line):
            above = lines[:number]
            prose = [each for each in above if each.startswith("#") and not re.match(r"#\s*[A-Z][A-Z0-9_]*=", each)]
            assert prose, f"{line!r} has no explanation before it"


def test_an_unfilled_env_example_cannot_start_production(tmp_path: Path) -> None:
    """The placeholders are refused: a copied-but-never-filled .env holds no secret anything accepts."""
    assigned, _ = env_example()
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "marketplace.settings.production", **assigned}

    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], cwd=BASE_DIR, env=env, capture_output=True,
        text=True, timeout=60, check=False,
    )  # fmt: skip

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    for name in ("SECRET_KEY", "FERNET_KEYS", "CODE_HASH_KEY", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"):
        assert assigned[name] == "replace-me", name


ROTATION_SCRIPT = """
import sys, django
django.setup()
from django.core import signing
if sys.argv[1] == "sign":
    print(signing.dumps({"k": "v"}, salt="s"))
else:
    print(signing.loads(sys.argv[2], salt="s"))
"""


def test_secret_key_fallbacks_keep_links_signed_with_the_old_key_working() -> None:
    from marketplace.core.tests.test_settings_production import production_env, run

    old = production_env()
    signed = run([sys.executable, "-c", ROTATION_SCRIPT, "sign"], old)
    assert signed.returncode == 0, signed.stderr
    token = signed.stdout.strip()
    new_key = production_env()["SECRET_KEY"]

    rotated = run([sys.executable, "-c", ROTATION_SCRIPT, "load", token],
                  {**old, "SECRET_KEY": new_key, "SECRET_KEY_FALLBACKS": old["SECRET_KEY"]})  # fmt: skip
    dropped = run([sys.executable, "-c", ROTATION_SCRIPT, "load", token], {**old, "SECRET_KEY": new_key})

    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stdout.strip() == "{'k': 'v'}"
    assert dropped.returncode != 0 and "BadSignature" in dropped.stderr
