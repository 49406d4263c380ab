"""Liveness (/healthz) and readiness (/readyz): 503 names the dependency that does not answer."""

from typing import Any

import pytest
from botocore.config import Config
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
    assert body["checks"] == {"database": "ok", "cache": "ok", "broker": "ok", "storage": "ok"}


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
    assert body["error"]["checks"] == {"database": "ok", "cache": "ok", "broker": "down", "storage": "ok"}


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
    assert response.json()["error"]["checks"] == {"database": "ok", "cache": "down", "broker": "ok", "storage": "ok"}


DEAD_S3 = {
    "BACKEND": "storages.backends.s3.S3Storage",
    "OPTIONS": {
        "bucket_name": "nowhere",
        "endpoint_url": "http://127.0.0.1:9",  # the discard port: nothing listens
        "access_key": "testing",
        "secret_key": "testing",
        "region_name": "us-east-1",
        "client_config": Config(connect_timeout=1, read_timeout=1, retries={"max_attempts": 0}),
    },
}


@pytest.mark.django_db
def test_readyz_names_the_storage_when_the_bucket_does_not_answer(client: Client, settings: Any) -> None:
    settings.STORAGES = {**settings.STORAGES, "private": DEAD_S3}

    response = client.get("/readyz")

    assert response.status_code == 503
    error = response.json()["error"]
    assert (error["code"], error["dependency"]) == ("service_unavailable", "storage")
    assert error["checks"] == {"database": "ok", "cache": "ok", "broker": "ok", "storage": "down"}


@pytest.mark.django_db
def test_readyz_names_the_storage_when_the_local_folder_is_gone(client: Client, settings: Any, tmp_path: Any) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "private": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                    "OPTIONS": {"location": str(tmp_path / "missing")}},
    }  # fmt: skip

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["error"]["dependency"] == "storage"


def test_the_cache_never_shares_the_brokers_redis_database() -> None:
    from marketplace.settings.base import sibling_redis_db

    assert sibling_redis_db("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/1"
    assert sibling_redis_db("redis://127.0.0.1:6379") == "redis://127.0.0.1:6379/1"
    assert sibling_redis_db("redis://:pw@cache.internal:6379/15") == "redis://:pw@cache.internal:6379/14"


@pytest.fixture(scope="module")
def s3_endpoint() -> Any:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.mark.django_db
def test_readyz_asks_the_s3_bucket_itself(client: Client, settings: Any, s3_endpoint: str) -> None:
    import boto3

    options = {"endpoint_url": s3_endpoint, "access_key": "testing", "secret_key": "testing"}
    options["region_name"] = "us-east-1"
    boto3.client(
        "s3", endpoint_url=s3_endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket="ready-bucket")  # fmt: skip
    s3 = {"BACKEND": "storages.backends.s3.S3Storage"}

    settings.STORAGES = {**settings.STORAGES, "private": {**s3, "OPTIONS": {**options, "bucket_name": "ready-bucket"}}}
    assert client.get("/readyz").json()["checks"]["storage"] == "ok"

    missing = {**s3, "OPTIONS": {**options, "bucket_name": "no-such-bucket"}}
    settings.STORAGES = {**settings.STORAGES, "private": missing}
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["error"]["checks"]["storage"] == "down"
