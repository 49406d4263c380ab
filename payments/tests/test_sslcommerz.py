"""SSLCommerz against a local fake of its API (``fake_sslcommerz``), through the real HTTP client:
the session and the hosted page, the signed IPN and the validation API, forged, replayed, duplicate
and late IPNs, tampered validation answers, an IPN that never comes, the browser returns, an
unanswering gateway, refunds and their status query, and the risk level."""

import socket
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from django.conf import settings
from django.urls import reverse

from catalog.tests.factories import ProductFactory, VariantFactory
from orders.models import Order, OrderEvent
from orders.tests.helpers import buyer_mails, make_order
from payments.gateways import get_gateway
from payments.gateways.sslcommerz import SSLCommerzGateway, bdt_text, ipn_signature
from payments.models import Payment, Refund, WebhookEvent
from payments.services import payment_apply_gateway_status, payment_initiate
from tests.campaign.secrets_registry import register

from .fake_sslcommerz import FakeSSLCommerz, fake_sslcommerz, sign  # noqa: F401

pytestmark = pytest.mark.django_db
WEBHOOK_URL = "/api/v1/payments/webhooks/sslcommerz"
RETURN_URL = "https://shop.test/return"
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
def sslcommerz_on(settings, fake_sslcommerz):  # noqa: F811
    settings.ENABLED_PAYMENT_GATEWAYS = ["sandbox", "sslcommerz"]
    settings.SSLCOMMERZ_STORE_ID = fake_sslcommerz.store_id
    settings.SSLCOMMERZ_STORE_PASSWORD = fake_sslcommerz.store_password
    settings.SSLCOMMERZ_API_BASE = fake_sslcommerz.url
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    register(fake_sslcommerz.store_password, kind="SSLCommerz store password")  # never in a log record
    return fake_sslcommerz


@pytest.fixture
def bdt_product(seller):
    product = ProductFactory(seller=seller, currency="BDT", title="Mobile top-up", delivery_content="TOPUP-CODE-1")
    VariantFactory(product=product, name="1500 Taka", price=PRICE)
    return product


@pytest.fixture
def opened(sslcommerz_on, bdt_product):
    order = make_order(bdt_product)
    payment = payment_initiate(order=order, gateway_name="sslcommerz", return_url=RETURN_URL)
    return order, payment, sslcommerz_on


def post_ipn(client, body: bytes):
    return client.generic("POST", WEBHOOK_URL, body, content_type="application/x-www-form-urlencoded")


def snapshot(order, payment):
    order.refresh_from_db()
    payment.refresh_from_db()
    return (order.status, order.paid_at, payment.status, payment.transaction_id, OrderEvent.objects.count())


# --- Opening a payment ---------------------------------------------------------------------------


def test_checkout_opens_a_session_and_sends_the_buyer_to_its_page(api_client, sslcommerz_on, bdt_product):
    response = api_client.post(
        f"/api/v1/public/checkout/{bdt_product.slug}/pay",
        {"buyer_email": "rahim@example.com", "payment_method": "sslcommerz", "quantity": 2},
        format="json",
    )
    assert response.status_code == 201, response.json()
    order, payment = Order.objects.get(), Payment.objects.get()
    session = sslcommerz_on.only_session()
    [request] = sslcommerz_on.requests_to("/gwprocess/v4/api.php")
    assert request.method == "POST"
    assert response.json()["data"]["payment"]["redirect_url"] == payment.redirect_url
    assert payment.redirect_url == f"{sslcommerz_on.url}/EasyCheckOut/{payment.transaction_id}"
    assert (payment.gateway, payment.status, payment.amount, payment.currency) == (
        "sslcommerz",
        "pending",
        300100,
        "BDT",
    )
    site = settings.SITE_URL
    assert {k: session[k] for k in ("total_amount", "currency", "tran_id", "store_id", "store_passwd")} == {
        "total_amount": "3001.00",
        "currency": "BDT",
        "tran_id": payment.id,
        "store_id": sslcommerz_on.store_id,
        "store_passwd": sslcommerz_on.store_password,
    }
    assert session["ipn_url"] == site + WEBHOOK_URL
    for outcome in ("success", "fail", "cancel"):
        assert session[f"{outcome}_url"] == site + f"/c/payments/sslcommerz/{payment.id}/{outcome}"
    assert session["cus_email"] == "rahim@example.com"
    assert session["product_profile"] == "non-physical-goods"
    assert session["num_of_item"] == "2"
    assert session["value_a"] == str(order.order_number)  # never the order id: it is the buyer's capability
    assert order.id not in " ".join(session.values())


def test_amounts_travel_as_bdt_major_units():
    assert [bdt_text(a) for a in (1000, 150050, 5, 100000000)] == ["10.00", "1500.50", "0.05", "1000000.00"]


def test_a_product_in_another_currency_cannot_choose_sslcommerz_and_nothing_is_created(
    api_client, sslcommerz_on, text_product
):
    response = api_client.post(
        f"/api/v1/public/checkout/{text_product.slug}/pay",
        {"buyer_email": "b@example.com", "payment_method": "sslcommerz"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["payment_method"] == [
        "This payment method does not take USD (BDT only). Choose another one."
    ]
    assert (Order.objects.count(), Payment.objects.count(), sslcommerz_on.requests) == (0, 0, [])


def test_sslcommerz_not_enabled_is_refused(api_client, settings, bdt_product):
    settings.ENABLED_PAYMENT_GATEWAYS = ["sandbox"]
    response = api_client.post(
        f"/api/v1/public/checkout/{bdt_product.slug}/pay",
        {"buyer_email": "b@example.com", "payment_method": "sslcommerz"},
        format="json",
    )
    assert response.status_code == 400
    assert Order.objects.count() == 0
    assert post_ipn(api_client, b"tran_id=x").status_code == 404


def test_a_session_sslcommerz_refuses_is_a_clear_502_and_the_order_stays_payable(
    api_client, sslcommerz_on, bdt_product, settings
):
    settings.SSLCOMMERZ_STORE_PASSWORD = "not-the-store-password"
    response = api_client.post(
        f"/api/v1/public/checkout/{bdt_product.slug}/pay",
        {"buyer_email": "b@example.com", "payment_method": "sslcommerz"},
        format="json",
    )
    assert response.status_code == 502
    assert response.json()["error"]["message"] == (
        "SSLCommerz refused the payment session: Store Credential Error Or Store is De-active"
    )
    assert "not-the-store-password" not in response.content.decode()
    order = Order.objects.get()
    assert (order.status, Payment.objects.get().status) == ("pending", "failed")


@pytest.mark.parametrize("failure", ["503", "refused"])
def test_a_gateway_that_does_not_answer_is_503_and_the_order_stays_payable(
    api_client, sslcommerz_on, bdt_product, settings, failure
):
    if failure == "503":
        sslcommerz_on.fail_next(503)
    else:
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            port = closed.getsockname()[1]
        settings.SSLCOMMERZ_API_BASE = f"http://127.0.0.1:{port}"
    response = api_client.post(
        f"/api/v1/public/checkout/{bdt_product.slug}/pay",
        {"buyer_email": "b@example.com", "payment_method": "sslcommerz"},
        format="json",
    )
    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] == "service_unavailable"
    order = Order.objects.get()
    assert (order.status, Payment.objects.get().status) == ("pending", "failed")
    # Once SSLCommerz answers again, the same order opens a new payment.
    settings.SSLCOMMERZ_API_BASE = sslcommerz_on.url
    again = api_client.post(f"/api/v1/payments/initiate/{order.id}", {"payment_method": "sslcommerz"}, format="json")
    assert again.status_code == 201, again.content
    assert Payment.objects.filter(status="pending").count() == 1


def test_a_page_outside_sslcommerz_is_refused(sslcommerz_on, bdt_product, monkeypatch):
    original = FakeSSLCommerz._open_session

    def elsewhere(self, params):
        answer = original(self, params)
        answer["GatewayPageURL"] = "https://evil.example/pay"
        return answer

    monkeypatch.setattr(FakeSSLCommerz, "_open_session", elsewhere)
    order = make_order(bdt_product)
    with pytest.raises(Exception, match="outside SSLCommerz"):
        payment_initiate(order=order, gateway_name="sslcommerz", return_url=RETURN_URL)
    assert Payment.objects.get().status == "failed"


# --- The IPN, validated server-side ---------------------------------------------------------------


def test_a_signed_ipn_is_validated_then_paid_and_delivered(api_client, opened, django_capture_on_commit_callbacks):
    order, payment, fake = opened
    record = fake.pay(payment.id)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_ipn(api_client, fake.ipn_body(record))
    assert response.status_code == 200, response.content
    assert response.json()["data"]["status"] == "processed"
    order.refresh_from_db()
    payment.refresh_from_db()
    assert order.status == "delivered"
    assert (payment.status, payment.transaction_id) == ("succeeded", record["bank_tran_id"])
    [validation] = fake.requests_to("/validator/api/validationserverAPI.php")
    assert validation.method == "GET"
    assert validation.params == {
        "val_id": record["val_id"],
        "store_id": fake.store_id,
        "store_passwd": fake.store_password,
        "v": "1",
        "format": "json",
    }
    assert len(buyer_mails()) == 1
    event = WebhookEvent.objects.get()
    assert (event.event_id, event.type, event.payment_ref) == (
        f"ipn:{record['val_id']}",
        "payment.succeeded",
        payment.id,
    )
    assert "verify_sign" not in event.payload and fake.store_password not in str(event.payload)


def test_the_signature_is_sslcommerz_s_md5_over_the_listed_keys():
    fields = {"tran_id": "pay_1", "status": "VALID", "amount": "10.00", "verify_key": "tran_id,status,amount"}
    assert ipn_signature(fields, "secret") == sign(fields, "secret")
    # SSLCommerz's PHP library, done by hand: sorted keys, md5 of the store password among them.
    import hashlib

    text = "amount=10.00&status=VALID&store_passwd=" + hashlib.md5(b"secret").hexdigest() + "&tran_id=pay_1"  # noqa: S324
    assert ipn_signature(fields, "secret") == hashlib.md5(text.encode()).hexdigest()  # noqa: S324


def _forged(fake, record, kind):
    if kind == "wrong-password":
        return fake.ipn_body(record, password="guessed-password")
    if kind == "amount-changed-after-signing":
        return fake.ipn_body(record, amount="1.00")
    if kind == "no-signature":
        return urlencode({k: v for k, v in parse_qsl(fake.ipn_body(record).decode()) if k != "verify_sign"}).encode()
    if kind == "tran_id-not-signed":
        fields = dict(parse_qsl(fake.ipn_body(record).decode()))
        fields["verify_key"] = ",".join(k for k in fields["verify_key"].split(",") if k != "tran_id")
        fields["verify_sign"] = sign(fields, fake.store_password)
        return urlencode(fields).encode()
    if kind == "repeated-field":
        return fake.ipn_body(record) + b"&tran_id=pay_other"
    if kind == "another-store":
        return fake.ipn_body({**record, "store_id": "otherstore"})
    if kind == "not-utf8":
        return b"tran_id=\xff\xfe&verify_sign=x&verify_key=tran_id"
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    [
        "wrong-password",
        "amount-changed-after-signing",
        "no-signature",
        "tran_id-not-signed",
        "repeated-field",
        "another-store",
        "not-utf8",
    ],
)
def test_a_forged_ipn_is_400_and_changes_nothing(api_client, opened, kind):
    order, payment, fake = opened
    record = fake.pay(payment.id)
    before = snapshot(order, payment)
    calls = len(fake.requests)
    response = post_ipn(api_client, _forged(fake, record, kind))
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_signature"
    assert snapshot(order, payment) == before
    assert WebhookEvent.objects.count() == 0
    assert len(fake.requests) == calls  # nothing was even asked of SSLCommerz


def test_no_store_password_configured_refuses_every_ipn(api_client, opened, settings):
    order, payment, fake = opened
    body = fake.ipn_body(fake.pay(payment.id))
    settings.SSLCOMMERZ_STORE_PASSWORD = ""
    assert post_ipn(api_client, body).status_code == 400
    assert WebhookEvent.objects.count() == 0


def test_a_replayed_ipn_is_stored_and_acted_on_once(api_client, opened, django_capture_on_commit_callbacks):
    order, payment, fake = opened
    body = fake.ipn_body(fake.pay(payment.id))
    with django_capture_on_commit_callbacks(execute=True):
        first = post_ipn(api_client, body)
    after_first = snapshot(order, payment)
    calls = len(fake.requests)
    with django_capture_on_commit_callbacks(execute=True):
        again = post_ipn(api_client, body)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json()["data"]["duplicate"] is True
    assert snapshot(order, payment) == after_first
    assert len(fake.requests) == calls
    assert WebhookEvent.objects.count() == 1
    assert len(buyer_mails()) == 1


def test_an_ipn_of_another_payment_replayed_here_pays_nothing(api_client, sslcommerz_on, bdt_product):
    """A genuine, signed IPN for payment A names A: it can only ever act on A."""
    order_a = make_order(bdt_product)
    order_b = make_order(bdt_product, email="other@example.com")
    pay_a = payment_initiate(order=order_a, gateway_name="sslcommerz", return_url=RETURN_URL)
    pay_b = payment_initiate(order=order_b, gateway_name="sslcommerz", return_url=RETURN_URL)
    record = sslcommerz_on.pay(pay_a.id)
    # Re-signing with B's tran_id needs the store password: without it, the signature breaks.
    assert post_ipn(api_client, sslcommerz_on.ipn_body(record, tran_id=pay_b.id)).status_code == 400
    order_b.refresh_from_db()
    assert order_b.status == "pending"


@pytest.mark.parametrize(
    "tampered",
    [{"amount": "1.00", "currency_amount": "1.00"}, {"amount": "1.00"}, {"currency": "USD"}, {"currency_type": "USD"}],
    ids=["amount", "amount-only", "currency", "currency-type"],
)
def test_a_validation_that_disagrees_on_amount_or_currency_is_not_paid(
    api_client, opened, django_capture_on_commit_callbacks, tampered
):
    order, payment, fake = opened
    record = fake.pay(payment.id)
    fake.tamper(record["val_id"], **tampered)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_ipn(api_client, fake.ipn_body(record))
    assert response.status_code == 200
    assert response.json()["data"]["status"] == "rejected"
    order.refresh_from_db()
    payment.refresh_from_db()
    assert (order.status, order.paid_at, payment.status) == ("pending", None, "pending")
    assert OrderEvent.objects.filter(order=order, type="payment_mismatch").count() == 1
    assert len(buyer_mails()) == 0


def test_a_validation_for_another_tran_id_is_not_paid(api_client, opened, django_capture_on_commit_callbacks):
    order, payment, fake = opened
    record = fake.pay(payment.id)
    fake.tamper(record["val_id"], tran_id="pay_someone_else")
    fake.transactions[payment.id][0]["status"] = "PENDING"  # and the query knows of nothing paid
    with django_capture_on_commit_callbacks(execute=True):
        response = post_ipn(api_client, fake.ipn_body(record))
    assert response.json()["data"]["status"] == "rejected"
    order.refresh_from_db()
    assert order.status == "pending"
    assert OrderEvent.objects.filter(order=order, type="webhook_rejected").count() == 1


@pytest.mark.parametrize("status", ["INVALID_TRANSACTION", "FAILED"])
def test_an_ipn_whose_validation_is_invalid_is_rejected(api_client, opened, django_capture_on_commit_callbacks, status):
    order, payment, fake = opened
    record = fake.pay(payment.id)
    fake.tamper(record["val_id"], status=status)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_ipn(api_client, fake.ipn_body(record))
    assert response.json()["data"]["status"] == "rejected"
    order.refresh_from_db()
    payment.refresh_from_db()
    assert (order.status, payment.status) == ("pending", "pending")
    assert len(buyer_mails()) == 0


@pytest.mark.parametrize("status", ["FAILED", "CANCELLED"])
def test_a_failed_or_cancelled_payment_fails_the_order(api_client, opened, django_capture_on_commit_callbacks, status):
    order, payment, fake = opened
    with django_capture_on_commit_callbacks(execute=True):
        response = post_ipn(api_client, fake.ipn_body(fake.decline(payment.id, status=status)))
    assert response.status_code == 200
    order.refresh_from_db()
    payment.refresh_from_db()
    assert (order.status, payment.status) == ("failed", "failed")
    assert fake.requests_to("/validator/api/validationserverAPI.php") == []  # nothing to validate


def test_duplicate_and_late_ipns_never_move_a_delivered_order(api_client, opened, django_capture_on_commit_callbacks):
    order, payment, fake = opened
    record = fake.pay(payment.id)
    body = fake.ipn_body(record)
    with django_capture_on_commit_callbacks(execute=True):
        assert post_ipn(api_client, body).status_code == 200
    # SSLCommerz sends it again (a duplicate), then a stale FAILED for an earlier attempt (late).
    fake.transactions[payment.id].insert(0, {**fake.transactions[payment.id][0], "status": "FAILED", "val_id": ""})
    late = fake.ipn_body(
        {k: v for k, v in record.items() if k != "val_id"} | {"status": "FAILED", "tran_date": "2026-12-03 17:59:00"}
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert post_ipn(api_client, body).json()["data"]["duplicate"] is True
        assert post_ipn(api_client, late).status_code == 200
    order.refresh_from_db()
    payment.refresh_from_db()
    assert (order.status, payment.status) == ("delivered", "succeeded")
    assert len(buyer_mails()) == 1
    assert WebhookEvent.objects.count() == 2


def test_an_ipn_while_sslcommerz_does_not_answer_is_kept_for_its_retry(
    api_client, opened, django_capture_on_commit_callbacks
):
    order, payment, fake = opened
    body = fake.ipn_body(fake.pay(payment.id))
    fake.fail_next(503)
    first = post_ipn(api_client, body)
    assert first.status_code == 503  # SSLCommerz retries an IPN that was not answered 200
    order.refresh_from_db()
    assert order.status == "pending"
    with django_capture_on_commit_callbacks(execute=True):
        assert post_ipn(api_client, body).status_code == 200
    order.refresh_from_db()
    assert order.status == "delivered"


# --- retrieve: the transaction query by tran_id (the IPN that never comes) ------------------------


def test_retrieve_without_an_ipn_asks_the_transaction_query_then_validates(opened):
    order, payment, fake = opened
    gateway = get_gateway("sslcommerz")
    assert gateway.retrieve(payment=payment).status == "pending"  # nothing attempted yet
    record = fake.pay(payment.id)
    status = gateway.retrieve(payment=payment)
    assert (status.status, status.amount, status.currency, status.transaction_id, status.risk) == (
        "succeeded",
        PRICE,
        "BDT",
        record["bank_tran_id"],
        "",
    )
    query = fake.requests_to("/validator/api/merchantTransIDvalidationAPI.php")[-1]
    assert query.params == {
        "tran_id": payment.id,
        "store_id": fake.store_id,
        "store_passwd": fake.store_password,
        "format": "json",
    }
    assert fake.requests_to("/validator/api/validationserverAPI.php")[-1].params["val_id"] == record["val_id"]


def test_an_ipn_that_never_comes_is_settled_by_asking_sslcommerz(opened, django_capture_on_commit_callbacks):
    order, payment, fake = opened
    fake.pay(payment.id)
    with django_capture_on_commit_callbacks(execute=True):
        assert payment_apply_gateway_status(payment=payment, source="sweeper") is True
    order.refresh_from_db()
    assert order.status == "delivered"
    assert len(buyer_mails()) == 1


def test_retrieve_reports_a_declined_payment_as_failed(opened):
    order, payment, fake = opened
    fake.decline(payment.id, status="CANCELLED")
    assert get_gateway("sslcommerz").retrieve(payment=payment).status == "failed"


def test_retrieve_while_sslcommerz_is_down_raises_unavailable(opened):
    from payments.gateways import GatewayUnavailable

    order, payment, fake = opened
    fake.fail_next(503)
    with pytest.raises(GatewayUnavailable) as raised:
        get_gateway("sslcommerz").retrieve(payment=payment)
    assert fake.store_password not in str(raised.value)


@pytest.mark.parametrize(("risk_level", "risk"), [("1", "high"), ("0", "")])
def test_the_risk_level_is_carried_on_the_status(opened, risk_level, risk):
    order, payment, fake = opened
    fake.pay(payment.id, risk_level=risk_level)
    assert get_gateway("sslcommerz").retrieve(payment=payment).risk == risk


def test_e2e_a_risky_sslcommerz_payment_goes_to_needs_attention_instead_of_delivering(
    api_client, opened, django_capture_on_commit_callbacks
):
    order, payment, fake = opened
    with django_capture_on_commit_callbacks(execute=True):
        assert post_ipn(api_client, fake.ipn_body(fake.pay(payment.id, risk_level="1"))).status_code == 200
    order.refresh_from_db()
    assert order.status == "needs_attention"
    assert not order.items.filter(fulfilled_at__isnull=False).exists()


# --- The browser returns ---------------------------------------------------------------------------


def test_a_browser_return_claiming_success_believes_nothing(client, opened):
    order, payment, fake = opened
    forged = {"status": "VALID", "tran_id": payment.id, "val_id": "made-up", "amount": "1500.50"}
    response = client.post(reverse("checkout:sslcommerz-return", args=[payment.id, "success"]), forged)
    assert response.status_code == 303
    assert response["Location"] == reverse("checkout:success", args=[order.product.slug, order.id])
    order.refresh_from_db()
    assert order.status == "pending"
    assert all(r.params.get("val_id") != "made-up" for r in fake.requests)


def test_the_success_return_settles_a_payment_whose_ipn_is_late(client, opened, django_capture_on_commit_callbacks):
    order, payment, fake = opened
    fake.pay(payment.id)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("checkout:sslcommerz-return", args=[payment.id, "success"]), {})
    assert response.status_code == 303
    order.refresh_from_db()
    assert order.status == "delivered"


def test_the_cancel_return_shows_the_order_and_it_can_be_paid_again(client, api_client, opened):
    order, payment, fake = opened
    fake.decline(payment.id, status="CANCELLED")
    response = client.post(reverse("checkout:sslcommerz-return", args=[payment.id, "cancel"]), {})
    assert response.status_code == 303
    order.refresh_from_db()
    assert order.status == "failed"
    again = api_client.post(f"/api/v1/payments/initiate/{order.id}", {"payment_method": "sslcommerz"}, format="json")
    assert again.status_code == 201


@pytest.mark.parametrize("path", [("pay_unknown", "success"), (None, "elsewhere")])
def test_a_return_for_an_unknown_payment_or_outcome_is_404(client, opened, path):
    order, payment, fake = opened
    payment_id, outcome = path
    response = client.post(reverse("checkout:sslcommerz-return", args=[payment_id or payment.id, outcome]), {})
    assert response.status_code == 404


def test_a_return_is_post_only(client, opened):
    order, payment, fake = opened
    assert client.get(reverse("checkout:sslcommerz-return", args=[payment.id, "success"])).status_code == 405


# --- Refunds ----------------------------------------------------------------------------------------


def _paid(api_client, opened, capture):
    order, payment, fake = opened
    with capture(execute=True):
        assert post_ipn(api_client, fake.ipn_body(fake.pay(payment.id))).status_code == 200
    order.refresh_from_db()
    payment.refresh_from_db()
    return order, payment, fake


def test_a_refund_goes_through_the_refund_api_and_its_status_query(
    seller_client, api_client, opened, django_capture_on_commit_callbacks
):
    order, payment, fake = _paid(api_client, opened, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        response = seller_client.post(
            f"/api/v1/orders/{order.id}/refund", {"amount": 50050, "reason": "Wrong operator"}, format="json"
        )
    assert response.status_code in (200, 201), response.content
    refund = Refund.objects.get()
    assert (refund.status, refund.amount) == ("succeeded", 50050)
    [(ref, sent)] = fake.refunds.items()
    assert refund.gateway_refund_id == ref
    assert sent == {
        "bank_tran_id": payment.transaction_id,
        "tran_id": payment.id,
        "refund_amount": "500.50",
        "refund_remarks": "Wrong operator",
        "refe_id": refund.id,
    }
    [status_query] = [r for r in fake.requests if "refund_ref_id" in r.params]
    assert status_query.params["refund_ref_id"] == ref
    order.refresh_from_db()
    assert (order.status, order.refunded_amount) == ("partially_refunded", 50050)
    assert get_gateway("sslcommerz").retrieve_refunded(payment=payment) == 50050


def test_a_refund_still_processing_at_sslcommerz_stays_pending(
    seller_client, api_client, opened, django_capture_on_commit_callbacks
):
    order, payment, fake = _paid(api_client, opened, django_capture_on_commit_callbacks)
    fake.refund_outcome = "processing"
    with django_capture_on_commit_callbacks(execute=True):
        seller_client.post(f"/api/v1/orders/{order.id}/refund", {"reason": "Duplicate"}, format="json")
    refund = Refund.objects.get()
    assert (refund.status, refund.amount) == ("pending", PRICE)
    assert get_gateway("sslcommerz").retrieve_refunded(payment=payment) == 0


def test_a_refund_taken_whose_status_query_fails_stays_pending(
    api_client, opened, django_capture_on_commit_callbacks, monkeypatch
):
    """SSLCommerz took the refund, then its status query does not answer: the refund must not be
    reported failed (it would be asked for, and paid out, again)."""
    order, payment, fake = _paid(api_client, opened, django_capture_on_commit_callbacks)
    take_refund = FakeSSLCommerz._refund

    def refund_then_go_down(self, params):
        answer = take_refund(self, params)
        self._failures.append(503)  # the next request (the status query) answers 503
        return answer

    monkeypatch.setattr(FakeSSLCommerz, "_refund", refund_then_go_down)
    answer = get_gateway("sslcommerz").refund(payment=payment, amount=100, reason="r", idempotency_key="rfd_z")
    [ref] = fake.refunds
    assert (answer.status, answer.refund_id) == ("pending", ref)


def test_a_refund_sslcommerz_refuses_is_a_failed_refund(api_client, opened, django_capture_on_commit_callbacks):
    order, payment, fake = _paid(api_client, opened, django_capture_on_commit_callbacks)
    answer = get_gateway("sslcommerz").refund(payment=payment, amount=PRICE + 1, reason="", idempotency_key="rfd_x")
    assert (answer.status, answer.failure_reason) == (
        "failed",
        "SSLCommerz: Refund amount exceeds the transaction amount",
    )
    assert fake.refunds == {}


def test_a_refund_of_a_payment_sslcommerz_never_took_fails_without_asking(opened):
    order, payment, fake = opened
    answer = SSLCommerzGateway().refund(payment=payment, amount=100, reason="", idempotency_key="rfd_y")
    assert answer.status == "failed"
    assert fake.refunds == {}
    assert not any("bank_tran_id" in r.params for r in fake.requests)


# --- Settings ----------------------------------------------------------------------------------------


def test_sslcommerz_is_enabled_by_its_store_setting():
    from marketplace.settings import base

    assert ("sslcommerz" in base.ENABLED_PAYMENT_GATEWAYS) == bool(base.SSLCOMMERZ_STORE_ID)
    assert SSLCommerzGateway()._base() in ("https://sandbox.sslcommerz.com", settings.SSLCOMMERZ_API_BASE)


def test_the_live_base_is_used_off_the_sandbox(settings):
    settings.SSLCOMMERZ_API_BASE = ""
    settings.SSLCOMMERZ_SANDBOX = False
    assert SSLCommerzGateway()._base() == "https://securepay.sslcommerz.com"
    settings.SSLCOMMERZ_SANDBOX = True
    assert SSLCommerzGateway()._base() == "https://sandbox.sslcommerz.com"


def test_without_private_urls_the_fake_on_loopback_is_refused(opened, settings):
    """In production the guarded client refuses http:// and loopback: the store password never
    goes anywhere but a public https host."""
    from payments.gateways import GatewayUnavailable

    order, payment, fake = opened
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    calls = len(fake.requests)
    with pytest.raises(GatewayUnavailable):
        get_gateway("sslcommerz").retrieve(payment=payment)
    assert len(fake.requests) == calls
    assert urlsplit(fake.url).hostname == "127.0.0.1"
