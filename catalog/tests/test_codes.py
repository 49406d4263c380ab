"""Code pools: encrypted at rest, imported with an account of every line, reserved and released."""

import io
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from catalog.models import Code, CodeStatus, DeliveryType
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory
from marketplace.core.crypto import UndecryptableValue
from orders.models import Order, OrderEvent, SellerEvent
from orders.services import CheckoutLine, order_cancel, order_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def pool_seller():
    return SellerFactory(name="Gift Shop")


@pytest.fixture
def pool(pool_seller):
    product = ProductFactory(
        seller=pool_seller,
        slug="gift-card",
        title="Gift Card",
        delivery_type=DeliveryType.CODE_POOL,
        delivery_content="",
        redemption_instructions="Redeem at shop.test/redeem",
    )
    return VariantFactory(product=product, name="$25", price=2500)


@pytest.fixture
def client(pool_seller):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(pool_seller).access_token}")
    return api


def codes_url(variant):
    return f"/api/v1/products/{variant.product_id}/variants/{variant.id}/codes"


def test_import_json_counts_every_line(client, pool):
    future = (timezone.now() + timedelta(days=30)).isoformat()
    body = {
        "codes": [
            {
                "code": "GIFT-AAAA-1111",
                "pin": "1234",
                "serial": "S1",
                "expires_at": future,
                "redemption_url": "https://shop.example/redeem?c=1111",
            },
            {"code": "GIFT-BBBB-2222"},
            {"code": "GIFT-AAAA-1111"},  # duplicate within the file
            {"code": ""},
            {"code": "GIFT-OLD", "expires_at": "2001-01-01"},
            {"code": "GIFT-BAD-DATE", "expires_at": "next tuesday"},
        ]
    }
    response = client.post(codes_url(pool), body, format="json")
    assert response.status_code == 201
    assert response.json()["data"] == {
        "imported": 2,
        "duplicates": 1,
        "rejected": [
            {"line": 4, "reason": "code is empty."},
            {"line": 5, "reason": "The code has already expired."},
            {"line": 6, "reason": "expires_at must be an ISO 8601 date or time."},
        ],
        "rejected_count": 3,
    }
    first = next(code for code in Code.objects.all() if code.serial == "S1")
    assert (first.code, first.pin, first.code_hint, first.status) == ("GIFT-AAAA-1111", "1234", "1111", "AVAILABLE")
    assert first.redemption_url == "https://shop.example/redeem?c=1111"
    # The serial and the redemption URL are encrypted at rest, like the code and the PIN.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT serial, redemption_url FROM catalog_code WHERE id = %s", [first.id])
        raw_serial, raw_url = cursor.fetchone()
    assert raw_serial.startswith("gAAAA") and "S1" not in raw_serial
    assert raw_url.startswith("gAAAA") and "shop.example" not in raw_url
    assert [c.serial for c in Code.objects.exclude(pk=first.pk)] == [None]


def test_duplicates_across_the_sellers_pools_and_not_across_sellers(client, pool, pool_seller):
    other_variant = VariantFactory(product=pool.product, name="$50", price=5000)
    client.post(codes_url(pool), {"codes": [{"code": "SHARED-1"}]}, format="json")
    again = client.post(codes_url(other_variant), {"codes": [{"code": "SHARED-1"}]}, format="json").json()["data"]
    assert (again["imported"], again["duplicates"]) == (0, 1)
    stranger_product = ProductFactory(delivery_type=DeliveryType.CODE_POOL, delivery_content="")
    stranger_variant = VariantFactory(product=stranger_product)
    from catalog.inventory import CodeRow, codes_import

    result = codes_import(variant=stranger_variant, rows=[CodeRow(1, "SHARED-1")])
    assert (result.imported, result.duplicates) == (1, 0)


def test_import_csv_with_optional_columns(client, pool):
    csv_bytes = b"code,pin,serial,expires_at\nCSV-0001,11,A,\nCSV-0002,,B,2099-01-01\nCSV-0001,,,\nonly-one-column\n"
    upload = io.BytesIO(csv_bytes)
    upload.name = "codes.csv"
    response = client.post(codes_url(pool), {"file": upload}, format="multipart")
    assert response.status_code == 201
    data = response.json()["data"]
    assert (data["imported"], data["duplicates"]) == (2, 1)
    assert data["rejected"] == [{"line": 5, "reason": "Expected 4 columns, found 1."}]
    assert next(code for code in Code.objects.all() if code.serial == "B").expires_at.year == 2099


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "The file is empty."),
        (b"voucher\nX\n", "The first line must be a header"),
        (b"code,colour\nX,red\n", "Unknown column"),
    ],
)
def test_malformed_csv_imports_nothing(client, pool, content, message):
    upload = io.BytesIO(content)
    upload.name = "codes.csv"
    response = client.post(codes_url(pool), {"file": upload}, format="multipart")
    assert response.status_code == 400
    assert message in response.json()["error"]["message"] or message in str(response.json()["error"]["fields"])
    assert Code.objects.count() == 0


def test_a_file_that_breaks_off_imports_nothing(client, pool):
    upload = io.BytesIO(b"code\nGOOD-1\nGOOD-2\n\xff\xfe broken bytes\n")
    upload.name = "codes.csv"
    response = client.post(codes_url(pool), {"file": upload}, format="multipart")
    assert response.status_code == 400
    assert Code.objects.count() == 0


def test_import_into_a_non_pool_product_is_409(client, pool_seller):
    product = ProductFactory(seller=pool_seller)
    variant = VariantFactory(product=product)
    response = client.post(codes_url(variant), {"codes": [{"code": "X"}]}, format="json")
    assert response.status_code == 409
    assert Code.objects.count() == 0


def test_another_sellers_pool_is_404(pool):
    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(SellerFactory()).access_token}")
    assert stranger.post(codes_url(pool), {"codes": [{"code": "X"}]}, format="json").status_code == 404
    assert stranger.get(codes_url(pool)).status_code == 404
    assert Code.objects.count() == 0


def test_list_shows_hints_and_counts_never_codes(client, pool):
    client.post(
        codes_url(pool), {"codes": [{"code": f"SECRET-CODE-{i:04d}", "pin": "9999"} for i in range(3)]}, format="json"
    )
    code = Code.objects.first()
    client.post(f"{codes_url(pool)}/{code.id}/block")
    response = client.get(codes_url(pool))
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["counts"] == {"AVAILABLE": 2, "ALLOCATED": 0, "DELIVERED": 0, "BLOCKED": 1, "REVOKED": 0}
    assert [c["code_hint"] for c in data["results"]] == ["0000", "0001", "0002"]
    assert "SECRET-CODE" not in response.content.decode()
    assert "9999" not in response.content.decode()
    blocked = client.get(codes_url(pool) + "?status=BLOCKED").json()["data"]["results"]
    assert [c["id"] for c in blocked] == [code.id]
    assert client.get(codes_url(pool) + "?status=LOST").status_code == 400


def test_block_unblock_revoke(client, pool):
    client.post(codes_url(pool), {"codes": [{"code": "ABC-1"}]}, format="json")
    code = Code.objects.get()
    assert client.post(f"{codes_url(pool)}/{code.id}/block").json()["data"]["status"] == "BLOCKED"
    assert client.post(f"{codes_url(pool)}/{code.id}/block").status_code == 409
    assert client.post(f"{codes_url(pool)}/{code.id}/unblock").json()["data"]["status"] == "AVAILABLE"
    assert client.post(f"{codes_url(pool)}/{code.id}/revoke").json()["data"]["status"] == "REVOKED"
    assert client.post(f"{codes_url(pool)}/{code.id}/unblock").status_code == 409
    assert client.post(f"{codes_url(pool)}/{code.id}/explode").status_code == 404
    code.refresh_from_db()
    assert code.status == "REVOKED"


def test_product_stock_counts_available_codes(client, pool):
    client.post(codes_url(pool), {"codes": [{"code": f"C-{i}"} for i in range(3)]}, format="json")
    Code.objects.filter(id=Code.objects.first().id).update(status=CodeStatus.BLOCKED)
    product = client.get(f"/api/v1/products/{pool.product_id}").json()["data"]
    assert product["variants"][0]["stock"] == 2
    public = APIClient().get("/api/v1/public/checkout/gift-card").json()["data"]
    assert public["variants"][0]["available"] is True
    assert public["variants"][0]["stock"] == 2


class TestReservation:
    def load(self, variant, n):
        from catalog.inventory import CodeRow, codes_import

        codes_import(variant=variant, rows=[CodeRow(i, f"POOL-{i:04d}") for i in range(n)])

    def test_order_reserves_codes_and_cancel_releases_them(self, pool):
        self.load(pool, 3)
        order = order_create(product=pool.product, buyer_email="b@x.co", lines=[CheckoutLine(pool.id, 2)]).order
        item = order.items.get()
        assert Code.objects.filter(order_item=item, status="ALLOCATED").count() == 2
        assert Code.objects.filter(status="AVAILABLE").count() == 1
        order_cancel(order_id=order.id, message="test")
        assert Code.objects.filter(status="AVAILABLE").count() == 3
        assert Code.objects.filter(order_item__isnull=False).count() == 0

    def test_not_enough_codes_is_409_and_creates_nothing(self, pool):
        self.load(pool, 1)
        response = APIClient().post(
            "/api/v1/public/checkout/gift-card/pay", {"buyer_email": "a@b.co", "quantity": 2}, format="json"
        )
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "out_of_stock"
        assert Order.objects.count() == 0
        assert Code.objects.get().status == "AVAILABLE"

    def test_expired_codes_are_not_sold(self, pool):
        self.load(pool, 1)
        Code.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
        response = APIClient().post("/api/v1/public/checkout/gift-card/pay", {"buyer_email": "a@b.co"}, format="json")
        assert response.status_code == 409

    def test_emptying_the_pool_records_out_of_stock_once(self, pool):
        self.load(pool, 2)
        order_create(product=pool.product, buyer_email="b@x.co", lines=[CheckoutLine(pool.id, 1)])
        assert not SellerEvent.objects.filter(type="product.out_of_stock").exists()
        order_create(product=pool.product, buyer_email="c@x.co", lines=[CheckoutLine(pool.id, 1)])
        event = SellerEvent.objects.get(type="product.out_of_stock")
        assert event.data["variant_id"] == pool.id
        assert event.seller_id == pool.product.seller_id

    def test_failed_payment_releases_and_a_new_attempt_reserves_again(self, pool):
        from payments.models import SandboxPayment
        from payments.services import payment_apply_gateway_status, payment_initiate

        self.load(pool, 1)
        order = order_create(product=pool.product, buyer_email="b@x.co", lines=[CheckoutLine(pool.id, 1)]).order
        payment = payment_initiate(order=order, gateway_name="sandbox", return_url="https://x.test/r")
        SandboxPayment.objects.filter(id=payment.id).update(status="failed")
        payment_apply_gateway_status(payment=payment, source="test")
        order.refresh_from_db()
        assert order.status == "failed"
        assert Code.objects.get().status == "AVAILABLE"
        payment_initiate(order=order, gateway_name="sandbox", return_url="https://x.test/r")
        order.refresh_from_db()
        assert order.status == "pending"
        assert Code.objects.get().status == "ALLOCATED"


class TestEncryptionAtRest:
    def test_the_database_holds_no_code_or_pin_in_plain_text(self, pool):
        from catalog.inventory import CodeRow, codes_import

        codes_import(variant=pool, rows=[CodeRow(1, "PLAINTEXT-GIFT-CODE-777", pin="PIN-4242")])
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM catalog_code")
            rows = cursor.fetchall()
        dump = repr(rows)
        assert "PLAINTEXT-GIFT-CODE-777" not in dump
        assert "PIN-4242" not in dump
        assert Code.objects.get().code == "PLAINTEXT-GIFT-CODE-777"

    def test_a_key_that_cannot_decrypt_fails_loudly(self, pool, settings):
        from cryptography.fernet import Fernet

        from catalog.inventory import CodeRow, codes_import

        codes_import(variant=pool, rows=[CodeRow(1, "KEEP-ME-SECRET")])
        settings.FERNET_KEYS = [Fernet.generate_key().decode()]
        with pytest.raises(UndecryptableValue):
            Code.objects.get()

    def test_rotation_re_encrypts_under_the_newest_key_and_resumes(self, pool, settings):
        from cryptography.fernet import Fernet
        from django.core.management import call_command

        from catalog.inventory import CodeRow, codes_import
        from marketplace.core.crypto import is_under_newest_key

        old = settings.FERNET_KEYS[0]
        codes_import(variant=pool, rows=[CodeRow(i, f"ROT-{i}", pin=str(i)) for i in range(5)])
        new = Fernet.generate_key().decode()
        settings.FERNET_KEYS = [new, old]
        out = io.StringIO()
        call_command("rotate_code_keys", "--batch-size", "2", stdout=out)
        assert "rotated 5" in out.getvalue()
        settings.FERNET_KEYS = [new]  # the old key is gone: everything must still decrypt
        assert sorted(c.code for c in Code.objects.all()) == [f"ROT-{i}" for i in range(5)]
        with connection.cursor() as cursor:
            cursor.execute("SELECT code, pin FROM catalog_code")
            assert all(is_under_newest_key(code) and is_under_newest_key(pin) for code, pin in cursor.fetchall())
        out = io.StringIO()
        settings.FERNET_KEYS = [new, old]
        call_command("rotate_code_keys", stdout=out)
        assert "rotated 0" in out.getvalue()

    def test_admin_and_str_never_show_the_code(self, pool):
        from catalog.inventory import CodeRow, codes_import

        codes_import(variant=pool, rows=[CodeRow(1, "WHOLE-SECRET-9876")])
        code = Code.objects.get()
        assert "WHOLE-SECRET" not in str(code)
        assert str(code).endswith("••••9876 (AVAILABLE)")


def test_delivered_item_shows_codes_to_the_buyer_and_seller(pool, django_capture_on_commit_callbacks):

    from catalog.inventory import CodeRow, codes_import
    from orders.tests.helpers import buyer_mails, pay

    codes_import(variant=pool, rows=[CodeRow(1, "GC-0001", pin="11"), CodeRow(2, "GC-0002", pin="22")])
    order = order_create(product=pool.product, buyer_email="b@x.co", lines=[CheckoutLine(pool.id, 2)]).order
    order = pay(order, django_capture_on_commit_callbacks)
    assert order.status == "delivered"
    assert sorted(Code.objects.values_list("status", flat=True)) == ["DELIVERED", "DELIVERED"]
    public = APIClient().get(f"/api/v1/public/checkout/gift-card/order/{order.id}").json()["data"]
    assert public["voucher_codes"] == ["GC-0001", "GC-0002"]
    assert public["items"][0]["voucher_codes"] == ["GC-0001", "GC-0002"]
    assert [c["pin"] for c in public["items"][0]["delivery"]["codes"]] == ["11", "22"]
    email = buyer_mails()[0]
    assert "GC-0001" in email.body and "PIN: 22" in email.body
    assert "Redeem at shop.test/redeem" in email.body
    html = email.alternatives[0][0]
    assert "GC-0002" in html
    assert OrderEvent.objects.filter(order=order, type="email_sent").count() == 1


def test_admin_lists_codes_masked_and_blocks_through_the_service(client, pool):
    from django.test import Client

    from catalog.inventory import CodeRow, codes_import
    from marketplace.accounts.tests.factories import UserFactory

    codes_import(variant=pool, rows=[CodeRow(1, "ADMIN-SECRET-4321", pin="PIN-0000")])
    operator = UserFactory(is_staff=True, is_superuser=True)
    browser = Client()
    browser.force_login(operator)
    page = browser.get("/admin/catalog/code/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "••••4321" in html
    assert "ADMIN-SECRET" not in html and "PIN-0000" not in html
    code = Code.objects.get()
    from django.contrib.admin.utils import quote

    detail = browser.get(f"/admin/catalog/code/{quote(code.id)}/change/")
    assert detail.status_code == 200
    assert "ADMIN-SECRET" not in detail.content.decode()
    browser.post("/admin/catalog/code/", {"action": "block_codes", "_selected_action": [code.id]})
    code.refresh_from_db()
    assert code.status == "BLOCKED"
