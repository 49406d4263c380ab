"""Refuses, before any view runs, input no part of the site may receive: a NUL character in the
URL's path, in a query parameter (name or value), or in a form posted to a page.

PostgreSQL text cannot store NUL, so an id or a filter holding one was a 500 there (and silently
different on SQLite). One place answers for every route: 400 ``validation_error`` in the envelope
of ``shared/API.md`` under ``/api/``, a plain 400 page elsewhere. JSON bodies are checked by the
API's parser (``marketplace.core.parsers``); API form bodies by DRF's fields, which refuse NUL too.
"""

from collections.abc import Callable, Iterable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

from .api import error_body

NUL = "\x00"
MESSAGE = "Null characters are not allowed."
# Only url-encoded forms are read here: a multipart body may be a large upload, which its view
# measures before anything parses it (its text fields are Django form fields, which refuse NUL).
_FORM_TYPE = "application/x-www-form-urlencoded"


def _nul_field(pairs: Iterable[tuple[str, list[str]]], *, where: str) -> str | None:
    """The name of the first parameter whose name or values hold a NUL (``where`` if the name does)."""
    for key, values in pairs:
        if NUL in key:
            return where
        if any(NUL in value for value in values):
            return key
    return None


def nul_field(request: HttpRequest) -> str | None:
    """Where the request carries a NUL: ``"path"``, a parameter's name, ``"query"``/``"form"``
    (a NUL in a name), or ``None``."""
    if NUL in request.path:
        return "path"
    found = _nul_field(request.GET.lists(), where="query")
    if found is None and request.method == "POST" and not request.path.startswith("/api/"):
        if request.content_type == _FORM_TYPE:  # the CSRF check reads this form anyway
            found = _nul_field(request.POST.lists(), where="form")
    return found


class RefuseNulMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        field = nul_field(request)
        if field is None:
            return self.get_response(request)
        if request.path.startswith("/api/"):
            return JsonResponse(error_body("validation_error", f"{field}: {MESSAGE}", {field: [MESSAGE]}), status=400)
        return HttpResponseBadRequest(f"Bad request: {MESSAGE}", content_type="text/plain; charset=utf-8")
