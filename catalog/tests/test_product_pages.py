"""Product pages that sell: cover images (Pillow, public storage), Markdown descriptions rendered
and sanitised (markdown + nh3), seller-chosen slugs, and per-variant files — through the API."""

import io
import struct
import zlib
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from rest_framework.test import APIClient

from catalog.covers import COVER_MAX_BYTES, COVER_MAX_SIDE
from catalog.models import Product, Upload, Variant
from catalog.rendering import markdown_to_plain_text, markdown_to_safe_html

pytestmark = pytest.mark.django_db

PRODUCTS = "/api/v1/products"
UPLOADS = "/api/v1/uploads"


@pytest.fixture(autouse=True)
def public_storage(settings: Any, tmp_path: Any) -> Any:
    """Covers go to a throwaway public folder."""
    public = tmp_path / "public"
    public.mkdir()
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(public)}},
    }
    return public


def image_bytes(size: tuple[int, int] = (2400, 1200), fmt: str = "PNG", mode: str = "RGBA") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (200, 30, 30, 255) if mode == "RGBA" else (200, 30, 30)).save(out, format=fmt)
    return out.getvalue()


def upload(client: APIClient, name: str, content: bytes, content_type: str = "image/png") -> str:
    response = client.post(
        UPLOADS, {"file": SimpleUploadedFile(name, content, content_type=content_type)}, format="multipart"
    )
    assert response.status_code == 201, response.content
    return str(response.json()["data"]["url"])


def create_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "title": "The Django Handbook",
        "currency": "USD",
        "price": 1999,
        "delivery": {"content_type": "text", "content": "Thanks!"},
    }
    body.update(overrides)
    return body


def error_of(response: Any, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code
    if field is not None:
        assert field in error["fields"], error
    return dict(error)


# --- Cover images ----------------------------------------------------------------------------


def test_cover_image_is_resized_into_public_storage_and_shown(seller_client: APIClient, public_storage: Any) -> None:
    key = upload(seller_client, "cover.png", image_bytes((2400, 1200)))

    response = seller_client.post(PRODUCTS, create_body(cover_image=key), format="json")

    assert response.status_code == 201, response.content
    data = response.json()["data"]
    product = Product.objects.get()
    assert data["cover_image"] == key == product.cover_image
    assert product.cover_image_path.startswith(f"covers/{product.seller_id}/")
    assert product.cover_image_path.endswith(".jpg")
    assert data["cover_image_url"] == f"http://127.0.0.1:8000/media/{product.cover_image_path}"
    with Image.open(public_storage / product.cover_image_path) as stored:
        assert stored.format == "JPEG"
        assert stored.size == (COVER_MAX_SIDE, COVER_MAX_SIDE // 2)  # 2400×1200 fitted into 1280, same ratio


def test_a_small_cover_keeps_its_size(seller_client: APIClient, public_storage: Any) -> None:
    key = upload(seller_client, "small.jpg", image_bytes((300, 200), fmt="JPEG", mode="RGB"), "image/jpeg")
    response = seller_client.post(PRODUCTS, create_body(cover_image=key), format="json")
    assert response.status_code == 201, response.content
    with Image.open(public_storage / Product.objects.get().cover_image_path) as stored:
        assert stored.size == (300, 200)


def test_a_non_image_cover_is_refused_and_nothing_is_created(seller_client: APIClient, public_storage: Any) -> None:
    key = upload(seller_client, "notes.png", b"%PDF-1.7 this is not a picture at all", "image/png")

    response = seller_client.post(PRODUCTS, create_body(cover_image=key), format="json")

    error = error_of(response, 400, "validation_error", "cover_image")
    assert "not a picture" in error["fields"]["cover_image"][0]
    assert Product.objects.count() == 0
    assert not (public_storage / "covers").exists()


def _png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR claiming ``width``×``height``: a decompression bomb's header."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@pytest.mark.parametrize(("width", "height"), [(8000, 6000), (20000, 20000)])
def test_a_cover_with_too_many_pixels_is_refused_unread(
    seller_client: APIClient, public_storage: Any, width: int, height: int
) -> None:
    key = upload(seller_client, "bomb.png", _png_header_only(width, height))

    response = seller_client.post(PRODUCTS, create_body(cover_image=key), format="json")

    error = error_of(response, 400, "validation_error", "cover_image")
    assert "megapixels" in error["message"], error
    assert Product.objects.count() == 0
    assert not (public_storage / "covers").exists()


def test_a_cover_over_the_byte_limit_is_413(seller_client: APIClient, seller: Any) -> None:
    key = upload(seller_client, "big.png", image_bytes((10, 10)))
    Upload.objects.filter(key=key).update(size=COVER_MAX_BYTES + 1)

    response = seller_client.post(PRODUCTS, create_body(cover_image=key), format="json")

    error_of(response, 413, "payload_too_large", "cover_image")
    assert Product.objects.count() == 0


def test_another_sellers_upload_is_not_a_cover(
    seller_client: APIClient, other_seller: Any, public_storage: Any
) -> None:
    from catalog.tests.conftest import jwt_client

    theirs = upload(jwt_client(other_seller), "theirs.png", image_bytes((50, 50)))

    response = seller_client.post(PRODUCTS, create_body(cover_image=theirs), format="json")

    error_of(response, 400, "validation_error", "cover_image")
    assert Product.objects.count() == 0


def test_replacing_and_removing_the_cover(
    seller_client: APIClient, public_storage: Any, django_capture_on_commit_callbacks: Any
) -> None:
    first = upload(seller_client, "a.png", image_bytes((64, 64)))
    second = upload(seller_client, "b.png", image_bytes((80, 40)))
    product_id = seller_client.post(PRODUCTS, create_body(cover_image=first), format="json").json()["data"]["id"]
    old_path = Product.objects.get().cover_image_path

    with django_capture_on_commit_callbacks(execute=True):
        replaced = seller_client.patch(f"{PRODUCTS}/{product_id}", {"cover_image": second}, format="json")

    assert replaced.status_code == 200, replaced.content
    product = Product.objects.get()
    assert product.cover_image == second and product.cover_image_path != old_path
    assert (public_storage / product.cover_image_path).exists()
    assert not (public_storage / old_path).exists()  # the old cover is gone once the new one is saved

    removed = seller_client.patch(f"{PRODUCTS}/{product_id}", {"cover_image": None}, format="json")

    assert removed.status_code == 200
    assert removed.json()["data"]["cover_image"] == "" and removed.json()["data"]["cover_image_url"] == ""
    product.refresh_from_db()
    assert (product.cover_image, product.cover_image_path) == ("", "")


def test_a_refused_cover_on_update_changes_nothing(seller_client: APIClient, public_storage: Any) -> None:
    good = upload(seller_client, "a.png", image_bytes((64, 64)))
    bad = upload(seller_client, "b.png", b"GIF89a-not-really", "image/gif")
    product_id = seller_client.post(PRODUCTS, create_body(cover_image=good), format="json").json()["data"]["id"]
    before = Product.objects.values("cover_image", "cover_image_path", "title").get()

    response = seller_client.patch(f"{PRODUCTS}/{product_id}", {"cover_image": bad, "title": "New"}, format="json")

    error_of(response, 400, "validation_error", "cover_image")
    assert Product.objects.values("cover_image", "cover_image_path", "title").get() == before


# --- Markdown descriptions -------------------------------------------------------------------


HOSTILE = """# Title

**Bold** and *italic*, a [good link](https://example.com/docs) and a [mail](mailto:help@example.com).

<script>alert('xss')</script>
<img src="x" onerror="alert(1)">
[click me](javascript:alert(document.cookie))
<a href="javascript:alert(2)" onclick="steal()">raw link</a>
<iframe src="https://evil.example/"></iframe>
<p style="position:fixed" onmouseover="x()">styled</p>
<svg onload="alert(3)"><circle/></svg>
[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)
"""


def test_hostile_markdown_is_rendered_sanitised() -> None:
    html = markdown_to_safe_html(HOSTILE)

    assert "<strong>Bold</strong>" in html and "<em>italic</em>" in html
    assert '<a href="https://example.com/docs" rel="nofollow noopener noreferrer">good link</a>' in html
    assert 'href="mailto:help@example.com"' in html
    lowered = html.lower()
    for bad in ("<script", "alert(", "onerror", "onclick", "onmouseover", "onload", "javascript:", "<iframe",
                "<img", "style=", "<svg", "data:text"):  # fmt: skip
        assert bad not in lowered, (bad, html)
    assert "raw link" in html and "styled" in html  # the text stays, the markup goes


def test_plain_text_summary_for_meta_descriptions() -> None:
    assert markdown_to_plain_text("**Learn** Django & <b>DRF</b>") == "Learn Django & DRF"
    long = markdown_to_plain_text("word " * 100, limit=40)
    assert len(long) <= 40 and long.endswith("…")
    assert markdown_to_plain_text("<script>alert(1)</script>") == ""


def test_public_view_has_the_sanitised_description(api_client: APIClient, seller_client: APIClient) -> None:
    body = create_body(description=HOSTILE, status="active", slug="handbook")
    assert seller_client.post(PRODUCTS, body, format="json").status_code == 201

    data = api_client.get("/api/v1/public/checkout/handbook").json()["data"]

    assert data["description"] == HOSTILE.strip()
    assert "<strong>Bold</strong>" in data["description_html"]
    assert "<script" not in data["description_html"] and "javascript:" not in data["description_html"]


# --- Slugs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "slug", ["Has-Capitals", "under_score", "double--hyphen", "-leading", "trailing-", "spa ce", "ünï", "a" * 81, ""]
)
def test_a_malformed_slug_is_refused(seller_client: APIClient, slug: str) -> None:
    response = seller_client.post(PRODUCTS, create_body(slug=slug), format="json")
    error_of(response, 400, "validation_error", "slug")
    assert Product.objects.count() == 0


def test_a_taken_slug_is_409_and_changes_nothing(seller_client: APIClient, other_seller: Any) -> None:
    from catalog.tests.conftest import jwt_client

    assert jwt_client(other_seller).post(PRODUCTS, create_body(slug="my-book"), format="json").status_code == 201
    assert seller_client.post(PRODUCTS, create_body(slug="mine"), format="json").status_code == 201

    created = seller_client.post(PRODUCTS, create_body(slug="my-book"), format="json")
    renamed = seller_client.patch(
        f"{PRODUCTS}/{Product.objects.get(slug='mine').id}", {"slug": "my-book"}, format="json"
    )

    error_of(created, 409, "slug_taken", "slug")
    error_of(renamed, 409, "slug_taken", "slug")
    assert sorted(Product.objects.values_list("slug", flat=True)) == ["mine", "my-book"]


def test_the_seller_chooses_the_slug(seller_client: APIClient) -> None:
    response = seller_client.post(PRODUCTS, create_body(slug="handbook-2nd-edition"), format="json")
    assert response.status_code == 201
    assert response.json()["data"]["checkout_url"].endswith("/c/handbook-2nd-edition")


# --- Per-variant files -----------------------------------------------------------------------


def file_body(standard: str, deluxe: str, **overrides: Any) -> dict[str, Any]:
    return create_body(
        price=None,
        variants=[
            {"name": "Standard", "price": 1000},
            {"name": "Deluxe", "price": 2500, "delivery": {"content_type": "file", "content": deluxe}},
        ],
        delivery={"content_type": "file", "content": standard},
        **overrides,
    )


def test_a_variant_delivers_its_own_file(seller_client: APIClient) -> None:
    standard = upload(seller_client, "book.pdf", b"%PDF standard", "application/pdf")
    deluxe = upload(seller_client, "book-deluxe.zip", b"PK deluxe", "application/zip")
    body = file_body(standard, deluxe)
    del body["price"]

    response = seller_client.post(PRODUCTS, body, format="json")

    assert response.status_code == 201, response.content
    variants = response.json()["data"]["variants"]
    assert [v["delivery"] for v in variants] == [None, {"content_type": "file", "content": deluxe}]
    assert dict(Variant.objects.values_list("name", "delivery_content")) == {"Standard": "", "Deluxe": deluxe}


@pytest.mark.parametrize(
    ("variant_delivery", "field"),
    [
        ({"content_type": "link", "content": "https://example.com"}, "variants.1.delivery.content_type"),
        ({"content": "uploads/nobody/x/file.pdf"}, "variants.1.delivery.content"),
        ({"content": "x", "license": {}}, "variants.1.delivery.license"),
    ],
)
def test_a_bad_variant_file_is_refused(seller_client: APIClient, variant_delivery: Any, field: str) -> None:
    standard = upload(seller_client, "book.pdf", b"%PDF standard", "application/pdf")
    body = file_body(standard, "placeholder")
    del body["price"]
    body["variants"][1]["delivery"] = variant_delivery

    response = seller_client.post(PRODUCTS, body, format="json")

    assert response.status_code == 400, response.content
    assert Product.objects.count() == 0 and Variant.objects.count() == 0


def test_only_file_products_have_variant_files(seller_client: APIClient) -> None:
    deluxe = upload(seller_client, "d.zip", b"PK", "application/zip")
    body = create_body(
        price=None,
        variants=[{"name": "Standard", "price": 1}, {"name": "Deluxe", "price": 2, "delivery": {"content": deluxe}}],
    )
    del body["price"]

    response = seller_client.post(PRODUCTS, body, format="json")

    error_of(response, 400, "validation_error", "variants.1.delivery.content")
    assert Product.objects.count() == 0


def test_patch_sets_and_clears_a_variant_file(seller_client: APIClient) -> None:
    standard = upload(seller_client, "book.pdf", b"%PDF standard", "application/pdf")
    deluxe = upload(seller_client, "deluxe.zip", b"PK", "application/zip")
    created = seller_client.post(
        PRODUCTS, create_body(delivery={"content_type": "file", "content": standard}), format="json"
    ).json()["data"]
    variant_id = created["variants"][0]["id"]

    set_ = seller_client.patch(
        f"{PRODUCTS}/{created['id']}",
        {"variants": [{"id": variant_id, "delivery": {"content_type": "file", "content": deluxe}}]},
        format="json",
    )
    cleared = seller_client.patch(
        f"{PRODUCTS}/{created['id']}", {"variants": [{"id": variant_id, "delivery": None}]}, format="json"
    )

    assert set_.json()["data"]["variants"][0]["delivery"] == {"content_type": "file", "content": deluxe}
    assert cleared.json()["data"]["variants"][0]["delivery"] is None
    assert Variant.objects.get().delivery_content == ""
