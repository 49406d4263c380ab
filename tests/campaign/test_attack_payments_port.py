"""Issue 11 (the re-cut), payments' part: payments never imports orders.

Payments tells the order side what its gateways say through ``payments.ports.OrderPort``, bound by
the orders app at start-up; the order's half of a refund (its lock, REFUNDABLE, what is left) is
``orders.services.refunds.order_refund_create``, the gateway's half ``payments.refunds.refund_through_gateway``.
These tests hold the boundary (no import of orders anywhere in payments, TYPE_CHECKING and function
bodies included), the port's binding and its refusal when unbound, and that the moved code behaves as
before: the same answers, and nothing changed on a refusal.
"""

import ast
import json
from pathlib import Path

import pytest

from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory
from marketplace.core.errors import ApplicationError
from orders.lifecycle import REFUNDABLE
from orders.models import Order, OrderEvent, OrderStatus
from orders.payment_port import OrdersPaymentPort
from orders.services.refunds import order_refund_create
from orders.tests.helpers import make_order, pay
from payments import ports
from payments.models import Payment, Refund
from payments.ports import OrderActor, OrderPortUnbound, bind_order_port, order_port
from payments.schema import WebhookAckDoc
from payments.services import payment_initiate

PAYMENTS = Path(__file__).resolve().parents[2] / "payments"
RETURN_URL = "https://shop.test/return"


def _orders_imports(path: Path) -> list[str]:
    """Every import of ``orders`` in a module: top level, TYPE_CHECKING blocks and function bodies."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        where = f"{path.relative_to(PAYMENTS.parent)}:{node.lineno}"
        found += [f"{where} {name}" for name in names if name.split(".")[0] == "orders"]
    return found


def test_no_module_of_payments_imports_orders():
    """Only ``payments/api.py``'s checkout view (being moved to the checkout app) may still do."""
    modules = [p for p in PAYMENTS.rglob("*.py") if "tests" not in p.parts and "migrations" not in p.parts]
    assert len(modules) >= 12
    offenders = [hit for p in modules if p.name != "api.py" for hit in _orders_imports(p)]
    assert offenders == []


@pytest.mark.django_db
def test_the_webhook_acknowledgement_is_payments_own_and_documented_as_before(client):
    """``WebhookAckDoc`` moved from orders to payments; the public contract's schema is unchanged."""
    assert WebhookAckDoc.__module__ == "payments.schema"
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    ok = schema["paths"]["/api/v1/payments/webhooks/{gateway}"]["post"]["responses"]["200"]
    enveloped = ok["content"]["application/json"]["schema"]
    assert enveloped["properties"]["data"] == {"$ref": "#/components/schemas/WebhookAckDoc"}
    ack = schema["components"]["schemas"]["WebhookAckDoc"]
    assert sorted(ack["properties"]) == ["duplicate", "event_id", "received", "status"]
    assert sorted(ack["required"]) == ["duplicate", "event_id", "received", "status"]


def test_the_orders_app_binds_its_side_of_the_port_at_start_up():
    assert isinstance(order_port(), OrdersPaymentPort)


def test_the_ports_actors_are_timeline_actors():
    assert {OrderActor.SYSTEM, OrderActor.BUYER, OrderActor.GATEWAY} <= set(OrderEvent.Actor.values)


def test_the_port_answers_from_the_lifecycle_for_every_status():
    port = OrdersPaymentPort()
    for status in OrderStatus.values:
        order = Order(status=status)
        assert port.can_take_refund(order) is (status in REFUNDABLE), status
        assert port.can_take_payment(order) is (status in {"pending", "failed"}), status
        assert port.awaiting_payment(order) is (status == "pending"), status


@pytest.mark.django_db
def test_unbound_port_is_a_clear_error_and_opens_no_payment(monkeypatch):
    seller = SellerFactory()
    product = ProductFactory(seller=seller, currency="USD")
    VariantFactory(product=product, price=1500)
    order = make_order(product)
    monkeypatch.setattr(ports, "_bound", None)
    with pytest.raises(OrderPortUnbound, match="bind_order_port"):
        payment_initiate(order=order, gateway_name="sandbox", return_url=RETURN_URL)
    assert Payment.objects.filter(order=order).count() == 0
    order.refresh_from_db()
    assert order.status == "pending"
    assert list(order.events.values_list("type", flat=True)) == ["order_created"]


@pytest.mark.django_db
def test_payments_tells_whatever_port_is_bound(monkeypatch):
    """Payments reaches the order side only through the bound port: a port that refuses every
    payment makes payments refuse, with the order untouched."""

    class RefusingPort(OrdersPaymentPort):
        def can_take_payment(self, order):
            return False

    seller = SellerFactory()
    product = ProductFactory(seller=seller, currency="USD")
    VariantFactory(product=product, price=1500)
    order = make_order(product)
    monkeypatch.setattr(ports, "_bound", None)
    bind_order_port(RefusingPort())
    with pytest.raises(ApplicationError) as refused:
        payment_initiate(order=order, gateway_name="sandbox", return_url=RETURN_URL)
    assert (refused.value.status_code, refused.value.code) == (409, "invalid_transition")
    assert Payment.objects.filter(order=order).count() == 0


@pytest.mark.django_db
def test_order_refund_create_refunds_through_the_gateway(django_capture_on_commit_callbacks):
    seller = SellerFactory()
    product = ProductFactory(seller=seller, currency="USD")
    VariantFactory(product=product, price=2000)
    order = pay(make_order(product), django_capture_on_commit_callbacks)
    assert order.status == "delivered"
    refund = order_refund_create(order=order, amount=500, reason="Half a mistake", user=seller)
    assert (refund.status, refund.amount, refund.source) == ("succeeded", 500, "seller")
    order.refresh_from_db()
    assert (order.status, order.refunded_amount) == ("partially_refunded", 500)
    assert Payment.objects.get(order=order).status == "partially_refunded"
    # The same key again answers the same refund and moves no more money.
    again = order_refund_create(order=order, amount=300, reason="x", user=seller, idempotency_key="k-1")
    assert order_refund_create(order=order, amount=300, reason="x", user=seller, idempotency_key="k-1") == again
    order.refresh_from_db()
    assert order.refunded_amount == 800


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("amount", "status_code", "code"),
    [(0, 400, "invalid_amount"), (2001, 400, "invalid_amount"), (None, 409, "invalid_transition")],
)
def test_order_refund_create_refusals_change_nothing(django_capture_on_commit_callbacks, amount, status_code, code):
    seller = SellerFactory()
    product = ProductFactory(seller=seller, currency="USD")
    VariantFactory(product=product, price=2000)
    if code == "invalid_transition":
        order = make_order(product)  # unpaid: nothing to refund
    else:
        order = pay(make_order(product), django_capture_on_commit_callbacks)
    before = (order.status, order.refunded_amount, order.events.count())
    with pytest.raises(ApplicationError) as refused:
        order_refund_create(order=order, amount=amount, reason="no", user=seller)
    assert (refused.value.status_code, refused.value.code) == (status_code, code)
    order.refresh_from_db()
    assert (order.status, order.refunded_amount, order.events.count()) == before
    assert Refund.objects.filter(order=order).count() == 0
