"""Issue 14, what buyers read: the seller's support email (pages and Reply-To), "How to use it" for
every delivery type, and a receipt that agrees with itself when a discount applies."""

import re

import pytest
from django.core import mail
from django.core.files.base import ContentFile
from django.core.files.storage import storages

from catalog.models import DeliveryType, Upload
from catalog.tests.factories import ProductFactory, VariantFactory
from orders.tests.helpers import buyer_mails

from .helpers import make_order, pay

pytestmark = pytest.mark.django_db

LINK = re.compile(r"http://[^\s\"<]+/library/signin/[^\s\"<]+")


@pytest.fixture
def private_storage(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "private": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }
    return storages["private"]


def sign_in_library(client, email, settings):
    mail.outbox.clear()
    client.post("/library", {"email": email})
    link = LINK.search(buyer_mails()[0].body).group(0)
    client.post(link[len(settings.SITE_URL) :])
    mail.outbox.clear()


def test_support_email_is_shown_on_checkout_success_and_library_pages(
    client, seller, text_product, settings, django_capture_on_commit_callbacks
):
    seller.support_email = "help@ada.example"
    seller.save(update_fields=["support_email"])
    checkout = client.get(f"/c/{text_product.slug}").content.decode()
    assert 'href="mailto:help@ada.example"' in checkout
    order = pay(make_order(text_product, email="ann@example.com"), django_capture_on_commit_callbacks)
    success = client.get(f"/c/{text_product.slug}/orders/{order.id}").content.decode()
    assert 'href="mailto:help@ada.example"' in success
    sign_in_library(client, "ann@example.com", settings)
    library = client.get("/library").content.decode()
    assert 'href="mailto:help@ada.example"' in library


def test_no_support_email_means_no_support_line(client, text_product, django_capture_on_commit_callbacks):
    order = pay(make_order(text_product, email="ann@example.com"), django_capture_on_commit_callbacks)
    assert 'data-testid="support-email"' not in client.get(f"/c/{text_product.slug}").content.decode()
    assert 'data-testid="support-email"' not in client.get(f"/c/{text_product.slug}/orders/{order.id}").content.decode()
    [receipt] = buyer_mails()
    assert receipt.reply_to == []


def test_every_email_about_the_order_replies_to_the_sellers_support_email(
    seller, text_product, django_capture_on_commit_callbacks
):
    from orders.emails import send_refund_email
    from orders.services.refunds import order_refund_create

    seller.support_email = "help@ada.example"
    seller.save(update_fields=["support_email"])
    order = pay(make_order(text_product, email="ann@example.com"), django_capture_on_commit_callbacks)
    [receipt] = buyer_mails()
    assert receipt.reply_to == ["help@ada.example"]
    assert "help@ada.example" in receipt.body and "help@ada.example" in receipt.alternatives[0][0]
    assert receipt.message()["Reply-To"] == "help@ada.example"
    with django_capture_on_commit_callbacks(execute=True):
        refund = order_refund_create(order=order, amount=500, reason="")
    mail.outbox.clear()
    send_refund_email(order, refund)
    [refund_notice] = buyer_mails()
    assert refund_notice.reply_to == ["help@ada.example"]
    assert "help@ada.example" in refund_notice.body


@pytest.fixture(params=["text", "link", "file"])
def instructed_product(request, seller, private_storage):
    kind = request.param
    content = {"text": "The secret is OPEN-SESAME", "link": "https://course.example/start"}.get(kind, "")
    if kind == "file":
        content = private_storage.save("uploads/test/guide.pdf", ContentFile(b"%PDF-1.4 the guide"))
        Upload.objects.create(seller=seller, key=content, filename="guide.pdf", size=18, content_type="application/pdf")
    product = ProductFactory(
        seller=seller,
        slug=f"instructed-{kind}",
        title="Instructed",
        delivery_type=getattr(DeliveryType, kind.upper()),
        delivery_content=content,
        redemption_instructions="Open it on your laptop, then press Start.",
    )
    VariantFactory(product=product, price=900)
    return product


def test_how_to_use_it_is_on_the_success_page_and_in_the_library(
    client, instructed_product, settings, django_capture_on_commit_callbacks
):
    order = pay(make_order(instructed_product, email="ann@example.com"), django_capture_on_commit_callbacks)
    assert order.status == "delivered"
    success = client.get(f"/c/{instructed_product.slug}/orders/{order.id}").content.decode()
    assert "How to use it" in success
    assert "Open it on your laptop, then press Start." in success
    sign_in_library(client, "ann@example.com", settings)
    library = client.get("/library").content.decode()
    assert "How to use it" in library
    assert "Open it on your laptop, then press Start." in library


def test_the_receipt_agrees_with_itself_with_a_discount(
    client, seller, text_product, django_capture_on_commit_callbacks
):
    from catalog.discounts import discount_save

    discount_save(seller=seller, data={"code": "SAVE10", "kind": "percent", "value": 10})
    order = pay(make_order(text_product, quantity=2, discount_code="SAVE10"), django_capture_on_commit_callbacks)
    assert (order.subtotal, order.discount_amount, order.total_amount) == (3998, 400, 3598)
    [receipt] = buyer_mails()
    for text in (receipt.body, receipt.alternatives[0][0]):
        assert "$39.98" in text  # the line: 2 × $19.99
        assert "$4.00" in text and "SAVE10" in text  # the discount line
        assert "$35.98" in text  # the total: $39.98 − $4.00
    page = client.get(f"/c/{text_product.slug}/orders/{order.id}").content.decode()
    table = re.search(r'<table class="receipt".*?</table>', page, re.S).group(0)
    assert "$39.98" in table and "−$4.00" in table and "SAVE10" in table
    assert re.search(r'data-testid="receipt-total">\$35\.98<', table)


def test_without_a_discount_the_receipt_has_no_discount_line(client, text_product, django_capture_on_commit_callbacks):
    order = pay(make_order(text_product), django_capture_on_commit_callbacks)
    page = client.get(f"/c/{text_product.slug}/orders/{order.id}").content.decode()
    assert 'data-testid="receipt-discount"' not in page
    assert re.search(r'data-testid="receipt-total">\$19\.99<', page)
    [receipt] = buyer_mails()
    assert "Discount" not in receipt.body and "Total paid: $19.99" in receipt.body
