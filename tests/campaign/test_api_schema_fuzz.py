"""Schemathesis against the served OpenAPI schema: every operation under /api/v1/, called in-process
through the WSGI application with a seller's credentials, must never answer 5xx and must answer only
what the schema documents (status codes, content types, headers and bodies).

Half of the generated cases name the seller's real objects in their path (a product, its variant
and code, an order, ...), so the bodies are fuzzed against real state, not only against a 404.

Checks left out, on purpose:
- ``positive_data_acceptance`` wants every schema-valid request to succeed; here a 400 in the
  envelope is the contract for input the schema cannot describe (an ISO 4217 currency, a slug
  already taken, the password policy, ids of other objects).
- ``negative_data_rejection`` wants every schema-violating request refused; DRF's fields accept
  ``0`` for a string and ``"1"`` for an integer, a leniency clients rely on that stores the same value.
"""

import os
import zlib
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from marketplace.wsgi import application

from . import secrets_registry
from .world import build_tenant

# FUZZ_DEEP=1 adds schemathesis' coverage phase: every boundary and type of every parameter,
# deterministically — about 80 more requests per operation, several minutes on a CI machine.
DEEP = os.environ.get("FUZZ_DEEP") == "1"


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """The project's WSGI application, inside the test's transaction: Django's own test client also
    keeps the request signals from closing the test's database connection."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        response = application(environ, start_response)
        try:
            return list(response)
        finally:
            response.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


CONFIG = SchemathesisConfig.from_dict({"phases": {"coverage": {"enabled": DEEP}}})
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", app, config=CONFIG).include(path_regex="^/api/v1/")


@pytest.fixture
def tenant(db: Any, settings: Any, tmp_path: Any) -> Any:
    settings.STORAGES = {
        **settings.STORAGES,
        "private": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }
    return build_tenant("Fuzz")


def _pick(case: Any, salt: str) -> int:
    """A stable choice from the generated case itself, so runs stay deterministic."""
    return zlib.crc32(repr((case.path_parameters, case.query, salt)).encode())


@schema.parametrize()
@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)
def test_every_operation_answers_as_documented(case: Any, tenant: Any) -> None:
    if case.path_parameters and _pick(case, "real") % 2 == 0:
        for name in case.path_parameters:
            if name in tenant.ids:
                case.path_parameters[name] = tenant.ids[name]
    if _pick(case, "auth") % 3 == 0:
        token = tenant.raw_api_key
    else:
        token = str(tenant.client._credentials["HTTP_AUTHORIZATION"]).removeprefix("Bearer ")
    with secrets_registry.paused():
        case.call_and_validate(
            headers={"Authorization": f"Bearer {token}"},
            excluded_checks=[positive_data_acceptance, negative_data_rejection],
        )
