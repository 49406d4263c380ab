"""Real concurrent transactions (not one test transaction, which would hide the locking)."""

import threading
from collections import Counter

import pytest
from django.db import connection
from rest_framework.test import APIClient

from catalog.tests.factories import ProductFactory, VariantFactory
from orders.models import Order

pytestmark = pytest.mark.django_db(transaction=True)


def run_concurrently(count, func):
    barrier = threading.Barrier(count)
    results = [None] * count

    def worker(index):
        try:
            barrier.wait(timeout=10)
            results[index] = func(index)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_concurrent_requests_with_one_key_make_one_order(seller):
    product = ProductFactory(seller=seller)
    VariantFactory(product=product, price=500)
    body = {"buyer_email": "race@example.com", "quantity": 1}

    def pay(_):
        response = APIClient().post(
            f"/api/v1/public/checkout/{product.slug}/pay", body, format="json", HTTP_IDEMPOTENCY_KEY="race-key"
        )
        return response.status_code, response.json()["data"]["id"]

    results = run_concurrently(6, pay)
    assert Order.objects.filter(product=product).count() == 1
    statuses = Counter(status for status, _ in results)
    assert statuses == Counter({201: 1, 200: 5})
    assert len({order_id for _, order_id in results}) == 1


def test_concurrent_buyers_never_oversell(seller):
    product = ProductFactory(seller=seller)
    variant = VariantFactory(product=product, price=500, stock=3)

    def pay(index):
        response = APIClient().post(
            f"/api/v1/public/checkout/{product.slug}/pay", {"buyer_email": f"b{index}@example.com"}, format="json"
        )
        return response.status_code

    results = run_concurrently(8, pay)
    assert Counter(results) == Counter({201: 3, 409: 5})
    variant.refresh_from_db()
    assert variant.stock == 0
    assert Order.objects.filter(product=product).count() == 3


def test_buyers_racing_for_a_small_pool_get_exactly_the_pool(seller):
    from catalog.inventory import CodeRow, codes_import
    from catalog.models import Code, DeliveryType

    product = ProductFactory(seller=seller, delivery_type=DeliveryType.CODE_POOL, delivery_content="")
    variant = VariantFactory(product=product, price=500)
    codes_import(variant=variant, rows=[CodeRow(i, f"RACE-{i:03d}") for i in range(5)])

    def pay(index):
        response = APIClient().post(
            f"/api/v1/public/checkout/{product.slug}/pay", {"buyer_email": f"r{index}@example.com"}, format="json"
        )
        return response.status_code, response.json()

    results = run_concurrently(12, pay)
    statuses = Counter(status for status, _ in results)
    assert statuses == Counter({201: 5, 409: 7})
    assert all(body["error"]["code"] == "out_of_stock" for status, body in results if status == 409)
    allocated = list(Code.objects.filter(variant=variant).values_list("order_item_id", flat=True))
    assert len(allocated) == 5 and None not in allocated
    assert len(set(allocated)) == 5  # every code to a different item, every item one code
    assert Order.objects.filter(product=product).count() == 5


def test_one_paid_webhook_delivered_many_times_at_once_delivers_once(seller):
    from django.core import mail

    from catalog.inventory import CodeRow, codes_import
    from catalog.models import Code, DeliveryType
    from orders.models import OrderEvent
    from payments.models import SandboxPayment, WebhookEvent
    from payments.sandbox_server.server import sign_event
    from payments.services import payment_initiate

    product = ProductFactory(seller=seller, delivery_type=DeliveryType.CODE_POOL, delivery_content="")
    variant = VariantFactory(product=product, price=500)
    codes_import(variant=variant, rows=[CodeRow(i, f"ONCE-{i}") for i in range(3)])
    order = (
        APIClient()
        .post(
            f"/api/v1/public/checkout/{product.slug}/pay",
            {"buyer_email": "once@example.com", "init_payment": False},
            format="json",
        )
        .json()["data"]
    )
    payment = payment_initiate(
        order=Order.objects.get(pk=order["id"]), gateway_name="sandbox", return_url="https://x.test/r"
    )
    SandboxPayment.objects.filter(id=payment.id).update(status="succeeded", charge_id="sbxch_once")
    event = {
        "id": "evt_once",
        "type": "payment.succeeded",
        "data": {"payment_id": payment.id, "order_id": order["id"], "amount": 500, "currency": "USD"},
    }
    body, headers = sign_event(event)
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}

    def deliver(_):
        return (
            APIClient()
            .generic("POST", "/api/v1/payments/webhooks/sandbox", body, content_type="application/json", **extra)
            .status_code
        )

    results = run_concurrently(6, deliver)
    assert set(results) == {200}
    stored = Order.objects.get(pk=order["id"])
    assert stored.status == "delivered"
    assert WebhookEvent.objects.count() == 1
    assert OrderEvent.objects.filter(order=stored, type="email_sent").count() == 1
    assert len([m for m in mail.outbox if m.to == ["once@example.com"]]) == 1
    assert Code.objects.filter(status="DELIVERED").count() == 1
    assert OrderEvent.objects.filter(order=stored, to_status="paid").count() == 1


def test_two_activations_at_once_never_exceed_the_limit(seller, django_capture_on_commit_callbacks):
    from catalog.models import DeliveryType
    from orders.models import License, LicenseActivation
    from orders.services import CheckoutLine, order_create, order_fulfill, order_mark_paid

    product = ProductFactory(
        seller=seller,
        delivery_type=DeliveryType.LICENSE_KEY,
        delivery_content="",
        delivery_options={"license": {"activation_limit": 1}},
    )
    variant = VariantFactory(product=product)
    order = order_create(product=product, buyer_email="l@x.co", lines=[CheckoutLine(variant.id, 1)]).order
    order_mark_paid(order_id=order.id, payment_id="pay_x")
    order_fulfill(order_id=order.id)
    key = License.objects.get().key

    def activate(index):
        return (
            APIClient()
            .post("/api/v1/licenses/activate", {"license_key": key, "instance_name": f"m{index}"}, format="json")
            .status_code
        )

    results = run_concurrently(6, activate)
    assert Counter(results) == Counter({201: 1, 409: 5})
    assert LicenseActivation.objects.count() == 1


def test_concurrent_refunds_never_return_more_than_was_paid(seller, text_product):
    from rest_framework_simplejwt.tokens import RefreshToken

    from orders.services import order_fulfill
    from payments.models import Refund, SandboxPayment
    from payments.sandbox_server.server import sandbox_complete
    from payments.services import payment_initiate

    from .helpers import make_order

    order = make_order(text_product)
    payment = payment_initiate(order=order, gateway_name="sandbox", return_url="https://x.test/r")
    sandbox_complete(payment_id=payment.id, outcome="succeeded")
    order_fulfill(order_id=order.id)
    token = str(RefreshToken.for_user(seller).access_token)

    def refund(_):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client.post(f"/api/v1/orders/{order.id}/refund", {"amount": 1500}, format="json").status_code

    results = run_concurrently(4, refund)  # 4 × 15.00 asked of a 19.99 order
    assert Counter(results) == Counter({201: 1, 400: 3})
    order.refresh_from_db()
    assert order.refunded_amount == 1500
    assert SandboxPayment.objects.get(id=payment.id).refunded_amount == 1500
    assert Refund.objects.filter(status="succeeded").count() == 1


def test_max_uses_holds_under_a_rush(seller):
    from catalog.discounts import discount_save
    from catalog.models import Discount

    product = ProductFactory(seller=seller)
    VariantFactory(product=product, price=1000)
    discount = discount_save(seller=seller, data={"code": "RUSH", "kind": "percent", "value": 50, "max_uses": 3})

    def pay(index):
        return (
            APIClient()
            .post(
                f"/api/v1/public/checkout/{product.slug}/pay",
                {"buyer_email": f"rush{index}@example.com", "discount_code": "rush"},
                format="json",
            )
            .status_code
        )

    results = run_concurrently(10, pay)
    assert Counter(results) == Counter({201: 3, 422: 7})
    discount.refresh_from_db()
    assert discount.uses == 3
    assert Order.objects.filter(product=product, discount_code="RUSH").count() == 3
    assert not Discount.objects.filter(uses__gt=3).exists()


def test_two_workers_fulfilling_one_partner_order_store_one_code_per_unit(seller):
    """Even a partner that is NOT idempotent (a new code on every call) never gets an item more codes
    than units: each unit's code is stored once, whoever fetched it."""
    import itertools
    from unittest import mock

    from catalog.models import Code, DeliveryType
    from orders.services import CheckoutLine, order_create, order_fulfill, order_mark_paid

    from .test_partner_and_multi_item import SECRET, Partner

    partner = Partner()
    counter = itertools.count(1)
    partner.script = [(200, lambda body: {"code": f"FRESH-{next(counter):04d}"})]
    try:
        product = ProductFactory(
            seller=seller,
            delivery_type=DeliveryType.PARTNER_API,
            delivery_content="",
            delivery_options={"partner": {"url": partner.url, "secret": SECRET}},
        )
        variant = VariantFactory(product=product)
        order = order_create(product=product, buyer_email="w@x.co", lines=[CheckoutLine(variant.id, 3)]).order
        with mock.patch("orders.tasks.fulfill_order.delay"):
            order_mark_paid(order_id=order.id, payment_id="pay_x")
        outcomes = run_concurrently(3, lambda _: order_fulfill(order_id=order.id).outcome)
    finally:
        partner.close()
    assert "delivered" in outcomes
    item = order.items.get()
    units = list(Code.objects.filter(order_item=item).order_by("unit").values_list("unit", flat=True))
    assert units == [1, 2, 3]
    order.refresh_from_db()
    assert order.status == "delivered"
    from orders.models import OrderEvent

    assert OrderEvent.objects.filter(order=order, type="email_sent").count() == 1


def test_concurrent_seat_refunds_disable_one_key_each(seller):
    """Two sellers' clicks at once, each refunding one of three licence seats: two keys disabled,
    exactly one still valid (each refund counts the seats under the order's lock)."""
    from rest_framework_simplejwt.tokens import RefreshToken

    from catalog.models import DeliveryType
    from orders.models import License
    from orders.services import order_fulfill
    from payments.sandbox_server.server import sandbox_complete
    from payments.services import payment_initiate

    from .helpers import make_order

    product = ProductFactory(
        seller=seller,
        slug="seats-app",
        delivery_type=DeliveryType.LICENSE_KEY,
        delivery_content="",
        delivery_options={"license": {"activation_limit": 1}},
    )
    VariantFactory(product=product, price=1000)
    order = make_order(product, quantity=3)
    payment = payment_initiate(order=order, gateway_name="sandbox", return_url="https://x.test/r")
    sandbox_complete(payment_id=payment.id, outcome="succeeded")
    order_fulfill(order_id=order.id)
    assert License.objects.filter(order_item__order=order, status="active").count() == 3
    token = str(RefreshToken.for_user(seller).access_token)

    def refund(_):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client.post(f"/api/v1/orders/{order.id}/refund", {"amount": 1000}, format="json").status_code

    results = run_concurrently(2, refund)
    assert results == [201, 201]
    order.refresh_from_db()
    assert order.refunded_amount == 2000
    statuses = Counter(License.objects.filter(order_item__order=order).values_list("status", flat=True))
    assert statuses == Counter({"refunded": 2, "active": 1})
