"""The seller's "you made a sale" email: on by default, once per paid order, off when the seller says so."""

import pytest
from django.core import mail

from orders.models import OrderEvent
from orders.sale_notifications import sale_notification_send

from .helpers import make_order, pay

pytestmark = pytest.mark.django_db


def seller_mails(seller):
    return [m for m in mail.outbox if m.to == [seller.email]]


def test_a_paid_order_emails_the_seller_once(seller, text_product, django_capture_on_commit_callbacks):
    assert seller.notify_on_sale is True  # on by default
    order = pay(make_order(text_product, email="ann@example.com"), django_capture_on_commit_callbacks)
    sent = seller_mails(seller)
    assert len(sent) == 1
    message = sent[0]
    assert message.subject == f"New sale: Secret Text ($19.99) — order #{order.order_number}"
    assert "ann@example.com" in message.body
    assert f"/dashboard/orders/{order.order_number}/" in message.body
    assert "OPEN-SESAME" not in message.body  # never the delivered content
    assert order.id not in message.body  # nor the buyer's capability
    assert OrderEvent.objects.filter(order=order, type="sale_notified").count() == 1
    # A second run of the task (a redelivered message) sends nothing more.
    assert sale_notification_send(order_id=order.id) == "already"
    assert len(seller_mails(seller)) == 1


def test_turned_off_no_email(seller, text_product, django_capture_on_commit_callbacks):
    seller.notify_on_sale = False
    seller.save(update_fields=["notify_on_sale"])
    order = pay(make_order(text_product), django_capture_on_commit_callbacks)
    assert order.status == "delivered"
    assert seller_mails(seller) == []
    assert not OrderEvent.objects.filter(order=order, type="sale_notified").exists()


def test_an_unpaid_order_sends_nothing(seller, text_product):
    order = make_order(text_product)
    assert sale_notification_send(order_id=order.id) == "missing"
    assert seller_mails(seller) == []


def test_the_setting_is_on_the_settings_page(client, seller):
    client.force_login(seller)
    html = client.get("/dashboard/settings/").content.decode()
    assert 'name="notify_on_sale"' in html and "checked" in html.split('name="notify_on_sale"')[1][:80]
    response = client.post("/dashboard/settings/", {"name": "Ada's Shop", "support_email": "", "time_zone": "UTC"})
    assert response.status_code == 302
    seller.refresh_from_db()
    assert seller.notify_on_sale is False
    client.post(
        "/dashboard/settings/", {"name": "Ada's Shop", "support_email": "", "time_zone": "UTC", "notify_on_sale": "on"}
    )
    seller.refresh_from_db()
    assert seller.notify_on_sale is True


def test_sent_outside_any_transaction_and_a_refused_send_is_retried_once(
    seller, text_product, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    from unittest import mock

    from django.db import connection

    seller.notify_on_sale = False
    seller.save(update_fields=["notify_on_sale"])
    order = pay(make_order(text_product), django_capture_on_commit_callbacks)
    type(seller).objects.filter(pk=seller.pk).update(notify_on_sale=True)
    original = mail.EmailMultiAlternatives.send
    in_transaction: list[bool] = []

    def refusing(self, *args, **kwargs):
        in_transaction.append(connection.in_atomic_block)
        raise OSError("mail server down")

    with mock.patch("django.core.mail.EmailMultiAlternatives.send", refusing), pytest.raises(OSError):
        sale_notification_send(order_id=order.id)
    assert not OrderEvent.objects.filter(order=order, type="sale_notified").exists()  # the claim given back

    def recording(self, *args, **kwargs):
        in_transaction.append(connection.in_atomic_block)
        return original(self, *args, **kwargs)

    with (
        mock.patch("django.core.mail.EmailMultiAlternatives.send", recording),
        django_assert_max_num_queries(8),
    ):
        assert sale_notification_send(order_id=order.id) == "sent"
    assert len(seller_mails(seller)) == 1
    assert OrderEvent.objects.filter(order=order, type="sale_notified").count() == 1
