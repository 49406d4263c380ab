"""``POST /api/v1/orders``: orders from an integration (a buyer's JWT or API key, a seller's own key
for a customer, an external payment), buyers' API keys, a buyer's own orders, and idempotency keys
per seller (checkout) or per caller (``POST /orders``)."""

from collections import Counter

import pytest
from django.db import connection
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from catalog.tests.factories import ProductFactory, VariantFactory
from ledger.models import BalanceTransaction, LedgerLine
from ledger.selectors import balances_for_seller
from marketplace.accounts.services import api_key_create
from marketplace.accounts.tests.factories import SellerFactory, UserFactory
from orders.models import Order, OrderEvent, OrderItem
from payments.models import Payment
from tests.campaign.concurrency import run_concurrently

URL = "/api/v1/orders"


def jwt_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def key_client(user) -> APIClient:
    _, raw = api_key_create(user=user, name="integration")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def counts() -> tuple[int, int, int, int]:
    models = (Order, OrderItem, Payment, BalanceTransaction)
    a, b, c, d = (model.objects.count() for model in models)
    return a, b, c, d


@pytest.fixture
def shop(db):
    seller = SellerFactory(name="Ada's Shop")
    first = ProductFactory(seller=seller, currency="USD", title="First")
    second = ProductFactory(seller=seller, currency="USD", title="Second")
    return {
        "seller": seller,
        "first": first,
        "second": second,
        "v1": VariantFactory(product=first, price=1000, stock=5),
        "v2": VariantFactory(product=second, price=250),
    }


@pytest.fixture
def buyer(db):
    return UserFactory(email="reseller@example.com")


@pytest.mark.django_db
def test_buyer_jwt_orders_items_of_two_products_and_reads_it_back(shop, buyer):
    client = jwt_client(buyer)
    body = {
        "items": [{"variant_id": shop["v1"].id, "quantity": 2}, {"variant_id": shop["v2"].id, "quantity": 1}],
        "meta": {"ref": "r-1"},
        "recipient_email": "friend@example.com",
    }
    response = client.post(URL, body, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()["data"]
    assert data["status"] == "pending"
    assert data["buyer_email"] == "reseller@example.com"
    assert data["total_amount"] == 2250
    assert [(i["product_id"], i["quantity"]) for i in data["items"]] == [
        (shop["first"].id, 2),
        (shop["second"].id, 1),
    ]
    assert data["payment"]["gateway"] == "sandbox" and data["payment"]["redirect_url"]
    order = Order.objects.get(id=data["id"])
    assert order.buyer == buyer and order.seller == shop["seller"]
    shop["v1"].refresh_from_db()
    assert shop["v1"].stock == 3  # reserved like a checkout

    listed = client.get(URL).json()["data"]
    assert [o["id"] for o in listed["results"]] == [order.id]
    assert "platform_fee" not in listed["results"][0]  # a buyer's view
    detail = client.get(f"{URL}/{order.id}")
    assert detail.status_code == 200 and detail.json()["data"]["id"] == order.id
    assert client.get(f"{URL}/{order.order_number}").json()["data"]["id"] == order.id


@pytest.mark.django_db
def test_a_buyer_never_reads_another_buyers_or_a_guest_order(shop, buyer):
    other = UserFactory()
    mine = jwt_client(other).post(URL, {"variant_id": shop["v2"].id}, format="json").json()["data"]["id"]
    client = jwt_client(buyer)
    assert client.get(URL).json()["data"]["results"] == []
    response = client.get(f"{URL}/{mine}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "order_not_found"


@pytest.mark.django_db
def test_buyer_creates_an_api_key_and_orders_with_it(shop, buyer):
    created = jwt_client(buyer).post("/api/v1/api-keys", {"name": "reseller backend"}, format="json")
    assert created.status_code == 201
    raw = created.json()["data"]["key"]
    assert raw.startswith("sk_")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = client.post(URL, {"variant_id": shop["v2"].id, "init_payment": False}, format="json")
    assert response.status_code == 201
    assert "payment" not in response.json()["data"]
    assert Order.objects.get().buyer == buyer
    # The buyer's key is a buyer's: the seller's endpoints stay closed to it.
    assert client.get("/api/v1/products").status_code == 403
    assert [k["name"] for k in jwt_client(buyer).get("/api/v1/api-keys").json()["data"]] == ["reseller backend"]


@pytest.mark.django_db
def test_seller_key_orders_for_a_customer_paid_externally_and_fulfilled_at_once(
    shop, settings, django_capture_on_commit_callbacks
):
    settings.PLATFORM_FEE_BPS = 500
    settings.PLATFORM_FEE_FIXED = 30
    client = key_client(shop["seller"])
    body = {
        "buyer_email": "Customer@Example.com",
        "items": [{"variant_id": shop["v1"].id, "quantity": 1}],
        "payment_method": "external",
        "payment_reference": "POS-4711",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(URL, body, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()["data"]
    assert data["status"] == "paid"
    assert data["buyer_email"] == "customer@example.com"
    assert data["payment_reference"] == "POS-4711"
    assert data["platform_fee"] == 80 and data["seller_earnings"] == 920
    assert "payment" not in data and Payment.objects.count() == 0
    order = Order.objects.get(id=data["id"])
    order.refresh_from_db()
    assert order.status == "delivered" and order.paid_at is not None  # fulfilled at once
    paid = OrderEvent.objects.get(order=order, type="status_changed", to_status="paid")
    assert paid.actor == "seller" and paid.data["payment_method"] == "external"
    assert paid.data["payment_reference"] == "POS-4711"

    # The platform never held the money: no sale credits the seller; the fee is charged as usual.
    assert list(BalanceTransaction.objects.values_list("type", "amount")) == [("platform_fee", -80)]
    assert not LedgerLine.objects.filter(account="gateway_clearing").exists()
    (balance,) = balances_for_seller(seller=shop["seller"])
    assert balance["total"] == -80

    # Idempotent replay: the same order, nothing written again.
    before = counts()
    again = client.post(URL, {**body, "idempotency_key": "k"}, format="json")
    assert again.status_code == 201  # a new key: a new order
    with_key = again.json()["data"]["id"]
    replay = client.post(URL, {**body, "idempotency_key": "k"}, format="json")
    assert replay.status_code == 200 and replay.json()["data"]["id"] == with_key
    assert Order.objects.count() == before[0] + 1
    assert BalanceTransaction.objects.filter(type="platform_fee").count() == 2


@pytest.mark.django_db
def test_seller_needs_buyer_email_and_a_reference_for_external(shop):
    client = key_client(shop["seller"])
    response = client.post(URL, {"variant_id": shop["v2"].id}, format="json")
    assert response.status_code == 400
    assert "buyer_email" in response.json()["error"]["fields"]
    response = client.post(
        URL, {"variant_id": shop["v2"].id, "buyer_email": "c@example.com", "payment_method": "external"}, format="json"
    )
    assert response.status_code == 400
    assert "payment_reference" in response.json()["error"]["fields"]
    assert counts() == (0, 0, 0, 0)


@pytest.mark.django_db
def test_external_payment_from_a_buyers_key_is_refused(shop, buyer):
    client = key_client(buyer)
    body = {"variant_id": shop["v2"].id, "payment_method": "external", "payment_reference": "cash"}
    response = client.post(URL, body, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert counts() == (0, 0, 0, 0)


@pytest.mark.django_db
def test_a_buyer_may_not_name_a_buyer_email(shop, buyer):
    response = jwt_client(buyer).post(URL, {"variant_id": shop["v2"].id, "buyer_email": "x@example.com"}, format="json")
    assert response.status_code == 400
    assert "buyer_email" in response.json()["error"]["fields"]
    assert counts() == (0, 0, 0, 0)


@pytest.mark.django_db
def test_unknown_field_is_400_naming_it(shop, buyer):
    response = jwt_client(buyer).post(URL, {"variant_id": shop["v2"].id, "currency": "BDT"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["error"]["code"] == "validation_error"
    assert list(body["error"]["fields"]) == ["currency"]
    assert counts() == (0, 0, 0, 0)


@pytest.mark.django_db
def test_another_sellers_variant_is_refused(shop, buyer):
    stranger = VariantFactory(product=ProductFactory(currency="USD"), price=100)
    client = jwt_client(buyer)
    body = {"items": [{"variant_id": shop["v2"].id, "quantity": 1}, {"variant_id": stranger.id, "quantity": 1}]}
    response = client.post(URL, body, format="json")
    assert response.status_code == 400
    assert "items.1.variant_id" in response.json()["error"]["fields"]
    # A seller's own key cannot order another seller's products either, not even as the first item.
    seller_client = key_client(shop["seller"])
    response = seller_client.post(URL, {"variant_id": stranger.id, "buyer_email": "c@example.com"}, format="json")
    assert response.status_code == 400
    assert "items.0.variant_id" in response.json()["error"]["fields"]
    assert counts() == (0, 0, 0, 0)


@pytest.mark.django_db
def test_mixed_currencies_are_refused(shop, buyer):
    eur = VariantFactory(product=ProductFactory(seller=shop["seller"], currency="EUR"), price=100)
    body = {"items": [{"variant_id": shop["v1"].id, "quantity": 1}, {"variant_id": eur.id, "quantity": 1}]}
    response = jwt_client(buyer).post(URL, body, format="json")
    assert response.status_code == 400
    assert "items.1.variant_id" in response.json()["error"]["fields"]
    assert counts() == (0, 0, 0, 0)
    shop["v1"].refresh_from_db()
    assert shop["v1"].stock == 5


@pytest.mark.django_db
def test_anonymous_is_401(shop):
    assert APIClient().post(URL, {"variant_id": shop["v2"].id}, format="json").status_code == 401
    assert counts() == (0, 0, 0, 0)


# --- idempotency scopes --------------------------------------------------------------------------


@pytest.mark.django_db
def test_checkout_key_is_one_order_across_one_sellers_products(shop):
    client = APIClient()
    first = client.post(
        f"/api/v1/public/checkout/{shop['first'].slug}/pay",
        {"buyer_email": "b@example.com", "variant_id": shop["v2"].id},
        format="json",
        HTTP_IDEMPOTENCY_KEY="one-key",
    )
    assert first.status_code == 201
    second = client.post(
        f"/api/v1/public/checkout/{shop['second'].slug}/pay",
        {"buyer_email": "b@example.com", "variant_id": shop["v2"].id},
        format="json",
        HTTP_IDEMPOTENCY_KEY="one-key",
    )
    assert second.status_code == 200
    assert second.json()["data"]["id"] == first.json()["data"]["id"]
    # A different body under the same key on another product of the seller: a conflict, not a new order.
    third = client.post(
        f"/api/v1/public/checkout/{shop['second'].slug}/pay",
        {"buyer_email": "b@example.com", "variant_id": shop["v2"].id, "quantity": 2},
        format="json",
        HTTP_IDEMPOTENCY_KEY="one-key",
    )
    assert third.status_code == 409
    assert third.json()["error"]["code"] == "idempotency_conflict"
    assert Order.objects.count() == 1


@pytest.mark.django_db
def test_post_orders_keys_are_the_callers_own(shop, buyer):
    body = {"variant_id": shop["v2"].id, "idempotency_key": "shared", "init_payment": False}
    mine = jwt_client(buyer).post(URL, body, format="json")
    theirs = jwt_client(UserFactory()).post(URL, body, format="json")
    checkout = APIClient().post(
        f"/api/v1/public/checkout/{shop['second'].slug}/pay",
        {"buyer_email": "b@example.com", "idempotency_key": "shared", "init_payment": False},
        format="json",
    )
    assert (mine.status_code, theirs.status_code, checkout.status_code) == (201, 201, 201)
    assert len({mine.json()["data"]["id"], theirs.json()["data"]["id"], checkout.json()["data"]["id"]}) == 3
    replay = jwt_client(buyer).post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    assert replay.status_code == 200 and replay.json()["data"]["id"] == mine.json()["data"]["id"]


@pytest.mark.django_db(transaction=True)
def test_two_identical_requests_at_once_make_one_order(db):
    if connection.vendor != "postgresql":
        pytest.skip("row locks and unique-index waits only show between real connections on PostgreSQL")
    seller = SellerFactory()
    product = ProductFactory(seller=seller)
    variant = VariantFactory(product=product, price=700, stock=10)
    buyer = UserFactory()
    token = str(RefreshToken.for_user(buyer).access_token)
    body = {"items": [{"variant_id": variant.id, "quantity": 2}], "idempotency_key": "race"}

    def post(_):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        response = client.post(URL, body, format="json")
        return response.status_code, response.json()["data"]["id"]

    results = run_concurrently(4, post)
    assert Counter(status for status, _ in results) == Counter({201: 1, 200: 3})
    assert len({order_id for _, order_id in results}) == 1
    assert Order.objects.count() == 1
    variant.refresh_from_db()
    assert variant.stock == 8  # reserved once


@pytest.mark.django_db(transaction=True)
def test_two_identical_external_orders_at_once_are_one_paid_order_and_one_fee(db, settings):
    if connection.vendor != "postgresql":
        pytest.skip("row locks and unique-index waits only show between real connections on PostgreSQL")
    settings.PLATFORM_FEE_BPS = 1000
    settings.PLATFORM_FEE_FIXED = 0
    seller = SellerFactory()
    variant = VariantFactory(product=ProductFactory(seller=seller), price=1000, stock=10)
    _, raw = api_key_create(user=seller, name="pos")
    body = {
        "buyer_email": "c@example.com",
        "variant_id": variant.id,
        "payment_method": "external",
        "payment_reference": "till-7",
        "idempotency_key": "till-7",
    }

    def post(_):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        response = client.post(URL, body, format="json")
        return response.status_code, response.json()["data"]["id"]

    results = run_concurrently(4, post)
    assert Counter(status for status, _ in results) == Counter({201: 1, 200: 3})
    order = Order.objects.get()
    assert order.paid_at is not None
    assert list(BalanceTransaction.objects.values_list("type", "amount")) == [("platform_fee", -100)]
    assert OrderEvent.objects.filter(order=order, type="status_changed", to_status="paid").count() == 1


@pytest.mark.django_db
def test_a_gift_ordered_from_code_keeps_its_delivery_time_and_claim_link(shop, buyer):
    from datetime import timedelta

    from django.utils import timezone

    when = (timezone.now() + timedelta(days=3)).replace(microsecond=0)
    body = {
        "items": [{"variant_id": shop["v1"].id, "quantity": 1}],
        "recipient_email": "friend@example.com",
        "deliver_at": when.isoformat(),
        "claim_link": True,
    }
    response = jwt_client(buyer).post(URL, body, format="json")
    assert response.status_code == 201, response.json()
    order = Order.objects.get()
    assert order.deliver_at == when
    assert order.gift_claim_link is True
    data = response.json()["data"]
    assert data["deliver_at"] == when.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert data["gift"] == {"claim_link": True, "claimed_at": None, "sent_at": None}
    assert data["sub_status"] == "INITIAL"  # not paid yet; DELAYED once delivered and waiting
