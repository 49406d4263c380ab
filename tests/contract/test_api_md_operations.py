"""The contract (``docs/API.md``, a vendored copy of the team's shared ``API.md``) and the product's
OpenAPI schema (``GET /api/schema/``) cannot drift apart: every API operation the contract writes
(a method and a path) must be an operation of the schema.

What counts as an operation: a backticked ``METHOD /path`` (or ``GET|POST /path``) in the contract;
``.../rest`` continues the path written just before it. Only paths under ``/api/v1/`` are API
operations; the others the contract names (pages such as ``/c/{slug}`` and ``/dashboard/``, the
sandbox's hosted pages, ``/healthz``, the schema and docs pages themselves) are not in an API
schema by design and are left out by that one rule.

Matching a contract path to a schema path, segment by segment: a parameter (``{id}``) matches a
parameter of any name, a literal matches the same literal, and a literal may fill a schema
parameter that names a kind of thing (``webhooks/{gateway}`` for ``webhooks/sslcommerz``,
``codes/{code_id}/{action}`` for ``.../block``) but never one that names an object (``{id}``,
``{…_id}``, ``{ref}``, ``{slug}``): ``/discounts/validate`` read as a discount id is the bug this
test is for.
"""

import re
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.test import APIClient

VENDORED = Path(settings.BASE_DIR) / "docs" / "API.md"
SHARED = Path(settings.BASE_DIR).parent / "shared" / "API.md"

METHOD = r"(?:GET|POST|PUT|PATCH|DELETE)"
OPERATION = re.compile(rf"`({METHOD}(?:\|{METHOD})*) ((?:/|\.\.\./)[^\s`?]*)")

# Operations the contract names that are not built yet (each named with its issue). Each is a strict
# xfail: once the operation is in the schema this entry fails (XPASS) and must be removed.
KNOWN_GAPS: dict[tuple[str, str], str] = {}


def contract_operations(text: str) -> list[tuple[str, str]]:
    operations: list[tuple[str, str]] = []
    last = ""
    for match in OPERATION.finditer(text):
        methods, path = match.group(1).split("|"), match.group(2)
        if path.startswith(".../"):
            rest = path[4:]
            head = "/" + rest.split("/")[0]
            path = last[: last.index(head)] + "/" + rest if head in last else last + "/" + rest
        last = path
        operations += [(method, path) for method in methods if (method, path) not in operations]
    return [(method, path) for method, path in operations if path.startswith("/api/v1/")]


def _names_an_object(parameter: str) -> bool:
    name = parameter.strip("{}")
    return name in {"id", "ref", "slug"} or name.endswith("_id")


def _matches(contract_path: str, schema_path: str) -> bool:
    ours, theirs = contract_path.strip("/").split("/"), schema_path.strip("/").split("/")
    if len(ours) != len(theirs):
        return False
    for mine, schema in zip(ours, theirs, strict=True):
        if mine.startswith("{"):
            if not schema.startswith("{"):
                return False
        elif schema.startswith("{"):
            if _names_an_object(schema):
                return False
        elif mine != schema:
            return False
    return True


def test_contract_parser_reads_methods_paths_and_continuations():
    text = (
        "`GET|POST /api/v1/things`, `GET /api/v1/things/{id}/parts?x=1`, `POST .../parts/{part_id}/redo`, "
        "`GET /c/{slug}`, `GET /healthz`"
    )
    assert contract_operations(text) == [
        ("GET", "/api/v1/things"),
        ("POST", "/api/v1/things"),
        ("GET", "/api/v1/things/{id}/parts"),
        ("POST", "/api/v1/things/{id}/parts/{part_id}/redo"),
    ]
    assert _matches("/api/v1/payments/webhooks/sslcommerz", "/api/v1/payments/webhooks/{gateway}")
    assert not _matches("/api/v1/discounts/validate", "/api/v1/discounts/{discount_id}")
    assert _matches("/api/v1/orders/{id}", "/api/v1/orders/{ref}")
    assert not _matches("/api/v1/orders/{id}", "/api/v1/orders/my-orders")


def test_vendored_contract_is_the_shared_one():
    if not SHARED.exists():
        pytest.skip("the shared contract is not beside this checkout (CI): the vendored copy is the contract")
    assert VENDORED.read_text() == SHARED.read_text(), "docs/API.md differs from the shared API.md: copy it again"


def _operations() -> list[tuple[str, str]]:
    return contract_operations(VENDORED.read_text())


def _params() -> list[object]:
    return [
        pytest.param(method, path, marks=pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[(method, path)]))
        if (method, path) in KNOWN_GAPS
        else pytest.param(method, path)
        for method, path in _operations()
    ]


def test_the_contract_names_many_operations():
    operations = _operations()
    assert len(operations) > 60
    assert ("POST", "/api/v1/orders") in operations
    assert set(KNOWN_GAPS) <= set(operations), "a known gap the contract no longer names"


@pytest.fixture(scope="module")
def schema_paths(django_db_blocker):
    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()["paths"]


@pytest.mark.parametrize(("method", "path"), _params())
def test_schema_has_every_contract_operation(schema_paths, method, path):
    found = [p for p, operations in schema_paths.items() if _matches(path, p) and method.lower() in operations]
    assert found, f"{method} {path} is in API.md but not in the OpenAPI schema"
