"""Issue 11, the paid webhook to delivered: the work per order, and that nothing else changed.

The paid webhook stores its event with one ``INSERT … ON CONFLICT``, locks the payment and the order
once (the seller comes with the order, no reload of the payment), and the fulfillment of local goods
is one transaction (codes fetched together, timeline entries written together, one UPDATE of the
order). The e-mail is sent after the commit — never while a transaction, and so the order's row
lock, is open — and a failure to send is recovered as before (a retry, or the sweeper). An order
fulfilled this way ends exactly as one fulfilled item by item: statuses, timeline, codes, seller
events and e-mail.
"""

import re
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.inventory import CodeRow, codes_import
from catalog.models import Code, DeliveryType
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory
from orders.models import Order, OrderEvent, SellerEvent, WebhookEndpoint
from orders.services import CheckoutLine, order_create, order_fulfill, order_mark_paid, orders_sweep
from orders.services import fulfillment as fulfillment_service
from orders.tests.test_paid_to_delivered_queries import MAX_STATEMENTS, code_pool_order, paid_webhook, post_webhook
from payments.gateway_events import webhook_receive
from payments.models import Payment, WebhookEvent

FULFIL = "orders.tasks.fulfil_order"
LICENCE_KEY = r"[0-9A-Z]{5}(-[0-9A-Z]{5}){4}"  # generated: random in each run


def _sql(captured: CaptureQueriesContext) -> list[str]:
    return [query["sql"] for query in captured.captured_queries]


def _listing(statements: list[str]) -> str:
    return "\n".join(f"{n:2} {sql[:160]}" for n, sql in enumerate(statements, 1))


# --- the webhook ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_webhook_plus_fulfillment_of_a_code_order_stays_within_25_statements(api_client):
    order = code_pool_order()
    body, headers = paid_webhook(order)
    with CaptureQueriesContext(connection) as captured:
        response = post_webhook(api_client, body, headers)
    assert response.status_code == 200
    assert response.json()["data"] == {
        "received": True,
        "event_id": "evt_paid_to_delivered",
        "status": "processed",
        "duplicate": False,
    }
    assert len(_sql(captured)) <= MAX_STATEMENTS, _listing(_sql(captured))
    assert Order.objects.get(pk=order.pk).status == "delivered"


@pytest.mark.django_db(transaction=True)
def test_the_event_is_stored_with_one_insert_and_a_repeat_changes_nothing(api_client):
    order = code_pool_order()
    body, headers = paid_webhook(order)
    with mock.patch("orders.services.payment_outcomes.enqueue"), CaptureQueriesContext(connection) as first:
        event, processed = webhook_receive(gateway_name="sandbox", body=body, headers=headers)
    assert processed is True
    statements = _sql(first)
    assert re.match(r'INSERT INTO "payments_webhookevent" .* ON CONFLICT .* DO NOTHING RETURNING', statements[0])
    assert not any("SAVEPOINT" in sql for sql in statements), _listing(statements)
    stored = WebhookEvent.objects.get()
    assert (stored.id, stored.status, stored.payment_id) == (event.id, "processed", order.payments.get().id)

    events_before = list(OrderEvent.objects.order_by("created_at", "id").values_list("id", flat=True))
    with CaptureQueriesContext(connection) as repeat:
        again = post_webhook(api_client, body, headers)
    assert again.status_code == 200
    assert again.json()["data"]["duplicate"] is True
    # The repeat: the INSERT that does nothing, then the stored event read once; nothing written.
    assert [sql.split()[0] for sql in _sql(repeat)] == ["INSERT", "SELECT"], _listing(_sql(repeat))
    assert WebhookEvent.objects.count() == 1
    assert list(OrderEvent.objects.order_by("created_at", "id").values_list("id", flat=True)) == events_before


@pytest.mark.django_db(transaction=True)
def test_the_webhook_locks_payment_and_order_once_and_reloads_nothing():
    order = code_pool_order()
    body, headers = paid_webhook(order)
    with (
        mock.patch("orders.services.payment_outcomes.enqueue") as enqueue,
        CaptureQueriesContext(connection) as captured,
    ):
        webhook_receive(gateway_name="sandbox", body=body, headers=headers)
    enqueue.assert_called_once_with(FULFIL, order.id)
    statements = _sql(captured)
    order_locks = [sql for sql in statements if sql.startswith('SELECT "orders_order"')]
    assert len(order_locks) == 1, _listing(statements)
    if connection.vendor == "postgresql":
        assert "FOR UPDATE" in order_locks[0]
    assert "accounts_user" in order_locks[0]  # the seller (for the fee) comes with the order
    assert not [sql for sql in statements if sql.startswith('SELECT "accounts_user"')], _listing(statements)
    # The payment: read once to find it; its move is one guarded UPDATE; no refresh afterwards.
    assert len([sql for sql in statements if sql.startswith('SELECT "payments_payment"')]) == 1, _listing(statements)
    assert len([sql for sql in statements if sql.startswith('UPDATE "payments_payment"')]) == 1
    assert statements.count("BEGIN") + statements.count("BEGIN IMMEDIATE") == 1
    assert not any("SAVEPOINT" in sql for sql in statements)
    payment = Payment.objects.get(order=order)
    assert (payment.status, payment.transaction_id) == ("succeeded", "sbxch_test")
    order.refresh_from_db()
    assert (order.status, order.platform_fee + order.seller_earnings) == ("paid", order.total_amount)


@pytest.mark.django_db
def test_a_fee_that_changed_since_checkout_is_written_with_the_move_to_paid(django_capture_on_commit_callbacks):
    order = code_pool_order()
    Order.objects.filter(pk=order.pk).update(platform_fee=0, seller_earnings=order.total_amount)
    with CaptureQueriesContext(connection) as captured:
        order_mark_paid(order_id=order.id, payment_id="pay_x")
    order.refresh_from_db()
    assert order.status == "paid"
    assert order.platform_fee > 0
    assert order.platform_fee + order.seller_earnings == order.total_amount
    updates = [sql for sql in _sql(captured) if sql.startswith('UPDATE "orders_order"')]
    assert len(updates) == 1 and '"platform_fee"' in updates[0] and "'paid'" in updates[0]


# --- the fulfillment: one transaction, the e-mail after it ------------------------------------------


def paid_code_order(quantity: int = 2, codes: int = 3) -> Order:
    # The seller's "New sale" email is a task of its own (orders/tests/test_sale_notification.py
    # holds its bounds); this measures the paid-to-delivered path only.
    seller = SellerFactory(notify_on_sale=False)
    product = ProductFactory(
        seller=seller, title="Gift Card", delivery_type=DeliveryType.CODE_POOL, delivery_content=""
    )
    variant = VariantFactory(product=product, name="$25", price=2500)
    codes_import(variant=variant, rows=[CodeRow(n, f"GIFT-{n:04d}-WXYZ") for n in range(1, codes + 1)])
    order = order_create(
        product=product, buyer_email="buyer@example.com", lines=[CheckoutLine(variant.id, quantity)]
    ).order
    with mock.patch("orders.services.payment_outcomes.enqueue"):
        order_mark_paid(order_id=order.id, payment_id="pay_x")
    return order


@pytest.mark.django_db(transaction=True)
def test_local_goods_are_fulfilled_in_one_transaction_with_codes_and_events_together():
    order = paid_code_order(quantity=2)
    with CaptureQueriesContext(connection) as captured:
        assert order_fulfill(order_id=order.id).outcome == "delivered"
    statements = _sql(captured)
    assert len([sql for sql in statements if sql.startswith('SELECT "catalog_code"')]) == 1, _listing(statements)
    assert not any("COUNT(" in sql for sql in statements), _listing(statements)
    assert len([sql for sql in statements if sql.startswith('UPDATE "catalog_code"')]) == 1
    assert len([sql for sql in statements if sql.startswith('INSERT INTO "orders_orderevent"')]) == 2
    # Fulfillment (items, codes, the e-mail's claim), then delivered with the e-mail's stamp.
    assert statements.count("BEGIN") + statements.count("BEGIN IMMEDIATE") == 2
    assert len(statements) <= 14, _listing(statements)
    order.refresh_from_db()
    assert (order.status, order.dispatched_email) == ("delivered", True)
    assert order.email_sent_at is not None and order.delivered_at is not None
    assert Code.objects.filter(order_item__order=order, status="DELIVERED").count() == 2


def _record_transaction_state(sent: list[bool]) -> Any:
    original = mail.EmailMultiAlternatives.send

    def send(self: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(connection.in_atomic_block)
        return original(self, *args, **kwargs)

    return mock.patch("django.core.mail.EmailMultiAlternatives.send", send)


@pytest.mark.django_db(transaction=True)
def test_the_email_is_sent_after_commit_never_under_the_orders_lock():
    order = paid_code_order(quantity=1)
    in_transaction: list[bool] = []
    with _record_transaction_state(in_transaction):
        assert order_fulfill(order_id=order.id).outcome == "delivered"
    assert in_transaction == [False]
    assert len(mail.outbox) == 1


@pytest.mark.django_db(transaction=True)
def test_the_item_by_item_path_also_sends_the_email_outside_any_transaction():
    order = paid_code_order(quantity=1)
    in_transaction: list[bool] = []
    with (
        _record_transaction_state(in_transaction),
        mock.patch.object(fulfillment_service, "_order_fulfill_together", return_value={}),
    ):
        assert order_fulfill(order_id=order.id).outcome == "delivered"
    assert in_transaction == [False]
    assert OrderEvent.objects.filter(order=order, type="email_sent").count() == 1


@pytest.mark.django_db
def test_a_failed_send_gives_the_claim_back_and_a_retry_delivers_once():
    order = paid_code_order(quantity=1)
    with (
        mock.patch("django.core.mail.EmailMultiAlternatives.send", side_effect=OSError("smtp down")),
        pytest.raises(fulfillment_service.TransientDeliveryError),
    ):
        order_fulfill(order_id=order.id)
    order.refresh_from_db()
    assert (order.status, order.dispatched_email, order.email_sent_at, order.delivered_at) == (
        "paid",
        False,
        None,
        None,
    )
    assert OrderEvent.objects.filter(order=order, type="email_failed").count() == 1
    assert OrderEvent.objects.filter(order=order, type="email_sent").count() == 0
    item = order.items.get()
    assert (item.fulfillment_status, item.attempts) == ("succeeded", 1)  # the goods were delivered
    assert order_fulfill(order_id=order.id).outcome == "delivered"
    assert len(mail.outbox) == 1
    assert order.items.get().attempts == 1  # the e-mail was retried, not the fulfillment
    assert OrderEvent.objects.filter(order=order, type="email_sent").count() == 1


@pytest.mark.django_db
def test_a_claim_in_flight_is_left_to_its_run_and_a_dead_runs_claim_is_taken_over_by_the_sweeper(settings):
    order = paid_code_order(quantity=1)
    # A run fulfilled the items and claimed the e-mail, then died before sending it.
    with mock.patch.object(fulfillment_service, "_email_send_claimed", side_effect=SystemExit):
        with pytest.raises(SystemExit):
            order_fulfill(order_id=order.id)
    order.refresh_from_db()
    assert (order.status, order.dispatched_email, order.email_sent_at) == ("paid", True, None)
    events = OrderEvent.objects.filter(order=order).count()

    # While the claim is fresh, another run leaves it alone: no second e-mail, nothing written.
    assert order_fulfill(order_id=order.id).outcome == "skipped"
    assert len(mail.outbox) == 0
    assert OrderEvent.objects.filter(order=order).count() == events

    # Once it is stale, the sweeper queues the order again and the e-mail goes out once.
    stale = timezone.now() - timedelta(seconds=fulfillment_service.EMAIL_CLAIM_STALE_SECONDS + 1)
    Order.objects.filter(pk=order.pk).update(updated_at=stale)
    with mock.patch("orders.services.sweeper.enqueue") as enqueue:
        assert orders_sweep().requeued == [order.id]
    enqueue.assert_called_once_with(FULFIL, order.id)
    assert order_fulfill(order_id=order.id).outcome == "delivered"
    assert len(mail.outbox) == 1
    order.refresh_from_db()
    assert (order.status, order.dispatched_email) == ("delivered", True)
    assert order.email_sent_at is not None
    assert list(
        OrderEvent.objects.filter(order=order, type="status_changed").values_list("from_status", "to_status")
    ) == [("pending", "paid"), ("paid", "delivered")]


# --- before and after: the same order ends the same ------------------------------------------------


def _fixture_order(kind: str, *, suffix: str) -> Order:
    """One seller per order, so that both runs get the same codes from identical pools."""
    seller = SellerFactory(email=f"seller-{kind}-{suffix}@example.com", name="Gift Shop")
    WebhookEndpoint.objects.create(seller=seller, url="https://hooks.example.test/in", secret="whsec_test")
    if kind == "code_pool":
        product = ProductFactory(
            seller=seller,
            slug=f"cards-{suffix}",
            title="Gift Card",
            delivery_type=DeliveryType.CODE_POOL,
            delivery_content="",
            redemption_instructions="Redeem at shop.test",
        )
        small = VariantFactory(product=product, name="$10", price=1000)
        large = VariantFactory(product=product, name="$50", price=5000)
        codes_import(variant=small, rows=[CodeRow(n, f"SMALL-{n:04d}-ABCD", pin="1234") for n in range(1, 4)])
        codes_import(variant=large, rows=[CodeRow(n, f"LARGE-{n:04d}-ABCD") for n in range(1, 4)])
        lines = [CheckoutLine(small.id, 2), CheckoutLine(large.id, 1)]
    elif kind == "license_key":
        product = ProductFactory(
            seller=seller,
            slug=f"app-{suffix}",
            title="App",
            delivery_type=DeliveryType.LICENSE_KEY,
            delivery_content="",
            delivery_options={"license": {"activation_limit": 3}},
        )
        lines = [CheckoutLine(VariantFactory(product=product, name="Pro", price=4900).id, 2)]
    else:
        product = ProductFactory(seller=seller, slug=f"text-{suffix}", title="Ebook")
        lines = [CheckoutLine(VariantFactory(product=product, name="PDF", price=900).id, 1)]
    order = order_create(
        product=product, buyer_email="buyer@example.com", recipient_email="friend@example.com", lines=lines
    ).order
    with mock.patch("orders.services.payment_outcomes.enqueue"):
        order_mark_paid(order_id=order.id, payment_id="pay_x")
    return order


def _outcome(order: Order) -> dict[str, Any]:
    """What the fulfillment left, with each order's own ids and numbers taken out."""
    order.refresh_from_db()
    names = {order.id: "ORDER", order.order_number: "NUMBER", order.product.slug: "SLUG"}
    for n, item_id in enumerate(order.items.values_list("id", flat=True)):
        names[item_id] = f"ITEM{n}"

    def plain(value: Any) -> Any:
        text = repr(value)
        for real, name in names.items():
            text = text.replace(real, name)
        return re.sub(r"(lic|evt|cod)_[0-9A-Za-z]{22}", r"\1_ID", text)

    email = mail.outbox[-1]
    return {
        "order": (order.status, order.status_message, order.dispatched_email, order.email_sent_at is not None),
        "timeline": [
            (e.type, e.from_status, e.to_status, plain(e.message), e.actor, plain(e.data))
            for e in OrderEvent.objects.filter(order=order).order_by("created_at", "id")
        ],
        "items": [
            (plain(item.id), item.fulfillment_status, item.attempts, item.last_error, item.fulfilled_at is not None)
            for item in order.items.all()
        ],
        "codes": [
            (plain(code.order_item_id), code.code, code.pin, code.status)
            for code in Code.objects.filter(order_item__order=order).order_by("order_item__position", "created_at")
        ],
        "licences": [(plain(lic.order_item_id), lic.activation_limit) for lic in order.items.first().licenses.all()],
        "seller_events": [
            (e.type, e.data["data"]["status"], [i["fulfillment_status"] for i in e.data["data"]["items"]])
            for e in SellerEvent.objects.filter(seller_id=order.seller_id).order_by("created_at", "id")
        ],
        "email": (
            plain(email.subject),
            email.to,
            email.cc,
            re.sub(LICENCE_KEY, "KEY", plain(email.body)),
            re.sub(LICENCE_KEY, "KEY", plain(email.alternatives[0][0])),
        ),
    }


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["code_pool", "license_key", "text"])
def test_one_transaction_ends_exactly_as_item_by_item(kind):
    together = _fixture_order(kind, suffix="first")  # not "a": "text-a" is in "text-align"
    assert order_fulfill(order_id=together.id).outcome == "delivered"
    after = _outcome(together)

    one_by_one = _fixture_order(kind, suffix="second")
    with mock.patch.object(fulfillment_service, "_order_fulfill_together", return_value={}) as together_path:
        assert order_fulfill(order_id=one_by_one.id).outcome == "delivered"
    together_path.assert_called_once()
    before = _outcome(one_by_one)

    assert after == before
    assert after["order"][0] == "delivered"
    assert [event[0] for event in after["seller_events"]] == ["order.created", "order.paid", "order.delivered"]
    assert len(mail.outbox) == 2


@pytest.mark.django_db
def test_a_released_reservation_takes_the_item_by_item_path_and_is_reserved_again():
    order = paid_code_order(quantity=1, codes=2)
    Code.objects.filter(order_item__order=order).update(status="AVAILABLE", order_item=None, allocated_at=None)
    assert order_fulfill(order_id=order.id).outcome == "delivered"
    [code] = Code.objects.filter(order_item__order=order)
    assert code.status == "DELIVERED"
    assert OrderEvent.objects.filter(order=order, type="item_fulfilled").count() == 1
    assert order.items.get().attempts == 1
