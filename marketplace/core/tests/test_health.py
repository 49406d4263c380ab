"""Liveness (/healthz) and readiness (/readyz): 503 names the dependency that does not answer."""

import pytest
from django.test import Client, override_settings

DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1: refused at once


@pytest.fixture
def client() -> Client:
    return Client()


def test_healthz_answers_ok(client: Client) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok"}


def test_healthz_needs_no_database(client: Client) -> None:
    # No django_db mark: any query would raise, so liveness must not touch the database.
    response = client.get("/healthz")

    assert response.status_code == 200


def test_healthz_refuses_writes(client: Client) -> None:
    assert client.post("/healthz").status_code == 405


@pytest.mark.django_db
def test_readyz_answers_ok_when_everything_answers(client: Client) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"] == {"database": "ok", "cache": "ok", "broker": "ok"}


@pytest.mark.django_db
@override_settings(CELERY_BROKER_URL=DEAD_REDIS, CELERY_BROKER_TRANSPORT_OPTIONS={})
def test_readyz_names_the_broker_when_it_does_not_answer(client: Client) -> None:
    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == "service_unavailable"
    assert body["error"]["dependency"] == "broker"
    assert "broker" in body["error"]["message"]


@pytest.mark.django_db
def test_readyz_is_ready_again_once_the_broker_is_back(client: Client) -> None:
    with override_settings(CELERY_BROKER_URL=DEAD_REDIS, CELERY_BROKER_TRANSPORT_OPTIONS={}):
        assert client.get("/readyz").status_code == 503

    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["checks"]["broker"] == "ok"


@pytest.mark.django_db
@override_settings(
    CACHES={"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": DEAD_REDIS}}
)
def test_readyz_names_the_cache_when_it_does_not_answer(client: Client) -> None:
    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["error"]["dependency"] == "cache"


def test_the_cache_never_shares_the_brokers_redis_database() -> None:
    from marketplace.settings.base import sibling_redis_db

    assert sibling_redis_db("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/1"
    assert sibling_redis_db("redis://127.0.0.1:6379") == "redis://127.0.0.1:6379/1"
    assert sibling_redis_db("redis://:pw@cache.internal:6379/15") == "redis://:pw@cache.internal:6379/14"
