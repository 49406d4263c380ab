"""What the paid webhook and the fulfillment of its order cost in SQL statements (issue 11).

The whole path runs as in production: the signed ``payment.succeeded`` posted to the webhook
endpoint, re-verification with the sandbox, ``pending → paid``, ``fulfill_order`` run eagerly on
commit, the code delivered, the e-mail sent after commit, ``paid → delivered``. The test is
transactional (no test-wide transaction), so ``atomic()`` blocks are real transactions: BEGIN and
COMMIT are not statements Django captures, SAVEPOINTs would be. Counts are held on both databases;
the target of the issue is 25 on PostgreSQL.
"""

from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from catalog.inventory import CodeRow, codes_import
from catalog.models import Code, DeliveryType
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory
from orders.models import Order, OrderEvent
from orders.services import CheckoutLine, order_create
from payments.models import SandboxPayment
from payments.sandbox_server.server import sign_event
from payments.services import payment_initiate

pytestmark = pytest.mark.django_db(transaction=True)

# The most statements the webhook plus the fulfillment of a one-item code-pool order may make: the
# engine's 25, and the seller's ledger (the sale and its fee, written in the move to paid) its 3: the
# transactions, their lines and the balance rollup's row (tests/campaign/test_attack_ledger.py holds
# those on their own).
ENGINE_STATEMENTS = 25
LEDGER_STATEMENTS = 3
MAX_STATEMENTS = ENGINE_STATEMENTS + LEDGER_STATEMENTS


def code_pool_order(codes: int = 3) -> Order:
    # The seller's "New sale" email is a task of its own (orders/tests/test_sale_notification.py
    # holds its bounds); this measures the paid-to-delivered path only.
    seller = SellerFactory(notify_on_sale=False)
    product = ProductFactory(
        seller=seller, title="Gift Card", delivery_type=DeliveryType.CODE_POOL, delivery_content=""
    )
    variant = VariantFactory(product=product, name="$25", price=2500)
    codes_import(variant=variant, rows=[CodeRow(n, f"GIFT-{n:04d}-ABCD") for n in range(1, codes + 1)])
    return order_create(product=product, buyer_email="buyer@example.com", lines=[CheckoutLine(variant.id, 1)]).order


def paid_webhook(order: Order) -> tuple[bytes, dict[str, str]]:
    """The sandbox's signed ``payment.succeeded`` for the order, paid on the sandbox's side."""
    payment = payment_initiate(order=order, gateway_name="sandbox", return_url="https://shop.test/return")
    SandboxPayment.objects.filter(id=payment.id).update(status="succeeded", charge_id="sbxch_test")
    event = {
        "id": "evt_paid_to_delivered",
        "type": "payment.succeeded",
        "data": {"payment_id": payment.id, "order_id": order.id, "amount": order.total_amount, "currency": "USD"},
    }
    return sign_event(event)


def post_webhook(api_client: Any, body: bytes, headers: dict[str, str]) -> Any:
    return api_client.generic(
        "POST",
        reverse("payments-api:webhook", args=["sandbox"]),
        body,
        content_type="application/json",
        **{f"HTTP_{key.upper().replace('-', '_')}": value for key, value in headers.items()},
    )


def test_webhook_to_delivered_of_a_code_pool_order_makes_at_most_25_statements(api_client):
    order = code_pool_order()
    body, headers = paid_webhook(order)
    with CaptureQueriesContext(connection) as captured:
        response = post_webhook(api_client, body, headers)
    statements = [query["sql"] for query in captured.captured_queries]
    assert response.status_code == 200, response.content
    order.refresh_from_db()
    assert order.status == "delivered"
    assert len(mail.outbox) == 1
    assert Code.objects.filter(order_item__order=order, status="DELIVERED").count() == 1
    assert len(statements) <= MAX_STATEMENTS, "\n".join(f"{n:2} {sql[:160]}" for n, sql in enumerate(statements, 1))
    assert OrderEvent.objects.filter(order=order, type="email_sent").count() == 1
