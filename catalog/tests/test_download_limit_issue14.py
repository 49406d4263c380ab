"""Issue 14: ``download_limit`` (per buyer, null = unlimited) can be set through the API, the
dashboard's product form and the admin, and bad input is a 400 in the envelope that changes nothing."""

from typing import Any

import pytest
from django.contrib.admin.utils import quote as admin_quote

from catalog.models import Product
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import UserFactory

from .conftest import jwt_client
from .test_products_api import PRODUCTS, create_body

pytestmark = pytest.mark.django_db


def test_the_api_creates_reads_and_changes_the_download_limit(seller: Any) -> None:
    client = jwt_client(seller)
    created = client.post(PRODUCTS, create_body(download_limit=3), format="json")
    assert created.status_code == 201, created.content
    data = created.json()["data"]
    assert data["download_limit"] == 3
    assert Product.objects.get(pk=data["id"]).download_limit == 3
    changed = client.patch(f"{PRODUCTS}/{data['id']}", {"download_limit": None}, format="json")
    assert changed.status_code == 200 and changed.json()["data"]["download_limit"] is None
    assert Product.objects.get(pk=data["id"]).download_limit is None
    assert client.get(f"{PRODUCTS}/{data['id']}").json()["data"]["download_limit"] is None
    unset = client.post(PRODUCTS, create_body(), format="json").json()["data"]
    assert unset["download_limit"] is None


@pytest.mark.parametrize("bad", [0, -1, "3", 2.5, True, 2**31, {"n": 1}])
def test_a_bad_download_limit_is_400_and_changes_nothing(seller: Any, bad: Any) -> None:
    client = jwt_client(seller)
    refused = client.post(PRODUCTS, create_body(download_limit=bad), format="json")
    assert refused.status_code == 400, refused.content
    body = refused.json()
    assert body["success"] is False and body["error"]["code"] == "validation_error"
    assert list(body["error"]["fields"]) == ["download_limit"]
    assert not Product.objects.exists()
    product = client.post(PRODUCTS, create_body(download_limit=5), format="json").json()["data"]
    patched = client.patch(f"{PRODUCTS}/{product['id']}", {"download_limit": bad}, format="json")
    assert patched.status_code == 400 and list(patched.json()["error"]["fields"]) == ["download_limit"]
    assert Product.objects.get(pk=product["id"]).download_limit == 5


def _form(**overrides: Any) -> dict[str, Any]:
    from dashboard.tests.test_dashboard_catalog import form_data

    return form_data(**overrides)


def test_the_dashboard_form_sets_and_clears_the_download_limit(client: Any, seller: Any) -> None:
    client.force_login(seller)
    page = client.get("/dashboard/products/new/").content.decode()
    assert 'name="download_limit"' in page
    response = client.post("/dashboard/products/new/", _form(download_limit="4"))
    assert response.status_code == 302, response.content.decode()[:2000]
    product = Product.objects.get()
    assert product.download_limit == 4
    edit = client.get(f"/dashboard/products/{product.id}/edit/").content.decode()
    assert 'name="download_limit"' in edit and 'value="4"' in edit
    bad = client.post(f"/dashboard/products/{product.id}/edit/", _form(download_limit="0"))
    assert bad.status_code == 400 or 'data-testid="error-download_limit"' in bad.content.decode()
    assert 'data-testid="error-download_limit"' in bad.content.decode()
    product.refresh_from_db()
    assert product.download_limit == 4
    cleared = client.post(f"/dashboard/products/{product.id}/edit/", _form(download_limit=""))
    assert cleared.status_code == 302
    product.refresh_from_db()
    assert product.download_limit is None


def test_the_admin_sets_the_download_limit(client: Any, seller: Any) -> None:
    product = ProductFactory(seller=seller, slug="a-file", title="A file")
    VariantFactory(product=product, price=900)
    client.force_login(UserFactory(email="ops@example.com", is_staff=True, is_superuser=True))
    url = f"/admin/catalog/product/{admin_quote(product.pk)}/change/"
    page = client.get(url).content.decode()
    assert 'name="download_limit"' in page
    form = {
        "title": product.title,
        "slug": product.slug,
        "description": product.description,
        "status": product.status,
        "download_limit": "0",
        "variants-TOTAL_FORMS": "1",
        "variants-INITIAL_FORMS": "1",
        "variants-MIN_NUM_FORMS": "0",
        "variants-MAX_NUM_FORMS": "1000",
        "variants-0-id": product.variants.get().id,
        "variants-0-product": product.pk,
        "variants-0-name": product.variants.get().name,
        "variants-0-price": "900",
        "variants-0-stock": "",
        "variants-0-position": "0",
    }
    refused = client.post(url, form)
    assert refused.status_code == 200  # the form again, with the error
    product.refresh_from_db()
    assert product.download_limit is None
    saved = client.post(url, {**form, "download_limit": "7"})
    assert saved.status_code == 302, saved.content.decode()[:3000]
    product.refresh_from_db()
    assert product.download_limit == 7
