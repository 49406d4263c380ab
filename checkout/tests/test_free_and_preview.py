"""Free products (a 0 total is claimed without a payment step, within abuse limits and stock),
the seller's preview of a draft's checkout page, and per-variant files reaching the buyer."""

from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.test import Client

from catalog.models import DeliveryType, ProductStatus, Upload
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory
from orders.models import Order, OrderEvent, OrderItem
from payments.models import Payment

pytestmark = pytest.mark.django_db


@pytest.fixture
def seller(db: Any) -> Any:
    return SellerFactory(name="Ada Games")


@pytest.fixture
def free_product(seller: Any) -> Any:
    made = ProductFactory(seller=seller, slug="free-sampler", title="Free Sampler", delivery_content="FREE-GIFT-TEXT")
    VariantFactory(product=made, name="Standard", price=0)
    return made


def pay_url(slug: str) -> str:
    return f"/api/v1/public/checkout/{slug}/pay"


def claim(api_client: Any, slug: str, email: str = "fan@example.com", **extra: Any) -> Any:
    return api_client.post(pay_url(slug), {"buyer_email": email, **extra}, format="json")


def test_a_free_product_is_claimed_without_payment_and_delivered(
    api_client: Any, free_product: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = claim(api_client, free_product.slug)

    assert response.status_code == 201, response.content
    body = response.json()["data"]
    assert "payment" not in body
    order = Order.objects.get()
    assert (order.status, order.total_amount, order.platform_fee, order.seller_earnings) == ("delivered", 0, 0, 0)
    assert Payment.objects.count() == 0
    assert OrderEvent.objects.filter(order=order, to_status="paid", data__free=True).exists()
    delivered = api_client.get(f"/api/v1/public/checkout/{free_product.slug}/order/{order.id}").json()["data"]
    assert delivered["items"][0]["delivery"]["content"] == "FREE-GIFT-TEXT"


def test_a_100_percent_discount_is_a_free_claim(
    api_client: Any, seller: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from catalog.discounts import discount_save

    made = ProductFactory(seller=seller, slug="paid-thing")
    VariantFactory(product=made, price=1500)
    discount_save(seller=seller, data={"code": "ALLFREE", "kind": "percent", "value": 100})

    with django_capture_on_commit_callbacks(execute=True):
        response = claim(api_client, made.slug, discount_code="ALLFREE")

    assert response.status_code == 201, response.content
    assert Order.objects.get().status == "delivered" and Payment.objects.count() == 0


def test_the_page_claims_a_free_product_and_goes_to_the_success_page(
    client: Client, free_product: Any, django_capture_on_commit_callbacks: Any
) -> None:
    page = client.get("/c/free-sampler").content.decode()
    assert '<span id="pay-label">Get it free</span>' in page

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/c/free-sampler",
            {"buyer_email": "fan@example.com", "quantity": 1, "variant_id": free_product.variants.get().id},
        )

    order = Order.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/c/free-sampler/orders/{order.id}"
    assert order.status == "delivered" and Payment.objects.count() == 0


@pytest.fixture
def production_rates(monkeypatch: pytest.MonkeyPatch) -> None:
    """The free-claim limits as the base settings have them (the suite's settings lift them)."""
    from rest_framework.throttling import ScopedRateThrottle

    from marketplace.settings.base import THROTTLE_RATES

    rates = {
        **ScopedRateThrottle.THROTTLE_RATES,
        "free_claim_ip": THROTTLE_RATES["free_claim_ip"],
        "free_claim_email": THROTTLE_RATES["free_claim_email"],
    }
    assert (rates["free_claim_ip"], rates["free_claim_email"]) == ("10/hour", "3/hour")
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", rates)


@pytest.mark.usefixtures("production_rates")
def test_free_claims_are_limited_per_email(api_client: Any, free_product: Any) -> None:
    for n in range(3):
        assert claim(api_client, free_product.slug, idempotency_key=f"k{n}").status_code == 201

    refused = claim(api_client, free_product.slug, idempotency_key="k-more")

    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert int(refused["Retry-After"]) > 0
    assert Order.objects.count() == 3  # the refused claim created nothing
    assert claim(api_client, free_product.slug, email="other@example.com").status_code == 201


@pytest.mark.usefixtures("production_rates")
def test_free_claims_are_limited_per_address(api_client: Any, free_product: Any) -> None:
    for n in range(10):
        assert claim(api_client, free_product.slug, email=f"fan{n}@example.com").status_code == 201
    refused = claim(api_client, free_product.slug, email="fan-new@example.com")
    assert refused.status_code == 429
    assert Order.objects.count() == 10


@pytest.mark.usefixtures("production_rates")
def test_a_paid_product_is_not_counted_as_a_free_claim(api_client: Any, seller: Any) -> None:
    made = ProductFactory(seller=seller, slug="paid")
    VariantFactory(product=made, price=100)
    for n in range(5):
        response = claim(api_client, made.slug, idempotency_key=f"p{n}")
        assert response.status_code == 201 and response.json()["data"]["payment"]["status"] == "pending"


def test_free_stock_is_respected(api_client: Any, seller: Any) -> None:
    made = ProductFactory(seller=seller, slug="limited-free")
    variant = VariantFactory(product=made, price=0, stock=1)

    first = claim(api_client, made.slug, email="a@example.com")
    second = claim(api_client, made.slug, email="b@example.com")

    assert first.status_code == 201
    assert second.status_code == 409 and second.json()["error"]["code"] == "out_of_stock"
    variant.refresh_from_db()
    assert variant.stock == 0 and Order.objects.count() == 1


def test_a_free_claim_replays_with_its_idempotency_key(api_client: Any, free_product: Any) -> None:
    first = claim(api_client, free_product.slug, idempotency_key="same")
    again = claim(api_client, free_product.slug, idempotency_key="same")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["data"]["id"] == again.json()["data"]["id"] and Order.objects.count() == 1


# --- Draft previews --------------------------------------------------------------------------


@pytest.fixture
def draft(seller: Any) -> Any:
    made = ProductFactory(seller=seller, slug="new-game", title="New Game", status=ProductStatus.DRAFT)
    VariantFactory(product=made, price=900)
    return made


def test_the_seller_previews_their_draft(client: Client, seller: Any, draft: Any) -> None:
    client.force_login(seller)

    response = client.get("/c/new-game")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="preview-banner"' in html and "cannot be bought" in html
    assert '<button type="submit" id="pay" class="block" disabled>Preview: not for sale</button>' in html
    assert '<meta name="robots" content="noindex">' in html and "og:title" not in html
    assert response["X-Robots-Tag"] == "noindex" and "no-store" in response["Cache-Control"]
    assert "js/checkout.js" not in html


def test_a_preview_cannot_be_bought(client: Client, seller: Any, draft: Any, api_client: Any) -> None:
    client.force_login(seller)

    response = client.post(
        "/c/new-game", {"buyer_email": "me@example.com", "quantity": 1, "variant_id": draft.variants.get().id}
    )

    assert response.status_code == 403
    assert "cannot be bought" in response.content.decode()
    assert claim(api_client, "new-game").status_code == 404
    assert Order.objects.count() == 0 and OrderItem.objects.count() == 0


def test_nobody_else_sees_a_draft(client: Client, draft: Any) -> None:
    assert client.get("/c/new-game").status_code == 404
    client.force_login(SellerFactory())
    assert client.get("/c/new-game").status_code == 404


def test_an_active_product_is_not_marked_as_preview_for_its_seller(client: Client, seller: Any, draft: Any) -> None:
    draft.status = ProductStatus.ACTIVE
    draft.save(update_fields=["status"])
    client.force_login(seller)
    html = client.get("/c/new-game").content.decode()
    assert "preview-banner" not in html and "og:title" in html


# --- Per-variant files -----------------------------------------------------------------------


@pytest.fixture
def private_storage(settings: Any, tmp_path: Any) -> Any:
    settings.STORAGES = {
        **settings.STORAGES,
        "private": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }
    return tmp_path


def _upload(seller: Any, name: str, content: bytes) -> str:
    key = storages["private"].save(f"uploads/{seller.id}/t/{name}", ContentFile(content))
    Upload.objects.create(seller=seller, key=key, filename=name, size=len(content), content_type="application/zip")
    return str(key)


def test_the_deluxe_buyer_gets_the_deluxe_file(
    api_client: Any, client: Client, seller: Any, private_storage: Any, django_capture_on_commit_callbacks: Any
) -> None:
    standard = _upload(seller, "game-standard.zip", b"STANDARD-BYTES")
    deluxe = _upload(seller, "game-deluxe.zip", b"DELUXE-BYTES")
    made = ProductFactory(seller=seller, slug="game", delivery_type=DeliveryType.FILE, delivery_content=standard)
    standard_variant = VariantFactory(product=made, name="Standard", price=0, position=0)
    deluxe_variant = VariantFactory(product=made, name="Deluxe", price=0, position=1, delivery_content=deluxe)

    downloads = {}
    for variant, email in ((standard_variant, "s@example.com"), (deluxe_variant, "d@example.com")):
        with django_capture_on_commit_callbacks(execute=True):
            response = claim(api_client, "game", email=email, variant_id=variant.id, quantity=1)
        assert response.status_code == 201, response.content
        order = Order.objects.get(buyer_email=email)
        item = order.items.get()
        view = api_client.get(f"/api/v1/public/checkout/game/order/{order.id}").json()["data"]
        location = client.get(f"/api/v1/orders/{order.id}/resource?item={item.id}")["Location"]
        served = client.get(location.replace("http://127.0.0.1:8000", ""))
        downloads[variant.name] = (view["items"][0]["delivery"]["content"], b"".join(served.streaming_content))

    assert downloads == {
        "Standard": ("game-standard.zip", b"STANDARD-BYTES"),
        "Deluxe": ("game-deluxe.zip", b"DELUXE-BYTES"),
    }


def test_a_new_deluxe_file_reaches_earlier_deluxe_buyers_only(
    api_client: Any, seller: Any, private_storage: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from catalog.services import product_update

    standard = _upload(seller, "std.zip", b"STD")
    deluxe_v1 = _upload(seller, "deluxe-v1.zip", b"DLX1")
    deluxe_v2 = _upload(seller, "deluxe-v2.zip", b"DLX2")
    made = ProductFactory(seller=seller, slug="game2", delivery_type=DeliveryType.FILE, delivery_content=standard)
    std_variant = VariantFactory(product=made, name="Standard", price=0, position=0)
    dlx_variant = VariantFactory(product=made, name="Deluxe", price=0, position=1, delivery_content=deluxe_v1)
    for variant, email in ((std_variant, "s@example.com"), (dlx_variant, "d@example.com")):
        with django_capture_on_commit_callbacks(execute=True):
            assert claim(api_client, "game2", email=email, variant_id=variant.id).status_code == 201

    product_update(
        product=made,
        data={"variants": [{"id": std_variant.id}, {"id": dlx_variant.id, "delivery": {"content": deluxe_v2}}]},
    )

    held = dict(OrderItem.objects.values_list("order__buyer_email", "delivery_content"))
    assert held == {"s@example.com": standard, "d@example.com": deluxe_v2}
