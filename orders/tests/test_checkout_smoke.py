import pytest

from orders.models import Order
from orders.tests.helpers import buyer_mails


@pytest.mark.django_db
def test_buy_text_product_end_to_end(client, api_client, text_product, django_capture_on_commit_callbacks):
    response = api_client.post(
        f"/api/v1/public/checkout/{text_product.slug}/pay",
        {"buyer_email": "Buyer@Example.com", "quantity": 1},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["success"] is True
    order = body["data"]
    assert order["status"] == "pending"
    assert order["total_amount"] == 1999
    redirect = order["payment"]["redirect_url"]
    assert "/sandbox/pay/" in redirect
    path = redirect.split("://", 1)[1].split("/", 1)[1]
    page = client.get("/" + path)
    assert page.status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post("/" + path, {"outcome": "succeeded"})
    assert done.status_code == 302
    stored = Order.objects.get(pk=order["id"])
    assert stored.status == "delivered"
    assert len(buyer_mails()) == 1
    assert "OPEN-SESAME" in buyer_mails()[0].body
    polled = api_client.get(f"/api/v1/public/checkout/{text_product.slug}/order/{order['id']}").json()["data"]
    assert polled["status"] == "delivered"
    assert polled["items"][0]["delivery"]["content"] == "The secret is OPEN-SESAME"
    success = client.get(done["Location"].split("127.0.0.1:8000", 1)[1])
    assert b"OPEN-SESAME" in success.content
