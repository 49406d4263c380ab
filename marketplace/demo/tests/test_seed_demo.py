"""``manage.py seed_demo`` creates the demo once, and a second run creates nothing new."""

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import authenticate
from django.core.files.storage import storages
from django.core.management import CommandError, call_command
from django.test import RequestFactory

from catalog.models import DeliveryType, Product, ProductStatus, Upload, Variant
from marketplace.accounts.models import Role, User
from marketplace.demo.management.commands import seed_demo


def signs_in(*, email: str, password: str):
    """What the sign-in page would authenticate (the lock-out check needs a request)."""
    return authenticate(RequestFactory().post("/accounts/login/"), email=email, password=password)


@pytest.fixture(autouse=True)
def private_storage(settings: Any, tmp_path: Path) -> Path:
    location = tmp_path / "private"
    settings.STORAGES = {
        **settings.STORAGES,
        "private": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(location)}},
    }
    settings.SITE_URL = "http://shop.test:8123"
    return location


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {
        "users": User.objects.count(),
        "products": Product.objects.count(),
        "variants": Variant.objects.count(),
        "uploads": Upload.objects.count(),
    }


@pytest.mark.django_db
def test_creates_the_seller_the_operator_and_one_product_per_delivery_type() -> None:
    output = seed()

    assert counts() == {"users": 2, "products": 6, "variants": 6, "uploads": 1}
    seller = User.objects.get(email="demo@seller.test")
    assert (seller.name, seller.role) == ("Demo Seller", Role.SELLER)
    assert (seller.is_staff, seller.is_superuser) == (False, False)
    operator = User.objects.get(email="admin@marketplace.test")
    assert (operator.is_staff, operator.is_superuser) == (True, True)
    assert signs_in(email="demo@seller.test", password=seed_demo.DEFAULT_SELLER_PASSWORD) == seller
    assert signs_in(email="admin@marketplace.test", password=seed_demo.DEFAULT_ADMIN_PASSWORD) == operator

    products = {p.slug: p for p in Product.objects.prefetch_related("variants")}
    assert {slug: (p.delivery_type, p.currency, p.status, p.seller_id) for slug, p in products.items()} == {
        "demo-text": (DeliveryType.TEXT, "USD", ProductStatus.ACTIVE, seller.id),
        "demo-link": (DeliveryType.LINK, "EUR", ProductStatus.ACTIVE, seller.id),
        "demo-file": (DeliveryType.FILE, "GBP", ProductStatus.ACTIVE, seller.id),
        "demo-gift-card": (DeliveryType.CODE_POOL, "USD", ProductStatus.ACTIVE, seller.id),
        "demo-license": (DeliveryType.LICENSE_KEY, "USD", ProductStatus.ACTIVE, seller.id),
        "demo-game-credits": (DeliveryType.PARTNER_API, "USD", ProductStatus.ACTIVE, seller.id),
    }
    assert {slug: [v.price for v in p.variants.all()] for slug, p in products.items()} == {
        "demo-text": [500],
        "demo-link": [1500],
        "demo-file": [999],
        "demo-gift-card": [2500],
        "demo-license": [4900],
        "demo-game-credits": [999],
    }
    from catalog.inventory import available_codes

    pool = products["demo-gift-card"].variants.get()
    assert available_codes(pool.id).count() == seed_demo.DEMO_POOL_SIZE
    assert products["demo-license"].delivery_options["license"]["activation_limit"] == 2
    assert products["demo-text"].title == "Demo Text Product"
    assert "DEMO-1234-ABCD-5678" in products["demo-text"].delivery_content
    assert products["demo-link"].delivery_content == "https://example.com/course"

    assert (
        products["demo-game-credits"].delivery_options["partner"]["url"] == "http://shop.test:8123/demo/partner/fulfill"
    )
    for slug in ("demo-text", "demo-link", "demo-file", "demo-gift-card", "demo-license", "demo-game-credits"):
        assert f"http://shop.test:8123/c/{slug}" in output
    assert seed_demo.DEFAULT_SELLER_PASSWORD in output
    assert seed_demo.DEFAULT_ADMIN_PASSWORD in output


@pytest.mark.django_db
def test_the_file_product_points_at_a_real_private_upload(private_storage: Path) -> None:
    seed()

    product = Product.objects.get(slug="demo-file")
    upload = Upload.objects.get()
    assert product.delivery_content == upload.key
    assert upload.seller.email == "demo@seller.test"
    assert upload.content_type == "application/pdf"
    with storages["private"].open(upload.key, "rb") as handle:
        content = handle.read()
    assert content.startswith(b"%PDF-1.4") and content.rstrip().endswith(b"%%EOF")
    assert len(content) == upload.size
    assert (private_storage / upload.key).is_file()


@pytest.mark.django_db
def test_running_twice_creates_nothing_new(private_storage: Path) -> None:
    seed()
    before = counts()
    ids_before = sorted(Product.objects.values_list("id", flat=True))
    key_before = Upload.objects.get().key

    output = seed()

    assert counts() == before
    assert sorted(Product.objects.values_list("id", flat=True)) == ids_before
    assert Upload.objects.get().key == key_before
    assert len(list(private_storage.rglob("*.pdf"))) == 1
    assert "nothing new created" in output


@pytest.mark.django_db
def test_a_second_run_repairs_what_a_developer_broke(private_storage: Path) -> None:
    seed()
    seller = User.objects.get(email="demo@seller.test")
    seller.set_password("something-else-entirely")
    seller.save()
    Product.objects.filter(slug="demo-link").update(status=ProductStatus.DRAFT)
    upload = Upload.objects.get()
    storages["private"].delete(upload.key)

    seed()

    assert counts() == {"users": 2, "products": 6, "variants": 6, "uploads": 1}
    assert signs_in(email="demo@seller.test", password=seed_demo.DEFAULT_SELLER_PASSWORD) == seller
    assert Product.objects.get(slug="demo-link").status == ProductStatus.ACTIVE
    upload.refresh_from_db()
    assert storages["private"].exists(upload.key)
    assert Product.objects.get(slug="demo-file").delivery_content == upload.key


@pytest.mark.django_db
def test_refuses_to_run_on_production_settings(settings: Any) -> None:
    settings.SETTINGS_MODULE = "marketplace.settings.production"

    with pytest.raises(CommandError, match="refusing on production settings"):
        seed()

    assert counts() == {"users": 0, "products": 0, "variants": 0, "uploads": 0}
