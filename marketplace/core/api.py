"""The API envelope: ``{"success": true, "data": ...}`` and
``{"success": false, "error": {"code", "message", "fields"}}``, list pagination, and the error
mapping from DRF and domain exceptions."""

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.http import Http404, HttpResponse, JsonResponse
from rest_framework import exceptions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from .errors import ApplicationError

logger = logging.getLogger(__name__)


def error_body(code: str, message: str, fields: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    error.update(extra)
    return {"success": False, "error": error}


def error_response(
    code: str,
    message: str,
    status_code: int,
    fields: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    response = Response(error_body(code, message, fields), status=status_code, headers=headers)
    response.is_envelope = True  # type: ignore[attr-defined]
    return response


class EnvelopeJSONRenderer(JSONRenderer):
    """Wraps every successful payload in ``{"success": true, "data": ...}``."""

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        response = (renderer_context or {}).get("response")
        if response is not None and not getattr(response, "is_envelope", False):
            if response.status_code >= 400:
                data = _coerce_error(data, response.status_code)
            elif response.status_code != status.HTTP_204_NO_CONTENT:
                data = {"success": True, "data": data}
        return super().render(data, accepted_media_type, renderer_context)


def _coerce_error(data: Any, status_code: int) -> dict[str, Any]:
    if isinstance(data, dict) and data.get("success") is False:
        return data
    message = data.get("detail") if isinstance(data, dict) else None
    return error_body(_CODE_BY_STATUS.get(status_code, "error"), str(message or "The request failed."))


_CODE_BY_STATUS = {
    400: "validation_error",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    410: "gone",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "rate_limited",
    503: "service_unavailable",
}


def _flatten_fields(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as ``{"field": ["message", ...], "items.0.quantity": [...]}``."""
    fields: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = key if not prefix else f"{prefix}.{key}"
            if key == "non_field_errors":
                name = prefix or "non_field_errors"
            for sub_key, messages in _flatten_fields(value, name).items():
                fields.setdefault(sub_key, []).extend(messages)
    elif isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            fields[prefix or "non_field_errors"] = [str(item) for item in detail]
        else:
            for index, item in enumerate(detail):
                if item:
                    fields.update(_flatten_fields(item, f"{prefix}.{index}" if prefix else str(index)))
    else:
        fields[prefix or "non_field_errors"] = [str(detail)]
    return fields


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        response = error_response(exc.code, exc.message, exc.status_code, exc.fields)
        if exc.extra:
            response.data["error"].update(exc.extra)
        wait = getattr(exc, "retry_after", None)
        if exc.status_code == 429 and wait:
            response["Retry-After"] = str(wait)
        return response
    if isinstance(exc, DjangoValidationError):
        fields = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return error_response("validation_error", "Some fields are not valid.", 400, fields)
    if isinstance(exc, Http404):
        return error_response("not_found", "Not found.", 404)
    if isinstance(exc, RequestDataTooBig):
        return error_response("payload_too_large", TOO_LARGE_MESSAGE, 413)
    if isinstance(exc, DatabaseOperationalError | DatabaseInterfaceError):
        # The database is down, restarting or (SQLite) busy: a dependency, not a bug. Nothing was
        # half-written (each service's writes are one transaction), so the client may simply retry.
        view = type(context.get("view")).__name__
        logger.error("database unavailable in %s: %s", view, type(exc).__name__, exc_info=exc)
        return error_response(
            "service_unavailable",
            "The service is briefly unavailable. Please try again in a few seconds.",
            503,
            headers={"Retry-After": "5"},
        )
    if isinstance(exc, DjangoPermissionDenied):
        return error_response("permission_denied", "You are not allowed to do this.", 403)
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten_fields(exc.detail)
        return error_response("validation_error", _first_message(fields), 400, fields)
    if isinstance(exc, exceptions.Throttled):
        wait = int(getattr(exc, "wait", None) or 1)
        return error_response(
            "rate_limited", f"Too many requests. Try again in {wait} seconds.", 429, headers={"Retry-After": str(wait)}
        )
    if isinstance(exc, exceptions.APIException):
        from rest_framework.views import exception_handler as drf_exception_handler

        drf_response = drf_exception_handler(exc, context)
        if drf_response is None:
            return None
        code = _CODE_BY_STATUS.get(drf_response.status_code, str(exc.default_code))
        if isinstance(exc, exceptions.ParseError):
            is_json = "json" in str(getattr(context.get("request"), "content_type", "") or "")
            code = "invalid_json" if is_json else "invalid_body"
        message = exc.detail if isinstance(exc.detail, str) else str(exc.default_detail)
        headers = {k: v for k, v in drf_response.headers.items() if k in ("WWW-Authenticate", "Retry-After", "Allow")}
        return error_response(code, str(message), drf_response.status_code, headers=headers)
    return None


def _first_message(fields: dict[str, list[str]]) -> str:
    for name, messages in fields.items():
        if messages:
            label = "" if name == "non_field_errors" else f"{name}: "
            return f"{label}{messages[0]}"
    return "Some fields are not valid."


class Pagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "limit"
    max_page_size = 100

    def paginate_queryset(self, queryset: Any, request: Any, view: Any = None) -> Any:
        for name, low, high in (("page", 1, None), ("limit", 1, self.max_page_size)):
            raw = request.query_params.get(name)
            if raw is None:
                continue
            try:
                value = int(raw)
            except ValueError:
                raise exceptions.ValidationError({name: ["Must be a whole number."]}) from None
            if value < low or (high is not None and value > high):
                bound = f"between {low} and {high}" if high else f"at least {low}"
                raise exceptions.ValidationError({name: [f"Must be {bound}."]})
        self.request = request
        page_size = self.get_page_size(request) or self.page_size
        paginator = self.django_paginator_class(queryset, page_size)
        page_number = int(request.query_params.get("page", 1))
        self.page = paginator.get_page(page_number) if page_number <= max(paginator.num_pages, 1) else None
        self._requested_page = page_number
        self._page_size = page_size
        self._paginator = paginator
        if self.page is None:
            return []
        return list(self.page)

    def get_pagination(self) -> dict[str, int]:
        return {
            "page": self._requested_page,
            "limit": self._page_size,
            "total_items": self._paginator.count,
            "total_pages": self._paginator.num_pages if self._paginator.count else 0,
        }

    def get_paginated_response(self, data: Any) -> Response:
        return Response({"results": data, "pagination": self.get_pagination()})

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "results": schema,
                "pagination": {
                    "type": "object",
                    "properties": {k: {"type": "integer"} for k in ("page", "limit", "total_items", "total_pages")},
                },
            },
        }


def json_error_view(code: str, message: str, status_code: int) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status_code)


TOO_LARGE_MESSAGE = "The request body is larger than the server accepts."


def handler400(request: Any, exception: Exception | None = None) -> Any:
    """Django's answer to a bad request outside a DRF view (a malformed form, a suspicious
    operation). A body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is 413, not 400: in the envelope under
    ``/api/``, a plain page elsewhere."""
    is_api = request.path.startswith("/api/")
    if isinstance(exception, RequestDataTooBig):
        if is_api:
            return json_error_view("payload_too_large", TOO_LARGE_MESSAGE, 413)
        return HttpResponse(TOO_LARGE_MESSAGE, status=413, content_type="text/plain; charset=utf-8")
    if is_api:
        return json_error_view("bad_request", "The request could not be read.", 400)
    from django.views.defaults import bad_request

    return bad_request(request, exception if exception is not None else Exception("Bad request"))


def handler404(request: Any, exception: Exception | None = None) -> Any:
    if request.path.startswith("/api/"):
        return json_error_view("not_found", "Not found.", 404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request: Any) -> Any:
    if request.path.startswith("/api/"):
        return json_error_view("server_error", "Something went wrong on our side. It has been logged.", 500)
    from django.views.defaults import server_error

    return server_error(request)
