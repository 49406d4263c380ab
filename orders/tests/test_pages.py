import pytest

from catalog.tests.factories import ProductFactory, VariantFactory
from orders.models import Order

from .helpers import make_order, pay

pytestmark = pytest.mark.django_db


def test_checkout_page_shows_the_price_formatted(client, text_product):
    response = client.get(f"/c/{text_product.slug}")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Secret Text" in html
    assert "$19.99" in html
    assert "Ada&#x27;s Shop" in html or "Ada's Shop" in html
    assert "OPEN-SESAME" not in html


@pytest.mark.parametrize(
    ("currency", "price", "shown"), [("UGX", 50000, "UGX50,000"), ("KWD", 1234, "KWD1.234"), ("EUR", 1500, "€15.00")]
)
def test_prices_use_the_currency_exponent(client, seller, currency, price, shown):
    product = ProductFactory(seller=seller, currency=currency)
    VariantFactory(product=product, price=price)
    html = client.get(f"/c/{product.slug}").content.decode()
    assert shown in html.replace("\xa0", "")


def test_submitting_the_form_opens_a_sandbox_payment(client, text_product):
    response = client.post(
        f"/c/{text_product.slug}",
        {
            "buyer_email": "page@example.com",
            "quantity": 2,
            "variant_id": text_product.variants.get().id,
            "idempotency_key": "page-1",
        },
    )
    assert response.status_code == 302
    assert "/sandbox/pay/pay_" in response["Location"]
    order = Order.objects.get()
    assert (order.buyer_email, order.total_amount, order.idempotency_key) == ("page@example.com", 3998, "page-1")
    again = client.post(
        f"/c/{text_product.slug}",
        {
            "buyer_email": "page@example.com",
            "quantity": 2,
            "variant_id": text_product.variants.get().id,
            "idempotency_key": "page-1",
        },
    )
    assert again["Location"] == response["Location"]
    assert Order.objects.count() == 1


def test_bad_email_shows_the_error_and_creates_nothing(client, text_product):
    response = client.post(
        f"/c/{text_product.slug}", {"buyer_email": "nope", "quantity": 1, "variant_id": text_product.variants.get().id}
    )
    assert response.status_code == 400
    assert "Enter a valid email address." in response.content.decode()
    assert Order.objects.count() == 0


def test_sold_out_shows_the_error(client, seller):
    product = ProductFactory(seller=seller)
    variant = VariantFactory(product=product, stock=0)
    response = client.post(f"/c/{product.slug}", {"buyer_email": "a@b.co", "quantity": 1, "variant_id": variant.id})
    assert response.status_code == 400
    assert "sold out" in response.content.decode()
    assert Order.objects.count() == 0


def test_unknown_product_page_is_404(client):
    assert client.get("/c/no-such-product").status_code == 404


def test_success_page_shows_the_delivery(client, text_product, django_capture_on_commit_callbacks):
    order = pay(make_order(text_product), django_capture_on_commit_callbacks)
    response = client.get(f"/c/{text_product.slug}/orders/{order.id}")
    assert response.status_code == 200
    html = response.content.decode()
    assert "The secret is OPEN-SESAME" in html
    assert "Your purchase is ready" in html


def test_success_page_before_payment_hides_the_delivery(client, text_product):
    order = make_order(text_product)
    html = client.get(f"/c/{text_product.slug}/orders/{order.id}").content.decode()
    assert "OPEN-SESAME" not in html
    assert "Confirming your payment" in html


def test_success_page_needs_the_capability_id(client, text_product):
    order = make_order(text_product)
    assert client.get(f"/c/{text_product.slug}/orders/{order.order_number}").status_code == 404
    assert client.get(f"/c/other-slug/orders/{order.id}").status_code == 404
