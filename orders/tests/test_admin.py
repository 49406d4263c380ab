"""The operators' admin: every page opens, status is read-only, the actions go through the services."""

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.messages import get_messages
from django.urls import reverse

from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory, UserFactory
from orders.models import Order, OrderEvent, OrderStatus
from orders.services import CheckoutLine, order_create, order_mark_paid
from payments.models import Payment, SandboxPayment, WebhookEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator():
    return UserFactory(email="ops@example.com", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(client, operator):
    client.force_login(operator)
    return client


@pytest.fixture
def product():
    product = ProductFactory(seller=SellerFactory(), title="Secret Text", delivery_content="OPEN-SESAME")
    VariantFactory(product=product, price=1999)
    return product


def make_order(product, email="buyer@example.com"):
    variant = product.variants.first()
    return order_create(product=product, buyer_email=email, lines=[CheckoutLine(variant.id, 1)]).order


def make_paid(product):
    """Paid, with fulfillment not run (its task is queued on commit, which never comes here)."""
    order = make_order(product)
    order_mark_paid(order_id=order.id, payment_id="pay_test")
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    return order


@pytest.fixture
def everything(product, django_capture_on_commit_callbacks):
    """One order paid through the sandbox gateway, so every registered model has a row."""
    from payments.sandbox_server.server import sandbox_complete
    from payments.services import payment_initiate

    order = make_order(product)
    payment = payment_initiate(order=order, gateway_name="sandbox", return_url="https://shop.test/return")
    with django_capture_on_commit_callbacks(execute=True):
        sandbox_complete(payment_id=payment.id, outcome="succeeded")
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    return {
        Order: order,
        OrderEvent: OrderEvent.objects.filter(order=order).first(),
        Payment: Payment.objects.get(order=order),
        WebhookEvent: WebhookEvent.objects.get(),
        SandboxPayment: SandboxPayment.objects.get(),
    }


def _url(model, view, *args):
    # The admin escapes "_" and friends in primary keys (an id like "whe_3AJ..." would read as ":").
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=[quote(a) for a in args])


@pytest.mark.parametrize("model", [Order, OrderEvent, Payment, WebhookEvent, SandboxPayment])
def test_every_admin_page_opens_for_a_superuser(admin_client, everything, model):
    obj = everything[model]
    assert admin.site.is_registered(model)
    changelist = admin_client.get(_url(model, "changelist"))
    assert changelist.status_code == 200
    assert changelist.context["cl"].result_count == model.objects.count() >= 1
    assert admin_client.get(_url(model, "changelist"), {"q": "nothing-matches"}).status_code == 200
    assert admin_client.get(_url(model, "change", obj.pk)).status_code == 200


def test_order_changelist_searches_and_filters(admin_client, product):
    first = make_order(product, email="first@example.com")
    second = make_paid(product)
    url = _url(Order, "changelist")

    def ids(**params):
        response = admin_client.get(url, params)
        assert response.status_code == 200
        return {o.id for o in response.context["cl"].result_list}

    assert ids(q=first.order_number) == {first.id}
    assert ids(q=second.id) == {second.id}
    assert ids(q="first@") == {first.id}
    assert ids(status__exact="paid") == {second.id}
    assert ids(currency__exact="USD") == {first.id, second.id}


def test_order_status_and_money_are_read_only(admin_client, product):
    order = make_paid(product)
    events_before = OrderEvent.objects.filter(order=order).count()

    response = admin_client.get(_url(Order, "change", order.pk))
    form = response.context["adminform"].form
    assert "status" not in form.fields
    assert "total_amount" not in form.fields
    assert "$19.99" in response.content.decode()

    admin_client.post(_url(Order, "change", order.pk), {"status": "delivered", "total_amount": "1"})
    order.refresh_from_db()
    assert (order.status, order.total_amount) == (OrderStatus.PAID, 1999)
    assert OrderEvent.objects.filter(order=order).count() == events_before


def test_orders_and_the_timeline_cannot_be_added_or_deleted(admin_client, operator, product, rf):
    order = make_order(product)
    event = OrderEvent.objects.filter(order=order).first()
    assert admin_client.get(_url(Order, "add")).status_code == 403
    assert admin_client.get(_url(Order, "delete", order.pk)).status_code == 403
    assert admin_client.get(_url(OrderEvent, "add")).status_code == 403
    assert admin_client.get(_url(OrderEvent, "delete", event.pk)).status_code == 403
    admin_client.post(_url(OrderEvent, "change", event.pk), {"message": "rewritten"})
    event.refresh_from_db()
    assert event.message != "rewritten"
    request = rf.get("/admin/")
    request.user = operator
    for model in (OrderEvent, WebhookEvent):
        model_admin = admin.site._registry[model]
        assert not model_admin.has_add_permission(request)
        assert not model_admin.has_change_permission(request)
        assert not model_admin.has_delete_permission(request)


def _run_action(admin_client, action, orders):
    return admin_client.post(
        _url(Order, "changelist"),
        {"action": action, admin.helpers.ACTION_CHECKBOX_NAME: [o.pk for o in orders]},
        follow=True,
    )


def test_mark_delivered_moves_a_paid_order_with_an_operator_event(admin_client, operator, product):
    order = make_paid(product)

    response = _run_action(admin_client, "mark_delivered", [order])

    assert response.status_code == 200
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert order.delivered_at is not None
    assert all(item.fulfilled for item in order.items.all())
    event = OrderEvent.objects.filter(order=order, type="status_changed").order_by("-created_at", "-id").first()
    assert (event.from_status, event.to_status, event.actor, event.actor_user_id) == (
        "paid",
        "delivered",
        "operator",
        operator.id,
    )
    assert [str(m) for m in get_messages(response.wsgi_request)] == [f"Marked delivered: #{order.order_number}."]


def test_mark_delivered_leaves_a_pending_order_and_reports_the_failure(admin_client, product):
    pending = make_order(product)
    paid = make_paid(product)
    events_before = OrderEvent.objects.filter(order=pending).count()

    response = _run_action(admin_client, "mark_delivered", [pending, paid])

    pending.refresh_from_db()
    paid.refresh_from_db()
    assert pending.status == OrderStatus.PENDING
    assert pending.delivered_at is None
    assert OrderEvent.objects.filter(order=pending).count() == events_before
    assert paid.status == OrderStatus.DELIVERED
    sent = {(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)}
    assert sent == {
        ("success", f"Marked delivered: #{paid.order_number}."),
        ("error", f"Not marked delivered: #{pending.order_number}: An order cannot move from pending to delivered."),
    }


def test_retry_delivery_action_fulfills_a_paid_order_and_refuses_a_delivered_one(
    admin_client, operator, product, django_capture_on_commit_callbacks
):
    paid = make_paid(product)
    delivered = make_paid(product)
    with django_capture_on_commit_callbacks(execute=True):
        _run_action(admin_client, "mark_delivered", [delivered])
    delivered_events = OrderEvent.objects.filter(order=delivered).count()

    with django_capture_on_commit_callbacks(execute=True):
        response = _run_action(admin_client, "retry_delivery", [paid, delivered])

    paid.refresh_from_db()
    assert paid.status == OrderStatus.DELIVERED
    retry = OrderEvent.objects.get(order=paid, type="delivery_retry_requested")
    assert (retry.actor, retry.actor_user_id) == ("operator", operator.id)
    assert OrderEvent.objects.filter(order=delivered).count() == delivered_events
    levels = sorted(m.level_tag for m in get_messages(response.wsgi_request))
    assert levels == ["error", "success"]


def test_the_admin_says_webhook_deliveries(admin_client):
    html = admin_client.get("/admin/").content.decode()
    assert "Webhook deliveries" in html and "Webhook deliverys" not in html
