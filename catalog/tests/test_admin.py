from typing import Any

import pytest
from django.contrib.admin.utils import quote
from django.contrib.admin.utils import quote as admin_quote
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
    deleted = operator_client.post(f"/admin/catalog/upload/{admin_quote(upload.pk)}/delete/", {"post": "yes"})
    assert deleted.status_code == 403
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


def test_code_admin_never_shows_a_code_or_pin_in_full(operator_client: Client, seller: Any) -> None:
    from catalog.inventory import CodeRow, codes_import
    from catalog.models import Code, DeliveryType

    product = ProductFactory(seller=seller, delivery_type=DeliveryType.CODE_POOL, delivery_content="")
    variant = VariantFactory(product=product)
    codes_import(variant=variant, rows=[CodeRow(1, "ADMIN-SECRET-CODE-7Q4Z", pin="PIN-90817263")])
    code = Code.objects.get(variant=variant)
    pages = [
        operator_client.get("/admin/catalog/code/"),
        operator_client.get("/admin/catalog/code/", {"q": "7Q4Z"}),
        operator_client.get("/admin/catalog/code/", {"q": "ADMIN-SECRET-CODE-7Q4Z"}),
        operator_client.get(f"/admin/catalog/code/{quote(code.id)}/change/"),
    ]
    for page in pages:
        assert page.status_code == 200
        html = page.content.decode()
        assert "90817263" not in html
        if page is not pages[2]:  # that page echoes the operator's own search text in its links
            assert "ADMIN-SECRET-CODE" not in html
    assert "••••7Q4Z" in pages[0].content.decode()
    assert code.id in pages[1].content.decode()  # the hint finds it
    assert code.id not in pages[2].content.decode()  # the full code is not searchable: nothing to match it against


def test_product_change_page_masks_a_partner_signing_secret(operator_client: Client, seller: Any) -> None:
    secret = "whsec_c2VjcmV0LXNpZ25pbmcta2V5LWZvci10ZXN0cw"
    product = ProductFactory(
        seller=seller,
        delivery_type="partner_api",
        delivery_content="",
        delivery_options={"partner": {"url": "https://partner.example/fulfill", "secret": secret}},
    )
    page = operator_client.get(f"/admin/catalog/product/{quote(product.pk)}/change/").content.decode()
    assert "https://partner.example/fulfill" in page
    assert secret not in page
    assert f"••••{secret[-4:]}" in page


def test_an_operator_features_a_product_for_the_front_page(operator_client: Client, client: Client) -> None:
    product = ProductFactory(title="Star Product")
    VariantFactory(product=product)
    page = operator_client.get(f"/admin/catalog/product/{admin_quote(product.pk)}/change/")
    assert page.status_code == 200 and 'name="featured"' in page.content.decode()

    response = operator_client.post(
        f"/admin/catalog/product/{admin_quote(product.pk)}/change/",
        {
            "title": product.title,
            "slug": product.slug,
            "description": product.description,
            "status": product.status,
            "featured": "on",
            "variants-TOTAL_FORMS": "0",
            "variants-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    product.refresh_from_db()
    assert product.featured is True
    featured = client.get("/").content.decode().split('data-testid="featured"')[1]
    assert "Star Product" in featured
