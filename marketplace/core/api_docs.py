"""The API's browsable docs (``/api/docs/``, ``/api/redoc/``), served without the internet and under
the Content-Security-Policy.

Swagger UI and Redoc come from drf-spectacular-sidecar. Swagger UI's start-up script is a file of its
own (drf-spectacular's split view), never inline. Redoc's page is ours (no Google Fonts, no inline
script), and its bundle is the sidecar's with the one thing it fetches from another host taken out:
the logo of its "API docs by Redocly" link, which would otherwise be a request to cdn.redoc.ly (and a
policy violation) on every visit.
"""

from functools import cache
from pathlib import Path

from django.contrib.staticfiles import finders
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_GET
from drf_spectacular.views import SpectacularRedocView

REDOC_BUNDLE = "drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"
REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
BLANK_IMAGE = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E"


class RedocView(SpectacularRedocView):
    template_name = "api_docs/redoc.html"

    @staticmethod
    def _redoc_standalone() -> str:
        return reverse("api-redoc-bundle")


@cache
def redoc_bundle_source() -> bytes:
    found = finders.find(REDOC_BUNDLE)
    if not isinstance(found, str):
        raise FileNotFoundError(f"{REDOC_BUNDLE} is not among the static files: is drf_spectacular_sidecar installed?")
    return Path(found).read_text(encoding="utf-8").replace(REDOCLY_LOGO, BLANK_IMAGE).encode()


@require_GET
def redoc_bundle(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(redoc_bundle_source(), content_type="application/javascript; charset=utf-8")
    patch_cache_control(response, public=True, max_age=24 * 60 * 60)
    return response
