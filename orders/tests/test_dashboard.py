"""The seller's dashboard: sign-in, access rules, the orders list and one order's page."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import DEFAULT_PASSWORD, SellerFactory, UserFactory
from orders.models import Order, OrderEvent, OrderStatus
from orders.services import CheckoutLine, order_create, order_mark_paid

pytestmark = pytest.mark.django_db


def make_product(seller, *, title="Secret Text", currency="USD", price=1999):
    product = ProductFactory(seller=seller, title=title, currency=currency, delivery_content="OPEN-SESAME")
    VariantFactory(product=product, name="Standard", price=price)
    return product


def make_order(product, email="buyer@example.com", quantity=1):
    variant = product.variants.first()
    return order_create(product=product, buyer_email=email, lines=[CheckoutLine(variant.id, quantity)]).order


def make_delivered(product, capture, email="buyer@example.com"):
    order = make_order(product, email=email)
    with capture(execute=True):
        order_mark_paid(order_id=order.id, payment_id="pay_test")
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    return order


@pytest.fixture
def seller():
    return SellerFactory(name="Ada's Shop", email="ada@example.com")


@pytest.fixture
def product(seller):
    return make_product(seller)


@pytest.fixture
def seller_client(client, seller):
    client.force_login(seller)
    return client


# --- Sign-in -------------------------------------------------------------------------------------


def test_login_page_renders_an_email_field(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'type="email"' in html
    assert 'name="password"' in html


def test_login_with_email_and_password_goes_to_the_dashboard(client, seller):
    response = client.post("/accounts/login/", {"email": "ADA@example.com", "password": DEFAULT_PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"
    assert client.get("/dashboard/").status_code == 200


def test_login_also_accepts_djangos_username_field(client, seller):
    response = client.post("/accounts/login/", {"username": "ada@example.com", "password": DEFAULT_PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"


def test_login_with_a_wrong_password_stays_on_the_page(client, seller):
    response = client.post("/accounts/login/", {"email": "ada@example.com", "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_logout_is_a_post_and_signs_out(seller_client):
    assert seller_client.get("/accounts/logout/").status_code == 405
    response = seller_client.post("/accounts/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert "_auth_user_id" not in seller_client.session


# --- Access --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/dashboard/", "/dashboard/orders/12345678/"])
def test_anonymous_visitors_are_sent_to_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={path}"


def test_a_buyer_gets_a_friendly_403(client, seller, product):
    order = make_order(product)
    buyer = UserFactory(email="buyer@example.com")
    client.force_login(buyer)
    response = client.get("/dashboard/")
    assert response.status_code == 403
    html = response.content.decode()
    assert "for sellers" in html
    assert order.order_number not in html
    assert client.get(f"/dashboard/orders/{order.order_number}/").status_code == 403


def test_a_seller_sees_only_their_own_orders(seller_client, product):
    mine = make_order(product, email="mine@example.com")
    other_product = make_product(SellerFactory(), title="Other Shop Product")
    theirs = make_order(other_product, email="theirs@example.com")

    response = seller_client.get("/dashboard/")

    assert response.status_code == 200
    html = response.content.decode()
    assert f"#{mine.order_number}" in html
    assert "mine@example.com" in html
    assert theirs.order_number not in html
    assert "theirs@example.com" not in html
    assert [o.id for o in response.context["orders"]] == [mine.id]


def test_orders_list_shows_the_columns_newest_first(seller_client, product, django_capture_on_commit_callbacks):
    first = make_order(product, email="first@example.com")
    second = make_delivered(product, django_capture_on_commit_callbacks, email="second@example.com")

    response = seller_client.get("/dashboard/")

    assert [o.id for o in response.context["orders"]] == [second.id, first.id]
    html = response.content.decode()
    assert "$19.99" in html
    assert "Secret Text" in html
    assert '<span class="status status-delivered">Delivered</span>' in html
    assert '<span class="status status-pending">Awaiting payment</span>' in html


def test_summary_counts_orders_and_paid_revenue_per_currency(
    seller, seller_client, product, django_capture_on_commit_callbacks
):
    make_order(product)  # pending: counted, not revenue
    make_delivered(product, django_capture_on_commit_callbacks)
    make_delivered(product, django_capture_on_commit_callbacks)
    refunded = make_delivered(product, django_capture_on_commit_callbacks)
    Order.objects.filter(pk=refunded.pk).update(status=OrderStatus.REFUNDED, refunded_amount=1999)
    ugx = make_product(seller, title="Shilling thing", currency="UGX", price=50000)
    make_delivered(ugx, django_capture_on_commit_callbacks)

    response = seller_client.get("/dashboard/")

    summary = response.context["summary"]
    assert summary["order_count"] == 5
    # One meaning of "paid" (orders.lifecycle.PAID_STATUSES): the refunded order was paid and counts,
    # its refund is subtracted, so the summary and the balance card say the same thing.
    assert [(row["currency"], row["total"], row["count"]) for row in summary["revenue"]] == [
        ("UGX", 50000, 1),
        ("USD", 3998, 3),
    ]
    balance = response.context["balance"]
    assert [(row["currency"], row["revenue"], row["orders"]) for row in balance] == [
        (row["currency"], row["total"], row["count"]) for row in summary["revenue"]
    ]
    html = response.content.decode()
    assert "$39.98" in html
    assert "UGX50,000" in html


def test_summary_and_balance_agree_with_partial_refunds(
    seller, seller_client, product, django_capture_on_commit_callbacks
):
    """The Orders page once said "$133.00 (8 paid orders)" beside a balance of "$123.00, 11 paid
    orders": the summary left out refunded orders and did not subtract partial refunds."""
    for _ in range(3):
        make_delivered(product, django_capture_on_commit_callbacks)
    partial = make_delivered(product, django_capture_on_commit_callbacks)
    Order.objects.filter(pk=partial.pk).update(status=OrderStatus.PARTIALLY_REFUNDED, refunded_amount=999)
    full = make_delivered(product, django_capture_on_commit_callbacks)
    Order.objects.filter(pk=full.pk).update(status=OrderStatus.REFUNDED, refunded_amount=1999)

    response = seller_client.get("/dashboard/")

    (summary_row,) = response.context["summary"]["revenue"]
    (balance_row,) = response.context["balance"]
    assert (summary_row["total"], summary_row["count"]) == (4 * 1999 - 999, 5)
    assert (balance_row["revenue"], balance_row["orders"]) == (summary_row["total"], summary_row["count"])
    assert "(5 paid orders)" in response.content.decode()


def test_status_filter_and_search(seller_client, product, django_capture_on_commit_callbacks):
    pending = make_order(product, email="pending@example.com")
    delivered = make_delivered(product, django_capture_on_commit_callbacks, email="delivered@example.com")

    by_status = seller_client.get("/dashboard/", {"status": "delivered"})
    assert [o.id for o in by_status.context["orders"]] == [delivered.id]

    by_email = seller_client.get("/dashboard/", {"q": "PENDING@example"})
    assert [o.id for o in by_email.context["orders"]] == [pending.id]

    by_number = seller_client.get("/dashboard/", {"q": delivered.order_number})
    assert [o.id for o in by_number.context["orders"]] == [delivered.id]

    unknown_status = seller_client.get("/dashboard/", {"status": "bogus"})
    assert unknown_status.status_code == 200
    assert len(unknown_status.context["orders"]) == 2


def test_orders_are_paginated_by_twenty(seller_client, product):
    orders = [make_order(product, email=f"b{i}@example.com") for i in range(21)]

    first = seller_client.get("/dashboard/")
    second = seller_client.get("/dashboard/", {"page": 2})

    assert len(first.context["orders"]) == 20
    assert [o.id for o in second.context["orders"]] == [orders[0].id]
    assert 'href="?page=2"' in first.content.decode()


def test_orders_list_runs_a_constant_number_of_queries(
    seller_client, product, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    for i in range(3):
        make_delivered(product, django_capture_on_commit_callbacks, email=f"b{i}@example.com")
    with CaptureQueriesContext(connection) as three:
        assert seller_client.get("/dashboard/").status_code == 200
    for i in range(3, 15):
        make_delivered(product, django_capture_on_commit_callbacks, email=f"b{i}@example.com")
    with django_assert_max_num_queries(len(three.captured_queries)):
        response = seller_client.get("/dashboard/")
    assert len(response.context["orders"]) == 15


# --- One order -----------------------------------------------------------------------------------


def test_order_detail_shows_items_delivery_payments_and_timeline(
    seller_client, product, django_capture_on_commit_callbacks
):
    order = make_delivered(product, django_capture_on_commit_callbacks)

    for ref in (order.order_number, order.id):
        response = seller_client.get(f"/dashboard/orders/{ref}/")
        assert response.status_code == 200
    html = response.content.decode()
    assert f"Order #{order.order_number}" in html
    assert "OPEN-SESAME" in html  # the delivered content
    assert "$19.99" in html
    events = list(OrderEvent.objects.filter(order=order))
    assert [e.type for e in response.context["events"]] == [e.type for e in events]
    assert [e.type for e in events].count("codes_viewed") == 2  # each page that showed the delivery
    # The timeline reads as sentences, with the status move beside them.
    assert 'The payment was confirmed: the order is paid. <span class="muted small">(pending → paid)</span>' in html
    assert "Everything in the order was delivered." in html and "(paid → delivered)" in html
    assert "The receipt with the delivery was emailed to the buyer." in html
    assert ">email_sent<" not in html
    assert 'id="retry-delivery"' in html


def test_another_sellers_order_is_not_found(seller_client):
    other_product = make_product(SellerFactory(), title="Other Shop Product")
    theirs = make_order(other_product)
    for ref in (theirs.order_number, theirs.id):
        response = seller_client.get(f"/dashboard/orders/{ref}/")
        assert response.status_code == 404
        assert "theirs" not in response.content.decode()
    events_before = OrderEvent.objects.filter(order=theirs).count()
    assert seller_client.post(f"/dashboard/orders/{theirs.order_number}/retry-delivery/").status_code == 404
    assert OrderEvent.objects.filter(order=theirs).count() == events_before


def test_retry_on_a_delivered_order_shows_the_error_and_changes_nothing(
    seller_client, product, django_capture_on_commit_callbacks
):
    """Nothing changes but the record that the order page, which shows the delivery, was read."""
    order = make_delivered(product, django_capture_on_commit_callbacks)
    events_before = OrderEvent.objects.filter(order=order).exclude(type="codes_viewed").count()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = seller_client.post(f"/dashboard/orders/{order.order_number}/retry-delivery/", follow=True)

    assert response.redirect_chain == [(f"/dashboard/orders/{order.order_number}/", 302)]
    html = response.content.decode()
    assert "Only paid orders that are not fully delivered can be retried (this one is delivered)." in html
    assert 'data-testid="message-error"' in html
    assert callbacks == []
    assert OrderEvent.objects.filter(order=order).exclude(type="codes_viewed").count() == events_before
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED


def test_retry_on_an_order_that_needs_attention_redelivers(
    seller, seller_client, product, django_capture_on_commit_callbacks
):
    order = make_order(product)
    order_mark_paid(order_id=order.id, payment_id="pay_test")  # fulfillment not run: stays paid
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.NEEDS_ATTENTION)

    with django_capture_on_commit_callbacks(execute=True):
        response = seller_client.post(f"/dashboard/orders/{order.order_number}/retry-delivery/", follow=True)

    assert "Delivery retry requested" in response.content.decode()
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    retry = OrderEvent.objects.get(order=order, type="delivery_retry_requested")
    assert (retry.actor, retry.actor_user_id) == ("seller", seller.id)


def test_retry_is_post_only(seller_client, product):
    order = make_order(product)
    assert seller_client.get(f"/dashboard/orders/{order.order_number}/retry-delivery/").status_code == 405


def test_seller_refunds_part_of_an_order_from_the_dashboard(django_capture_on_commit_callbacks):
    from django.test import Client

    from catalog.tests.factories import ProductFactory, VariantFactory
    from marketplace.accounts.tests.factories import SellerFactory
    from orders.tests.helpers import make_order, pay

    seller = SellerFactory()
    product = ProductFactory(seller=seller, currency="USD")
    VariantFactory(product=product, price=2000)
    order = pay(make_order(product), django_capture_on_commit_callbacks)
    browser = Client()
    browser.force_login(seller)
    page = browser.get(f"/dashboard/orders/{order.order_number}/")
    assert 'id="refund-form"' in page.content.decode()
    bad = browser.post(f"/dashboard/orders/{order.order_number}/refund/", {"amount": "5.001"}, follow=True)
    assert "at most 2 decimal places" in bad.content.decode()
    order.refresh_from_db()
    assert order.refunded_amount == 0
    done = browser.post(
        f"/dashboard/orders/{order.order_number}/refund/", {"amount": "5.00", "reason": "late"}, follow=True
    )
    assert "Refund sent" in done.content.decode()
    order.refresh_from_db()
    assert (order.refunded_amount, order.status) == (500, "partially_refunded")
    too_much = browser.post(f"/dashboard/orders/{order.order_number}/refund/", {"amount": "100"}, follow=True)
    assert "The refund must be between $0.01 and $15.00" in too_much.content.decode()
    order.refresh_from_db()
    assert order.refunded_amount == 500


# --- Filters and the CSV export link -------------------------------------------------------------


def _at(order, when):
    Order.objects.filter(pk=order.pk).update(created_at=when)


def test_filters_by_several_statuses_product_email_dates_and_amount(
    seller, seller_client, product, django_capture_on_commit_callbacks
):
    from datetime import UTC, datetime

    other_product = make_product(seller, title="Other Thing", price=500)
    pending = make_order(product, email="pending@example.com")
    delivered = make_delivered(product, django_capture_on_commit_callbacks, email="delivered@example.com")
    cheap = make_order(other_product, email="cheap@example.com")
    _at(pending, datetime(2026, 11, 10, 12, 0, tzinfo=UTC))
    _at(delivered, datetime(2026, 11, 20, 12, 0, tzinfo=UTC))
    _at(cheap, datetime(2026, 11, 20, 23, 30, tzinfo=UTC))

    def ids(**params):
        response = seller_client.get("/dashboard/", params)
        assert response.status_code == 200
        return {o.id for o in response.context["orders"]}

    assert ids(status=["pending", "delivered"]) == {pending.id, delivered.id, cheap.id}
    assert ids(status=["delivered"]) == {delivered.id}
    assert ids(status="pending,delivered") == {pending.id, delivered.id, cheap.id}  # the API's comma list
    assert ids(product=other_product.id) == {cheap.id}
    assert ids(buyer_email="DELIVERED@example.com") == {delivered.id}
    assert ids(created_from="2026-11-15") == {delivered.id, cheap.id}
    assert ids(created_from="2026-11-20", created_to="2026-11-20") == {delivered.id, cheap.id}
    assert ids(created_to="2026-11-19") == {pending.id}
    assert ids(min_amount="10.00") == {pending.id, delivered.id}  # one currency: USD implied
    assert ids(max_amount="5") == {cheap.id}
    assert ids(min_amount="19.99", max_amount="19.99", status="delivered") == {delivered.id}


def test_dates_are_days_in_the_sellers_time_zone(seller, seller_client, product):
    from datetime import UTC, datetime

    seller.time_zone = "Asia/Dhaka"  # UTC+6
    seller.save()
    late = make_order(product)
    _at(late, datetime(2026, 11, 20, 19, 0, tzinfo=UTC))  # 21 Nov, 01:00 in Dhaka
    response = seller_client.get("/dashboard/", {"created_from": "2026-11-21", "created_to": "2026-11-21"})
    assert [o.id for o in response.context["orders"]] == [late.id]
    assert "created_after=2026-11-20T18%3A00%3A00Z" in response.context["export_query"]
    assert "created_before=2026-11-21T18%3A00%3A00Z" in response.context["export_query"]
    assert seller_client.get("/dashboard/", {"created_to": "2026-11-20"}).context["orders"].__len__() == 0


def test_filter_errors_are_shown_next_to_the_field(seller, seller_client, product):
    make_product(seller, title="Shilling thing", currency="UGX", price=50000)
    make_order(product)

    no_currency = seller_client.get("/dashboard/", {"min_amount": "10"})
    html = no_currency.content.decode()
    assert 'data-testid="error-currency"' in html
    assert "Choose the currency the amounts are in." in html
    assert len(no_currency.context["orders"]) == 1  # the rest of the filters still apply: none

    bad_amount = seller_client.get("/dashboard/", {"currency": "USD", "min_amount": "1.234"})
    assert bad_amount.context["form"].errors["min_amount"] == ["Enter a positive amount with at most 2 decimal places."]
    backwards = seller_client.get("/dashboard/", {"created_from": "2026-11-20", "created_to": "2026-11-19"})
    assert backwards.context["form"].errors["created_to"] == ["Must be on or after the start date."]
    ugx = seller_client.get("/dashboard/", {"currency": "UGX", "min_amount": "1"})
    assert len(ugx.context["orders"]) == 0
    usd = seller_client.get("/dashboard/", {"currency": "USD", "min_amount": "19.99"})
    assert len(usd.context["orders"]) == 1


def test_filters_stay_in_the_page_links_and_the_export_link(seller_client, product):
    for i in range(21):
        make_order(product, email=f"b{i}@example.com")

    first = seller_client.get("/dashboard/", {"status": "pending", "q": "example.com", "min_amount": "1.00"})

    html = first.content.decode()
    assert 'href="?status=pending&amp;q=example.com&amp;min_amount=1.00&amp;page=2"' in html
    export = first.context["export_query"]
    assert export == "q=example.com&status=pending&currency=USD&min_amount=100"
    assert f'href="/api/v1/orders/export.csv?{export.replace("&", "&amp;")}"' in html
    second = seller_client.get(
        "/dashboard/", {"status": "pending", "q": "example.com", "min_amount": "1.00", "page": 2}
    )
    assert len(second.context["orders"]) == 1


def test_the_export_link_streams_the_filtered_orders_with_the_session(
    seller_client, product, django_capture_on_commit_callbacks
):
    make_order(product, email="pending@example.com")
    delivered = make_delivered(product, django_capture_on_commit_callbacks, email="delivered@example.com")
    page = seller_client.get("/dashboard/", {"status": "delivered"})

    response = seller_client.get(f"/api/v1/orders/export.csv?{page.context['export_query']}")

    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    rows = body.strip().splitlines()
    assert len(rows) == 2  # the header and the one delivered order
    assert delivered.order_number in rows[1]
    assert "pending@example.com" not in body


# --- Status changes and delivery overrides --------------------------------------------------------


def test_status_change_offers_only_the_lifecycles_manual_moves(seller_client, product):
    order = make_order(product)
    order_mark_paid(order_id=order.id, payment_id="pay_test")  # fulfillment not run: paid
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID

    response = seller_client.get(f"/dashboard/orders/{order.order_number}/")

    assert [value for value, _ in response.context["moves"]] == ["delivered", "needs_attention"]
    html = response.content.decode()
    assert '<option value="delivered">Delivered</option>' in html
    assert 'value="cancelled"' not in html
    # The question comes from the dashboard's static script (no inline handler: see the CSP).
    assert f'data-order-number="{order.order_number}" data-status-label="{order.get_status_display()}"' in html
    assert '<script src="/static/js/dashboard.js" defer></script>' in html


def test_an_allowed_status_change_is_recorded_on_the_timeline(seller, seller_client, product):
    order = make_order(product)
    response = seller_client.post(
        f"/dashboard/orders/{order.order_number}/status/", {"status": "cancelled"}, follow=True
    )
    assert "Status set to Cancelled." in response.content.decode()
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    event = OrderEvent.objects.get(order=order, to_status="cancelled")
    assert (event.from_status, event.actor, event.actor_user_id) == ("pending", "seller", seller.id)
    cancelled = 'The order was cancelled. <span class="muted small">(pending → cancelled)</span>'
    assert cancelled in response.content.decode()
    assert 'id="no-status-moves"' in response.content.decode()


def test_an_illegal_status_change_is_refused_with_the_message(
    seller_client, product, django_capture_on_commit_callbacks
):
    order = make_delivered(product, django_capture_on_commit_callbacks)
    events_before = OrderEvent.objects.filter(order=order).exclude(type="codes_viewed").count()
    page = seller_client.get(f"/dashboard/orders/{order.order_number}/")
    assert page.context["moves"] == []

    for target in ("pending", "refunded", "bogus"):
        response = seller_client.post(
            f"/dashboard/orders/{order.order_number}/status/", {"status": target}, follow=True
        )
        assert response.redirect_chain == [(f"/dashboard/orders/{order.order_number}/", 302)]
        html = response.content.decode()
        assert f"An order cannot move from delivered to {target}." in html
        assert 'data-testid="message-error"' in html
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert OrderEvent.objects.filter(order=order).exclude(type="codes_viewed").count() == events_before
    assert seller_client.get(f"/dashboard/orders/{order.order_number}/status/").status_code == 405


def test_override_delivery_error_is_shown_next_to_the_field(seller_client, product):
    order = make_order(product)
    item = order.items.get()

    response = seller_client.post(
        f"/dashboard/orders/{order.order_number}/delivery/",
        {"item_id": item.id, "content_type": "link", "content": "ftp://not-https.example/file"},
    )

    assert response.status_code == 400
    form = dict((i.id, f) for i, _, f in response.context["items"])[item.id]
    assert list(form.errors) == ["content"]
    html = response.content.decode()
    assert 'data-testid="error-content"' in html
    assert "<details open" in html
    item.refresh_from_db()
    assert (item.content_type, item.delivery_content) == ("text", "OPEN-SESAME")
    assert not OrderEvent.objects.filter(order=order, type="delivery_overridden").exists()


def test_override_delivery_replaces_the_item_and_records_it(seller, seller_client, product):
    order = make_order(product)
    item = order.items.get()

    response = seller_client.post(
        f"/dashboard/orders/{order.order_number}/delivery/",
        {"item_id": item.id, "content_type": "text", "content": "NEW-SECRET"},
        follow=True,
    )

    assert "Delivery of Secret Text replaced. Retry delivery to send it to the buyer." in response.content.decode()
    item.refresh_from_db()
    assert (item.content_type, item.delivery_content) == ("text", "NEW-SECRET")
    event = OrderEvent.objects.get(order=order, type="delivery_overridden")
    assert (event.actor, event.actor_user_id) == ("seller", seller.id)


def test_another_sellers_order_cannot_be_changed(seller_client):
    other_product = make_product(SellerFactory(), title="Other Shop Product")
    theirs = make_order(other_product)
    item = theirs.items.get()
    assert (
        seller_client.post(f"/dashboard/orders/{theirs.order_number}/status/", {"status": "cancelled"}).status_code
        == 404
    )
    assert (
        seller_client.post(
            f"/dashboard/orders/{theirs.order_number}/delivery/",
            {"item_id": item.id, "content_type": "text", "content": "MINE"},
        ).status_code
        == 404
    )
    assert seller_client.post(f"/dashboard/orders/{theirs.order_number}/refund/", {"amount": "1"}).status_code == 404
    theirs.refresh_from_db()
    item.refresh_from_db()
    assert (theirs.status, item.delivery_content) == (OrderStatus.PENDING, "OPEN-SESAME")
    assert not OrderEvent.objects.filter(order=theirs, actor="seller").exists()


def test_the_order_page_lists_refunds(django_capture_on_commit_callbacks):
    from django.test import Client

    from orders.tests.helpers import make_order as make_paid_order
    from orders.tests.helpers import pay

    seller = SellerFactory()
    product = make_product(seller, price=2000)
    order = pay(make_paid_order(product), django_capture_on_commit_callbacks)
    browser = Client()
    browser.force_login(seller)
    empty = browser.get(f"/dashboard/orders/{order.order_number}/").content.decode()
    assert "No refunds. Use Refund above" in empty
    with django_capture_on_commit_callbacks(execute=True):
        browser.post(f"/dashboard/orders/{order.order_number}/refund/", {"amount": "5.00", "reason": "late"})
    html = browser.get(f"/dashboard/orders/{order.order_number}/").content.decode()
    assert "<td>$5.00</td>" in html
    assert "<td>late</td>" in html


def test_the_order_page_shows_the_seller_the_delivered_codes(seller, seller_client, django_capture_on_commit_callbacks):
    from catalog.inventory import CodeRow, codes_import
    from catalog.models import DeliveryType

    product = ProductFactory(
        seller=seller, title="Gift card", delivery_type=DeliveryType.CODE_POOL, delivery_content=""
    )
    variant = VariantFactory(product=product, price=500)
    codes_import(variant=variant, rows=[CodeRow(1, "GIFT-AAAA-0001", pin="4321"), CodeRow(2, "GIFT-AAAA-0002")])
    order = make_delivered(product, django_capture_on_commit_callbacks)

    html = seller_client.get(f"/dashboard/orders/{order.order_number}/").content.decode()

    assert 'data-testid="codes"' in html
    assert "<code>GIFT-AAAA-0001 · PIN 4321</code>" in html
    assert "GIFT-AAAA-0002" not in html  # not this order's
    other = seller_client.get("/dashboard/").content.decode()
    assert "GIFT-AAAA-0001" not in other  # never in the list
