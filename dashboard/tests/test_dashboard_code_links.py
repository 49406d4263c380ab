"""A delivered code on the codes page links to the order that delivered it."""

import pytest

from catalog.inventory import CodeRow, codes_import
from catalog.models import Code, DeliveryType
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory
from orders.tests.helpers import make_order, pay

pytestmark = pytest.mark.django_db


def test_a_delivered_code_links_to_its_order(client, django_capture_on_commit_callbacks, django_assert_max_num_queries):
    seller = SellerFactory()
    product = ProductFactory(seller=seller, delivery_type=DeliveryType.CODE_POOL, delivery_content="")
    variant = VariantFactory(product=product, price=500)
    codes_import(variant=variant, rows=[CodeRow(n, f"GIFT-{n:04d}-ABCD") for n in range(1, 4)])
    order = pay(make_order(product), django_capture_on_commit_callbacks)
    delivered = Code.objects.get(status="DELIVERED")
    client.force_login(seller)
    with django_assert_max_num_queries(12):
        html = client.get(f"/dashboard/products/{product.id}/variants/{variant.id}/codes/").content.decode()
    link = f'<a href="/dashboard/orders/{order.order_number}/" data-testid="code-order-{delivered.id}">'
    assert link in html
    assert html.count('data-testid="code-order-') == 1  # available codes link nowhere
    assert "GIFT-0001-ABCD" not in html  # still hints only
