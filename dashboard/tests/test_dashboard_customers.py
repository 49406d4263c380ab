"""The customers page: buyers by email with their paid orders and totals per currency, search, a
CSV export with the CSV-injection guard; "resend receipt" on an order. Never another seller's buyers."""

import csv
import io

import pytest
from django.core import mail
from django.core.cache import cache

from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory
from orders.models import Order, OrderEvent
from orders.tests.helpers import buyer_mails, make_order, pay

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


def product_of(seller, slug, currency="USD", price=1999):
    product = ProductFactory(seller=seller, slug=slug, title=slug.title(), currency=currency, delivery_content="Hi")
    VariantFactory(product=product, price=price)
    return product


@pytest.fixture
def me():
    return SellerFactory(name="Ada's Shop", email="ada@example.com")


@pytest.fixture
def shop(me, django_capture_on_commit_callbacks):
    usd = product_of(me, "guide")
    eur = product_of(me, "course", currency="EUR", price=5000)
    capture = django_capture_on_commit_callbacks
    pay(make_order(usd, email="ann@example.com"), capture)
    pay(make_order(usd, quantity=2, email="Ann@Example.com"), capture)  # the same buyer, another case
    pay(make_order(eur, email="ann@example.com"), capture)
    pay(make_order(usd, email="=HYPERLINK(evil)@example.com"), capture)
    make_order(usd, email="unpaid@example.com")  # never paid: not a customer
    other = SellerFactory(name="Other")
    pay(make_order(product_of(other, "theirs"), email="bob@example.com"), capture)
    pay(make_order(product_of(other, "theirs-too"), email="ann@example.com"), capture)
    return usd, eur


@pytest.fixture
def browser(client, me):
    client.force_login(me)
    return client


def test_customers_by_email_with_orders_and_totals_per_currency(browser, shop, django_assert_max_num_queries):
    with django_assert_max_num_queries(8):
        response = browser.get("/dashboard/customers/")
    assert response.status_code == 200
    rows = {row["email"]: row for row in response.context["customers"]}
    assert set(rows) == {"ann@example.com", "=hyperlink(evil)@example.com"}  # not bob, not unpaid
    ann = rows["ann@example.com"]
    assert ann["orders"] == 3
    assert [(t["currency"], t["orders"], t["spent"]) for t in ann["totals"]] == [("EUR", 1, 5000), ("USD", 2, 5997)]
    html = response.content.decode()
    assert "bob@example.com" not in html and "unpaid@example.com" not in html
    assert "$59.97" in html and "€50.00" in html
    assert 'href="/dashboard/?buyer_email=ann%40example.com"' in html


def test_totals_are_net_of_refunds(browser, shop, me):
    order = Order.objects.filter(seller=me, currency="EUR").get()
    Order.objects.filter(pk=order.pk).update(refunded_amount=1000, status="partially_refunded")
    response = browser.get("/dashboard/customers/?q=ann")
    ann = response.context["customers"][0]
    assert [(t["currency"], t["spent"], t["refunded"]) for t in ann["totals"]][0] == ("EUR", 4000, 1000)
    assert "€10.00 refunded" in response.content.decode()


def test_search(browser, shop):
    response = browser.get("/dashboard/customers/?q=HYPERLINK")
    assert [row["email"] for row in response.context["customers"]] == ["=hyperlink(evil)@example.com"]
    assert 'data-testid="empty"' in browser.get("/dashboard/customers/?q=bob@").content.decode()


def test_csv_export_is_streamed_guarded_and_only_mine(browser, shop):
    response = browser.get("/dashboard/customers/export.csv")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="customers-')
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["email", "currency", "orders", "total_spent", "refunded", "first_order_at", "last_order_at"]
    body = [row[:5] for row in rows[1:]]
    assert body == [
        ["'=hyperlink(evil)@example.com", "USD", "1", "19.99", "0.00"],  # a formula is never run
        ["ann@example.com", "EUR", "1", "50.00", "0.00"],
        ["ann@example.com", "USD", "2", "59.97", "0.00"],
    ]
    filtered = browser.get("/dashboard/customers/export.csv?q=ann")
    assert len(list(csv.reader(io.StringIO(b"".join(filtered.streaming_content).decode())))) == 3


def test_the_nav_links_the_customers_page(browser):
    assert 'href="/dashboard/customers/"' in browser.get("/dashboard/").content.decode()


def test_signed_out_is_sent_to_sign_in(client):
    assert client.get("/dashboard/customers/")["Location"].startswith("/accounts/login/")
    assert client.get("/dashboard/customers/export.csv")["Location"].startswith("/accounts/login/")


# --- Resend receipt ------------------------------------------------------------------------------


def test_resend_receipt_sends_it_again_and_records_it(browser, shop, me):
    order = Order.objects.filter(seller=me, currency="EUR").get()
    mail.outbox.clear()
    page = browser.get(f"/dashboard/orders/{order.order_number}/").content.decode()
    assert 'id="resend-receipt"' in page
    response = browser.post(f"/dashboard/orders/{order.order_number}/resend-receipt/", follow=True)
    assert "Receipt sent again to ann@example.com." in response.content.decode()
    [message] = buyer_mails()
    assert message.to == ["ann@example.com"] and order.order_number in message.subject
    event = OrderEvent.objects.get(order=order, type="receipt_resent")
    assert (event.actor, event.actor_user_id, event.data) == ("seller", me.pk, {"to": ["ann@example.com"]})


def test_resend_receipt_is_rate_limited_per_order(browser, shop, me, settings):
    order = Order.objects.filter(seller=me, currency="EUR").get()
    mail.outbox.clear()
    for _ in range(3):
        browser.post(f"/dashboard/orders/{order.order_number}/resend-receipt/")
    response = browser.post(f"/dashboard/orders/{order.order_number}/resend-receipt/", follow=True)
    assert "was sent again recently" in response.content.decode()
    assert len(buyer_mails()) == 3
    assert OrderEvent.objects.filter(order=order, type="receipt_resent").count() == 3


def test_an_undelivered_order_has_no_receipt_to_resend(browser, shop, me):
    order = Order.objects.get(seller=me, buyer_email="unpaid@example.com")
    mail.outbox.clear()
    response = browser.post(f"/dashboard/orders/{order.order_number}/resend-receipt/", follow=True)
    assert "has not been sent yet" in response.content.decode()
    assert mail.outbox == [] and not OrderEvent.objects.filter(order=order, type="receipt_resent").exists()


def test_another_sellers_order_is_not_found(browser, shop):
    theirs = Order.objects.get(buyer_email="bob@example.com")
    mail.outbox.clear()
    assert browser.post(f"/dashboard/orders/{theirs.order_number}/resend-receipt/").status_code == 404
    assert mail.outbox == []


def test_resend_receipt_over_the_api(shop, me):
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import RefreshToken

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(me).access_token}")
    order = Order.objects.filter(seller=me, currency="EUR").get()
    mail.outbox.clear()
    codes = [api.post(f"/api/v1/orders/{order.order_number}/resend-receipt").status_code for _ in range(4)]
    assert codes == [202, 202, 202, 429]
    assert len(buyer_mails()) == 3
    limited = api.post(f"/api/v1/orders/{order.order_number}/resend-receipt")
    assert limited.json()["error"]["code"] == "rate_limited" and int(limited["Retry-After"]) > 0
    assert api.post(f"/api/v1/orders/{order.id}/resend-receipt", {"to": "x@y.z"}, format="json").status_code == 400
    theirs = Order.objects.get(buyer_email="bob@example.com")
    assert api.post(f"/api/v1/orders/{theirs.order_number}/resend-receipt").status_code == 404
    unpaid = Order.objects.get(seller=me, buyer_email="unpaid@example.com")
    assert api.post(f"/api/v1/orders/{unpaid.order_number}/resend-receipt").status_code == 409
    assert len(buyer_mails()) == 3
