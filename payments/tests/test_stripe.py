"""The Stripe gateway against a local fake of Stripe's HTTP API: checkout, signed webhooks with
re-verification, replayed and reordered events, refunds, errors, and enabling by settings."""

import socket
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.urls import reverse

from orders.models import Order, OrderEvent
from orders.tests.helpers import make_order
from payments.gateways import get_gateway
from payments.gateways.base import GatewayRefund, InvalidSignature
from payments.gateways.stripe import StripeGateway
from payments.models import Payment, WebhookEvent
from payments.services import payment_initiate

from .fake_stripe import FakeStripe, fake_stripe, sign_webhook  # noqa: F401

pytestmark = pytest.mark.django_db
WEBHOOK_URL = "/api/v1/payments/webhooks/stripe"
SECRET = "whsec_test_c3RyaXBlLXdlYmhvb2stc2VjcmV0LWZvci10ZXN0cw"
RETURN_URL = "https://shop.test/return"


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch):
    """Any attempt to resolve a host other than this machine fails the test."""
    resolve = socket.getaddrinfo

    def local_only(host, *args, **kwargs):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise AssertionError(f"A test tried to reach {host}.")
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", local_only)


@pytest.fixture(autouse=True)
def _no_retry_sleep(monkeypatch):
    from stripe._http_client import HTTPClient

    monkeypatch.setattr(HTTPClient, "_sleep_time_seconds", lambda self, num_retries: 0)


@pytest.fixture
def stripe_on(settings, fake_stripe):  # noqa: F811
    settings.ENABLED_PAYMENT_GATEWAYS = ["sandbox", "stripe"]
    settings.STRIPE_SECRET_KEY = fake_stripe.api_key
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    settings.STRIPE_API_BASE = fake_stripe.url
    return fake_stripe


@pytest.fixture
def opened(stripe_on, text_product):
    order = make_order(text_product)
    payment = payment_initiate(order=order, gateway_name="stripe", return_url=RETURN_URL)
    return order, payment, stripe_on


def post(client, body, headers):
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    return client.generic("POST", WEBHOOK_URL, body, content_type="application/json", **extra)


def send(client, fake, type_, session_id, capture, *, event_id=None):
    body, headers = sign_webhook(fake.session_event(type_, session_id, event_id=event_id), SECRET)
    with capture(execute=True):
        return post(client, body, headers)


def snapshot(order, payment):
    order.refresh_from_db()
    payment.refresh_from_db()
    return (
        order.status,
        order.paid_at,
        payment.status,
        payment.transaction_id,
        OrderEvent.objects.filter(order=order).count(),
    )


# --- Opening a payment ---------------------------------------------------------------------------


def test_checkout_with_stripe_opens_a_session_with_the_order_items(api_client, stripe_on, text_product):
    before = int(time.time())
    response = api_client.post(
        f"/api/v1/public/checkout/{text_product.slug}/pay",
        {"buyer_email": "buyer@example.com", "payment_method": "stripe", "quantity": 2},
        format="json",
    )
    assert response.status_code == 201, response.json()
    order = Order.objects.get()
    payment = Payment.objects.get()
    session = stripe_on.only_session()
    body = response.json()["data"]
    assert body["payment"]["redirect_url"] == session["url"] == f"{stripe_on.url}/c/pay/{session['id']}"
    assert body["payment"]["gateway"] == "stripe"
    assert body["payment"]["transaction_id"] == session["id"]
    assert session["id"].startswith("cs_test_")
    assert (payment.gateway, payment.status, payment.amount, payment.currency) == ("stripe", "pending", 3998, "USD")
    assert payment.transaction_id == session["id"]
    assert payment.redirect_url == session["url"]

    [request] = stripe_on.requests_to("POST", "/v1/checkout/sessions")
    assert request.headers["idempotency-key"] == payment.id
    assert request.headers["authorization"] == f"Bearer {stripe_on.api_key}"
    params = request.params
    expires_at = int(params.pop("expires_at"))
    assert params == {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {
                    "currency": "usd",
                    "unit_amount": "1999",
                    "product_data": {"name": "Secret Text — Standard"},
                },
                "quantity": "2",
            }
        ],
        "customer_email": "buyer@example.com",
        "success_url": settings.SITE_URL + reverse("checkout:success", args=[text_product.slug, order.id]),
        "cancel_url": settings.SITE_URL + reverse("checkout:page", args=[text_product.slug]),
        "client_reference_id": payment.id,
        "metadata": {"order_id": order.id, "payment_id": payment.id},
        "payment_intent_data": {"metadata": {"order_id": order.id, "payment_id": payment.id}},
    }
    # The order expires in 30 minutes; Stripe needs at least 30, so the session closes just after.
    assert before + 30 * 60 < expires_at <= int(time.time()) + 31 * 60
    assert session["amount_total"] == 3998
    assert session["currency"] == "usd"


def test_a_long_order_expiry_becomes_the_session_expiry(stripe_on, text_product):
    order = make_order(text_product)
    expires = order.created_at.replace(microsecond=0) + timedelta(hours=2)
    Order.objects.filter(pk=order.pk).update(expires_at=expires)
    order.refresh_from_db()
    payment_initiate(order=order, gateway_name="stripe", return_url=RETURN_URL)
    [request] = stripe_on.requests_to("POST", "/v1/checkout/sessions")
    assert int(request.params["expires_at"]) == int(expires.timestamp())


def test_a_discounted_order_is_charged_as_one_line_of_its_total(stripe_on, text_product):
    order = make_order(text_product, quantity=2)
    Order.objects.filter(pk=order.pk).update(discount_amount=998, total_amount=3000)
    order.refresh_from_db()
    payment = payment_initiate(order=order, gateway_name="stripe", return_url=RETURN_URL)
    [request] = stripe_on.requests_to("POST", "/v1/checkout/sessions")
    assert request.params["line_items"] == [
        {
            "price_data": {
                "currency": "usd",
                "unit_amount": "3000",
                "product_data": {
                    "name": f"Order #{order.order_number}",
                    "description": "2 × Secret Text — Standard",
                },
            },
            "quantity": "1",
        }
    ]
    assert stripe_on.only_session()["amount_total"] == payment.amount == 3000


def test_a_double_submit_reuses_the_open_session(stripe_on, text_product):
    order = make_order(text_product)
    first = payment_initiate(order=order, gateway_name="stripe", return_url=RETURN_URL)
    second = payment_initiate(order=order, gateway_name="stripe", return_url=RETURN_URL)
    assert first.id == second.id
    assert len(stripe_on.sessions) == 1
    assert len(stripe_on.requests_to("POST", "/v1/checkout/sessions")) == 1


def test_a_5xx_is_retried_with_the_same_idempotency_key(stripe_on, text_product):
    stripe_on.fail_next(500)
    order = make_order(text_product)
    payment = payment_initiate(order=order, gateway_name="stripe", return_url=RETURN_URL)
    requests = stripe_on.requests_to("POST", "/v1/checkout/sessions")
    assert [r.headers["idempotency-key"] for r in requests] == [payment.id, payment.id]
    assert payment.transaction_id == stripe_on.only_session()["id"]


def test_stripe_down_is_503_and_opens_no_payment(api_client, stripe_on, text_product):
    stripe_on.fail_next(500, times=3)  # the first try and both retries
    response = api_client.post(
        f"/api/v1/public/checkout/{text_product.slug}/pay",
        {"buyer_email": "buyer@example.com", "payment_method": "stripe"},
        format="json",
    )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"
    assert list(Payment.objects.values_list("status", "redirect_url")) == [("failed", "")]  # kept as a record
    assert stripe_on.sessions == {}
    assert len(stripe_on.requests_to("POST", "/v1/checkout/sessions")) == 3


def test_stripe_refusing_the_session_is_a_clear_error(api_client, stripe_on, text_product):
    stripe_on.fail_next(
        400,
        error={
            "type": "invalid_request_error",
            "code": "amount_too_small",
            "message": "The Checkout Session's total amount due must add up to at least $0.50 usd",
        },
    )
    response = api_client.post(
        f"/api/v1/public/checkout/{text_product.slug}/pay",
        {"buyer_email": "buyer@example.com", "payment_method": "stripe"},
        format="json",
    )
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "gateway_error"
    assert error["message"] == (
        "Stripe refused to open a Checkout Session: "
        "The Checkout Session's total amount due must add up to at least $0.50 usd"
    )
    assert list(Payment.objects.values_list("status", "redirect_url")) == [("failed", "")]  # kept as a record
    assert len(stripe_on.requests_to("POST", "/v1/checkout/sessions")) == 1  # a 400 is never retried


def test_disabled_stripe_is_400_on_payment_method_and_creates_nothing(api_client, settings, fake_stripe, text_product):  # noqa: F811
    settings.ENABLED_PAYMENT_GATEWAYS = ["sandbox"]
    settings.STRIPE_SECRET_KEY = fake_stripe.api_key
    settings.STRIPE_API_BASE = fake_stripe.url
    response = api_client.post(
        f"/api/v1/public/checkout/{text_product.slug}/pay",
        {"buyer_email": "buyer@example.com", "payment_method": "stripe"},
        format="json",
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["fields"] == {"payment_method": ["Must be one of: sandbox."]}
    assert Order.objects.count() == 0
    assert Payment.objects.count() == 0
    assert fake_stripe.requests == []


def test_disabled_stripe_takes_no_webhooks(api_client, settings):
    settings.ENABLED_PAYMENT_GATEWAYS = ["sandbox"]
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    body, headers = sign_webhook({"id": "evt_1", "object": "event", "type": "ping", "data": {"object": {}}}, SECRET)
    response = post(api_client, body, headers)
    assert response.status_code == 404
    assert WebhookEvent.objects.count() == 0


def test_stripe_is_enabled_by_its_settings(settings):
    settings.ENABLED_PAYMENT_GATEWAYS = ["sandbox", "stripe"]
    assert isinstance(get_gateway("stripe"), StripeGateway)


# --- Webhooks ------------------------------------------------------------------------------------


def test_signed_completed_webhook_is_reverified_then_paid_and_delivered(
    api_client, opened, django_capture_on_commit_callbacks
):
    order, payment, fake = opened
    session = fake.mark_paid(payment.transaction_id)
    response = send(api_client, fake, "checkout.session.completed", session["id"], django_capture_on_commit_callbacks)
    assert response.status_code == 200
    assert response.json()["data"]["status"] == "processed"
    assert response.json()["data"]["duplicate"] is False
    [check] = fake.requests_to("GET", f"/v1/checkout/sessions/{session['id']}")
    assert check.params == {"expand": ["payment_intent"]}
    order.refresh_from_db()
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert payment.transaction_id == session["payment_intent"]
    assert payment.transaction_id.startswith("pi_test_")
    assert order.status == "delivered"
    event = WebhookEvent.objects.get()
    assert (event.gateway, event.type, event.status, event.payment_id) == (
        "stripe",
        "checkout.session.completed",
        "processed",
        payment.id,
    )


def test_a_completed_event_for_an_unpaid_session_changes_nothing(
    api_client, opened, django_capture_on_commit_callbacks
):
    order, payment, fake = opened
    before = snapshot(order, payment)
    # The event claims the session was paid; Stripe itself says it is not.
    event = fake.session_event("checkout.session.completed", payment.transaction_id)
    event["data"]["object"].update(status="complete", payment_status="paid")
    body, headers = sign_webhook(event, SECRET)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api_client, body, headers)
    assert response.status_code == 200
    assert snapshot(order, payment) == before
    assert before[0] == "pending"
    assert len(fake.requests_to("GET", f"/v1/checkout/sessions/{payment.transaction_id}")) == 1
    assert WebhookEvent.objects.count() == 1


def test_an_async_success_that_stripe_does_not_confirm_is_rejected(
    api_client, opened, django_capture_on_commit_callbacks
):
    order, payment, fake = opened
    fake.mark_processing(payment.transaction_id)
    before = snapshot(order, payment)
    response = send(
        api_client,
        fake,
        "checkout.session.async_payment_succeeded",
        payment.transaction_id,
        django_capture_on_commit_callbacks,
    )
    assert response.status_code == 200
    assert response.json()["data"]["status"] == "rejected"
    status, paid_at, payment_status, transaction_id, events = snapshot(order, payment)
    assert (status, paid_at, payment_status, transaction_id) == before[:4]
    assert events == before[4] + 1
    assert OrderEvent.objects.filter(order=order).latest("created_at").type == "webhook_rejected"


def test_a_delayed_payment_that_succeeds_later_is_paid(api_client, opened, django_capture_on_commit_callbacks):
    order, payment, fake = opened
    fake.mark_processing(payment.transaction_id)
    send(api_client, fake, "checkout.session.completed", payment.transaction_id, django_capture_on_commit_callbacks)
    order.refresh_from_db()
    assert order.status == "pending"
    session = fake.mark_paid(payment.transaction_id)
    response = send(
        api_client, fake, "checkout.session.async_payment_succeeded", session["id"], django_capture_on_commit_callbacks
    )
    assert response.json()["data"]["status"] == "processed"
    order.refresh_from_db()
    payment.refresh_from_db()
    assert (order.status, payment.status, payment.transaction_id) == (
        "delivered",
        "succeeded",
        session["payment_intent"],
    )


def test_async_payment_failed_fails_the_order(api_client, opened, django_capture_on_commit_callbacks):
    order, payment, fake = opened
    session = fake.mark_async_failed(payment.transaction_id)
    response = send(
        api_client, fake, "checkout.session.async_payment_failed", session["id"], django_capture_on_commit_callbacks
    )
    assert response.status_code == 200
    assert response.json()["data"]["status"] == "processed"
    order.refresh_from_db()
    payment.refresh_from_db()
    assert (order.status, payment.status) == ("failed", "failed")
    assert payment.failure_reason == "Declined at the gateway."


def test_an_expired_session_fails_the_order(api_client, opened, django_capture_on_commit_callbacks):
    order, payment, fake = opened
    fake.mark_expired(payment.transaction_id)
    send(api_client, fake, "checkout.session.expired", payment.transaction_id, django_capture_on_commit_callbacks)
    order.refresh_from_db()
    payment.refresh_from_db()
    assert (order.status, payment.status) == ("failed", "failed")


@pytest.mark.parametrize(
    "tamper", ["missing", "wrong_secret", "stale", "future", "body_changed", "garbage_header", "v0_only"]
)
def test_a_bad_signature_is_400_and_changes_nothing(api_client, opened, tamper):
    order, payment, fake = opened
    fake.mark_paid(payment.transaction_id)
    before = snapshot(order, payment)
    event = fake.session_event("checkout.session.completed", payment.transaction_id)
    body, headers = sign_webhook(event, SECRET)
    if tamper == "missing":
        headers = {}
    elif tamper == "wrong_secret":
        body, headers = sign_webhook(event, "whsec_test_someone-elses-secret")
    elif tamper == "stale":
        body, headers = sign_webhook(event, SECRET, timestamp=int(time.time()) - 301)
    elif tamper == "future":
        body, headers = sign_webhook(event, SECRET, timestamp=int(time.time()) + 301)
    elif tamper == "body_changed":
        body = body.replace(b'"paid"', b'"unpaid"')
    elif tamper == "garbage_header":
        headers = {"Stripe-Signature": "not a signature"}
    elif tamper == "v0_only":
        headers = {"Stripe-Signature": headers["Stripe-Signature"].replace("v1=", "v0=")}
    response = post(api_client, body, headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_signature"
    assert WebhookEvent.objects.count() == 0
    assert snapshot(order, payment) == before
    assert fake.requests_to("GET", f"/v1/checkout/sessions/{payment.transaction_id}") == []


def test_a_signature_just_inside_the_tolerance_is_accepted(api_client, opened, django_capture_on_commit_callbacks):
    order, payment, fake = opened
    fake.mark_paid(payment.transaction_id)
    body, headers = sign_webhook(
        fake.session_event("checkout.session.completed", payment.transaction_id),
        SECRET,
        timestamp=int(time.time()) - 280,
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api_client, body, headers)
    assert response.status_code == 200
    order.refresh_from_db()
    assert order.status == "delivered"


def test_no_webhook_secret_configured_refuses_everything(api_client, opened, settings):
    order, payment, fake = opened
    settings.STRIPE_WEBHOOK_SECRET = ""
    before = snapshot(order, payment)
    body, headers = sign_webhook(fake.session_event("checkout.session.completed", payment.transaction_id), "")
    response = post(api_client, body, headers)
    assert response.status_code == 400
    assert WebhookEvent.objects.count() == 0
    assert snapshot(order, payment) == before


def test_the_same_event_twice_is_stored_and_acted_on_once(api_client, opened, django_capture_on_commit_callbacks):
    order, payment, fake = opened
    fake.mark_paid(payment.transaction_id)
    body, headers = sign_webhook(
        fake.session_event("checkout.session.completed", payment.transaction_id, event_id="evt_test_once"), SECRET
    )
    with django_capture_on_commit_callbacks(execute=True):
        first = post(api_client, body, headers)
    after_first = snapshot(order, payment)
    gets_after_first = len(fake.requests)
    with django_capture_on_commit_callbacks(execute=True):
        second = post(api_client, body, headers)
    assert first.json()["data"]["duplicate"] is False
    assert second.status_code == 200
    assert second.json()["data"] == {
        "received": True,
        "event_id": "evt_test_once",
        "status": "processed",
        "duplicate": True,
    }
    assert WebhookEvent.objects.count() == 1
    assert snapshot(order, payment) == after_first
    assert after_first[0] == "delivered"
    assert len(fake.requests) == gets_after_first  # the repeat never asked Stripe again


@pytest.mark.parametrize("late_type", ["checkout.session.expired", "checkout.session.async_payment_failed"])
def test_a_late_event_never_moves_a_paid_order_backwards(
    api_client, opened, django_capture_on_commit_callbacks, late_type
):
    order, payment, fake = opened
    fake.mark_paid(payment.transaction_id)
    session_id = payment.transaction_id
    late = fake.session_event(late_type, session_id)  # sent by Stripe before the payment, delivered after
    send(api_client, fake, "checkout.session.completed", session_id, django_capture_on_commit_callbacks)
    after_paid = snapshot(order, payment)
    assert after_paid[0] == "delivered"
    body, headers = sign_webhook(late, SECRET)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api_client, body, headers)
    assert response.status_code == 200
    assert snapshot(order, payment) == after_paid
    # Re-verified through the PaymentIntent the payment now holds.
    [lookup] = fake.requests_to("GET", "/v1/checkout/sessions")
    assert lookup.params == {"payment_intent": after_paid[3], "limit": "1", "expand": ["data.payment_intent"]}


def test_an_amount_stripe_reports_differently_is_not_paid(api_client, opened, django_capture_on_commit_callbacks):
    order, payment, fake = opened
    fake.mark_paid(payment.transaction_id)
    fake.sessions[payment.transaction_id]["amount_total"] = 100
    before = snapshot(order, payment)
    send(api_client, fake, "checkout.session.completed", payment.transaction_id, django_capture_on_commit_callbacks)
    status, paid_at, payment_status, transaction_id, events = snapshot(order, payment)
    assert (status, paid_at, payment_status, transaction_id) == before[:4]
    assert events == before[4] + 1
    assert OrderEvent.objects.filter(order=order).latest("created_at").type == "payment_mismatch"


def test_an_unknown_event_type_is_stored_and_ignored(api_client, opened):
    order, payment, fake = opened
    before = snapshot(order, payment)
    body, headers = sign_webhook(fake.event("customer.created", {"id": "cus_test_1", "object": "customer"}), SECRET)
    response = post(api_client, body, headers)
    assert response.status_code == 200
    assert response.json()["data"]["status"] == "ignored"
    assert WebhookEvent.objects.get().type == "customer.created"
    assert snapshot(order, payment) == before
    assert fake.requests_to("GET", f"/v1/checkout/sessions/{payment.transaction_id}") == []


def test_a_session_event_names_our_payment_from_its_metadata(stripe_on, opened):
    _, payment, _ = opened
    event = stripe_on.session_event("checkout.session.expired", payment.transaction_id, event_id="evt_test_meta")
    body, headers = sign_webhook(event, SECRET)
    message = StripeGateway().parse_webhook(body=body, headers={k.lower(): v for k, v in headers.items()})
    assert (message.event_id, message.type, message.payment_id, message.refunded_total) == (
        "evt_test_meta",
        "checkout.session.expired",
        payment.id,
        None,
    )
    assert message.payload == event


def test_an_invalid_signature_raises_invalid_signature(stripe_on):
    body, headers = sign_webhook(stripe_on.event("ping", {}), "whsec_other")
    with pytest.raises(InvalidSignature):
        StripeGateway().parse_webhook(body=body, headers=headers)


# --- Refunds -------------------------------------------------------------------------------------


def _paid(api_client, opened, capture):
    order, payment, fake = opened
    fake.mark_paid(payment.transaction_id)
    send(api_client, fake, "checkout.session.completed", payment.transaction_id, capture)
    payment.refresh_from_db()
    return order, payment, fake


def test_a_refund_sends_the_amount_and_idempotency_key(api_client, opened, django_capture_on_commit_callbacks):
    order, payment, fake = _paid(api_client, opened, django_capture_on_commit_callbacks)
    answer = StripeGateway().refund(
        payment=payment, amount=500, reason="requested_by_customer", idempotency_key="rfd_test_1"
    )
    [refund] = fake.refunds.values()
    assert answer == GatewayRefund(refund_id=refund["id"], status="succeeded", amount=500)
    assert refund["id"].startswith("re_test_")
    [request] = fake.requests_to("POST", "/v1/refunds")
    assert request.headers["idempotency-key"] == "rfd_test_1"
    assert request.params == {
        "payment_intent": payment.transaction_id,
        "amount": "500",
        "reason": "requested_by_customer",
        "metadata": {"order_id": order.id, "payment_id": payment.id, "reason": "requested_by_customer"},
    }

    again = StripeGateway().refund(
        payment=payment, amount=500, reason="requested_by_customer", idempotency_key="rfd_test_1"
    )
    assert again == answer
    assert len(fake.refunds) == 1
    charge = fake.charges[fake.intents[payment.transaction_id]["latest_charge"]]
    assert charge["amount_refunded"] == 500


def test_a_free_text_reason_travels_in_metadata_only(api_client, opened, django_capture_on_commit_callbacks):
    order, payment, fake = _paid(api_client, opened, django_capture_on_commit_callbacks)
    StripeGateway().refund(payment=payment, amount=payment.amount, reason="Wrong item", idempotency_key="rfd_test_2")
    [request] = fake.requests_to("POST", "/v1/refunds")
    assert "reason" not in request.params
    assert request.params["metadata"]["reason"] == "Wrong item"
    assert request.params["amount"] == "1999"


def test_a_refund_stripe_refuses_is_a_failed_refund(api_client, opened, django_capture_on_commit_callbacks):
    order, payment, fake = _paid(api_client, opened, django_capture_on_commit_callbacks)
    answer = StripeGateway().refund(payment=payment, amount=5000, reason="", idempotency_key="rfd_test_3")
    assert answer == GatewayRefund(
        refund_id="",
        status="failed",
        amount=5000,
        failure_reason="Stripe refused to refund: "
        "Refund amount (5000) is greater than unrefunded amount on charge (1999)",
    )
    assert fake.refunds == {}


def test_a_refund_while_stripe_is_down_raises_unavailable(api_client, opened, django_capture_on_commit_callbacks):
    from payments.gateways import GatewayUnavailable

    order, payment, fake = _paid(api_client, opened, django_capture_on_commit_callbacks)
    fake.fail_next(503, times=3)
    with pytest.raises(GatewayUnavailable):
        StripeGateway().refund(payment=payment, amount=100, reason="", idempotency_key="rfd_test_4")
    assert fake.refunds == {}
    assert [r.headers["idempotency-key"] for r in fake.requests_to("POST", "/v1/refunds")] == ["rfd_test_4"] * 3


def test_charge_refunded_names_the_payment_and_the_refunded_total(
    api_client, opened, django_capture_on_commit_callbacks
):
    order, payment, fake = _paid(api_client, opened, django_capture_on_commit_callbacks)
    StripeGateway().refund(payment=payment, amount=700, reason="", idempotency_key="rfd_test_5")
    body, headers = sign_webhook(fake.charge_refunded_event(payment.transaction_id, event_id="evt_test_r"), SECRET)
    message = StripeGateway().parse_webhook(body=body, headers=headers)
    assert (message.type, message.payment_id, message.refunded_total) == ("charge.refunded", payment.id, 700)


def test_a_refund_event_before_its_completion_finds_the_payment_through_stripe(stripe_on, opened):
    _, payment, _ = opened
    session = stripe_on.mark_paid(payment.transaction_id)
    stripe_on.handle(
        "POST",
        "/v1/refunds",
        {"payment_intent": session["payment_intent"], "amount": "1999"},
        {"authorization": f"Bearer {stripe_on.api_key}"},
    )
    assert payment.transaction_id == session["id"]  # not yet confirmed on our side
    body, headers = sign_webhook(stripe_on.charge_refunded_event(session["payment_intent"]), SECRET)
    message = StripeGateway().parse_webhook(body=body, headers=headers)
    assert (message.payment_id, message.refunded_total) == (payment.id, 1999)


def test_a_refund_event_for_a_charge_not_ours_names_no_payment(stripe_on, opened):
    body, headers = sign_webhook(
        stripe_on.event(
            "charge.refunded",
            {"id": "ch_test_x", "object": "charge", "amount_refunded": 100, "payment_intent": "pi_test_elsewhere"},
        ),
        SECRET,
    )
    message = StripeGateway().parse_webhook(body=body, headers=headers)
    assert (message.payment_id, message.refunded_total) == (None, 100)
