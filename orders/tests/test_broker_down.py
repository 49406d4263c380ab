"""A broker that does not take a task never fails the payment that queued it; the sweeper recovers.

(The live version, with a real Redis stopped and restarted, is tests/reliability/test_broker_outage.py;
this one runs in both passes.)"""

from datetime import timedelta
from unittest import mock

import pytest
from django.conf import settings
from django.utils import timezone
from kombu.exceptions import OperationalError

from orders.models import Order, OrderEvent
from orders.services import orders_sweep
from payments.models import SandboxPayment, WebhookEvent
from payments.sandbox_server.server import sign_event
from payments.services import payment_initiate

from .helpers import make_order

pytestmark = pytest.mark.django_db


def test_a_paid_webhook_is_acknowledged_while_the_broker_is_down(
    api_client, text_product, django_capture_on_commit_callbacks, caplog
):
    order = make_order(text_product, email="down@example.com")
    payment = payment_initiate(order=order, gateway_name="sandbox", return_url="https://shop.test/return")
    SandboxPayment.objects.filter(id=payment.id).update(status="succeeded", charge_id="sbxch_down")
    event = {
        "id": "evt_broker_down",
        "type": "payment.succeeded",
        "data": {"payment_id": payment.id, "order_id": order.id, "amount": 1999, "currency": "USD"},
    }
    body, headers = sign_event(event)
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    refused = OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    with (
        mock.patch("orders.tasks.fulfill_order.delay", side_effect=refused) as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = api_client.generic(
            "POST", "/api/v1/payments/webhooks/sandbox", body, content_type="application/json", **extra
        )

    # The payment is confirmed and acknowledged; only the task is missing, and the log says so.
    assert response.status_code == 200, response.content
    assert response.json()["data"]["status"] == "processed"
    assert delay.call_args_list == [mock.call(order.id)]
    order.refresh_from_db()
    assert order.status == "paid"
    assert WebhookEvent.objects.get(event_id="evt_broker_down").status == WebhookEvent.Status.PROCESSED
    assert f"Could not queue the fulfillment of order {order.order_number}" in caplog.text
    assert order.id not in caplog.text  # the id is the buyer's capability: never logged
    assert not OrderEvent.objects.filter(order=order, type="email_sent").exists()

    # Once the broker is back, the sweeper queues the order that waited too long.
    later = timezone.now() + timedelta(seconds=settings.SWEEP_STUCK_AFTER_SECONDS + 1)
    with mock.patch("orders.tasks.fulfill_order.delay") as delay:
        result = orders_sweep(now=later)
    assert result.requeued == [order.id]
    delay.assert_called_once_with(order.id)
    assert Order.objects.get(pk=order.id).status == "paid"


def test_a_delivery_retry_the_broker_refuses_is_a_clean_503_and_can_be_asked_again(api_client, text_product):
    from orders.services import order_mark_paid

    order = make_order(text_product, email="retry@example.com")
    with mock.patch("orders.tasks.fulfill_order.delay"):
        order_mark_paid(order_id=order.id, payment_id="pay_retry")
    api_client.force_authenticate(user=text_product.seller)
    url = f"/api/v1/orders/{order.id}/retry-delivery"
    refused = OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    with mock.patch("orders.tasks.fulfill_order.delay", side_effect=refused):
        response = api_client.post(url)
    assert response.status_code == 503
    body = response.json()
    assert body["error"]["code"] == "service_unavailable"
    assert "Try again" in body["error"]["message"]
    order.refresh_from_db()
    assert order.status == "paid"
    assert OrderEvent.objects.filter(order=order, type="delivery_retry_requested").count() == 1

    with mock.patch("orders.tasks.fulfill_order.delay") as delay:
        again = api_client.post(url)
    assert again.status_code == 202
    delay.assert_called_once_with(order.id)
