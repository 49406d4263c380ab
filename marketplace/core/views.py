"""Health checks: liveness answers while the process runs; readiness asks every dependency."""

import logging
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.core.files.storage import storages
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


def _check_storage() -> None:
    """The private storage (sellers' files): the S3 bucket answers, or the local folder is there."""
    storage = storages["private"]
    bucket = getattr(storage, "bucket_name", None)
    if bucket:
        storage.connection.meta.client.head_bucket(Bucket=bucket)  # type: ignore[attr-defined]
    else:
        storage.listdir("")


CHECKS = {"database": _check_database, "cache": _check_cache, "broker": _check_broker, "storage": _check_storage}

# Facts about this site that ``/readyz`` reports beside its checks, each a name and a function that
# answers it. Domain apps add theirs at start-up (``AppConfig.ready``): the kernel knows none of them.
READINESS_FACTS: dict[str, Callable[[], bool]] = {}


def readiness_fact_register(name: str, answer: Callable[[], bool]) -> None:
    READINESS_FACTS[name] = answer


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """200 with every dependency's state when all answer; 503 naming the first that does not, with
    the state of each (``ok`` or ``down``)."""
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            logger.warning("readyz: %s is not answering: %s", name, exc, extra={"dependency": name})
            results[name] = "down"
        else:
            results[name] = "ok"
    down = [name for name, state in results.items() if state != "ok"]
    if down:
        body = error_body("service_unavailable", f"The {down[0]} is not answering.", dependency=down[0], checks=results)
        return JsonResponse(body, status=503)
    return JsonResponse(
        {
            "status": "ok",
            "checks": results,
            "broker": settings.CELERY_BROKER_URL.split(":", 1)[0],
            # e.g. "sandbox_in_production": a staging or demo site taking no money (payments registers it).
            **{name: answer() for name, answer in READINESS_FACTS.items()},
        }
    )
