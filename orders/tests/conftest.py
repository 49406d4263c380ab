import pytest

from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory


@pytest.fixture
def seller(db):
    return SellerFactory(name="Ada's Shop")


@pytest.fixture
def text_product(seller):
    product = ProductFactory(
        seller=seller,
        slug="secret-text",
        title="Secret Text",
        currency="USD",
        delivery_content="The secret is OPEN-SESAME",
    )
    VariantFactory(product=product, name="Standard", price=1999)
    return product


@pytest.fixture
def seller_client(api_client, seller):
    from rest_framework_simplejwt.tokens import RefreshToken

    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(seller).access_token}")
    return api_client
