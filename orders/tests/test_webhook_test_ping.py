"""``POST /api/v1/webhook-endpoints/{id}/test``: a signed ``ping`` sent now, once, through the one
outbound client, answered with what the endpoint said; never retried, never counted against the
endpoint, never sent to anyone else, rate limited, and another seller's endpoint is a 404."""

from unittest import mock

import pytest
from django.core.cache import cache
from rest_framework.throttling import ScopedRateThrottle

from marketplace.accounts.tests.factories import SellerFactory
from orders.models import SellerEvent, WebhookDelivery, WebhookEndpoint
from orders.seller_events.delivery import seller_event_dispatch, webhooks_sweep

from .test_outgoing_webhooks import UNREACHABLE, Receiver, endpoint_for, resolving_to

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


def test_ping_is_signed_sent_once_and_answered(seller, seller_client, receiver):
    endpoint = endpoint_for(seller, receiver, events=["order.paid"])  # ping is sent whatever the events
    other = Receiver()
    try:
        endpoint_for(seller, other)  # another endpoint of the same seller hears nothing
        other.secret = "whsec_" + "A" * 43
        response = seller_client.post(f"/api/v1/webhook-endpoints/{endpoint.id}/test")
    finally:
        other.close()
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert (data["event_type"], data["status"], data["attempts"], data["last_status_code"]) == (
        "ping",
        "succeeded",
        1,
        200,
    )
    assert data["last_response"].startswith("answer 200")
    assert data["payload"]["data"] == {"endpoint_id": endpoint.id, "message": "A test event from the marketplace."}
    assert receiver.types == ["ping"]  # the signature was verified by the receiver
    assert receiver.requests[0]["headers"]["webhook-id"] == data["webhook_id"]
    assert other.requests == []
    # The fan-out and the sweeper never pick the ping up again.
    event = SellerEvent.objects.get(type="ping")
    assert seller_event_dispatch(event_id=event.id) == []
    assert webhooks_sweep() == {"dispatched": 0, "requeued": 0}
    assert WebhookDelivery.objects.count() == 1


def test_a_failed_ping_is_not_retried_and_does_not_count_against_the_endpoint(seller, seller_client, receiver):
    endpoint = endpoint_for(seller, receiver)
    receiver.script = [410]  # would disable the endpoint if it were a real event
    data = seller_client.post(f"/api/v1/webhook-endpoints/{endpoint.id}/test").json()["data"]
    assert (data["status"], data["last_status_code"], data["next_attempt_at"]) == ("failed", 410, None)
    assert data["last_error"] == "The endpoint answered 410."
    endpoint.refresh_from_db()
    assert (endpoint.active, endpoint.consecutive_failures) == (True, 0)
    assert len(receiver.requests) == 1


def test_a_ping_to_a_private_address_is_refused_on_the_socket(seller, seller_client, receiver, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    with resolving_to("93.184.215.14"):
        endpoint = WebhookEndpoint.objects.create(
            seller=seller, url="https://hooks.example.test/in", secret="whsec_" + "A" * 43
        )
    with resolving_to("127.0.0.1"):
        data = seller_client.post(f"/api/v1/webhook-endpoints/{endpoint.id}/test").json()["data"]
    assert (data["status"], data["last_status_code"], data["last_error"]) == ("failed", None, UNREACHABLE)
    assert receiver.requests == []


def test_a_disabled_endpoint_is_a_conflict_and_nothing_is_sent(seller, seller_client, receiver):
    endpoint = endpoint_for(seller, receiver)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=False)
    response = seller_client.post(f"/api/v1/webhook-endpoints/{endpoint.id}/test")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "endpoint_disabled"
    assert receiver.requests == [] and not SellerEvent.objects.exists()


def test_another_sellers_endpoint_is_a_404_and_nothing_is_sent(seller_client, receiver):
    endpoint = endpoint_for(SellerFactory(), receiver)
    response = seller_client.post(f"/api/v1/webhook-endpoints/{endpoint.id}/test")
    assert response.status_code == 404
    assert receiver.requests == [] and not SellerEvent.objects.exists()


def test_pings_are_rate_limited_per_endpoint(seller, seller_client, receiver):
    rates = {**ScopedRateThrottle.THROTTLE_RATES, "webhook_test": "2/minute"}
    endpoint = endpoint_for(seller, receiver)
    with mock.patch.object(ScopedRateThrottle, "THROTTLE_RATES", rates):
        codes = [seller_client.post(f"/api/v1/webhook-endpoints/{endpoint.id}/test").status_code for _ in range(3)]
        last = seller_client.post(f"/api/v1/webhook-endpoints/{endpoint.id}/test")
    assert codes == [200, 200, 429]
    assert last.json()["error"]["code"] == "rate_limited" and int(last["Retry-After"]) >= 1
    assert len(receiver.requests) == 2


def test_unknown_body_fields_are_400(seller, seller_client, receiver):
    endpoint = endpoint_for(seller, receiver)
    response = seller_client.post(f"/api/v1/webhook-endpoints/{endpoint.id}/test", {"type": "x"}, format="json")
    assert response.status_code == 400
    assert receiver.requests == []
