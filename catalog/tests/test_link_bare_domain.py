"""A link delivery typed as a bare domain gets https:// added; anything else that is not https stays refused."""

import pytest
from rest_framework.test import APIClient

from catalog.models import Product

from .test_products_api import PRODUCTS, create_body

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "typed,stored",
    [
        ("example.com/course", "https://example.com/course"),
        ("  www.example.com  ", "https://www.example.com"),
        ("https://example.com/x", "https://example.com/x"),
    ],
)
def test_a_bare_domain_becomes_https(seller_client: APIClient, typed: str, stored: str) -> None:
    response = seller_client.post(
        PRODUCTS, create_body(delivery={"content_type": "link", "content": typed}), format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["data"]["delivery"]["content"] == stored


@pytest.mark.parametrize("typed", ["http://example.com", "javascript:alert(1)", "not a domain", "ftp://example.com"])
def test_what_is_not_a_web_address_is_still_refused(seller_client: APIClient, typed: str) -> None:
    response = seller_client.post(
        PRODUCTS, create_body(delivery={"content_type": "link", "content": typed}), format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["delivery.content"] == ["Must be a valid https:// URL."]
    assert not Product.objects.exists()
