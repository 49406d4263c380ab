"""The seller's store address and profile text, set on the dashboard's settings page."""

from typing import Any

import pytest
from django.test import Client

from marketplace.accounts.models import User
from marketplace.accounts.tests.factories import SellerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def me(db: Any) -> Any:
    return SellerFactory(name="Ada's Shop", email="ada@example.com")


@pytest.fixture
def browser(client: Client, me: Any) -> Client:
    client.force_login(me)
    return client


def post(browser: Client, **fields: str) -> Any:
    return browser.post("/dashboard/settings/", {"name": "Ada's Shop", "support_email": "", **fields})


def test_the_seller_sets_the_store_address_and_profile(browser: Client, me: Any, client: Client) -> None:
    response = post(browser, store_slug="ada-shop", store_bio="Puzzles **by hand**.")

    assert response.status_code == 302
    me.refresh_from_db()
    assert (me.store_slug, me.store_bio) == ("ada-shop", "Puzzles **by hand**.")
    page = browser.get("/dashboard/settings/").content.decode()
    assert 'href="/s/ada-shop"' in page
    assert "Puzzles <strong>by hand</strong>." in client.get("/s/ada-shop").content.decode()


@pytest.mark.parametrize(
    ("slug", "message"),
    [("Ada Shop", "lowercase"), ("ab", "3 to 60"), ("dashboard", "reserved"), ("a--b", "lowercase")],
)
def test_a_malformed_store_address_is_refused(browser: Client, me: Any, slug: str, message: str) -> None:
    response = post(browser, store_slug=slug, store_bio="New text")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="error-store_slug"' in html and message in html
    me.refresh_from_db()
    assert (me.store_slug, me.store_bio) == (None, "")


def test_a_taken_store_address_is_refused_and_nothing_changes(browser: Client, me: Any) -> None:
    SellerFactory(store_slug="taken-shop")

    response = post(browser, store_slug="taken-shop", store_bio="x")
    response_name = browser.post(
        "/dashboard/settings/", {"name": "Renamed", "support_email": "", "store_slug": "taken-shop"}
    )

    assert 'data-testid="error-store_slug"' in response.content.decode()
    assert "already in use" in response_name.content.decode()
    me.refresh_from_db()
    assert (me.name, me.store_slug) == ("Ada's Shop", None)  # the profile was not half-saved
    assert User.objects.filter(store_slug="taken-shop").count() == 1


# --- The product form's page address (slug) --------------------------------------------------


def product_post(**overrides: str) -> dict[str, str]:
    data = {
        "title": "Puzzle Pack",
        "slug": "",
        "description": "Forty *puzzles*.",
        "status": "active",
        "currency": "USD",
        "delivery_type": "text",
        "delivery_text": "Thanks!",
        "variants-TOTAL_FORMS": "1",
        "variants-INITIAL_FORMS": "0",
        "variants-MIN_NUM_FORMS": "0",
        "variants-MAX_NUM_FORMS": "1000",
        "variants-0-name": "Standard",
        "variants-0-price": "5.00",
    }
    data.update(overrides)
    return data


def test_the_seller_chooses_the_page_address(browser: Client, me: Any) -> None:
    from catalog.models import Product

    response = browser.post("/dashboard/products/new/", product_post(slug="puzzles-vol-1"))

    assert response.status_code == 302, response.content.decode()[:2000]
    assert Product.objects.get().slug == "puzzles-vol-1"
    assert browser.get("/c/puzzles-vol-1").status_code == 200


@pytest.mark.parametrize(("slug", "message"), [("Bad Slug", "lowercase letters"), ("taken", "already in use")])
def test_a_bad_page_address_is_shown_next_to_the_field(browser: Client, me: Any, slug: str, message: str) -> None:
    from catalog.models import Product
    from catalog.tests.factories import ProductFactory

    ProductFactory(seller=SellerFactory(), slug="taken")

    response = browser.post("/dashboard/products/new/", product_post(slug=slug))

    assert response.status_code in (200, 400, 409)
    html = response.content.decode()
    error = html.split('data-testid="error-slug"')[1].split("</p>")[0]
    assert message in error
    assert Product.objects.filter(seller=me).count() == 0


# --- The product form's cover image ----------------------------------------------------------


@pytest.fixture
def storage(settings: Any, tmp_path: Any) -> Any:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "pub")},
        },
        "private": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "prv")},
        },
    }
    return tmp_path


def uploaded(seller: Any, name: str, content: bytes) -> str:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from catalog.services import upload_create

    return upload_create(seller=seller, file=SimpleUploadedFile(name, content, content_type="image/png")).key


def png_bytes() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 20, 30)).save(out, format="PNG")
    return out.getvalue()


def test_the_product_form_sets_shows_and_removes_the_cover(browser: Client, me: Any, storage: Any) -> None:
    from catalog.models import Product

    key = uploaded(me, "cover.png", png_bytes())

    created = browser.post("/dashboard/products/new/", product_post(slug="with-cover", cover_image=key))

    assert created.status_code == 302
    product = Product.objects.get()
    assert product.cover_image == key and product.cover_image_path.startswith("covers/")
    edit = browser.get(f"/dashboard/products/{product.id}/edit/").content.decode()
    assert f'src="/media/{product.cover_image_path}"' in edit and 'name="cover_remove"' in edit
    assert 'data-upload-prefix="cover"' in edit

    removed = browser.post(
        f"/dashboard/products/{product.id}/edit/", product_post(slug="with-cover", cover_image=key, cover_remove="on")
    )

    assert removed.status_code == 302
    product.refresh_from_db()
    assert (product.cover_image, product.cover_image_path) == ("", "")


def test_a_non_image_cover_is_shown_beside_the_field(browser: Client, me: Any, storage: Any) -> None:
    from catalog.models import Product

    key = uploaded(me, "notes.png", b"not a picture")

    response = browser.post("/dashboard/products/new/", product_post(cover_image=key))

    html = response.content.decode()
    assert "not a picture" in html.split('data-testid="error-cover_image"')[1].split("</p>")[0]
    assert Product.objects.count() == 0
