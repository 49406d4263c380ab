from datetime import UTC, datetime, timedelta

import pytest

from orders.models import Order, OrderEvent
from orders.tests.helpers import make_order
from payments.models import Payment, SandboxPayment, WebhookEvent
from payments.sandbox_server.server import sign_event
from payments.services import payment_initiate

pytestmark = pytest.mark.django_db
URL = "/api/v1/payments/webhooks/sandbox"


@pytest.fixture
def opened(text_product):
    order = make_order(text_product)
    payment = payment_initiate(order=order, gateway_name="sandbox", return_url="https://shop.test/return")
    return order, payment


def event_for(payment, type_="payment.succeeded", event_id="evt_test_1", amount=None):
    return {
        "id": event_id,
        "type": type_,
        "data": {
            "payment_id": payment.id,
            "order_id": payment.order_id,
            "amount": amount or payment.amount,
            "currency": payment.currency,
        },
    }


def post(client, body, headers):
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    return client.generic("POST", URL, body, content_type="application/json", **extra)


def mark_sandbox(payment, status):
    SandboxPayment.objects.filter(id=payment.id).update(status=status, charge_id="sbxch_test")


def snapshot(order, payment):
    order.refresh_from_db()
    payment.refresh_from_db()
    return order.status, payment.status, order.paid_at, OrderEvent.objects.filter(order=order).count()


def test_valid_confirmed_webhook_marks_paid_and_delivers(api_client, opened, django_capture_on_commit_callbacks):
    order, payment = opened
    mark_sandbox(payment, "succeeded")
    body, headers = sign_event(event_for(payment))
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api_client, body, headers)
    assert response.status_code == 200
    assert response.json()["data"]["status"] == "processed"
    order.refresh_from_db()
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert payment.transaction_id == "sbxch_test"
    assert order.status == "delivered"
    assert WebhookEvent.objects.get().status == "processed"


@pytest.mark.parametrize(
    "tamper",
    ["missing", "wrong_secret", "stale", "future", "garbage_signature", "body_changed"],
)
def test_bad_signature_is_400_and_changes_nothing(api_client, opened, tamper):
    order, payment = opened
    mark_sandbox(payment, "succeeded")
    before = snapshot(order, payment)
    event = event_for(payment)
    if tamper == "wrong_secret":
        body, headers = sign_event(event, secret="whsec_" + "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA==")
    elif tamper == "stale":
        body, headers = sign_event(event, at=datetime.now(tz=UTC) - timedelta(minutes=6))
    elif tamper == "future":
        body, headers = sign_event(event, at=datetime.now(tz=UTC) + timedelta(minutes=6))
    else:
        body, headers = sign_event(event)
    if tamper == "missing":
        headers = {}
    if tamper == "garbage_signature":
        headers["webhook-signature"] = "garbage"
    if tamper == "body_changed":
        body = body.replace(b'"payment.succeeded"', b'"payment.failed"')
    response = post(api_client, body, headers)
    assert response.status_code == 400
    assert response.json()["success"] is False
    assert response.json()["error"]["code"] == "invalid_signature"
    assert WebhookEvent.objects.count() == 0
    assert snapshot(order, payment) == before


def test_repeat_event_is_stored_once_and_does_nothing_again(api_client, opened, django_capture_on_commit_callbacks):
    order, payment = opened
    mark_sandbox(payment, "succeeded")
    body, headers = sign_event(event_for(payment))
    with django_capture_on_commit_callbacks(execute=True):
        first = post(api_client, body, headers)
    after_first = snapshot(order, payment)
    with django_capture_on_commit_callbacks(execute=True):
        second = post(api_client, body, headers)
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["data"]["duplicate"] is True
    assert WebhookEvent.objects.count() == 1
    assert snapshot(order, payment) == after_first


def test_signed_claim_the_gateway_does_not_confirm_changes_nothing(api_client, opened):
    """A validly signed event says 'succeeded', but the gateway's own ledger says unpaid."""
    order, payment = opened
    before_status = (order.status, payment.status)
    body, headers = sign_event(event_for(payment))
    response = post(api_client, body, headers)
    assert response.status_code == 200
    assert response.json()["data"]["status"] == "rejected"
    order.refresh_from_db()
    payment.refresh_from_db()
    assert (order.status, payment.status) == before_status == ("pending", "pending")
    assert order.paid_at is None
    assert OrderEvent.objects.filter(order=order, type="webhook_rejected").count() == 1
    assert not OrderEvent.objects.filter(order=order, type="status_changed").exists()


def test_amount_mismatch_at_the_gateway_is_not_paid(api_client, opened):
    order, payment = opened
    SandboxPayment.objects.filter(id=payment.id).update(status="succeeded", amount=1)
    body, headers = sign_event(event_for(payment))
    response = post(api_client, body, headers)
    assert response.status_code == 200
    order.refresh_from_db()
    assert order.status == "pending"
    assert OrderEvent.objects.filter(order=order, type="payment_mismatch").count() == 1


def test_confirmed_decline_marks_order_failed(api_client, opened):
    order, payment = opened
    mark_sandbox(payment, "failed")
    body, headers = sign_event(event_for(payment, type_="payment.failed"))
    response = post(api_client, body, headers)
    assert response.status_code == 200
    order.refresh_from_db()
    payment.refresh_from_db()
    assert (order.status, payment.status) == ("failed", "failed")


def test_event_for_a_payment_not_known_yet_is_kept_and_retried(api_client, opened, django_capture_on_commit_callbacks):
    order, payment = opened
    mark_sandbox(payment, "succeeded")
    event = event_for(payment)
    real_id = payment.id
    event["data"]["payment_id"] = "pay_notyetcommitted"
    body, headers = sign_event(event)
    response = post(api_client, body, headers)
    assert response.status_code == 503  # the gateway will send it again
    stored = WebhookEvent.objects.get()
    assert (stored.status, stored.payment_ref) == ("failed", "pay_notyetcommitted")
    order.refresh_from_db()
    assert order.status == "pending"
    # The payment appears (its transaction commits); the gateway's retry is processed, not dropped.
    Payment.objects.filter(pk=real_id).update(transaction_id="pay_notyetcommitted")
    with django_capture_on_commit_callbacks(execute=True):
        again = post(api_client, body, headers)
    assert again.status_code == 200
    assert WebhookEvent.objects.count() == 1
    order.refresh_from_db()
    assert order.status == "delivered"


def test_unknown_gateway_is_404(api_client):
    response = api_client.post("/api/v1/payments/webhooks/paypal", {}, format="json")
    assert response.status_code == 404
    assert WebhookEvent.objects.count() == 0


class TestSandboxPages:
    def test_decline_through_the_hosted_page(self, client, opened, django_capture_on_commit_callbacks):
        order, payment = opened
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(f"/sandbox/pay/{payment.id}", {"outcome": "failed"})
        assert response.status_code == 302
        order.refresh_from_db()
        assert order.status == "failed"
        assert Payment.objects.get(pk=payment.pk).status == "failed"

    def test_double_submit_pays_once(self, client, opened, django_capture_on_commit_callbacks):
        order, payment = opened
        with django_capture_on_commit_callbacks(execute=True):
            client.post(f"/sandbox/pay/{payment.id}", {"outcome": "succeeded"})
            client.post(f"/sandbox/pay/{payment.id}", {"outcome": "failed"})
        order.refresh_from_db()
        assert order.status == "delivered"
        assert WebhookEvent.objects.count() == 1
        assert OrderEvent.objects.filter(order=order, type="email_sent").count() == 1

    def test_bad_outcome_is_400(self, client, opened):
        order, payment = opened
        response = client.post(f"/sandbox/pay/{payment.id}", {"outcome": "maybe"})
        assert response.status_code == 400
        assert SandboxPayment.objects.get(id=payment.id).status == "requires_payment"

    def test_status_api_requires_the_secret(self, client, opened, settings):
        order, payment = opened
        assert client.get(f"/sandbox/api/payments/{payment.id}").status_code == 401
        response = client.get(
            f"/sandbox/api/payments/{payment.id}", HTTP_AUTHORIZATION=f"Bearer {settings.SANDBOX_WEBHOOK_SECRET}"
        )
        assert response.status_code == 200
        assert response.json()["data"]["status"] == "requires_payment"
        assert response.json()["data"]["amount"] == payment.amount


def test_initiate_after_failure_reopens_the_order(api_client, opened):
    order, payment = opened
    mark_sandbox(payment, "failed")
    from payments.services import payment_apply_gateway_status

    payment_apply_gateway_status(payment=payment, source="test")
    order.refresh_from_db()
    assert order.status == "failed"
    response = api_client.post(f"/api/v1/payments/initiate/{order.id}", {"payment_method": "sandbox"}, format="json")
    assert response.status_code == 201
    new_payment = response.json()["data"]
    assert new_payment["id"] != payment.id
    assert "/sandbox/pay/" in new_payment["redirect_url"]
    order.refresh_from_db()
    assert order.status == "pending"
    assert Order.objects.get(pk=order.pk).payments.count() == 2


def test_initiate_on_a_paid_order_is_409(api_client, opened, django_capture_on_commit_callbacks):
    from orders.tests.helpers import pay

    order, _ = opened
    order = make_order(order.product, email="x@y.co")
    pay(order, django_capture_on_commit_callbacks)
    count = Payment.objects.filter(order=order).count()
    response = api_client.post(f"/api/v1/payments/initiate/{order.id}", {}, format="json")
    assert response.status_code == 409
    assert Payment.objects.filter(order=order).count() == count
