"""The demo fulfillment endpoint answers a signed request with one stable code per unit."""

import pytest

from catalog.models import Code, DeliveryType
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.core.outbound_http import OutboundResponse
from orders.fulfillment.partner import PartnerApiDelivery
from orders.services import CheckoutLine, order_create, order_fulfill, order_mark_paid

pytestmark = pytest.mark.django_db


def test_partner_delivery_through_the_demo_endpoint(seller, client, settings):
    settings.DEMO_PARTNER_ENABLED = True
    product = ProductFactory(
        seller=seller,
        delivery_type=DeliveryType.PARTNER_API,
        delivery_content="",
        delivery_options={
            "partner": {
                "url": "http://testserver/demo/partner/fulfill",
                "secret": "whsec_ZGVtby1wYXJ0bmVyLXNlY3JldC0wMTIzNDU2Nzg5",
            }
        },
    )
    variant = VariantFactory(product=product)
    order = order_create(product=product, buyer_email="g@x.co", lines=[CheckoutLine(variant.id, 2)]).order
    order_mark_paid(order_id=order.id, payment_id="pay_x")

    def post(*, url, body, headers, **kwargs):  # route the partner call to the test client, signature and all
        assert url == "http://testserver/demo/partner/fulfill"
        response = client.post(
            "/demo/partner/fulfill",
            body,
            content_type="application/json",
            **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items() if k.lower() != "content-type"},
        )
        return OutboundResponse(response.status_code, response.content)

    from unittest import mock

    with mock.patch("orders.fulfillment.partner.outbound_post", side_effect=post):
        assert order_fulfill(order_id=order.id).outcome == "delivered"
        item = order.items.get()
        codes = sorted(c.code for c in Code.objects.filter(order_item=item))
        assert len(codes) == 2 and codes[0] != codes[1] and all(c.startswith("DEMO-") for c in codes)
        again = PartnerApiDelivery()._fetch(item, 1)  # the same unit answers the same code
        assert again["code"] in codes


def test_unsigned_requests_are_refused(client, settings):
    settings.DEMO_PARTNER_ENABLED = True
    response = client.post("/demo/partner/fulfill", {"product_id": "prd_x"}, content_type="application/json")
    assert response.status_code == 401
    settings.DEMO_PARTNER_ENABLED = False
    assert client.post("/demo/partner/fulfill", {}, content_type="application/json").status_code == 404
