"""bKash Tokenized Checkout against a local fake of its HTTP API (``fake_bkash``), through the real
guarded HTTP client: create → the buyer approves on bKash → the unsigned callback → the server
executes and queries → paid and delivered once; forged, replayed, duplicate and late callbacks;
tampered query answers; a callback that never comes (the sweeper); timeouts; refunds; a failed
execute; token caching and refresh; enabling and currencies."""

import json
import socket
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from catalog.inventory import CodeRow, codes_import
from catalog.models import DeliveryType
from catalog.tests.factories import ProductFactory, VariantFactory
from ledger.models import LedgerLine
from orders.models import Order, OrderEvent
from orders.services import order_cancel, orders_sweep
from orders.tests.helpers import buyer_mails, make_order
from payments.gateways import get_gateway
from payments.gateways.base import GatewayStatus
from payments.gateways.bkash import BkashGateway, bdt_minor, bdt_text
from payments.models import Payment, Refund
from payments.services import payment_apply_gateway_status
from tests.campaign import secrets_registry

from .fake_bkash import FakeBkash, fake_bkash  # noqa: F401 - fake_bkash: a fixture

pytestmark = pytest.mark.django_db
CALLBACK = "/api/v1/payments/callbacks/bkash"
PRICE = 150050  # BDT 1,500.50


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch):
    """Any attempt to resolve a host other than this machine fails the test."""
    resolve = socket.getaddrinfo

    def local_only(host, *args, **kwargs):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise AssertionError(f"A test tried to reach {host}.")
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", local_only)


@pytest.fixture
def bkash_on(settings, fake_bkash):  # noqa: F811
    settings.ENABLED_PAYMENT_GATEWAYS = ["sandbox", "bkash"]
    settings.BKASH_BASE_URL = fake_bkash.url
    settings.BKASH_APP_KEY = fake_bkash.app_key
    settings.BKASH_APP_SECRET = fake_bkash.app_secret
    settings.BKASH_USERNAME = fake_bkash.username
    settings.BKASH_PASSWORD = fake_bkash.password
    settings.BKASH_TIMEOUT_SECONDS = 1.0
    settings.SITE_URL = "https://shop.test"
    # The secrets plugin fails the run if any log record carries one of these.
    for value, kind in ((fake_bkash.app_secret, "bKash app secret"), (fake_bkash.password, "bKash password")):
        secrets_registry.register(value, kind=kind)
    return fake_bkash


@pytest.fixture
def voucher(seller):
    product = ProductFactory(
        seller=seller,
        slug="bd-voucher",
        title="Voucher",
        currency="BDT",
        delivery_type=DeliveryType.CODE_POOL,
        delivery_content="",
    )
    variant = VariantFactory(product=product, name="1500 Tk", price=PRICE)
    codes_import(variant=variant, rows=[CodeRow(n, f"BD-VOUCHER-{n:04d}-SECRET") for n in range(1, 11)])
    return product


def checkout(client, product, **extra) -> dict[str, Any]:
    body = {"buyer_email": "buyer@example.com", "quantity": 1, "payment_method": "bkash", **extra}
    response = client.post(f"/api/v1/public/checkout/{product.slug}/pay", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()["data"]


def callback(client, payment_ref: str, status: str = "success", **extra: str):
    return client.get(CALLBACK, {"paymentID": payment_ref, "status": status, **extra})


def opened(client, product, fake) -> tuple[Order, Payment]:
    data = checkout(client, product)
    order = Order.objects.get(pk=data["id"])
    payment = Payment.objects.get(pk=data["payment"]["id"])
    assert data["payment"]["redirect_url"] == f"{fake.url}/pay?paymentId={payment.transaction_id}"
    return order, payment


def paid_through_callback(client, product, fake, capture) -> tuple[Order, Payment]:
    order, payment = opened(client, product, fake)
    fake.approve(payment.transaction_id)
    with capture(execute=True):
        response = callback(client, payment.transaction_id)
    assert response.status_code == 302, response.content
    order.refresh_from_db()
    payment.refresh_from_db()
    return order, payment


def moves(order) -> list[tuple[str, str]]:
    return list(
        OrderEvent.objects.filter(order=order, type="status_changed")
        .order_by("created_at", "id")
        .values_list("from_status", "to_status")
    )


# --- Amounts -------------------------------------------------------------------------------------


def test_bdt_amounts_travel_as_exact_decimal_strings():
    assert [bdt_text(a) for a in (150050, 100, 1, 0)] == ["1500.50", "1.00", "0.01", "0.00"]
    assert [bdt_minor(v) for v in ("1500.50", "1500.5", "10", 10, "0.01")] == [150050, 150050, 1000, 1000, 1]
    assert [bdt_minor(v) for v in ("1.005", "NaN", "Infinity", "abc", None, "")] == [None] * 6


# --- Opening a payment ---------------------------------------------------------------------------


def test_checkout_grants_a_token_and_creates_the_payment_at_bkash(api_client, bkash_on, voucher):
    fake = bkash_on
    data = checkout(api_client, voucher)
    payment = Payment.objects.get(pk=data["payment"]["id"])
    order = Order.objects.get(pk=data["id"])
    [grant] = fake.requests_to("/tokenized/checkout/token/grant")
    assert (grant.headers["username"], grant.headers["password"]) == (fake.username, fake.password)
    assert grant.body == {"app_key": fake.app_key, "app_secret": fake.app_secret}
    [create] = fake.requests_to("/tokenized/checkout/create")
    assert create.body == {
        "mode": "0011",
        "payerReference": str(order.order_number),
        "callbackURL": "https://shop.test/api/v1/payments/callbacks/bkash",
        "amount": "1500.50",
        "currency": "BDT",
        "intent": "sale",
        "merchantInvoiceNumber": payment.id,
    }
    assert create.headers["x-app-key"] == fake.app_key
    assert create.headers["authorization"].startswith("eyJ")
    at_bkash = fake.only_payment()
    assert payment.transaction_id == at_bkash["paymentID"]
    assert (
        data["payment"]["redirect_url"] == payment.redirect_url == f"{fake.url}/pay?paymentId={payment.transaction_id}"
    )
    assert (data["status"], data["payment"]["gateway"], data["payment"]["status"]) == ("pending", "bkash", "pending")
    # Nothing executed yet: only the server executes, after the buyer returns.
    assert fake.requests_to("/tokenized/checkout/execute") == []


def test_bkash_not_enabled_is_400_on_payment_method_and_creates_nothing(api_client, settings, voucher):
    settings.ENABLED_PAYMENT_GATEWAYS = ["sandbox"]
    response = api_client.post(
        f"/api/v1/public/checkout/{voucher.slug}/pay",
        {"buyer_email": "b@example.com", "payment_method": "bkash"},
        format="json",
    )
    assert response.status_code == 400
    assert "payment_method" in response.json()["error"]["fields"]
    assert (Order.objects.count(), Payment.objects.count()) == (0, 0)
    assert callback(api_client, "TR0011abc").status_code == 404


def test_bkash_is_for_bdt_orders_only(api_client, bkash_on, text_product):
    response = api_client.post(
        f"/api/v1/public/checkout/{text_product.slug}/pay",
        {"buyer_email": "b@example.com", "payment_method": "bkash"},
        format="json",
    )
    assert response.status_code == 400
    assert "BDT" in response.json()["error"]["fields"]["payment_method"][0]
    assert (Order.objects.count(), Payment.objects.count()) == (0, 0)
    assert bkash_on.requests == []


def test_bkash_is_registered_and_declares_its_flow(bkash_on):
    gateway = get_gateway("bkash")
    assert isinstance(gateway, BkashGateway)
    assert (gateway.needs_capture, gateway.browser_return_only, gateway.opens_in_process) == (True, True, False)


# --- The callback --------------------------------------------------------------------------------


def test_approved_payment_is_executed_queried_paid_and_delivered_once(
    api_client, bkash_on, voucher, django_capture_on_commit_callbacks
):
    fake = bkash_on
    order, payment = opened(api_client, voucher, fake)
    fake.approve(payment.transaction_id)
    with django_capture_on_commit_callbacks(execute=True):
        response = callback(api_client, payment.transaction_id)
    assert response.status_code == 302
    assert response["Location"] == f"/c/{voucher.slug}/orders/{order.id}"
    [execute] = fake.requests_to("/tokenized/checkout/execute")
    assert execute.body == {"paymentID": payment.transaction_id}
    assert len(fake.requests_to("/tokenized/checkout/payment/status")) == 1
    order.refresh_from_db()
    payment.refresh_from_db()
    assert (payment.status, payment.transaction_id) == ("succeeded", fake.only_payment()["paymentID"])
    assert order.status == "delivered"
    assert moves(order) == [("pending", "paid"), ("paid", "delivered")]
    assert len(buyer_mails()) == 1 and "BD-VOUCHER-0001-SECRET" in buyer_mails()[0].body
    # The token was granted once and reused for create, execute and query.
    assert len(fake.requests_to("/tokenized/checkout/token/grant")) == 1


def test_the_callback_says_success_but_bkash_was_never_approved(
    api_client, bkash_on, voucher, django_capture_on_commit_callbacks
):
    """A forged success: bKash refuses to execute an unapproved payment; nothing is paid, and the
    attempt is closed so that the order can take a new one."""
    order, payment = opened(api_client, voucher, bkash_on)
    with django_capture_on_commit_callbacks(execute=True):
        response = callback(api_client, payment.transaction_id, "success")
    assert response.status_code == 302
    order.refresh_from_db()
    payment.refresh_from_db()
    assert (order.status, payment.status) == ("failed", "failed")
    assert "did not complete" in payment.failure_reason
    assert buyer_mails() == []
    assert bkash_on.only_payment()["transactionStatus"] == "Initiated"


@pytest.mark.parametrize("status, reason", [("cancel", "cancelled"), ("failure", "failed")])
def test_cancel_and_failure_returns_close_the_attempt_and_show_it(
    api_client, bkash_on, voucher, status, reason, django_capture_on_commit_callbacks
):
    order, payment = opened(api_client, voucher, bkash_on)
    with django_capture_on_commit_callbacks(execute=True):
        response = callback(api_client, payment.transaction_id, status)
    assert response.status_code == 302
    order.refresh_from_db()
    payment.refresh_from_db()
    assert (order.status, payment.status) == ("failed", "failed")
    assert reason in payment.failure_reason
    page = api_client.get(response["Location"])
    assert page.status_code == 200 and b"Payment failed" in page.content
    # A new attempt opens a new bKash payment.
    again = api_client.post(f"/api/v1/payments/initiate/{order.id}", {"payment_method": "bkash"}, format="json")
    assert again.status_code == 201, again.content
    assert len(bkash_on.payments) == 2


def test_a_forged_cancel_never_loses_a_payment_the_buyer_then_approves(
    api_client, bkash_on, voucher, django_capture_on_commit_callbacks
):
    order, payment = opened(api_client, voucher, bkash_on)
    with django_capture_on_commit_callbacks(execute=True):
        callback(api_client, payment.transaction_id, "cancel")  # someone else's forged return
    order.refresh_from_db()
    assert order.status == "failed"
    bkash_on.approve(payment.transaction_id)
    with django_capture_on_commit_callbacks(execute=True):
        assert callback(api_client, payment.transaction_id, "success").status_code == 302
    order.refresh_from_db()
    payment.refresh_from_db()
    assert (order.status, payment.status) == ("delivered", "succeeded")
    assert len(buyer_mails()) == 1


def test_replayed_duplicate_and_late_callbacks_after_payment_change_nothing(
    api_client, bkash_on, voucher, django_capture_on_commit_callbacks
):
    order, payment = paid_through_callback(api_client, voucher, bkash_on, django_capture_on_commit_callbacks)
    assert order.status == "delivered"
    events = OrderEvent.objects.filter(order=order).count()
    ledger = LedgerLine.objects.count()
    for status in ("success", "success", "cancel", "failure"):
        with django_capture_on_commit_callbacks(execute=True):
            response = callback(api_client, payment.transaction_id, status)
        assert response.status_code == 302
    order.refresh_from_db()
    payment.refresh_from_db()
    assert (order.status, payment.status) == ("delivered", "succeeded")
    assert len(buyer_mails()) == 1
    assert OrderEvent.objects.filter(order=order).count() == events
    assert LedgerLine.objects.count() == ledger
    # bKash executed it once; the repeats were refused by bKash and answered by its query.
    assert bkash_on.only_payment()["transactionStatus"] == "Completed"


def test_a_callback_for_no_payment_of_ours_is_404_and_calls_nothing(api_client, bkash_on, voucher):
    order, payment = opened(api_client, voucher, bkash_on)
    calls = len(bkash_on.requests)
    response = callback(api_client, "TR0011notours1234567890")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "payment_not_found"
    assert len(bkash_on.requests) == calls
    order.refresh_from_db()
    assert order.status == "pending"


@pytest.mark.parametrize(
    "query",
    [
        {},  # no paymentID
        {"paymentID": "TR1"},  # no status
        {"paymentID": "TR1", "status": "paid"},  # not one of bKash's
        {"paymentID": "TR1", "status": "success", "amount": "1"},  # not a parameter bKash sends
    ],
)
def test_malformed_callbacks_are_400(api_client, bkash_on, query):
    response = api_client.get(CALLBACK, query)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert bkash_on.requests == []


def test_bkash_signature_and_api_version_parameters_are_accepted_but_not_trusted(
    api_client, bkash_on, voucher, django_capture_on_commit_callbacks
):
    order, payment = opened(api_client, voucher, bkash_on)
    with django_capture_on_commit_callbacks(execute=True):
        response = callback(api_client, payment.transaction_id, "success", signature="forged", apiVersion="1.2.0-beta")
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.status == "failed"  # never approved at bKash: the signature changed nothing


@pytest.mark.parametrize(
    "tampered",
    [
        {"amount": "1.00"},
        {"amount": "1500.5001"},
        {"currency": "USD"},
        {"merchantInvoiceNumber": "pay_someoneelse"},
        {"merchantInvoiceNumber": None},
        {"paymentID": "TR0011another"},
    ],
)
def test_a_completed_payment_bkash_reports_differently_is_recorded_not_paid(
    api_client, bkash_on, voucher, tampered, django_capture_on_commit_callbacks
):
    order, payment = opened(api_client, voucher, bkash_on)
    bkash_on.approve(payment.transaction_id)
    bkash_on.tamper(payment.transaction_id, **tampered)
    with django_capture_on_commit_callbacks(execute=True):
        response = callback(api_client, payment.transaction_id)
    assert response.status_code == 302
    order.refresh_from_db()
    payment.refresh_from_db()
    assert (order.status, order.paid_at, payment.status) == ("pending", None, "pending")
    [mismatch] = OrderEvent.objects.filter(order=order, type="payment_mismatch")
    assert mismatch.data == {"payment_id": payment.id}
    assert buyer_mails() == []
    assert LedgerLine.objects.count() == 0


def test_a_failed_execute_fails_the_attempt_and_the_order_can_pay_again(
    api_client, bkash_on, voucher, django_capture_on_commit_callbacks
):
    order, payment = opened(api_client, voucher, bkash_on)
    bkash_on.approve(payment.transaction_id)
    bkash_on.execute_refuses(payment.transaction_id, "2023", "Insufficient Balance")
    with django_capture_on_commit_callbacks(execute=True):
        response = callback(api_client, payment.transaction_id)
    assert response.status_code == 302
    order.refresh_from_db()
    payment.refresh_from_db()
    assert (order.status, payment.status) == ("failed", "failed")
    assert buyer_mails() == []
    again = api_client.post(f"/api/v1/payments/initiate/{order.id}", {"payment_method": "bkash"}, format="json")
    assert again.status_code == 201
    new = Payment.objects.get(pk=again.json()["data"]["id"])
    bkash_on.approve(new.transaction_id)
    with django_capture_on_commit_callbacks(execute=True):
        callback(api_client, new.transaction_id)
    order.refresh_from_db()
    assert order.status == "delivered" and len(buyer_mails()) == 1


def test_a_late_callback_for_a_cancelled_order_is_refunded_through_bkash(
    api_client, bkash_on, voucher, django_capture_on_commit_callbacks
):
    order, payment = opened(api_client, voucher, bkash_on)
    order_cancel(order_id=order.id, message="Expired before payment.")
    bkash_on.approve(payment.transaction_id)
    with django_capture_on_commit_callbacks(execute=True):
        assert callback(api_client, payment.transaction_id).status_code == 302
    order.refresh_from_db()
    payment.refresh_from_db()
    assert order.status == "cancelled"
    refund = Refund.objects.get(payment=payment)
    [at_bkash] = bkash_on.refunds
    assert (refund.source, refund.status, refund.amount) == ("system", "succeeded", PRICE)
    assert refund.gateway_refund_id == at_bkash["refundTrxID"]
    assert payment.status == "refunded"
    assert all("BD-VOUCHER" not in m.body for m in buyer_mails())  # nothing delivered, the seller told


# --- bKash not answering -------------------------------------------------------------------------


def test_bkash_timing_out_at_checkout_is_503_and_the_order_stays_payable(api_client, bkash_on, voucher):
    bkash_on.delay_next(1.5)  # the token grant outlasts BKASH_TIMEOUT_SECONDS
    response = api_client.post(
        f"/api/v1/public/checkout/{voucher.slug}/pay",
        {"buyer_email": "b@example.com", "payment_method": "bkash"},
        format="json",
    )
    assert response.status_code == 503
    assert response.json()["success"] is False
    assert response.json()["error"]["code"] == "service_unavailable"
    order = Order.objects.get()
    assert order.status == "pending"
    assert Payment.objects.get().status == "failed"
    again = api_client.post(f"/api/v1/payments/initiate/{order.id}", {"payment_method": "bkash"}, format="json")
    assert again.status_code == 201, again.content


def test_bkash_down_at_the_callback_is_503_then_a_retry_pays(
    api_client, bkash_on, voucher, django_capture_on_commit_callbacks
):
    order, payment = opened(api_client, voucher, bkash_on)
    bkash_on.approve(payment.transaction_id)
    bkash_on.fail_next(503)
    response = callback(api_client, payment.transaction_id)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"
    order.refresh_from_db()
    payment.refresh_from_db()
    assert (order.status, payment.status) == ("pending", "pending")
    with django_capture_on_commit_callbacks(execute=True):
        assert callback(api_client, payment.transaction_id).status_code == 302
    order.refresh_from_db()
    assert order.status == "delivered" and len(buyer_mails()) == 1


# --- The sweeper: a callback that never comes ----------------------------------------------------


def _age(payment: Payment, minutes: int) -> None:
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(minutes=minutes))


def test_the_sweeper_executes_and_settles_a_payment_whose_callback_never_came(
    api_client, bkash_on, voucher, django_capture_on_commit_callbacks
):
    order, payment = opened(api_client, voucher, bkash_on)
    bkash_on.approve(payment.transaction_id)  # the buyer approved, then closed the tab
    _age(payment, 6)
    with django_capture_on_commit_callbacks(execute=True):
        result = orders_sweep()
    assert result.payments_paid == [payment.id]
    order.refresh_from_db()
    payment.refresh_from_db()
    assert (order.status, payment.status) == ("delivered", "succeeded")
    assert len(buyer_mails()) == 1
    # The next run finds nothing open; the callback arriving late changes nothing.
    with django_capture_on_commit_callbacks(execute=True):
        assert orders_sweep().payments_paid == []
        assert callback(api_client, payment.transaction_id).status_code == 302
    assert len(buyer_mails()) == 1


def test_the_sweeper_settles_a_payment_bkash_failed_and_leaves_young_and_open_ones(
    api_client, bkash_on, voucher, django_capture_on_commit_callbacks
):
    failed_order, failed = opened(api_client, voucher, bkash_on)
    open_order, still_open = opened(api_client, voucher, bkash_on)
    young_order, young = opened(api_client, voucher, bkash_on)
    old_order, too_old = opened(api_client, voucher, bkash_on)
    bkash_on.payments[failed.transaction_id]["transactionStatus"] = "Failed"
    bkash_on.payments[too_old.transaction_id]["transactionStatus"] = "Failed"
    _age(failed, 6)
    _age(still_open, 6)
    _age(too_old, 25 * 60)  # past PAYMENT_STATUS_QUERY_FOR_HOURS: no longer asked
    queries_before = len(bkash_on.requests_to("/tokenized/checkout/payment/status"))
    with django_capture_on_commit_callbacks(execute=True):
        result = orders_sweep()
    assert (result.payments_paid, result.payments_settled, result.payments_unanswered) == ([], [failed.id], [])
    statuses = {p.pk: p.status for p in Payment.objects.all()}
    assert statuses == {failed.pk: "failed", still_open.pk: "pending", young.pk: "pending", too_old.pk: "pending"}
    failed_order.refresh_from_db()
    open_order.refresh_from_db()
    assert (failed_order.status, open_order.status) == ("failed", "pending")
    queried = {r.body["paymentID"] for r in bkash_on.requests_to("/tokenized/checkout/payment/status")[queries_before:]}
    assert young.transaction_id not in queried and queried == {failed.transaction_id, still_open.transaction_id}


def test_the_sweeper_leaves_a_payment_for_the_next_run_when_bkash_does_not_answer(
    api_client, bkash_on, voucher, django_capture_on_commit_callbacks
):
    order, payment = opened(api_client, voucher, bkash_on)
    bkash_on.approve(payment.transaction_id)
    _age(payment, 6)
    bkash_on.fail_next(502)
    result = orders_sweep()
    assert result.payments_unanswered == [payment.id]
    payment.refresh_from_db()
    assert payment.status == "pending"
    with django_capture_on_commit_callbacks(execute=True):
        assert orders_sweep().payments_paid == [payment.id]


# --- Refunds -------------------------------------------------------------------------------------


def test_a_seller_refund_goes_through_bkash_and_records_its_transaction_id(
    api_client, seller_client, bkash_on, voucher, django_capture_on_commit_callbacks
):
    order, payment = paid_through_callback(api_client, voucher, bkash_on, django_capture_on_commit_callbacks)
    trx_id = bkash_on.only_payment()["trxID"]
    with django_capture_on_commit_callbacks(execute=True):
        response = seller_client.post(
            f"/api/v1/orders/{order.id}/refund", {"amount": 50025, "reason": "Buyer asked"}, format="json"
        )
    assert response.status_code == 201, response.content
    [refund] = Refund.objects.filter(order=order)
    [call] = bkash_on.requests_to("/tokenized/checkout/payment/refund")
    assert call.body == {
        "paymentID": payment.transaction_id,
        "trxID": trx_id,
        "amount": "500.25",
        "sku": refund.id,
        "reason": "Buyer asked",
    }
    [at_bkash] = bkash_on.refunds
    assert (refund.status, refund.amount, refund.gateway_refund_id) == ("succeeded", 50025, at_bkash["refundTrxID"])
    order.refresh_from_db()
    assert (order.status, order.refunded_amount) == ("partially_refunded", 50025)


def test_a_refund_bkash_refuses_is_a_failed_refund(
    api_client, seller_client, bkash_on, voucher, django_capture_on_commit_callbacks
):
    order, payment = paid_through_callback(api_client, voucher, bkash_on, django_capture_on_commit_callbacks)
    bkash_on.only_payment()["_refunded"] = PRICE  # refunded at bKash already (e.g. from its merchant portal)
    response = seller_client.post(f"/api/v1/orders/{order.id}/refund", {"reason": "x"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "refund_failed"
    assert Refund.objects.get(order=order).status == "failed"
    order.refresh_from_db()
    assert order.refunded_amount == 0


def test_a_refund_bkash_does_not_answer_stays_pending_so_it_is_never_made_twice(
    api_client, seller_client, bkash_on, voucher, django_capture_on_commit_callbacks
):
    order, payment = paid_through_callback(api_client, voucher, bkash_on, django_capture_on_commit_callbacks)
    bkash_on.delay_next(0.0)  # the status query answers...
    bkash_on.delay_next(1.5)  # ...the refund itself outlasts BKASH_TIMEOUT_SECONDS (bKash may have made it)
    response = seller_client.post(f"/api/v1/orders/{order.id}/refund", {"reason": "x"}, format="json")
    assert response.status_code == 201, response.content
    refund = Refund.objects.get(order=order)
    assert (refund.status, refund.gateway_refund_id) == ("pending", "")
    assert OrderEvent.objects.filter(order=order, type="refund_pending").count() == 1
    # The pending refund holds the amount: asking again is refused, not sent to bKash a second time.
    again = seller_client.post(f"/api/v1/orders/{order.id}/refund", {"reason": "x"}, format="json")
    assert again.status_code in (400, 409, 422), again.content
    assert len(bkash_on.requests_to("/tokenized/checkout/payment/refund")) == 1


def test_a_mismatch_the_sweeper_sees_every_run_is_recorded_once(
    api_client, bkash_on, voucher, django_capture_on_commit_callbacks
):
    order, payment = opened(api_client, voucher, bkash_on)
    bkash_on.approve(payment.transaction_id)
    bkash_on.tamper(payment.transaction_id, amount="1.00")
    _age(payment, 6)
    for _ in range(3):
        orders_sweep()
    assert OrderEvent.objects.filter(order=order, type="payment_mismatch").count() == 1
    payment.refresh_from_db()
    assert payment.status == "pending"


# --- Tokens --------------------------------------------------------------------------------------


def test_the_token_is_cached_refreshed_when_it_expires_and_regranted_when_refused(
    api_client, bkash_on, voucher, settings
):
    from django.core.cache import cache

    fake = bkash_on
    for _ in range(3):
        opened(api_client, voucher, fake)
    assert len(fake.requests_to("/tokenized/checkout/token/grant")) == 1
    assert len(fake.requests_to("/tokenized/checkout/token/refresh")) == 0

    # Our copy expires: renewed with the refresh token, not a new grant.
    key = BkashGateway()._cache_key()
    cache.set(key, {**cache.get(key), "expires_at": 0})
    opened(api_client, voucher, fake)
    [refresh] = fake.requests_to("/tokenized/checkout/token/refresh")
    assert refresh.body["refresh_token"] and refresh.headers["password"] == fake.password
    assert len(fake.requests_to("/tokenized/checkout/token/grant")) == 1

    # bKash no longer takes the token (401): dropped, renewed, and the call made again.
    fake.expire_tokens()
    creates = len(fake.requests_to("/tokenized/checkout/create"))
    opened(api_client, voucher, fake)
    assert len(fake.requests_to("/tokenized/checkout/create")) == creates + 2  # refused once, then made
    assert len(fake.requests_to("/tokenized/checkout/token/refresh")) == 2

    # A refresh token bKash refuses: a new grant.
    cache.set(key, {**cache.get(key), "expires_at": 0, "refresh_token": "eyJstale"})
    opened(api_client, voucher, fake)
    assert len(fake.requests_to("/tokenized/checkout/token/grant")) == 2


def test_wrong_credentials_are_a_clear_gateway_error_and_never_logged(api_client, bkash_on, voucher, settings):
    settings.BKASH_APP_SECRET = "wrong-secret-" + "x" * 20
    secrets_registry.register(settings.BKASH_APP_SECRET, kind="bKash app secret")
    response = api_client.post(
        f"/api/v1/public/checkout/{voucher.slug}/pay",
        {"buyer_email": "b@example.com", "payment_method": "bkash"},
        format="json",
    )
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "gateway_error"
    body = json.dumps(response.json())
    assert settings.BKASH_APP_SECRET not in body and bkash_on.password not in body
    assert Order.objects.get().status == "pending"


# --- The interface: risk -------------------------------------------------------------------------


def test_a_payment_the_gateway_flags_as_risky_pays_the_order_and_holds_it_for_an_operator(
    bkash_on, voucher, monkeypatch, django_capture_on_commit_callbacks
):
    order = make_order(voucher)
    payment = Payment.objects.create(
        order=order, gateway="bkash", amount=order.total_amount, currency="BDT", transaction_id="TR0011risky"
    )

    def risky(self, *, payment):
        return GatewayStatus("succeeded", payment.amount, payment.currency, reference=payment.id, risk="risk level 1")

    monkeypatch.setattr(BkashGateway, "retrieve", risky)
    with django_capture_on_commit_callbacks(execute=True):
        assert payment_apply_gateway_status(payment=payment, source="test") is True
    order.refresh_from_db()
    assert order.status == "needs_attention"
    assert moves(order) == [("pending", "paid"), ("paid", "needs_attention")]
    assert "risk level 1" in OrderEvent.objects.filter(order=order, to_status="needs_attention").get().message
    assert buyer_mails() == []  # nothing delivered
    assert LedgerLine.objects.filter().exists()  # the sale is in the ledger: the money was taken
    # The sweeper does not deliver it either: it waits for an operator.
    with django_capture_on_commit_callbacks(execute=True):
        orders_sweep(now=timezone.now() + timedelta(hours=1))
    order.refresh_from_db()
    assert order.status == "needs_attention" and buyer_mails() == []
