"""Issue 14: no raw minor units where a person reads. A $58.00 order refunded $29.00 must never show
"2900" or "5800" on the buyer's pages, the seller's dashboard or the operators' admin: every amount is
money, formatted with its currency (marketplace/core/money.py)."""

import html as html_lib
import re

import pytest
from django.contrib.admin.utils import quote as admin_quote
from django.core import mail

from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import UserFactory
from orders.models import OrderEvent

from .helpers import make_order, pay

pytestmark = pytest.mark.django_db

RAW = re.compile(r"(?<![\w.,$€£/:=-])(2900|5800)(?![\w.,/:-])")


def visible_text(page: str) -> str:
    """What a reader sees: the text outside tags, scripts and styles, plus the words of attributes a
    script shows (``data-refundable``, the refund dialog's text) and of form placeholders."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S | re.I)
    shown_attributes = " ".join(re.findall(r'(?:data-refundable|placeholder|title|aria-label)="([^"]*)"', page))
    text = re.sub(r"<[^>]+>", " ", page)
    return html_lib.unescape(text + " " + shown_attributes)


def raw_amounts(page: str) -> list[str]:
    text = visible_text(page)
    return [text[max(0, m.start() - 40) : m.end() + 20] for m in RAW.finditer(text)]


@pytest.fixture
def refunded_half(db, django_capture_on_commit_callbacks):
    from orders.services.refunds import order_refund_create

    product = ProductFactory(slug="big-course", title="Big Course", currency="USD", delivery_content="Welcome!")
    VariantFactory(product=product, name="Standard", price=5800)
    order = pay(make_order(product, email="ann@example.com"), django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        order_refund_create(order=order, amount=2900, reason="")
    order.refresh_from_db()
    assert (order.status, order.total_amount, order.refunded_amount) == ("partially_refunded", 5800, 2900)
    return order


def test_the_partial_refund_event_reads_as_money(refunded_half):
    messages = list(OrderEvent.objects.filter(order=refunded_half).values_list("message", flat=True))
    assert "Partially refunded ($29.00 of $58.00)." in messages
    assert not [m for m in messages if RAW.search(m)], messages


def test_no_page_shows_raw_minor_units(client, refunded_half, settings):
    order = refunded_half
    pages = {"success": client.get(f"/c/{order.product.slug}/orders/{order.id}")}
    mail.outbox.clear()
    client.post("/library", {"email": "ann@example.com"})
    link = re.search(r"http://[^\s\"<]+/library/signin/[^\s\"<]+", mail.outbox[0].body).group(0)
    client.post(link[len(settings.SITE_URL) :])
    pages["library"] = client.get("/library")
    client.force_login(order.seller)
    pages["dashboard orders"] = client.get("/dashboard/")
    pages["dashboard order"] = client.get(f"/dashboard/orders/{order.order_number}/")
    # Asking for more than is left: the message names what is left as money.
    too_much = client.post(f"/dashboard/orders/{order.order_number}/refund/", {"amount": "100"}, follow=True)
    assert "The refund must be between $0.01 and $29.00" in too_much.content.decode()
    pages["dashboard refund refused"] = too_much
    pages["dashboard analytics"] = client.get("/dashboard/analytics/")
    pages["dashboard balance"] = client.get("/dashboard/balance/")
    pages["dashboard statement"] = client.get("/dashboard/balance/statement/")
    client.force_login(UserFactory(email="ops@example.com", is_staff=True, is_superuser=True))
    # The admin quotes a primary key in its URLs ("ord_2F…" would otherwise read as "ord/…").
    pages["admin order"] = client.get(f"/admin/orders/order/{admin_quote(order.pk)}/change/")
    pages["admin orders"] = client.get("/admin/orders/order/")
    pages["admin events"] = client.get("/admin/orders/orderevent/")
    pages["admin payments"] = client.get("/admin/payments/payment/")
    pages["admin refunds"] = client.get("/admin/payments/refund/")
    pages["admin balance transactions"] = client.get("/admin/ledger/balancetransaction/")
    found = {}
    for name, response in pages.items():
        assert response.status_code == 200, name
        raw = raw_amounts(response.content.decode())
        if raw:
            found[name] = raw
    assert not found, found


def test_the_success_page_receipt_shows_the_refund(client, refunded_half):
    page = client.get(f"/c/{refunded_half.product.slug}/orders/{refunded_half.id}").content.decode()
    table = re.search(r'<table class="receipt".*?</table>', page, re.S).group(0)
    assert re.search(r'data-testid="receipt-total">\$58\.00<', table)
    assert "Refunded to you" in table and "−$29.00" in table


def test_the_refund_dialog_knows_the_currency(client, refunded_half):
    client.force_login(refunded_half.seller)
    page = client.get(f"/dashboard/orders/{refunded_half.order_number}/").content.decode()
    form = re.search(r'<form[^>]*id="refund-form"[^>]*>', page, re.S).group(0)
    assert 'data-refundable="$29.00"' in form
    assert 'data-currency="USD"' in form
