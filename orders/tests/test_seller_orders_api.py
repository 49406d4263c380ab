from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from catalog.models import DeliveryType, Upload
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory, UserFactory
from orders.models import Order, OrderEvent

from .helpers import make_order, pay

pytestmark = pytest.mark.django_db


def client_for(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.fixture
def private_storage(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "private": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }
    return storages["private"]


class TestList:
    def test_lists_only_own_orders_with_pagination(self, seller_client, seller, text_product):
        mine = [make_order(text_product, email=f"b{i}@example.com") for i in range(3)]
        other = ProductFactory()
        VariantFactory(product=other)
        make_order(other)
        response = seller_client.get("/api/v1/orders?limit=2")
        assert response.status_code == 200
        data = response.json()["data"]
        assert data["pagination"] == {"page": 1, "limit": 2, "total_items": 3, "total_pages": 2}
        assert [o["id"] for o in data["results"]] == [o.id for o in reversed(mine)][:2]
        page2 = seller_client.get("/api/v1/orders?limit=2&page=2").json()["data"]
        assert [o["id"] for o in page2["results"]] == [mine[0].id]
        assert "events" not in data["results"][0]

    @pytest.mark.parametrize("query", ["limit=0", "limit=101", "page=0", "page=abc"])
    def test_bad_pagination_is_400(self, seller_client, query):
        response = seller_client.get(f"/api/v1/orders?{query}")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "validation_error"

    def test_filters(self, seller_client, text_product, django_capture_on_commit_callbacks):
        a = make_order(text_product, email="alice@example.com")
        b = pay(make_order(text_product, email="bob@example.com", quantity=3), django_capture_on_commit_callbacks)
        Order.objects.filter(pk=a.pk).update(created_at=timezone.now() - timedelta(days=3))

        def ids(query):
            response = seller_client.get(f"/api/v1/orders?{query}")
            assert response.status_code == 200, response.json()
            return {o["id"] for o in response.json()["data"]["results"]}

        assert ids("status=delivered") == {b.id}
        assert ids("status=pending,delivered") == {a.id, b.id}
        assert ids("buyer_email=ALICE@example.com") == {a.id}
        assert ids("min_amount=3000") == {b.id}
        assert ids("max_amount=1999") == {a.id}
        assert ids(f"product={text_product.slug}") == {a.id, b.id}
        assert ids(f"q={b.order_number}") == {b.id}
        after = (timezone.now() - timedelta(days=1)).isoformat().replace("+00:00", "Z")
        assert ids(f"created_after={after}") == {b.id}
        assert ids(f"created_before={after}") == {a.id}

    def test_unknown_status_filter_is_400(self, seller_client):
        response = seller_client.get("/api/v1/orders?status=shipped")
        assert response.status_code == 400
        assert "status" in response.json()["error"]["fields"]

    def test_query_count_does_not_grow_with_orders(self, seller_client, text_product, django_assert_max_num_queries):
        for i in range(2):
            make_order(text_product, email=f"q{i}@example.com")
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as few:
            seller_client.get("/api/v1/orders")
        for i in range(10):
            make_order(text_product, email=f"r{i}@example.com")
        with CaptureQueriesContext(connection) as many:
            response = seller_client.get("/api/v1/orders")
        assert len(response.json()["data"]["results"]) == 12
        assert len(many) == len(few)

    def test_query_count_same_for_a_page_of_10_and_of_100_delivered_orders(
        self, seller, seller_client, django_capture_on_commit_callbacks
    ):
        """Delivered orders show their items, payments and refunds (never their codes or licence
        keys: lists carry none): each kind must come in one query for the whole page, not one per order."""
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from catalog.inventory import CodeRow, codes_import

        codes = ProductFactory(seller=seller, slug="gift", delivery_type=DeliveryType.CODE_POOL, delivery_content="")
        codes_import(
            variant=VariantFactory(product=codes, price=2500), rows=[CodeRow(i, f"GIFT-{i:04d}") for i in range(60)]
        )
        licences = ProductFactory(
            seller=seller,
            slug="app",
            delivery_type=DeliveryType.LICENSE_KEY,
            delivery_content="",
            delivery_options={"license": {"activation_limit": 2, "expires_in_days": 365, "prefix": "APP"}},
        )
        VariantFactory(product=licences, price=4900)

        def add_delivered(count):
            for i in range(count):
                product = codes if Order.objects.count() % 2 == 0 else licences
                order = pay(make_order(product, email=f"b{i}@example.com"), django_capture_on_commit_callbacks)
                assert order.status == "delivered"

        def page(limit):
            with CaptureQueriesContext(connection) as queries:
                response = seller_client.get(f"/api/v1/orders?limit={limit}")
            results = response.json()["data"]["results"]
            assert len(results) == limit
            assert all(o["status"] == "delivered" for o in results)
            assert not any(o["voucher_codes"] or any(i["voucher_codes"] for i in o["items"]) for o in results)
            return len(queries)

        add_delivered(10)
        ten = page(10)
        add_delivered(90)
        assert page(100) == ten

    def test_needs_credentials_and_a_buyer_sees_no_sales(self, api_client, text_product):
        make_order(text_product)  # a sale of the seller's, placed as a guest
        assert api_client.get("/api/v1/orders").status_code == 401
        buyer = UserFactory()
        response = client_for(buyer).get("/api/v1/orders")
        assert response.status_code == 200  # a buyer's own purchases: none
        assert response.json()["data"]["results"] == []


class TestDetail:
    def test_by_id_and_by_order_number(self, seller_client, text_product, django_capture_on_commit_callbacks):
        order = pay(make_order(text_product), django_capture_on_commit_callbacks)
        by_id = seller_client.get(f"/api/v1/orders/{order.id}").json()["data"]
        by_number = seller_client.get(f"/api/v1/orders/{order.order_number}").json()["data"]
        # Each read that shows the delivery is recorded in the timeline; otherwise the two agree.
        assert [e["type"] for e in by_number["events"]].count("codes_viewed") == 2
        assert by_number["events"][:-1] == by_id["events"]
        assert {**by_id, "events": None} == {**by_number, "events": None}
        assert by_id["status"] == "delivered"
        assert by_id["platform_fee"] == order.platform_fee
        assert by_id["seller_earnings"] == order.seller_earnings
        assert by_id["delivery_content"] == "The secret is OPEN-SESAME"
        assert by_id["content_type"] == "text"
        assert by_id["payments"][0]["status"] == "succeeded"
        assert [e["to_status"] for e in by_id["events"] if e["type"] == "status_changed"] == ["paid", "delivered"]

    def test_another_sellers_order_is_404(self, text_product):
        order = make_order(text_product)
        stranger = client_for(SellerFactory())
        for path in (f"/api/v1/orders/{order.id}", f"/api/v1/orders/{order.order_number}"):
            response = stranger.get(path)
            assert response.status_code == 404
            assert response.json()["error"]["code"] == "order_not_found"
        response = stranger.put(f"/api/v1/orders/{order.id}/status", {"status": "cancelled"}, format="json")
        assert response.status_code == 404
        order.refresh_from_db()
        assert order.status == "pending"


class TestManualActions:
    def test_cancel_a_pending_order(self, seller_client, text_product):
        order = make_order(text_product)
        response = seller_client.put(f"/api/v1/orders/{order.id}/status", {"status": "cancelled"}, format="json")
        assert response.status_code == 200
        assert response.json()["data"]["status"] == "cancelled"
        event = OrderEvent.objects.filter(order=order, type="status_changed").get()
        assert (event.actor, event.actor_user_id) == ("seller", order.seller_id)

    @pytest.mark.parametrize("target", ["paid", "delivered", "refunded", "pending"])
    def test_illegal_manual_move_is_409(self, seller_client, text_product, target):
        order = make_order(text_product)
        events = OrderEvent.objects.filter(order=order).count()
        response = seller_client.put(f"/api/v1/orders/{order.id}/status", {"status": target}, format="json")
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "invalid_transition"
        order.refresh_from_db()
        assert order.status == "pending"
        assert OrderEvent.objects.filter(order=order).count() == events

    def test_unknown_status_is_400(self, seller_client, text_product):
        order = make_order(text_product)
        response = seller_client.put(f"/api/v1/orders/{order.id}/status", {"status": "teleported"}, format="json")
        assert response.status_code == 400
        assert "status" in response.json()["error"]["fields"]

    def test_override_delivery_then_retry(self, seller_client, text_product, django_capture_on_commit_callbacks):
        order = pay(make_order(text_product), django_capture_on_commit_callbacks)
        with django_capture_on_commit_callbacks(execute=True):
            response = seller_client.put(
                f"/api/v1/orders/{order.id}/delivery",
                {"content_type": "text", "delivery_content": "A corrected secret"},
                format="json",
            )
        assert response.status_code == 200
        assert response.json()["data"]["delivery_content"] == "A corrected secret"
        assert OrderEvent.objects.filter(order=order, type="delivery_overridden").count() == 1

    def test_override_with_bad_link_is_400_and_changes_nothing(self, seller_client, text_product):
        order = make_order(text_product)
        response = seller_client.put(
            f"/api/v1/orders/{order.id}/delivery",
            {"content_type": "link", "delivery_content": "http://not-https.test"},
            format="json",
        )
        assert response.status_code == 400
        assert "delivery.content" in response.json()["error"]["fields"]
        item = order.items.get()
        assert (item.content_type, item.delivery_content) == ("text", "The secret is OPEN-SESAME")

    def test_retry_delivery_of_needs_attention_order(
        self, seller_client, text_product, django_capture_on_commit_callbacks
    ):
        from orders.lifecycle import order_transition

        order = make_order(text_product)
        order_transition(order_id=order.id, to_status="paid")
        order_transition(order_id=order.id, to_status="needs_attention", message="partner down")
        with django_capture_on_commit_callbacks(execute=True):
            response = seller_client.post(f"/api/v1/orders/{order.order_number}/retry-delivery")
        assert response.status_code == 202
        order.refresh_from_db()
        assert order.status == "delivered"

    def test_retry_of_pending_order_is_409(self, seller_client, text_product):
        order = make_order(text_product)
        response = seller_client.post(f"/api/v1/orders/{order.id}/retry-delivery")
        assert response.status_code == 409
        assert not OrderEvent.objects.filter(order=order, type="delivery_retry_requested").exists()


class TestResource:
    def test_403_before_payment(self, api_client, text_product):
        order = make_order(text_product)
        response = api_client.get(f"/api/v1/orders/{order.id}/resource")
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "order_not_paid"

    def test_order_number_is_not_a_capability(self, api_client, text_product, django_capture_on_commit_callbacks):
        order = pay(make_order(text_product), django_capture_on_commit_callbacks)
        assert api_client.get(f"/api/v1/orders/{order.order_number}/resource").status_code == 404
        assert (
            api_client.get(f"/api/v1/public/checkout/{text_product.slug}/order/{order.order_number}").status_code == 404
        )

    def test_text_is_json(self, api_client, text_product, django_capture_on_commit_callbacks):
        order = pay(make_order(text_product), django_capture_on_commit_callbacks)
        response = api_client.get(f"/api/v1/orders/{order.id}/resource")
        assert response.status_code == 200
        assert response.json()["data"]["content"] == "The secret is OPEN-SESAME"

    def test_link_redirects(self, api_client, seller, django_capture_on_commit_callbacks):
        product = ProductFactory(
            seller=seller, delivery_type=DeliveryType.LINK, delivery_content="https://course.test/x"
        )
        VariantFactory(product=product)
        order = pay(make_order(product), django_capture_on_commit_callbacks)
        response = api_client.get(f"/api/v1/orders/{order.id}/resource")
        assert response.status_code == 302
        assert response["Location"] == "https://course.test/x"

    def test_file_redirects_to_a_signed_link_that_expires(
        self, api_client, client, seller, private_storage, settings, django_capture_on_commit_callbacks
    ):
        key = private_storage.save("uploads/test/guide.pdf", ContentFile(b"%PDF-1.4 the guide"))
        Upload.objects.create(seller=seller, key=key, filename="guide.pdf", size=18, content_type="application/pdf")
        product = ProductFactory(seller=seller, delivery_type=DeliveryType.FILE, delivery_content=key)
        VariantFactory(product=product)
        order = pay(make_order(product), django_capture_on_commit_callbacks)
        assert order.status == "delivered"
        response = api_client.get(f"/api/v1/orders/{order.id}/resource")
        assert response.status_code == 302
        location = response["Location"]
        assert location.startswith(settings.SITE_URL + "/downloads/")
        path = location[len(settings.SITE_URL) :]
        download = client.get(path)
        assert download.status_code == 200
        assert b"".join(download.streaming_content) == b"%PDF-1.4 the guide"
        assert 'filename="guide.pdf"' in download["Content-Disposition"]
        settings.DOWNLOAD_LINK_TTL_SECONDS = -1
        assert client.get(path).status_code == 404
        assert client.get("/downloads/forged-token").status_code == 404
