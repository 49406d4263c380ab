import pytest
from rest_framework.test import APIClient

from catalog.inventory import CodeRow, codes_import
from catalog.models import Code, DeliveryType
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory
from orders.models import License, Order, OrderEvent, SellerEvent, WebhookEndpoint
from orders.tests.helpers import make_order, pay
from payments.models import Payment, Refund, SandboxPayment, WebhookEvent
from payments.sandbox_server.server import sign_event

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid(text_product, django_capture_on_commit_callbacks):
    return pay(make_order(text_product, quantity=2), django_capture_on_commit_callbacks)  # 3998 USD


def refund(client, order, **body):
    return client.post(f"/api/v1/orders/{order.id}/refund", body, format="json")


def test_partial_then_full_refund(seller_client, paid, monkeypatch):
    # A listening endpoint, so the outbox records order.refunded (deliveries are not sent here).
    WebhookEndpoint.objects.create(seller=paid.seller, url="https://hooks.example.test/in", secret="whsec_test")
    monkeypatch.setattr("orders.seller_events.delivery._queue_on_commit", lambda delivery_ids: None)
    first = refund(seller_client, paid, amount=1000, reason="one unit was faulty")
    assert first.status_code == 201
    data = first.json()["data"]
    assert (data["status"], data["refunded_amount"]) == ("partially_refunded", 1000)
    assert data["refunds"][0]["amount"] == 1000 and data["refunds"][0]["reason"] == "one unit was faulty"
    assert SandboxPayment.objects.get().refunded_amount == 1000
    assert Payment.objects.get().status == "partially_refunded"
    # Content stays available after a partial refund.
    assert APIClient().get(f"/api/v1/orders/{paid.id}/resource").status_code == 200
    second = refund(seller_client, paid)  # the rest
    assert second.status_code == 201
    data = second.json()["data"]
    assert (data["status"], data["refunded_amount"]) == ("refunded", 3998)
    assert [r["amount"] for r in data["refunds"]] == [1000, 2998]
    assert Payment.objects.get().status == "refunded"
    gone = APIClient().get(f"/api/v1/orders/{paid.id}/resource")
    assert gone.status_code == 410
    public = APIClient().get(f"/api/v1/public/checkout/{paid.product.slug}/order/{paid.id}").json()["data"]
    assert public["items"][0]["delivery"] is None and public["delivery_content"] is None
    types = [e.type for e in SellerEvent.objects.filter(seller=paid.seller).order_by("created_at", "id")]
    assert types.count("order.refunded") == 2


@pytest.mark.parametrize("amount", [0, -5, 3999, "100"])
def test_bad_amount_is_400_and_nothing_refunded(seller_client, paid, amount):
    response = refund(seller_client, paid, amount=amount)
    assert response.status_code == 400
    assert "amount" in response.json()["error"]["fields"]
    paid.refresh_from_db()
    assert (paid.status, paid.refunded_amount) == ("delivered", 0)
    assert Refund.objects.count() == 0
    assert SandboxPayment.objects.get().refunded_amount == 0


def test_unpaid_order_cannot_be_refunded(seller_client, text_product):
    order = make_order(text_product)
    response = refund(seller_client, order)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_transition"
    assert Refund.objects.count() == 0


def test_fully_refunded_order_cannot_be_refunded_again(seller_client, paid):
    refund(seller_client, paid)
    response = refund(seller_client, paid, amount=1)
    assert response.status_code == 409
    assert Refund.objects.count() == 1


def test_another_sellers_order_is_404(paid):
    from rest_framework_simplejwt.tokens import RefreshToken

    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(SellerFactory()).access_token}")
    assert refund(stranger, paid).status_code == 404
    assert Refund.objects.count() == 0


def test_idempotency_key_refunds_once(seller_client, paid):
    for _ in range(2):
        response = seller_client.post(
            f"/api/v1/orders/{paid.id}/refund", {"amount": 500}, format="json", HTTP_IDEMPOTENCY_KEY="refund-1"
        )
        assert response.status_code == 201
    assert Refund.objects.count() == 1
    paid.refresh_from_db()
    assert paid.refunded_amount == 500


def test_full_refund_revokes_codes_and_licence_keys(seller, seller_client, django_capture_on_commit_callbacks):
    pool = ProductFactory(seller=seller, delivery_type=DeliveryType.CODE_POOL, delivery_content="")
    variant = VariantFactory(product=pool, price=1000)
    codes_import(variant=variant, rows=[CodeRow(1, "REFUND-ME-1"), CodeRow(2, "KEEP-2")])
    app = ProductFactory(
        seller=seller,
        delivery_type=DeliveryType.LICENSE_KEY,
        delivery_content="",
        delivery_options={"license": {"activation_limit": 1}},
    )
    app_variant = VariantFactory(product=app, price=500)
    from orders.services import CheckoutLine, order_create

    order = order_create(
        product=pool, buyer_email="r@x.co", lines=[CheckoutLine(variant.id, 1), CheckoutLine(app_variant.id, 1)]
    ).order
    order = pay(order, django_capture_on_commit_callbacks)
    key = License.objects.get().key
    assert refund(seller_client, order).status_code == 201
    statuses = dict(Code.objects.values_list("code_hint", "status"))
    assert statuses == {"ME-1": "REVOKED", "EP-2": "AVAILABLE"}  # revoked codes are not resold
    verify = APIClient().post("/api/v1/licenses/verify", {"product_id": app.id, "license_key": key}, format="json")
    assert verify.status_code == 404
    assert OrderEvent.objects.filter(order=order, type="access_revoked").count() == 1


def test_refund_reported_by_the_gateway_is_recorded_once(api_client, seller_client, paid):
    refund(seller_client, paid, amount=1000)  # ours, through the API
    payment = Payment.objects.get()

    def gateway_reports(total, event_id):
        event = {
            "id": event_id,
            "type": "payment.refunded",
            "data": {
                "payment_id": payment.id,
                "order_id": paid.id,
                "amount": 3998,
                "currency": "USD",
                "refunded_amount": total,
            },
        }
        body, headers = sign_event(event)
        extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
        return api_client.generic(
            "POST", "/api/v1/payments/webhooks/sandbox", body, content_type="application/json", **extra
        )

    # The gateway tells us about our own refund: nothing new.
    assert gateway_reports(1000, "evt_r1").status_code == 200
    paid.refresh_from_db()
    assert paid.refunded_amount == 1000
    # Then about 500 more refunded from its dashboard (the gateway holds it, so the report is
    # confirmed when asked): only the difference is recorded.
    from payments.sandbox_server.server import sandbox_refund

    sandbox_refund(payment_id=payment.id, amount=500, idempotency_key="from-the-dashboard")
    assert gateway_reports(1500, "evt_r2").status_code == 200
    paid.refresh_from_db()
    assert (paid.refunded_amount, paid.status) == (1500, "partially_refunded")
    assert list(Refund.objects.values_list("source", "amount")) == [("seller", 1000), ("gateway", 500)]
    # Late or repeated reports never count twice or move the order backwards.
    assert gateway_reports(1500, "evt_r3").status_code == 200
    assert gateway_reports(1000, "evt_r4").status_code == 200
    paid.refresh_from_db()
    assert paid.refunded_amount == 1500
    assert WebhookEvent.objects.filter(type="payment.refunded").count() == 4


def test_stored_event_can_be_replayed(api_client, paid):
    from payments.gateway_events import webhook_replay

    payment = Payment.objects.get()
    event = {
        "id": "evt_replay",
        "type": "payment.succeeded",
        "data": {"payment_id": payment.id, "order_id": paid.id, "amount": 3998, "currency": "USD"},
    }
    body, headers = sign_event(event)
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    api_client.generic("POST", "/api/v1/payments/webhooks/sandbox", body, content_type="application/json", **extra)
    stored = WebhookEvent.objects.get(event_id="evt_replay")
    events = OrderEvent.objects.filter(order=paid).count()
    webhook_replay(event=stored)
    stored.refresh_from_db()
    assert stored.status == "processed"
    paid.refresh_from_db()
    assert paid.status == "delivered"
    assert OrderEvent.objects.filter(order=paid).count() == events  # replaying a done event changes nothing
    assert Order.objects.get(pk=paid.pk).refunded_amount == 0


def test_admin_refunds_and_replays_through_the_services(paid):
    from django.contrib.admin.utils import quote
    from django.test import Client

    from marketplace.accounts.tests.factories import UserFactory

    browser = Client()
    browser.force_login(UserFactory(is_staff=True, is_superuser=True))
    event = WebhookEvent.objects.get()
    response = browser.post("/admin/payments/webhookevent/", {"action": "replay", "_selected_action": [event.pk]})
    assert response.status_code == 302
    event.refresh_from_db()
    assert event.status == "processed"
    asked = browser.post("/admin/orders/order/", {"action": "refund_in_full", "_selected_action": [paid.pk]})
    assert asked.status_code == 200  # the confirmation page first; nothing refunded yet
    assert Order.objects.get(pk=paid.pk).refunded_amount == 0
    browser.post("/admin/orders/order/", {"action": "refund_in_full", "_selected_action": [paid.pk], "post": "yes"})
    paid.refresh_from_db()
    assert (paid.status, paid.refunded_amount) == ("refunded", 3998)
    assert Refund.objects.get().source == "operator"
    assert browser.get("/admin/payments/refund/").status_code == 200
    assert browser.get(f"/admin/payments/refund/{quote(Refund.objects.get().pk)}/change/").status_code == 200


def test_a_payment_after_cancellation_is_refunded_automatically_once(text_product, django_capture_on_commit_callbacks):
    from orders.services import order_cancel
    from payments.sandbox_server.server import sandbox_complete
    from payments.services import payment_initiate

    order = make_order(text_product)
    payment = payment_initiate(order=order, gateway_name="sandbox", return_url="https://x.test/r")
    order_cancel(order_id=order.id, message="Expired before payment.")
    with django_capture_on_commit_callbacks(execute=True):
        sandbox_complete(payment_id=payment.id, outcome="succeeded")  # the buyer was still on the page
    order.refresh_from_db()
    assert order.status == "cancelled"
    refund = Refund.objects.get()
    assert (refund.amount, refund.status, refund.source) == (1999, "succeeded", "system")
    assert SandboxPayment.objects.get(id=payment.id).refunded_amount == 1999
    assert Payment.objects.get(pk=payment.pk).status == "refunded"
    assert OrderEvent.objects.filter(order=order, type="unpayable_payment_refunded").count() == 1
    # The gateway repeats its webhook: nothing is refunded twice.
    stored = WebhookEvent.objects.get()
    from payments.gateway_events import webhook_replay

    with django_capture_on_commit_callbacks(execute=True):
        webhook_replay(event=stored)
    assert Refund.objects.count() == 1
    assert SandboxPayment.objects.get(id=payment.id).refunded_amount == 1999
    assert Payment.objects.get(pk=payment.pk).status == "refunded"  # never moved backwards


def test_a_refund_the_gateway_leaves_pending_is_settled_by_its_event(api_client, seller_client, paid):
    from unittest import mock

    from payments.gateways.base import GatewayRefund
    from payments.gateways.sandbox import SandboxGateway

    with mock.patch.object(SandboxGateway, "refund", return_value=GatewayRefund("sbxre_pending", "pending", 1000)):
        response = refund(seller_client, paid, amount=1000)
    assert response.status_code == 201
    paid.refresh_from_db()
    assert (paid.refunded_amount, paid.status) == (0, "delivered")
    assert Refund.objects.get().status == "pending"
    # The pending amount is held: asking for everything now leaves only the rest.
    assert refund(seller_client, paid, amount=3998).status_code == 400
    payment = Payment.objects.get()
    # The gateway moves the money; its event says so, and asking it confirms.
    SandboxPayment.objects.filter(id=payment.id).update(refunded_amount=1000)
    event = {
        "id": "evt_settle",
        "type": "payment.refunded",
        "data": {
            "payment_id": payment.id,
            "order_id": paid.id,
            "amount": 3998,
            "currency": "USD",
            "refunded_amount": 1000,
        },
    }
    body, headers = sign_event(event)
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    api_client.generic("POST", "/api/v1/payments/webhooks/sandbox", body, content_type="application/json", **extra)
    paid.refresh_from_db()
    assert (paid.refunded_amount, paid.status) == (1000, "partially_refunded")
    assert list(Refund.objects.values_list("status", "amount")) == [("succeeded", 1000)]


@pytest.mark.parametrize("fixed", [0, 30])
def test_fee_and_earnings_follow_refunds(
    seller_client, text_product, settings, django_capture_on_commit_callbacks, fixed
):
    settings.PLATFORM_FEE_BPS, settings.PLATFORM_FEE_FIXED = 1000, fixed
    order = pay(make_order(text_product, quantity=2), django_capture_on_commit_callbacks)  # 3998
    assert (order.platform_fee, order.seller_earnings) == (400 + fixed, 3598 - fixed)
    refund(seller_client, order, amount=998)
    order.refresh_from_db()
    assert (order.platform_fee, order.seller_earnings) == (300 + fixed, 2700 - fixed)
    refund(seller_client, order)
    order.refresh_from_db()
    assert (order.platform_fee, order.seller_earnings, order.refunded_amount) == (0, 0, 3998)


def test_fee_is_taken_at_payment_with_the_sellers_current_rates(
    text_product, settings, django_capture_on_commit_callbacks
):
    settings.PLATFORM_FEE_BPS, settings.PLATFORM_FEE_FIXED = 500, 0
    order = make_order(text_product)
    assert order.platform_fee == 100
    seller = text_product.seller
    seller.platform_fee_bps = 0
    seller.save()
    order = pay(order, django_capture_on_commit_callbacks)
    assert (order.platform_fee, order.seller_earnings) == (0, 1999)


def test_the_buyer_is_emailed_about_a_refund(seller_client, paid, django_capture_on_commit_callbacks):
    from django.core import mail

    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        refund(seller_client, paid, amount=1000, reason="late delivery")
    buyer_mails = [m for m in mail.outbox if m.to == [paid.buyer_email]]
    assert len(buyer_mails) == 1
    assert "$10.00" in buyer_mails[0].body
    assert OrderEvent.objects.filter(order=paid, type="refund_email_sent").count() == 1
