"""Issue 10, items 4, 14 and 15: money taken twice or for nothing, refund keys across sellers, and
refund webhooks believed without asking the gateway.

- 4: an order has at most one open payment (a database constraint and the order's lock: 8 initiates
  at once open one); any payment that succeeds for an order that cannot take it is refunded through
  its gateway at once, with a timeline event and an email to the seller; the sweeper never stops on
  one bad order.
- 14: a refund's ``Idempotency-Key`` is the seller's own.
- 15: a signed refund event changes something only as far as the gateway itself confirms it.
"""

from collections import Counter
from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from catalog.models import Discount
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory
from orders.models import Order, OrderEvent
from orders.tests.helpers import make_order, pay
from payments.models import Payment, Refund, SandboxPayment, WebhookEvent
from payments.sandbox_server.server import sandbox_complete, sign_event
from payments.services import payment_initiate
from payments.tests.fake_stripe import fake_stripe, sign_webhook  # noqa: F401
from tests.campaign.concurrency import run_concurrently

RETURN_URL = "https://shop.test/return"
STRIPE_SECRET = "whsec_test_c3RyaXBlLXdlYmhvb2stc2VjcmV0LWZvci10ZXN0cw"


def seller_product(price: int = 1999, **seller_fields):
    seller = SellerFactory(**seller_fields)
    product = ProductFactory(seller=seller, currency="USD", delivery_content="The secret is OPEN-SESAME")
    VariantFactory(product=product, name="Standard", price=price)
    return seller, product


def unpaid_order(product) -> Order:
    """An order created with ``init_payment: false``, through the public API."""
    response = APIClient().post(
        f"/api/v1/public/checkout/{product.slug}/pay",
        {"buyer_email": "buyer@example.com", "init_payment": False},
        format="json",
    )
    assert response.status_code == 201, response.content
    return Order.objects.get(pk=response.json()["data"]["id"])


def initiate(order: Order):
    return APIClient().post(f"/api/v1/payments/initiate/{order.id}", {"payment_method": "sandbox"}, format="json")


def post_sandbox_event(event: dict):
    body, headers = sign_event(event)
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    return APIClient().generic(
        "POST", "/api/v1/payments/webhooks/sandbox", body, content_type="application/json", **extra
    )


def seller_client(seller) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(seller).access_token}")
    return client


# --- 4. One open payment per order -----------------------------------------------------------------


@pytest.mark.django_db
def test_initiates_one_after_another_open_one_payment_and_answer_it_with_200():
    _, product = seller_product()
    order = unpaid_order(product)
    answers = [initiate(order) for _ in range(8)]
    assert [a.status_code for a in answers] == [201] + [200] * 7
    [payment] = Payment.objects.filter(order=order)
    assert {a.json()["data"]["id"] for a in answers} == {payment.id}
    assert {a.json()["data"]["redirect_url"] for a in answers} == {payment.redirect_url}
    assert payment.redirect_url.endswith(f"/sandbox/pay/{payment.id}")
    assert OrderEvent.objects.filter(order=order, type="payment_initiated").count() == 1


@pytest.mark.django_db
def test_the_database_refuses_a_second_open_payment():
    _, product = seller_product()
    order = unpaid_order(product)
    first = payment_initiate(order=order, gateway_name="sandbox", return_url=RETURN_URL)
    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.create(order=order, gateway="stripe", amount=order.total_amount, currency=order.currency)
    assert list(Payment.objects.filter(order=order).values_list("id", "status")) == [(first.id, "pending")]


@pytest.mark.django_db
def test_a_payment_whose_gateway_call_failed_is_not_open_and_the_next_initiate_opens_one():
    _, product = seller_product()
    order = unpaid_order(product)
    with mock.patch("payments.gateways.sandbox.SandboxGateway.create_checkout", side_effect=RuntimeError("boom")):
        with pytest.raises(RuntimeError):
            payment_initiate(order=order, gateway_name="sandbox", return_url=RETURN_URL)
    assert list(Payment.objects.filter(order=order).values_list("status", flat=True)) == ["failed"]
    response = initiate(order)
    assert response.status_code == 201
    assert Payment.objects.filter(order=order, status="pending").get().id == response.json()["data"]["id"]


@pytest.mark.django_db
def test_a_payment_abandoned_while_opening_is_closed_and_replaced():
    _, product = seller_product()
    order = unpaid_order(product)
    stale = Payment.objects.create(order=order, gateway="sandbox", amount=order.total_amount, currency="USD")
    Payment.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    response = initiate(order)
    assert response.status_code == 201
    stale.refresh_from_db()
    assert stale.status == "failed"
    assert response.json()["data"]["id"] != stale.id
    assert Payment.objects.filter(order=order, status="pending").count() == 1


@pytest.mark.django_db(transaction=True)
def test_eight_initiates_at_once_open_exactly_one_payment():
    if connection.vendor == "sqlite":
        pytest.skip("Needs row locks between real concurrent transactions (PostgreSQL); the sequential test runs here.")
    _, product = seller_product()
    order = unpaid_order(product)

    def call(_):
        response = initiate(order)
        return response.status_code, response.json()["data"]

    results = run_concurrently(8, call)
    assert all(isinstance(r, tuple) for r in results), results
    [payment] = Payment.objects.filter(order=order)
    assert Counter(status for status, _ in results) == Counter({201: 1, 200: 7})
    assert {data["id"] for _, data in results} == {payment.id}
    assert {data["redirect_url"] for _, data in results} == {payment.redirect_url} != {""}
    assert SandboxPayment.objects.filter(order_id=order.id).count() == 1


# --- 4. A payment that cannot pay its order is refunded at once ---------------------------------------


def assert_refunded_unpayable(order: Order, payment: Payment, seller) -> Refund:
    refund = Refund.objects.get(payment=payment)
    assert (refund.source, refund.status, refund.amount) == ("system", "succeeded", payment.amount)
    assert SandboxPayment.objects.get(id=payment.id).refunded_amount == payment.amount
    assert Payment.objects.get(pk=payment.pk).status == "refunded"
    [event] = OrderEvent.objects.filter(order=order, type="unpayable_payment_refunded")
    assert event.data == {"payment_id": payment.id, "refund_id": refund.id, "amount": payment.amount}
    to_seller = [m for m in mail.outbox if m.to == [seller.email]]
    assert len(to_seller) == 1 and f"#{order.order_number}" in to_seller[0].subject
    assert OrderEvent.objects.filter(order=order, type="seller_notified").count() == 1
    return refund


@pytest.mark.django_db
def test_a_late_success_on_a_cancelled_order_is_refunded_with_an_event_and_a_note_to_the_seller(
    django_capture_on_commit_callbacks,
):
    from orders.services import order_cancel

    seller, product = seller_product()
    order = unpaid_order(product)
    payment = payment_initiate(order=order, gateway_name="sandbox", return_url=RETURN_URL)
    order_cancel(order_id=order.id, message="Expired before payment.")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        sandbox_complete(payment_id=payment.id, outcome="succeeded")  # the buyer was still on the page
    order.refresh_from_db()
    assert (order.status, order.refunded_amount) == ("cancelled", 0)
    assert_refunded_unpayable(order, payment, seller)


@pytest.mark.django_db
def test_a_success_after_another_payment_paid_the_order_is_refunded(django_capture_on_commit_callbacks):
    seller, product = seller_product()
    order = unpaid_order(product)
    first = payment_initiate(order=order, gateway_name="sandbox", return_url=RETURN_URL)
    # The first page is left open in a tab and taken as abandoned; the buyer pays a second one.
    Payment.objects.filter(pk=first.pk).update(status="failed")
    order = pay(order, django_capture_on_commit_callbacks)
    second = Payment.objects.get(order=order, status="succeeded")
    assert order.status == "delivered"
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        sandbox_complete(payment_id=first.id, outcome="succeeded")  # then pays the old tab too
    order.refresh_from_db()
    assert (order.status, order.refunded_amount) == ("delivered", 0)  # the order's own money is untouched
    assert_refunded_unpayable(order, Payment.objects.get(pk=first.pk), seller)
    assert SandboxPayment.objects.get(id=second.id).refunded_amount == 0
    assert Payment.objects.get(pk=second.pk).status == "succeeded"
    # The gateway's echo of that refund settles the refunded payment only, never the order.
    echo = post_sandbox_event(
        {
            "id": "evt_echo",
            "type": "payment.refunded",
            "data": {"payment_id": first.id, "order_id": order.id, "refunded_amount": first.amount},
        }
    )
    assert echo.status_code == 200
    order.refresh_from_db()
    assert (order.status, order.refunded_amount) == ("delivered", 0)
    assert Refund.objects.filter(order=order).count() == 1
    # And the seller's own refund goes to the payment that paid the order.
    response = seller_client(seller).post(f"/api/v1/orders/{order.id}/refund", {"amount": 100}, format="json")
    assert response.status_code == 201
    assert Refund.objects.get(source="seller").payment_id == second.id


@pytest.mark.django_db
def test_a_success_for_a_failed_order_whose_discount_was_used_up_is_refunded(django_capture_on_commit_callbacks):
    from orders.services import CheckoutLine, order_create, order_mark_payment_failed

    seller, product = seller_product()
    Discount.objects.create(seller=seller, code="ONCE", kind="percent", value=50, max_uses=1)
    variant = product.variants.get()
    order = order_create(
        product=product, buyer_email="b@example.com", lines=[CheckoutLine(variant.id, 1)], discount_code="ONCE"
    ).order
    payment = payment_initiate(order=order, gateway_name="sandbox", return_url=RETURN_URL)
    order_mark_payment_failed(order_id=order.id, payment_id="pay_declined_elsewhere")  # gives the use back
    order_create(
        product=product, buyer_email="c@example.com", lines=[CheckoutLine(variant.id, 1)], discount_code="ONCE"
    )
    assert Discount.objects.get().uses == 1
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        sandbox_complete(payment_id=payment.id, outcome="succeeded")
    order.refresh_from_db()
    assert (order.status, order.paid_at) == ("failed", None)
    assert_refunded_unpayable(order, Payment.objects.get(pk=payment.pk), seller)
    assert Discount.objects.get().uses == 1


# --- 4. The sweeper never stops on one bad order ----------------------------------------------------


@pytest.mark.django_db
def test_the_sweeper_records_a_bad_order_and_goes_on_to_the_next():
    import orders.services.sweeper as order_services
    from orders.tasks import sweep_orders

    _, product = seller_product()
    bad, good = unpaid_order(product), unpaid_order(product)
    Order.objects.filter(pk__in=[bad.pk, good.pk]).update(expires_at=timezone.now() - timedelta(minutes=1))
    real_cancel = order_services.order_cancel

    def cancel(*, order_id, message):
        if order_id == bad.id:
            raise RuntimeError("corrupt row")
        return real_cancel(order_id=order_id, message=message)

    with mock.patch.object(order_services, "order_cancel", side_effect=cancel):
        counts = sweep_orders()
    assert counts == {
        "requeued": 0,
        "cancelled": 1,
        "paid": 0,
        "failed": 1,
        "payments_paid": 0,
        "payments_settled": 0,
        "payments_unanswered": 0,
    }
    assert Order.objects.get(pk=good.pk).status == "cancelled"
    assert Order.objects.get(pk=bad.pk).status == "pending"
    [event] = OrderEvent.objects.filter(order=bad, type="sweep_failed")
    assert event.message == "The sweeper could not cancel this order: RuntimeError: corrupt row"
    assert event.data == {"step": "cancel", "error": "RuntimeError"}


@pytest.mark.django_db
def test_the_sweeper_goes_on_when_one_requeue_fails(django_capture_on_commit_callbacks):
    from orders.services import orders_sweep

    _, product = seller_product()
    first = pay(unpaid_order(product), django_capture_on_commit_callbacks)
    second = pay(unpaid_order(product), django_capture_on_commit_callbacks)
    Order.objects.filter(pk__in=[first.pk, second.pk]).update(status="paid")
    later = timezone.now() + timedelta(hours=1)

    def delay(order_id):
        if order_id == first.id:
            raise ConnectionError("broker refused")

    with mock.patch("orders.tasks.fulfill_order.delay", side_effect=delay) as queued:
        result = orders_sweep(now=later)
    assert sorted(call.args[0] for call in queued.call_args_list) == sorted([first.id, second.id])
    assert (result.requeued, result.failed) == ([second.id], [first.id])
    assert OrderEvent.objects.filter(order=first, type="sweep_failed", data__step="requeue").count() == 1
    assert not OrderEvent.objects.filter(order=second, type="sweep_failed").exists()


# --- 14. Refund idempotency keys are the seller's own -----------------------------------------------


@pytest.mark.django_db
def test_two_sellers_with_one_refund_key_each_get_their_own_refund(django_capture_on_commit_callbacks):
    seller_a, product_a = seller_product(price=1000)
    seller_b, product_b = seller_product(price=3000)
    order_a = pay(make_order(product_a), django_capture_on_commit_callbacks)
    order_b = pay(make_order(product_b), django_capture_on_commit_callbacks)
    key = {"HTTP_IDEMPOTENCY_KEY": "refund-2026-001"}
    first = seller_client(seller_a).post(f"/api/v1/orders/{order_a.id}/refund", {"amount": 400}, format="json", **key)
    assert first.status_code == 201
    [refund_a] = Refund.objects.filter(order=order_a)
    second = seller_client(seller_b).post(f"/api/v1/orders/{order_b.id}/refund", {"amount": 700}, format="json", **key)
    assert second.status_code == 201, second.content
    data = second.json()["data"]
    assert (data["status"], data["refunded_amount"]) == ("partially_refunded", 700)
    assert [r["amount"] for r in data["refunds"]] == [700]
    assert refund_a.id not in second.content.decode()
    [refund_b] = Refund.objects.filter(order=order_b)
    assert (refund_b.seller_id, refund_b.idempotency_key, refund_b.amount) == (seller_b.id, "refund-2026-001", 700)
    # A's refund is as it was; A's repeat is still a replay of it.
    again = seller_client(seller_a).post(f"/api/v1/orders/{order_a.id}/refund", {"amount": 400}, format="json", **key)
    assert again.status_code == 201
    assert list(Refund.objects.filter(order=order_a).values_list("id", "amount")) == [(refund_a.id, 400)]
    order_a.refresh_from_db()
    assert order_a.refunded_amount == 400


@pytest.mark.django_db
@pytest.mark.parametrize("bad_key", ["k" * 201, "key\x01with-control"])
def test_a_refund_key_that_cannot_be_stored_is_400_and_refunds_nothing(django_capture_on_commit_callbacks, bad_key):
    seller, product = seller_product()
    order = pay(make_order(product), django_capture_on_commit_callbacks)
    response = seller_client(seller).post(
        f"/api/v1/orders/{order.id}/refund", {"amount": 100}, format="json", HTTP_IDEMPOTENCY_KEY=bad_key
    )
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False and "idempotency_key" in body["error"]["fields"]
    assert Refund.objects.count() == 0
    order.refresh_from_db()
    assert (order.status, order.refunded_amount) == ("delivered", 0)
    assert SandboxPayment.objects.get().refunded_amount == 0


# --- 15. Refund webhooks are re-verified with the gateway -------------------------------------------


@pytest.mark.django_db
def test_a_signed_sandbox_refund_event_the_gateway_does_not_confirm_changes_nothing(
    django_capture_on_commit_callbacks,
):
    _, product = seller_product()
    order = pay(make_order(product), django_capture_on_commit_callbacks)
    payment = Payment.objects.get(order=order)
    events = OrderEvent.objects.filter(order=order).count()
    response = post_sandbox_event(
        {
            "id": "evt_forged_refund",
            "type": "payment.refunded",
            "data": {"payment_id": payment.id, "order_id": order.id, "refunded_amount": payment.amount},
        }
    )
    assert response.status_code == 200
    assert response.json()["data"]["status"] == "rejected"
    order.refresh_from_db()
    payment.refresh_from_db()
    assert (order.status, order.refunded_amount, payment.status) == ("delivered", 0, "succeeded")
    assert Refund.objects.count() == 0
    assert APIClient().get(f"/api/v1/orders/{order.id}/resource").status_code == 200
    assert WebhookEvent.objects.get(event_id="evt_forged_refund").status == "rejected"
    assert OrderEvent.objects.filter(order=order).count() == events + 1
    assert OrderEvent.objects.filter(order=order, type="webhook_rejected").count() == 1


@pytest.fixture
def stripe_on(settings, fake_stripe):  # noqa: F811
    settings.ENABLED_PAYMENT_GATEWAYS = ["sandbox", "stripe"]
    settings.STRIPE_SECRET_KEY = fake_stripe.api_key
    settings.STRIPE_WEBHOOK_SECRET = STRIPE_SECRET
    settings.STRIPE_API_BASE = fake_stripe.url
    return fake_stripe


def post_stripe(event):
    body, headers = sign_webhook(event, STRIPE_SECRET)
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    return APIClient().generic(
        "POST", "/api/v1/payments/webhooks/stripe", body, content_type="application/json", **extra
    )


@pytest.mark.django_db
def test_a_signed_stripe_charge_refunded_is_applied_only_as_far_as_stripe_confirms(
    stripe_on, django_capture_on_commit_callbacks
):
    _, product = seller_product()
    order = make_order(product)
    payment = payment_initiate(order=order, gateway_name="stripe", return_url=RETURN_URL)
    stripe_on.mark_paid(payment.transaction_id)
    with django_capture_on_commit_callbacks(execute=True):
        paid = post_stripe(stripe_on.session_event("checkout.session.completed", payment.transaction_id))
    assert paid.status_code == 200
    order.refresh_from_db()
    assert order.status == "delivered"
    intent_id = stripe_on.only_session()["payment_intent"]

    # A correctly signed event whose charge claims a full refund Stripe never made.
    forged = stripe_on.charge_refunded_event(intent_id, event_id="evt_test_forged")
    forged["data"]["object"].update(amount_refunded=order.total_amount, refunded=True)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_stripe(forged)
    assert response.status_code == 200
    assert response.json()["data"]["status"] == "rejected"
    order.refresh_from_db()
    assert (order.status, order.refunded_amount) == ("delivered", 0)
    assert Refund.objects.count() == 0
    assert stripe_on.requests_to("GET", f"/v1/payment_intents/{intent_id}")

    # A refund really made at Stripe (from its dashboard) is confirmed and recorded.
    charge = stripe_on.charges[stripe_on.intents[intent_id]["latest_charge"]]
    charge["amount_refunded"] = 500
    with django_capture_on_commit_callbacks(execute=True):
        response = post_stripe(stripe_on.charge_refunded_event(intent_id, event_id="evt_test_real"))
    assert response.json()["data"]["status"] == "processed"
    order.refresh_from_db()
    assert (order.status, order.refunded_amount) == ("partially_refunded", 500)
    assert list(Refund.objects.values_list("source", "amount")) == [("gateway", 500)]
