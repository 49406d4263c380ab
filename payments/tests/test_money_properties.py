"""Property: after any sequence of refunds, fee + earnings = revenue net of refunds, to the unit."""

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from catalog.tests.factories import ProductFactory, VariantFactory
from orders.services.refunds import order_refund_create
from orders.tests.helpers import make_order, pay

pytestmark = pytest.mark.django_db


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    price=st.integers(min_value=1, max_value=10**6),
    quantity=st.integers(min_value=1, max_value=5),
    bps=st.integers(min_value=0, max_value=3000),
    fixed=st.integers(min_value=0, max_value=500),
    cuts=st.lists(st.integers(min_value=1, max_value=10**6), max_size=4),
    currency=st.sampled_from(["USD", "JPY", "KWD"]),
)
def test_fee_plus_earnings_is_net_revenue_after_any_refunds(
    seller, settings, django_capture_on_commit_callbacks, price, quantity, bps, fixed, cuts, currency
):
    settings.PLATFORM_FEE_BPS, settings.PLATFORM_FEE_FIXED = bps, fixed
    product = ProductFactory(seller=seller, currency=currency)
    VariantFactory(product=product, price=price)
    order = pay(make_order(product, quantity=quantity), django_capture_on_commit_callbacks)
    for cut in cuts:
        left = order.total_amount - order.refunded_amount
        if left <= 0:
            break
        order_refund_create(order=order, amount=min(cut, left), user=seller)
        order.refresh_from_db()
        net = order.total_amount - order.refunded_amount
        assert order.platform_fee + order.seller_earnings == net
        assert 0 <= order.platform_fee <= net
        assert order.status == ("refunded" if net == 0 else "partially_refunded")
