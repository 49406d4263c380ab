"""Strict input for the whole API: an unknown query parameter or body field, or a repeated
single-valued parameter, is 400 ``validation_error`` naming it in ``fields`` (``shared/API.md``,
"Strict input"). Nothing a caller sent is silently ignored.

What an operation accepts is what its OpenAPI operation declares (``/api/schema/``, built by
drf-spectacular from the views' ``extend_schema`` parameters and request serializers): the query
parameters, and the properties of the request body, nested objects and lists of objects included.
So the documentation and the check cannot disagree, and a view that takes a new parameter must
declare it to receive it. An object with ``additionalProperties`` (``meta``, ``fulfillment_input``)
takes any key; ``readOnly`` properties are not input.

One place answers for every route, before the view runs (``process_view``): JSON and url-encoded
bodies are read here, and multipart ones up to ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (a larger one may be
an upload that its view measures before anything parses it: its serializer answers for its
fields). A view whose body is someone else's format (a gateway's webhook) sets ``strict_body =
False``; its query is still checked.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.request import RawPostDataException
from rest_framework import exceptions

from .api import error_body
from .parsers import loads_bounded

UNKNOWN_PARAMETER = "Unknown query parameter."
UNKNOWN_FIELD = "Unknown field."
REPEATED = "Given more than once; this parameter takes one value."


@dataclass
class BodyShape:
    """The properties an object takes (``None`` for any key) and the shape of each one's value."""

    properties: dict[str, "BodyShape | None"] | None = field(default_factory=dict)


@dataclass(frozen=True)
class OperationInput:
    query: frozenset[str]
    multi_valued: frozenset[str]
    body: BodyShape | None  # None: the operation declares no body


_ROUTE_PARAM = re.compile(r"<(?:[^>:]+:)?([^>]+)>")
_operations: dict[tuple[str, str], OperationInput] | None = None


def _shape(schema: dict[str, Any], components: dict[str, Any], depth: int = 0) -> BodyShape | None:
    """What an object schema takes; ``None`` where it takes anything (or is not an object)."""
    if depth > 8:
        return None
    if "$ref" in schema:
        schema = components.get(schema["$ref"].rsplit("/", 1)[-1], {})
    for combined in ("allOf", "oneOf", "anyOf"):
        if combined in schema:
            shapes = [_shape(part, components, depth + 1) for part in schema[combined]]
            if any(s is None or s.properties is None for s in shapes):
                return None
            merged: dict[str, BodyShape | None] = {}
            for s in shapes:
                merged.update(s.properties or {})  # type: ignore[union-attr]
            return BodyShape(merged)
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        return _shape(schema["items"], components, depth + 1)
    if schema.get("type") not in (None, "object") or schema.get("additionalProperties", False) is not False:
        return None
    if "properties" not in schema:
        return None if schema.get("type") is None else BodyShape({})
    return BodyShape(
        {
            name: _shape(prop, components, depth + 1)
            for name, prop in schema["properties"].items()
            if not prop.get("readOnly")
        }
    )


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return components.get(schema["$ref"].rsplit("/", 1)[-1], {})
    return schema


def _response_fields(operation: dict[str, Any], components: dict[str, Any]) -> list[str]:
    """The top-level fields of the object an operation answers with (inside the envelope's ``data``)."""
    content = operation.get("responses", {}).get("200", {}).get("content", {})
    schema = _resolve(content.get("application/json", {}).get("schema", {}), components)
    data = schema.get("properties", {}).get("data")
    if data is not None:
        schema = _resolve(data, components)
    return list(schema.get("properties", {}))


def _build() -> dict[tuple[str, str], OperationInput]:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema.get("components", {}).get("schemas", {})
    operations: dict[tuple[str, str], OperationInput] = {}
    for path, methods in schema.get("paths", {}).items():
        for method, operation in methods.items():
            params = [p for p in operation.get("parameters", []) if p.get("in") == "query"]
            body: BodyShape | None = None
            request_body = operation.get("requestBody")
            if request_body:
                body = BodyShape({})
                for content in request_body.get("content", {}).values():
                    shape = _shape(content.get("schema", {}), components)
                    if shape is None or shape.properties is None:
                        body = BodyShape(None)
                        break
                    body.properties.update(shape.properties)  # type: ignore[union-attr]
            if body is not None and body.properties is not None and method in ("put", "patch"):
                # A read object echoed back for an update: its read-only fields are the object's own,
                # not unknown ones (the serializer leaves them as they are).
                for name in _response_fields(operation, components):
                    body.properties.setdefault(name, None)
            operations[(method.upper(), path)] = OperationInput(
                query=frozenset(p["name"] for p in params),
                multi_valued=frozenset(p["name"] for p in params if p.get("schema", {}).get("type") == "array"),
                body=body,
            )
    return operations


def operation_inputs() -> dict[tuple[str, str], OperationInput]:
    """Every API operation's declared input, keyed by (method, OpenAPI path); built once."""
    global _operations  # noqa: PLW0603
    if _operations is None:
        _operations = _build()
    return _operations


def openapi_path(route: str) -> str:
    """Django's route (``api/v1/orders/<str:ref>``) as its OpenAPI path (``/api/v1/orders/{ref}``)."""
    return "/" + _ROUTE_PARAM.sub(r"{\1}", route)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def query_errors(query: Any, accepted: OperationInput) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for name, values in query.lists():
        known = name if name in accepted.query else None
        if known is None and name.startswith("filter."):  # filter.idempotencyKey = filter.idempotency_key
            snake = "filter." + _snake(name.removeprefix("filter."))
            known = snake if snake in accepted.query else None
        if known is None:
            errors[name] = [UNKNOWN_PARAMETER]
        elif len(values) > 1 and known not in accepted.multi_valued:
            errors[name] = [REPEATED]
    return errors


def body_errors(data: Any, shape: BodyShape | None, prefix: str = "") -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if shape is None or shape.properties is None:
        return errors
    if isinstance(data, list):
        for index, item in enumerate(data):
            errors.update(body_errors(item, shape, f"{prefix}.{index}" if prefix else str(index)))
        return errors
    if not isinstance(data, dict):
        return errors
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if key not in shape.properties:
            errors[name] = [UNKNOWN_FIELD]
        else:
            errors.update(body_errors(value, shape.properties[key], name))
    return errors


def _body(request: HttpRequest) -> Any:
    """The body as the API's parsers will read it, or ``None`` where it is not read here."""
    content_type = request.content_type or ""
    try:
        if content_type == "application/x-www-form-urlencoded" and request.method == "POST":
            return dict.fromkeys(request.POST.keys())
        if content_type == "multipart/form-data" and request.method == "POST" and _small(request):
            return dict.fromkeys([*request.POST.keys(), *request.FILES.keys()])
        if content_type.endswith("json") and request.body:
            # Bounded like the API's parser (depth first): a body it refuses is left to it.
            return loads_bounded(request.body.decode(request.encoding or "utf-8"))
    except (RequestDataTooBig, RawPostDataException, ValueError, LookupError, exceptions.ValidationError):
        return None  # too large, too deep or malformed: the view's parser answers 413 or 400
    return None


def _small(request: HttpRequest) -> bool:
    """A multipart body read here only up to Django's in-memory limit: a larger one may be an upload
    that its view measures (and refuses, 413) before anything parses it."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    return 0 < length <= (settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0)


class StrictInputMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any) -> Any:
        if not request.path.startswith("/api/") or request.resolver_match is None:
            return None
        method = "GET" if request.method == "HEAD" else (request.method or "")
        accepted = operation_inputs().get((method, openapi_path(request.resolver_match.route)))
        if accepted is None:  # not an API operation (the schema and docs pages), or a method it has not
            return None
        errors = query_errors(request.GET, accepted)
        view_class = getattr(view_func, "cls", None) or getattr(view_func, "view_class", None)
        if method not in ("GET", "DELETE") and getattr(view_class, "strict_body", True):
            data = _body(request)
            if data is not None:
                errors.update(body_errors(data, accepted.body or BodyShape({})))
        if not errors:
            return None
        first = next(iter(errors))
        return JsonResponse(error_body("validation_error", f"{first}: {errors[first][0]}", errors), status=400)
