"""Health checks: liveness answers while the process runs; readiness asks every dependency."""

import logging

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from marketplace.core.api import error_body

logger = logging.getLogger(__name__)


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_cache() -> None:
    cache.set("readyz", "1", timeout=5)
    if cache.get("readyz") != "1":
        raise RuntimeError("cache did not return what was stored")


def _check_broker() -> None:
    from marketplace.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _check_database, "cache": _check_cache, "broker": _check_broker}
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            logger.warning("readyz: %s is not answering: %s", name, exc)
            body = error_body("service_unavailable", f"The {name} is not answering.", dependency=name)
            return JsonResponse(body, status=503)
        results[name] = "ok"
    return JsonResponse({"status": "ok", "checks": results, "broker": settings.CELERY_BROKER_URL.split(":", 1)[0]})
