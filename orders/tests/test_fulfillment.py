from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail
from django.utils import timezone

from orders.fulfillment import TransientDeliveryError
from orders.fulfillment.text import TextDelivery
from orders.models import Order, OrderEvent
from orders.services import order_fulfill, order_mark_paid, orders_sweep
from orders.tasks import backoff_seconds, fulfill_order
from payments.models import SandboxPayment
from payments.services import payment_initiate

from .helpers import buyer_mails, make_order, pay

pytestmark = pytest.mark.django_db


def paid_without_delivery(product, **kwargs):
    """A paid order whose fulfillment task was lost (never ran)."""
    order = make_order(product, **kwargs)
    with mock.patch("orders.tasks.fulfill_order.delay"):
        order_mark_paid(order_id=order.id, payment_id="pay_test")
    order.refresh_from_db()
    assert order.status == "paid"
    return order


def test_paid_order_is_delivered_with_one_email(text_product, django_capture_on_commit_callbacks):
    order = pay(make_order(text_product, quantity=2), django_capture_on_commit_callbacks)
    assert order.status == "delivered"
    assert order.delivered_at is not None
    assert order.dispatched_email is True
    assert len(buyer_mails()) == 1
    email = buyer_mails()[0]
    assert email.to == ["buyer@example.com"]
    assert order.order_number in email.subject
    assert "The secret is OPEN-SESAME" in email.body
    item = order.items.get()
    assert (item.fulfillment_status, item.attempts) == ("succeeded", 1)
    transitions = list(
        OrderEvent.objects.filter(order=order, type="status_changed").values_list("from_status", "to_status")
    )
    assert transitions == [("pending", "paid"), ("paid", "delivered")]


def test_running_fulfillment_twice_delivers_once(text_product, django_capture_on_commit_callbacks):
    order = pay(make_order(text_product), django_capture_on_commit_callbacks)
    events = OrderEvent.objects.filter(order=order).count()
    assert fulfill_order.apply(args=[order.id]).get() == "skipped"
    assert order_fulfill(order_id=order.id).outcome == "skipped"
    assert len(buyer_mails()) == 1
    assert OrderEvent.objects.filter(order=order).count() == events
    assert order.items.get().attempts == 1


def test_lost_task_then_two_runs_deliver_once(text_product):
    order = paid_without_delivery(text_product)
    assert order_fulfill(order_id=order.id).outcome == "delivered"
    assert order_fulfill(order_id=order.id).outcome == "skipped"
    assert len(buyer_mails()) == 1
    assert OrderEvent.objects.filter(order=order, type="email_sent").count() == 1


@pytest.fixture
def eager_retries():
    """Eager Celery re-runs a retried task in place only when it does not propagate errors."""
    conf = fulfill_order.app.conf
    previous = conf.task_eager_propagates
    conf.task_eager_propagates = False
    yield
    conf.task_eager_propagates = previous


def test_transient_failure_retries_then_needs_attention(text_product, settings, eager_retries):
    settings.FULFILMENT_MAX_RETRIES = 2
    order = paid_without_delivery(text_product)
    with (
        mock.patch.object(TextDelivery, "fulfill", side_effect=TransientDeliveryError("partner timeout")) as fulfill,
        mock.patch("orders.tasks.backoff_seconds", return_value=0),
    ):
        fulfill_order.apply(args=[order.id], throw=False)
    assert fulfill.call_count == 3  # the first try and two retries
    order.refresh_from_db()
    assert order.status == "needs_attention"
    assert "partner timeout" in order.status_message
    assert order.dispatched_email is False
    # No delivery email to the buyer; one notice to the seller.
    assert [m.to for m in mail.outbox] == [[text_product.seller.email]]
    assert "needs attention" in mail.outbox[0].subject
    item = order.items.get()
    assert (item.fulfillment_status, item.attempts) == ("dispatch_failed", 3)
    assert OrderEvent.objects.filter(order=order, type="attention_notified").count() == 1


def test_transient_failure_that_recovers_delivers(text_product, eager_retries):
    order = paid_without_delivery(text_product)
    calls = {"n": 0}

    def flaky(self, item):
        calls["n"] += 1
        if calls["n"] == 1:
            raise TransientDeliveryError("blip")

    with mock.patch.object(TextDelivery, "fulfill", flaky), mock.patch("orders.tasks.backoff_seconds", return_value=0):
        fulfill_order.apply(args=[order.id], throw=False)
    order.refresh_from_db()
    assert order.status == "delivered"
    assert len(mail.outbox) == 1


def test_email_failure_is_retried_and_not_sent_twice(text_product):
    order = paid_without_delivery(text_product)
    with (
        mock.patch("django.core.mail.EmailMultiAlternatives.send", side_effect=OSError("smtp down")),
        pytest.raises(TransientDeliveryError),
    ):
        order_fulfill(order_id=order.id)
    order.refresh_from_db()
    assert (order.status, order.dispatched_email) == ("paid", False)
    assert OrderEvent.objects.filter(order=order, type="email_failed").count() == 1
    attempts = order.items.get().attempts
    assert order_fulfill(order_id=order.id).outcome == "delivered"
    assert len(mail.outbox) == 1
    assert order.items.get().attempts == attempts  # the email was retried, not the fulfillment


def test_backoff_grows_and_is_capped():
    with mock.patch("orders.tasks.random.random", return_value=0.5):
        assert [backoff_seconds(n) for n in range(4)] == [5.0, 10.0, 20.0, 40.0]
        assert backoff_seconds(30) == 600.0


class TestSweeper:
    def test_requeues_paid_orders_a_lost_task_left(self, text_product, settings):
        order = paid_without_delivery(text_product)
        Order.objects.filter(pk=order.pk).update(updated_at=timezone.now() - timedelta(minutes=10))
        result = orders_sweep()
        assert result.requeued == [order.id]
        order.refresh_from_db()
        assert order.status == "delivered"
        assert len(mail.outbox) == 1

    def test_leaves_recent_paid_orders_alone(self, text_product):
        order = paid_without_delivery(text_product)
        assert orders_sweep().requeued == []
        order.refresh_from_db()
        assert order.status == "paid"

    def test_cancels_expired_unpaid_orders(self, text_product):
        order = make_order(text_product)
        payment_initiate(order=order, gateway_name="sandbox", return_url="https://shop.test/r")
        fresh = make_order(text_product, email="fresh@example.com")
        Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
        result = orders_sweep()
        assert result.cancelled == [order.id]
        order.refresh_from_db()
        fresh.refresh_from_db()
        assert order.status == "cancelled"
        assert fresh.status == "pending"
        assert OrderEvent.objects.filter(order=order, to_status="cancelled").get().message == "Expired before payment."

    def test_recovers_a_payment_whose_webhook_was_lost(self, text_product, django_capture_on_commit_callbacks):
        order = make_order(text_product)
        payment = payment_initiate(order=order, gateway_name="sandbox", return_url="https://shop.test/r")
        SandboxPayment.objects.filter(id=payment.id).update(status="succeeded", charge_id="sbxch_1")
        Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
        with django_capture_on_commit_callbacks(execute=True):
            result = orders_sweep()
        assert result.paid == [order.id]
        assert result.cancelled == []
        order.refresh_from_db()
        assert order.status == "delivered"
