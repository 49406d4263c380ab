# ruff: noqa: F811 - the fixtures imported from test_library are used as test arguments
"""Issue 14: a new file uploaded to a product reaches earlier buyers. Their library, their order's
download (success page, emailed link, API resource) serve the product's latest file; an item whose
file was replaced on its own, and another product's items, are left alone."""

import pytest
from django.core.files.base import ContentFile
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from catalog.models import Upload
from orders.models import OrderItem

from .helpers import make_order, pay
from .test_library import file_product, path_of, private_storage, signin_link  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db


def seller_api(seller):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(seller).access_token}")
    return client


def upload_v2(seller, storage):
    key = storage.save("uploads/test/guide-v2.pdf", ContentFile(b"%PDF-1.4 the guide, second edition"))
    Upload.objects.create(seller=seller, key=key, filename="guide-v2.pdf", size=34, content_type="application/pdf")
    return key


def download_bytes(client, url, settings):
    response = client.get(path_of(url, settings))
    assert response.status_code == 302, response.content
    download = client.get(path_of(response["Location"], settings))
    assert download.status_code == 200
    return b"".join(download.streaming_content)


def test_an_earlier_buyer_downloads_the_new_file(
    client, file_product, private_storage, settings, django_capture_on_commit_callbacks
):
    order = pay(make_order(file_product, email="ann@example.com"), django_capture_on_commit_callbacks)
    item = order.items.get()
    client.post(path_of(signin_link(client, "ann@example.com"), settings))
    assert download_bytes(client, f"/library/items/{item.id}/download", settings) == b"%PDF-1.4 the guide"

    new_key = upload_v2(file_product.seller, private_storage)
    changed = seller_api(file_product.seller).patch(
        f"/api/v1/products/{file_product.id}", {"delivery": {"content": new_key}}, format="json"
    )
    assert changed.status_code == 200, changed.content

    second = b"%PDF-1.4 the guide, second edition"
    assert download_bytes(client, f"/library/items/{item.id}/download", settings) == second
    library = client.get("/library").content.decode()
    assert "Download guide-v2.pdf" in library
    success = client.get(f"/c/{file_product.slug}/orders/{order.id}").content.decode()
    assert "Download guide-v2.pdf" in success
    # The order's own download link (the one in the email) serves the new file as well.
    resource = client.get(f"/api/v1/orders/{order.id}/resource?item={item.id}")
    assert resource.status_code == 302
    download = client.get(path_of(resource["Location"], settings))
    assert b"".join(download.streaming_content) == second


def test_only_the_items_that_delivered_the_old_file_follow(
    file_product, private_storage, django_capture_on_commit_callbacks
):
    first = pay(make_order(file_product, email="ann@example.com"), django_capture_on_commit_callbacks).items.get()
    special = pay(make_order(file_product, email="bob@example.com"), django_capture_on_commit_callbacks).items.get()
    OrderItem.objects.filter(pk=special.pk).update(delivery_content="uploads/test/special-edition.pdf")
    new_key = upload_v2(file_product.seller, private_storage)
    answer = seller_api(file_product.seller).patch(
        f"/api/v1/products/{file_product.id}", {"delivery": {"content": new_key}}, format="json"
    )
    assert answer.status_code == 200
    first.refresh_from_db()
    special.refresh_from_db()
    assert first.delivery_content == new_key
    assert special.delivery_content == "uploads/test/special-edition.pdf"
    # A change that keeps the file (the title) moves nothing.
    seller_api(file_product.seller).patch(f"/api/v1/products/{file_product.id}", {"title": "New"}, format="json")
    first.refresh_from_db()
    assert first.delivery_content == new_key
