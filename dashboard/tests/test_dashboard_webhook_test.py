"""The "Send test event" button on an endpoint's page: a signed ping, its answer shown."""

import pytest
from django.core.cache import cache

from marketplace.accounts.tests.factories import SellerFactory
from orders.models import SellerEvent, WebhookDelivery
from orders.seller_events import endpoints as seller_endpoints
from orders.tests.test_outgoing_webhooks import Receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    cache.clear()
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def me():
    return SellerFactory(name="Ada's Shop", email="ada@example.com")


def test_send_test_event_shows_the_answer_and_logs_the_ping(client, me, receiver):
    endpoint = seller_endpoints.webhook_endpoint_create(seller=me, url=receiver.url)
    receiver.secret = endpoint.secret
    client.force_login(me)
    page = client.get(f"/dashboard/settings/webhooks/{endpoint.id}/").content.decode()
    assert 'id="test-endpoint"' in page
    response = client.post(f"/dashboard/settings/webhooks/{endpoint.id}/test/", follow=True)
    html = response.content.decode()
    assert "Test event sent: your endpoint answered HTTP 200." in html
    assert receiver.types == ["ping"]
    assert WebhookDelivery.objects.get().event.type == "ping"
    assert "<td>ping</td>" in html  # in the delivery log


def test_a_refused_ping_says_why(client, me, receiver):
    endpoint = seller_endpoints.webhook_endpoint_create(seller=me, url=receiver.url)
    receiver.secret = endpoint.secret
    receiver.script = [500]
    client.force_login(me)
    html = client.post(f"/dashboard/settings/webhooks/{endpoint.id}/test/", follow=True).content.decode()
    assert "Test event not accepted: The endpoint answered 500." in html


def test_another_sellers_endpoint_is_not_found(client, me, receiver):
    endpoint = seller_endpoints.webhook_endpoint_create(seller=SellerFactory(), url=receiver.url)
    client.force_login(me)
    assert client.post(f"/dashboard/settings/webhooks/{endpoint.id}/test/").status_code == 404
    assert receiver.requests == [] and not SellerEvent.objects.exists()
