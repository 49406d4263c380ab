from collections.abc import Callable
from typing import Any, cast

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from catalog.models import Product, Variant
from marketplace.accounts.models import User
from marketplace.accounts.tests.factories import SellerFactory, UserFactory
from orders.models import Order, OrderItem


def jwt_client(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.fixture(autouse=True)
def private_storage(settings: Any, tmp_path: Any) -> Any:
    """Uploads go to a throwaway folder, never into var/media."""
    settings.STORAGES = {
        **settings.STORAGES,
        "private": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }
    return tmp_path


@pytest.fixture
def seller(db: Any) -> User:
    return cast(User, SellerFactory())


@pytest.fixture
def other_seller(db: Any) -> User:
    return cast(User, SellerFactory())


@pytest.fixture
def buyer(db: Any) -> User:
    return cast(User, UserFactory())


@pytest.fixture
def seller_client(seller: User) -> APIClient:
    return jwt_client(seller)


@pytest.fixture
def other_client(other_seller: User) -> APIClient:
    return jwt_client(other_seller)


@pytest.fixture
def make_order(db: Any) -> Callable[..., Order]:
    """An order (with one item) for a product, so that the product and variant are referenced."""
    counter = iter(range(10_000_000, 99_999_999))

    def make(product: Product, variant: Variant | None = None) -> Order:
        variant = variant or product.variants.first()
        assert variant is not None
        order = Order.objects.create(
            order_number=str(next(counter)),
            seller=product.seller,
            product=product,
            buyer_email="buyer@example.com",
            currency=product.currency,
            subtotal=variant.price,
            total_amount=variant.price,
        )
        OrderItem.objects.create(
            order=order,
            product=product,
            variant=variant,
            title=product.title,
            variant_name=variant.name,
            quantity=1,
            unit_price=variant.price,
            content_type=product.delivery_type,
            delivery_content=product.delivery_content,
        )
        return order

    return make
