import pytest

from catalog.models import ProductStatus
from catalog.tests.factories import ProductFactory, VariantFactory
from orders.models import Order, OrderEvent, OrderItem
from payments.models import Payment

pytestmark = pytest.mark.django_db


def pay_url(product):
    return f"/api/v1/public/checkout/{product.slug}/pay"


def nothing_created():
    return Order.objects.count() == 0 and OrderItem.objects.count() == 0 and Payment.objects.count() == 0


def test_public_product_view(api_client, text_product):
    body = api_client.get(f"/api/v1/public/checkout/{text_product.slug}").json()
    assert body["success"] is True
    data = body["data"]
    assert data["slug"] == "secret-text"
    assert data["title"] == "Secret Text"
    assert data["seller_name"] == "Ada's Shop"
    assert data["currency"] == "USD"
    variant = text_product.variants.get()
    assert data["variants"] == [{"id": variant.id, "name": "Standard", "price": 1999, "available": True, "stock": None}]
    assert "delivery_content" not in str(data) and "OPEN-SESAME" not in str(data)


def test_draft_product_is_not_for_sale(api_client, seller):
    product = ProductFactory(seller=seller, status=ProductStatus.DRAFT)
    VariantFactory(product=product)
    response = api_client.get(f"/api/v1/public/checkout/{product.slug}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "product_not_found"
    response = api_client.post(pay_url(product), {"buyer_email": "a@b.co"}, format="json")
    assert response.status_code == 404
    assert nothing_created()


def test_pay_creates_order_with_fee_and_payment(api_client, text_product, settings):
    settings.PLATFORM_FEE_BPS = 500
    settings.PLATFORM_FEE_FIXED = 30
    variant = text_product.variants.get()
    response = api_client.post(
        pay_url(text_product),
        {
            "buyer_email": "b@example.com",
            "items": [{"variant_id": variant.id, "quantity": 3}],
            "meta": {"campaign": "spring"},
            "payment_reference": "ref-1",
        },
        format="json",
    )
    assert response.status_code == 201
    data = response.json()["data"]
    assert data["status"] == "pending"
    assert data["subtotal"] == 5997
    assert data["total_amount"] == 5997
    assert data["items"][0]["quantity"] == 3
    assert data["items"][0]["unit_price"] == 1999
    assert data["items"][0]["delivery"] is None
    assert data["payment"]["gateway"] == "sandbox"
    assert data["payment"]["status"] == "pending"
    assert data["payment"]["amount"] == 5997
    assert "platform_fee" not in data  # the buyer never sees the seller's economics
    order = Order.objects.get(pk=data["id"])
    assert order.platform_fee == 300 + 30  # 5 % of 5997 rounded half up, plus the fixed part
    assert order.seller_earnings == 5997 - 330
    assert order.meta == {"campaign": "spring"}
    assert len(order.order_number) == 8 and order.order_number.isdigit()
    assert order.id.startswith("ord_") and len(order.id) >= 26
    assert list(OrderEvent.objects.filter(order=order).values_list("type", flat=True)) == [
        "order_created",
        "payment_initiated",
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "buyer_email"),
        ({"buyer_email": "not-an-email"}, "buyer_email"),
        ({"buyer_email": "a@b.co", "quantity": 0}, "quantity"),
        ({"buyer_email": "a@b.co", "quantity": "2"}, "quantity"),
        ({"buyer_email": "a@b.co", "quantity": 1.5}, "quantity"),
        ({"buyer_email": "a@b.co", "quantity": True}, "quantity"),
        ({"buyer_email": "a@b.co", "items": [{"variant_id": "var_nope", "quantity": 1}]}, "items.0.variant_id"),
        ({"buyer_email": "a@b.co", "items": []}, "items"),
        ({"buyer_email": "a@b.co", "webhook_urls": ["http://insecure.test/hook"]}, "webhook_urls.0"),
        ({"buyer_email": "a@b.co", "payment_method": "bitcoin"}, "payment_method"),
    ],
)
def test_bad_input_is_400_and_creates_nothing(api_client, text_product, body, field):
    response = api_client.post(pay_url(text_product), body, format="json")
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert response.json()["success"] is False
    assert error["code"] == "validation_error"
    assert field in error["fields"], error
    assert error["message"]
    assert nothing_created()


def test_malformed_json_is_400(api_client, text_product):
    response = api_client.generic("POST", pay_url(text_product), "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
    assert nothing_created()


def test_unknown_discount_code_is_422(api_client, text_product):
    response = api_client.post(pay_url(text_product), {"buyer_email": "a@b.co", "discount_code": "FREE"}, format="json")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_discount"
    assert nothing_created()


def test_quote(api_client, text_product):
    variant = text_product.variants.get()
    response = api_client.post(
        f"/api/v1/public/checkout/{text_product.slug}/quote",
        {"items": [{"variant_id": variant.id, "quantity": 2}]},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["data"] == {
        "currency": "USD",
        "subtotal": 3998,
        "discount_code": None,
        "discount_amount": 0,
        "total_amount": 3998,
        "items": [
            {"variant_id": variant.id, "variant_name": "Standard", "quantity": 2, "unit_price": 1999, "total": 3998}
        ],
    }


def test_limited_stock_is_reserved_and_never_oversold(api_client, seller):
    product = ProductFactory(seller=seller)
    variant = VariantFactory(product=product, stock=2)
    first = api_client.post(pay_url(product), {"buyer_email": "a@b.co", "quantity": 2}, format="json")
    assert first.status_code == 201
    variant.refresh_from_db()
    assert variant.stock == 0
    second = api_client.post(pay_url(product), {"buyer_email": "c@d.co", "quantity": 1}, format="json")
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "out_of_stock"
    assert Order.objects.count() == 1
    variant.refresh_from_db()
    assert variant.stock == 0


def test_cancelling_releases_reserved_stock(api_client, seller):
    from orders.services import order_cancel

    product = ProductFactory(seller=seller)
    variant = VariantFactory(product=product, stock=3)
    order_id = api_client.post(pay_url(product), {"buyer_email": "a@b.co", "quantity": 2}, format="json").json()[
        "data"
    ]["id"]
    order_cancel(order_id=order_id, message="test")
    variant.refresh_from_db()
    assert variant.stock == 3
    assert Order.objects.get(pk=order_id).status == "cancelled"


class TestIdempotency:
    def test_same_key_same_body_returns_the_same_order(self, api_client, text_product):
        body = {"buyer_email": "a@b.co", "quantity": 1, "idempotency_key": "key-123"}
        first = api_client.post(pay_url(text_product), body, format="json")
        second = api_client.post(pay_url(text_product), body, format="json")
        assert first.status_code == 201
        assert second.status_code == 200
        assert first.json()["data"]["id"] == second.json()["data"]["id"]
        assert first.json()["data"]["payment"]["id"] == second.json()["data"]["payment"]["id"]
        assert Order.objects.count() == 1
        assert Payment.objects.count() == 1

    def test_key_from_header(self, api_client, text_product):
        body = {"buyer_email": "a@b.co", "quantity": 1}
        first = api_client.post(pay_url(text_product), body, format="json", HTTP_IDEMPOTENCY_KEY="hdr-1")
        second = api_client.post(pay_url(text_product), body, format="json", HTTP_IDEMPOTENCY_KEY="hdr-1")
        assert (first.status_code, second.status_code) == (201, 200)
        assert first.json()["data"]["idempotency_key"] if "idempotency_key" in first.json()["data"] else True
        assert Order.objects.get().idempotency_key == "hdr-1"

    def test_same_key_different_body_is_409(self, api_client, text_product):
        api_client.post(
            pay_url(text_product), {"buyer_email": "a@b.co", "quantity": 1, "idempotency_key": "k"}, format="json"
        )
        response = api_client.post(
            pay_url(text_product), {"buyer_email": "a@b.co", "quantity": 2, "idempotency_key": "k"}, format="json"
        )
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "idempotency_conflict"
        assert Order.objects.count() == 1
        assert Order.objects.get().items.get().quantity == 1
