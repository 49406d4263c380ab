"""Fixing a failed item in one step: its content replaced and delivered at once (API
``PUT /orders/{ref}/delivery`` with ``deliver: true``, and the dashboard's "Replace and deliver")."""

import pytest
from django.core import mail

from marketplace.accounts.tests.factories import SellerFactory
from orders.models import OrderEvent
from orders.services import CheckoutLine
from orders.tasks import fulfill_order

from .helpers import buyer_mails
from .test_partner_and_multi_item import Partner, eager_retries, paid_order, partner_product  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def partner():
    server = Partner()
    yield server
    server.close()


@pytest.fixture
def failed(seller, partner, eager_retries, django_capture_on_commit_callbacks):  # noqa: F811
    product = partner_product(seller, partner.url)
    partner.script = [(400, {"error": "unknown player"})]
    order = paid_order(product, [CheckoutLine(product.variants.get().id, 1)])
    fulfill_order.apply(args=(order.id,), throw=False)
    order.refresh_from_db()
    assert (order.status, order.items.get().fulfillment_status) == ("needs_attention", "partner_failed")
    mail.outbox.clear()
    return order


def test_api_replaces_and_delivers_a_failed_item(seller_client, failed, django_capture_on_commit_callbacks):
    item = failed.items.get()
    with django_capture_on_commit_callbacks(execute=True):
        response = seller_client.put(
            f"/api/v1/orders/{failed.order_number}/delivery",
            {"item_id": item.id, "content_type": "text", "delivery_content": "CODE-BY-HAND-42", "deliver": True},
            format="json",
        )
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["status"] == "delivered"
    item.refresh_from_db()
    assert (item.fulfillment_status, item.content_type, item.last_error) == ("succeeded", "text", "")
    [email] = buyer_mails()
    assert "CODE-BY-HAND-42" in email.body
    types = list(OrderEvent.objects.filter(order=failed).values_list("type", flat=True))
    assert types.index("delivery_overridden") < types.index("delivery_retry_requested")


def test_without_deliver_the_item_waits_for_a_retry(seller_client, failed):
    item = failed.items.get()
    response = seller_client.put(
        f"/api/v1/orders/{failed.order_number}/delivery",
        {"item_id": item.id, "content_type": "text", "delivery_content": "LATER"},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["data"]["status"] == "needs_attention"
    item.refresh_from_db()
    assert item.fulfillment_status == "pending"
    assert buyer_mails() == []


def test_a_delivered_item_is_not_delivered_again(seller_client, seller, django_capture_on_commit_callbacks):
    from catalog.tests.factories import ProductFactory, VariantFactory

    from .helpers import make_order, pay

    product = ProductFactory(seller=seller, slug="txt", delivery_content="Old")
    VariantFactory(product=product, price=500)
    order = pay(make_order(product), django_capture_on_commit_callbacks)
    mail.outbox.clear()
    response = seller_client.put(
        f"/api/v1/orders/{order.order_number}/delivery",
        {"content_type": "text", "delivery_content": "New", "deliver": True},
        format="json",
    )
    assert response.status_code == 409
    assert order.items.get().delivery_content == "Old"
    assert mail.outbox == []


def test_bad_content_changes_nothing(seller_client, failed):
    item = failed.items.get()
    response = seller_client.put(
        f"/api/v1/orders/{failed.order_number}/delivery",
        {"item_id": item.id, "content_type": "link", "delivery_content": "not a url", "deliver": True},
        format="json",
    )
    assert response.status_code == 400
    item.refresh_from_db()
    assert (item.content_type, item.fulfillment_status) == ("partner_api", "partner_failed")
    assert not OrderEvent.objects.filter(order=failed, type="delivery_retry_requested").exists()


def test_dashboard_replace_and_deliver(client, seller, failed, django_capture_on_commit_callbacks):
    client.force_login(seller)
    item = failed.items.get()
    page = client.get(f"/dashboard/orders/{failed.order_number}/").content.decode()
    assert f'data-testid="replace-and-deliver-{item.id}"' in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/dashboard/orders/{failed.order_number}/delivery/",
            {"item_id": item.id, "content_type": "text", "content": "FIXED-CODE", "deliver": "1"},
            follow=True,
        )
    assert "Delivery of" in response.content.decode() and "replaced and delivered." in response.content.decode()
    failed.refresh_from_db()
    assert failed.status == "delivered"
    assert "FIXED-CODE" in buyer_mails()[0].body


def test_another_sellers_order_is_not_found(failed):
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import RefreshToken

    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(SellerFactory()).access_token}")
    response = other.put(
        f"/api/v1/orders/{failed.order_number}/delivery",
        {"content_type": "text", "delivery_content": "x", "deliver": True},
        format="json",
    )
    assert response.status_code == 404
    assert failed.items.get().content_type == "partner_api"
