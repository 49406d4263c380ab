import re
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from django.core.files.uploadedfile import SimpleUploadedFile
from moto.server import ThreadedMotoServer
from rest_framework.test import APIClient

from catalog.models import Product, Upload

from .conftest import jwt_client
from .test_products_api import PRODUCTS, assert_error, create_body

pytestmark = pytest.mark.django_db

UPLOADS = "/api/v1/uploads"
KEY_PATTERN = r"uploads/{seller}/[0-9A-Za-z]{{22}}/{name}"


def upload(client: APIClient, name: str, content: bytes, content_type: str = "application/pdf") -> Any:
    return client.post(
        UPLOADS, {"file": SimpleUploadedFile(name, content, content_type=content_type)}, format="multipart"
    )


def test_upload_stores_the_file_privately(seller_client: APIClient, seller: Any, private_storage: Any) -> None:
    content = b"%PDF-1.7 the whole book"

    response = upload(seller_client, "handbook.pdf", content)

    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert re.fullmatch(KEY_PATTERN.format(seller=seller.id, name="handbook.pdf"), data["url"])
    assert data == {
        "url": data["url"],
        "filename": "handbook.pdf",
        "size": len(content),
        "content_type": "application/pdf",
    }
    assert (private_storage / data["url"]).read_bytes() == content
    row = Upload.objects.get()
    assert (row.seller, row.key, row.filename, row.size, row.content_type) == (
        seller,
        data["url"],
        "handbook.pdf",
        len(content),
        "application/pdf",
    )


def test_uploaded_key_is_usable_as_file_delivery(seller_client: APIClient) -> None:
    key = upload(seller_client, "book.epub", b"epub").json()["data"]["url"]

    response = seller_client.post(
        PRODUCTS, create_body(delivery={"content_type": "file", "content": key}), format="json"
    )

    assert response.status_code == 201
    assert Product.objects.get().delivery_content == key


def test_filename_is_sanitised(seller_client: APIClient, seller: Any, private_storage: Any) -> None:
    response = upload(seller_client, '../../etc/Ünïcode "report" v2.pdf', b"data")

    data = response.json()["data"]
    assert data["filename"] == "Unicode_report_v2.pdf"
    assert re.fullmatch(KEY_PATTERN.format(seller=seller.id, name="Unicode_report_v2.pdf"), data["url"])
    assert (private_storage / data["url"]).read_bytes() == b"data"


def test_content_type_guessed_when_missing(seller_client: APIClient) -> None:
    file = SimpleUploadedFile("notes.txt", b"hello", content_type="")

    response = seller_client.post(UPLOADS, {"file": file}, format="multipart")

    assert response.status_code == 201
    assert response.json()["data"]["content_type"] == "text/plain"


def test_missing_file_is_400(seller_client: APIClient) -> None:
    response = seller_client.post(UPLOADS, {}, format="multipart")

    error = assert_error(response, 400, "validation_error", ["file"])
    assert error["fields"]["file"] == ["No file was submitted."]
    # A field the upload does not take is named as unknown (strict input), not passed over.
    assert_error(seller_client.post(UPLOADS, {"other": "x"}, format="multipart"), 400, "validation_error", ["other"])
    assert Upload.objects.count() == 0


def test_empty_file_is_400(seller_client: APIClient, private_storage: Any) -> None:
    assert_error(upload(seller_client, "empty.pdf", b""), 400, "validation_error", ["file"])
    assert Upload.objects.count() == 0
    assert list(private_storage.rglob("*.pdf")) == []


def test_too_large_is_413(seller_client: APIClient, settings: Any, private_storage: Any) -> None:
    settings.MAX_UPLOAD_SIZE = 10

    response = upload(seller_client, "big.pdf", b"x" * 11)

    assert_error(response, 413, "payload_too_large")
    assert Upload.objects.count() == 0
    assert list(private_storage.rglob("*.pdf")) == []
    assert upload(seller_client, "fits.pdf", b"x" * 10).status_code == 201


def test_content_length_far_over_the_limit_is_refused_before_parsing(seller_client: APIClient, settings: Any) -> None:
    settings.MAX_UPLOAD_SIZE = 10

    response = upload(seller_client, "huge.bin", b"x" * (200 * 1024))

    assert_error(response, 413, "payload_too_large")
    assert Upload.objects.count() == 0


def test_json_body_is_415(seller_client: APIClient) -> None:
    response = seller_client.post(UPLOADS, {"file": "aGVsbG8="}, format="json")

    assert_error(response, 415, "unsupported_media_type")
    assert Upload.objects.count() == 0


def test_anonymous_401_and_buyer_403(api_client: APIClient, buyer: Any) -> None:
    assert_error(upload(api_client, "a.pdf", b"a"), 401, "not_authenticated")
    assert_error(upload(jwt_client(buyer), "a.pdf", b"a"), 403, "permission_denied")
    assert Upload.objects.count() == 0


# --- Against a real S3 server (moto in server mode, spoken to over HTTP) ----------------------


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str, settings: Any) -> Iterator[tuple[Any, str]]:
    credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}
    client = boto3.client("s3", endpoint_url=s3_endpoint, **credentials)
    bucket = f"private-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    settings.STORAGES = {
        **settings.STORAGES,
        "private": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": s3_endpoint,
                "access_key": "testing",
                "secret_key": "testing",
                "region_name": "us-east-1",
                "addressing_style": "path",
                "default_acl": "private",
                "querystring_auth": True,
                "file_overwrite": False,
            },
        },
    }
    yield client, bucket


def test_upload_to_s3(seller_client: APIClient, seller: Any, s3_bucket: tuple[Any, str]) -> None:
    client, bucket = s3_bucket
    content = bytes(range(256)) * 64  # binary, 16 KiB

    response = upload(seller_client, "archive.zip", content, content_type="application/zip")

    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert re.fullmatch(KEY_PATTERN.format(seller=seller.id, name="archive.zip"), data["url"])
    assert (data["filename"], data["size"], data["content_type"]) == ("archive.zip", len(content), "application/zip")
    stored = client.get_object(Bucket=bucket, Key=data["url"])
    assert stored["Body"].read() == content
    assert stored["ContentType"] == "application/zip"
    listed = client.list_objects_v2(Bucket=bucket)
    assert [obj["Key"] for obj in listed["Contents"]] == [data["url"]]
    assert Upload.objects.get().key == data["url"]


def test_s3_too_large_writes_nothing(seller_client: APIClient, s3_bucket: tuple[Any, str], settings: Any) -> None:
    client, bucket = s3_bucket
    settings.MAX_UPLOAD_SIZE = 5

    assert_error(upload(seller_client, "big.zip", b"123456"), 413, "payload_too_large")
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    assert Upload.objects.count() == 0


def test_s3_outage_is_503(seller_client: APIClient, settings: Any) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "private": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": "nowhere",
                "endpoint_url": "http://127.0.0.1:9",  # the discard port: nothing listens
                "access_key": "testing",
                "secret_key": "testing",
                "region_name": "us-east-1",
                "addressing_style": "path",
                "client_config": Config(connect_timeout=1, read_timeout=1, retries={"max_attempts": 0}),
            },
        },
    }

    assert_error(upload(seller_client, "a.zip", b"abc"), 503, "service_unavailable")
    assert Upload.objects.count() == 0
