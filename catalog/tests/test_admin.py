from typing import Any

import pytest
from django.contrib.admin.utils import quote
from django.test import Client

from catalog.models import Product, ProductStatus, Upload
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.models import User

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(db: Any) -> Client:
    operator = User.objects.create_superuser(email="ops@example.com", password="x-very-long-pass-1", name="Ops")
    client = Client()
    client.force_login(operator)
    return client


def test_product_changelist_search_and_change_page(operator_client: Client, seller: Any) -> None:
    product = ProductFactory(seller=seller, title="Findable Ebook")
    VariantFactory(product=product, name="Gold", price=4200)
    ProductFactory(title="Other")

    listing = operator_client.get("/admin/catalog/product/", {"q": "findable"})
    change = operator_client.get(f"/admin/catalog/product/{quote(product.pk)}/change/")

    assert listing.status_code == 200
    assert listing.context["cl"].result_count == 1
    assert change.status_code == 200
    assert b"Gold" in change.content and b"4200" in change.content
    assert operator_client.get("/admin/catalog/product/add/").status_code == 403


def test_archive_action_goes_through_the_service(operator_client: Client, seller: Any) -> None:
    products = [ProductFactory(seller=seller, status=ProductStatus.ACTIVE) for _ in range(2)]

    response = operator_client.post(
        "/admin/catalog/product/",
        {"action": "archive_products", "_selected_action": [p.pk for p in products]},
        follow=True,
    )

    assert response.status_code == 200
    assert set(Product.objects.values_list("status", flat=True)) == {ProductStatus.ARCHIVED}
    assert b"Archived 2 product(s)." in response.content


def test_upload_admin_is_read_only(operator_client: Client, seller: Any) -> None:
    upload = Upload.objects.create(
        seller=seller, key="uploads/a/b/c.pdf", filename="c.pdf", size=1, content_type="application/pdf"
    )

    assert operator_client.get("/admin/catalog/upload/").status_code == 200
    assert operator_client.get(f"/admin/catalog/upload/{quote(upload.pk)}/change/").status_code == 200
    assert operator_client.get("/admin/catalog/upload/add/").status_code == 403
    assert operator_client.post(f"/admin/catalog/upload/{upload.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Upload.objects.count() == 1


def test_admin_slug_follows_the_api_rules(operator_client: Client, seller: Any) -> None:
    product = ProductFactory(seller=seller, slug="good-slug", title="Title")
    variant = VariantFactory(product=product)
    form = {
        "title": "Title",
        "slug": "Bad_Slug",
        "description": "",
        "status": "active",
        "variants-TOTAL_FORMS": "1",
        "variants-INITIAL_FORMS": "1",
        "variants-0-id": variant.pk,
        "variants-0-product": product.pk,
        "variants-0-name": variant.name,
        "variants-0-price": variant.price,
        "variants-0-position": "0",
    }

    response = operator_client.post(f"/admin/catalog/product/{quote(product.pk)}/change/", form)

    assert response.status_code == 200
    assert "Use lowercase letters, digits and single hyphens" in response.content.decode()
    product.refresh_from_db()
    assert product.slug == "good-slug"

    form["slug"] = "better-slug"
    assert operator_client.post(f"/admin/catalog/product/{quote(product.pk)}/change/", form).status_code == 302
    product.refresh_from_db()
    assert product.slug == "better-slug"
