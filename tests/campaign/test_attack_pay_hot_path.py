"""Issue 11, the work per order on ``POST /api/v1/public/checkout/{slug}/pay``.

- no reloads: the 201 answer and the ``order.created`` payload come from the objects just written;
- the order, its payment and the sandbox's own record in one transaction (a gateway that does not
  answer leaves nothing behind);
- no pre-check SELECTs: the unique indexes decide the order number and the idempotency key, and a
  repeat still answers its first order (even once the cart could no longer be sold);
- product and variants in one query; no open-payment look-up for an order made in this request;
  ``order_created`` and ``payment_initiated`` in one INSERT;
- a one-round-trip rate limit: a fixed-window counter, with the same 429 envelope and Retry-After.
"""

import re
from typing import Any

import pytest
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from catalog.inventory import CodeRow, codes_import
from catalog.models import Code, DeliveryType
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory
from marketplace.core import ratelimit
from orders.models import Order, OrderEvent, OrderItem, SellerEvent
from orders.services import create as order_create_module
from payments.gateways import GatewayUnavailable
from payments.models import Payment, SandboxPayment

pytestmark = pytest.mark.django_db


def _inserted_table(sql: str) -> str:
    match = re.match(r'INSERT (?:OR IGNORE )?INTO "(\w+)"', sql)  # SQLite's ON CONFLICT DO NOTHING
    return match.group(1) if match else sql[:40]


def _selects_from(statements: list[str], table: str) -> list[str]:
    return [s for s in statements if s.startswith("SELECT") and re.search(rf'FROM "{table}"', s)]


@pytest.fixture
def product() -> Any:
    seller = SellerFactory(name="Ada's Shop")
    product = ProductFactory(seller=seller, slug="hot-text", title="Hot Text", delivery_content="OPEN-SESAME")
    VariantFactory(product=product, name="Standard", price=1999)
    return product


@pytest.fixture
def pool() -> Any:
    seller = SellerFactory(name="Gift Shop")
    product = ProductFactory(seller=seller, slug="hot-gift", delivery_type=DeliveryType.CODE_POOL, delivery_content="")
    variant = VariantFactory(product=product, name="$10", price=1000)
    codes_import(variant=variant, rows=[CodeRow(1, "HOT-GIFT-0001")])
    return product


def _pay(product: Any, **body: Any) -> Any:
    if not hasattr(product, "variant_id"):  # read once, outside the statements a test counts
        product.variant_id = product.variants.get().id
    payload = {"buyer_email": "b@example.com", "items": [{"variant_id": product.variant_id, "quantity": 1}], **body}
    return APIClient().post(f"/api/v1/public/checkout/{product.slug}/pay", payload, format="json")


def _nothing_created() -> bool:
    return not (
        Order.objects.exists()
        or OrderItem.objects.exists()
        or OrderEvent.objects.exists()
        or Payment.objects.exists()
        or SandboxPayment.objects.exists()
        or SellerEvent.objects.exists()
    )


def test_pay_reads_no_order_back_and_writes_each_row_once(product):
    product.variant_id = product.variants.get().id
    with CaptureQueriesContext(connection) as captured:
        response = _pay(product)
    assert response.status_code == 201
    statements = [q["sql"] for q in captured.captured_queries]
    # No reload of what was written (the answer, the outbox), no order-number or key pre-check.
    assert _selects_from(statements, "orders_order") == []
    assert _selects_from(statements, "orders_orderitem") == []
    assert _selects_from(statements, "orders_orderevent") == []
    # No open-payment look-up for an order made in this request; no get_or_create at the sandbox.
    assert _selects_from(statements, "payments_payment") == []
    assert _selects_from(statements, "payments_sandboxpayment") == []
    # The product, its seller and its variants: one query.
    catalog = [s for s in statements if s.startswith("SELECT") and '"catalog_' in s.split(" FROM ")[1].split()[0]]
    assert len(catalog) == 1
    inserts = [_inserted_table(s) for s in statements if s.startswith("INSERT")]
    assert sorted(inserts) == [
        "orders_order",
        "orders_orderevent",  # order_created and payment_initiated together
        "orders_orderitem",
        "payments_payment",
        "payments_sandboxpayment",
    ]
    assert not any(s.startswith("UPDATE") for s in statements)  # the payment is inserted complete
    # One transaction: one BEGIN/COMMIT (or SAVEPOINT/RELEASE inside the test's own).
    assert sum(1 for s in statements if s.startswith(("SAVEPOINT", "BEGIN"))) == 1
    order = Order.objects.get()
    payment = Payment.objects.get(order=order)
    assert payment.redirect_url.endswith(f"/sandbox/pay/{payment.id}")
    assert response.json()["data"]["payment"]["redirect_url"] == payment.redirect_url
    assert list(order.events.values_list("type", flat=True)) == ["order_created", "payment_initiated"]


def test_a_code_pool_pay_is_at_most_twelve_statements_and_a_text_one_ten(product, pool):
    codes_import(variant=pool.variants.get(), rows=[CodeRow(2, "HOT-GIFT-0002")])  # the sale leaves one
    for target, ceiling in ((product, 10), (pool, 12)):
        target.variant_id = target.variants.get().id
        with CaptureQueriesContext(connection) as captured:
            assert _pay(target).status_code == 201
        assert len(captured.captured_queries) <= ceiling, [q["sql"][:80] for q in captured.captured_queries]


def test_a_gateway_that_does_not_answer_leaves_no_order_behind(pool, monkeypatch):
    def down(**kwargs: Any) -> None:
        raise GatewayUnavailable("connection refused")

    monkeypatch.setattr("payments.gateways.sandbox.sandbox.sandbox_open_payment", down)
    response = _pay(pool)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"
    assert _nothing_created()
    assert list(Code.objects.values_list("status", "order_item_id")) == [("AVAILABLE", None)]


def test_a_repeated_key_replays_its_order_even_once_the_pool_is_empty(pool):
    first = _pay(pool, idempotency_key="key-1")
    assert first.status_code == 201
    assert Code.objects.get().status == "ALLOCATED"  # the only code: the pool is now empty
    again = _pay(pool, idempotency_key="key-1")
    assert again.status_code == 200
    assert again.json()["data"]["id"] == first.json()["data"]["id"]
    assert again.json()["data"]["payment"]["id"] == first.json()["data"]["payment"]["id"]
    conflict = _pay(pool, idempotency_key="key-1", buyer_email="other@example.com")
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "idempotency_conflict"
    assert Order.objects.count() == 1 and Payment.objects.count() == 1 and OrderEvent.objects.count() == 2
    fresh = _pay(pool, idempotency_key="key-2")
    assert fresh.status_code == 409
    assert fresh.json()["error"]["code"] == "out_of_stock"
    assert Order.objects.count() == 1


def test_a_taken_order_number_is_drawn_again_by_the_unique_index(product, monkeypatch):
    assert _pay(product, buyer_email="first@example.com").status_code == 201
    taken = Order.objects.get().order_number
    numbers = iter([taken, taken, "12345678"])
    monkeypatch.setattr(order_create_module, "_new_order_number", lambda: next(numbers))
    response = _pay(product)
    assert response.status_code == 201
    assert response.json()["data"]["order_number"] == "12345678"
    assert Order.objects.count() == 2
    assert Payment.objects.count() == 2 and SandboxPayment.objects.count() == 2


def test_the_order_created_event_is_built_in_hand_and_frozen_before_the_payment(product, monkeypatch):
    from orders.models import WebhookEndpoint

    WebhookEndpoint.objects.create(seller=product.seller, url="https://hooks.example.test/in", secret="whsec_t")
    monkeypatch.setattr("orders.seller_events.delivery._queue_on_commit", lambda delivery_ids: None)
    product.variant_id = product.variants.get().id
    with CaptureQueriesContext(connection) as captured:
        response = _pay(product, meta={"campaign": "x"})
    assert response.status_code == 201
    statements = [q["sql"] for q in captured.captured_queries]
    assert _selects_from(statements, "orders_order") == []
    event = SellerEvent.objects.get()
    assert event.type == "order.created"
    data = event.data["data"]
    answer = response.json()["data"]
    assert data["id"] == answer["id"] and data["status"] == "pending" and data["payments"] == []
    assert data["items"] == answer["items"] and data["meta"] == {"campaign": "x"}
    assert data["platform_fee"] == Order.objects.get().platform_fee


# --- the rate limit -----------------------------------------------------------------------------


class _Pipeline:
    def __init__(self, log: list[Any]) -> None:
        self.log = log
        self.commands: list[tuple[str, ...]] = []

    def incr(self, key: str) -> None:
        self.commands.append(("INCR", key))

    def expire(self, key: str, seconds: int) -> None:
        self.commands.append(("EXPIRE", key, str(seconds)))

    def execute(self) -> list[Any]:
        self.log.append(self.commands)
        return [len(self.log), True]


def test_the_rate_limit_is_one_pipelined_round_trip_on_redis(monkeypatch):
    log: list[Any] = []
    redis = RedisCache("redis://127.0.0.1:1/0", {})  # never connected: its client is replaced
    client = type("Client", (), {"pipeline": lambda self, transaction=True: _Pipeline(log)})()
    monkeypatch.setattr(redis._cache, "get_client", lambda key=None, *, write=False: client)
    monkeypatch.setattr(ratelimit, "caches", {"default": redis})
    assert ratelimit.window_hit("throttle_pay_1.2.3.4:7", timeout=60) == 1
    assert ratelimit.window_hit("throttle_pay_1.2.3.4:7", timeout=60) == 2
    key = redis.make_and_validate_key("throttle_pay_1.2.3.4:7")
    assert log == [[("INCR", key), ("EXPIRE", key, "60")]] * 2  # one round trip each, nothing read back


def test_pay_is_counted_in_a_fixed_window_and_refused_with_the_envelope(product, monkeypatch):
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {**ScopedRateThrottle.THROTTLE_RATES, "pay": "2/minute"})
    monkeypatch.setattr(ratelimit.FixedWindowThrottle, "timer", lambda self: 600.0 + 15)  # 15 s into a window
    assert [_pay(product, buyer_email=f"b{n}@example.com").status_code for n in range(2)] == [201, 201]
    refused = _pay(product, buyer_email="b3@example.com")
    assert refused.status_code == 429
    assert refused["Retry-After"] == "45"
    body = refused.json()
    assert body["success"] is False and body["error"]["code"] == "rate_limited"
    assert Order.objects.count() == 2  # the refused request created nothing
    # One counter per client and window, not a list of every request's time.
    assert caches["default"].get("throttle_pay_127.0.0.1:10") == 3
    assert caches["default"].get("throttle_pay_127.0.0.1") is None
