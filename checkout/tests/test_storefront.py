"""The store (``/s/<seller_slug>``) and the front page (``/``): what they show, what they hide,
their query counts, and the tags that make them indexable; the public product view's new fields;
public media; discount links on the checkout page and in the dashboard."""

import re
from typing import Any

import pytest
from django.test import Client

from catalog.models import ProductStatus
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.services import seller_store_slug_ensure, seller_store_update
from marketplace.accounts.tests.factories import SellerFactory

pytestmark = pytest.mark.django_db

MAX_PAGE_QUERIES = 6


@pytest.fixture
def seller(db: Any) -> Any:
    seller = SellerFactory(name="Ada Games", support_email="help@ada.example")
    seller_store_update(user=seller, store_slug="ada-games", store_bio="We make **puzzle** games. <script>x()</script>")
    return seller


def product(seller: Any, title: str, *, prices: tuple[int, ...] = (1999,), **kwargs: Any) -> Any:
    made = ProductFactory(seller=seller, title=title, **kwargs)
    for position, price in enumerate(prices):
        VariantFactory(product=made, name=f"Tier {position}", price=price, position=position)
    return made


def meta(html: str, key: str) -> str:
    found = re.search(rf'<meta (?:name|property)="{re.escape(key)}" content="([^"]*)"', html)
    assert found, f"no {key} in the page"
    return found.group(1)


def test_the_store_shows_profile_support_email_and_active_products_only(client: Client, seller: Any) -> None:
    product(seller, "Puzzle Pack", prices=(500,), slug="puzzle-pack")
    product(seller, "Deluxe Bundle", prices=(1000, 2500))
    product(seller, "Free Sampler", prices=(0,))
    product(seller, "Secret Draft", status=ProductStatus.DRAFT)
    product(seller, "Old Thing", status=ProductStatus.ARCHIVED)
    product(SellerFactory(), "Someone Else's")

    response = client.get("/s/ada-games")

    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>Ada Games</h1>" in html
    assert "We make <strong>puzzle</strong> games." in html and "<script" not in html.split("</head>")[1]
    assert 'href="mailto:help@ada.example"' in html
    for shown in ("Puzzle Pack", "Deluxe Bundle", "Free Sampler", "$5.00", "From $10.00", "Free"):
        assert shown in html
    for hidden in ("Secret Draft", "Old Thing", "Someone Else"):
        assert hidden not in html
    assert 'href="/c/puzzle-pack"' in html


def test_the_store_is_indexable(client: Client, seller: Any) -> None:
    html = client.get("/s/ada-games").content.decode()
    assert "<title>Ada Games — Store</title>" in html
    assert meta(html, "description") == "We make puzzle games."
    assert meta(html, "og:title") == "Ada Games — Store"
    assert meta(html, "og:url") == "http://127.0.0.1:8000/s/ada-games"
    assert meta(html, "og:type") == "profile"


def test_the_store_support_email_falls_back_to_the_sign_in_email(client: Client) -> None:
    seller = SellerFactory(name="Bo", email="bo@example.com")
    slug = seller_store_slug_ensure(seller)
    assert 'href="mailto:bo@example.com"' in client.get(f"/s/{slug}").content.decode()


@pytest.mark.parametrize("slug", ["nobody-here", "UPPER", "a--b"])
def test_an_unknown_store_is_404(client: Client, seller: Any, slug: str) -> None:
    assert client.get(f"/s/{slug}").status_code == 404


def test_a_buyer_or_a_deactivated_seller_has_no_store(client: Client, seller: Any) -> None:
    seller.is_active = False
    seller.save(update_fields=["is_active"])
    assert client.get("/s/ada-games").status_code == 404


def test_the_store_page_query_count_does_not_grow_with_products(
    client: Client, seller: Any, django_assert_max_num_queries: Any
) -> None:
    for n in range(15):
        product(seller, f"Product {n}", prices=(100, 200, 300))
    with django_assert_max_num_queries(MAX_PAGE_QUERIES):
        response = client.get("/s/ada-games")
    assert response.content.decode().count('data-testid="product-card"') == 15


def test_the_front_page_shows_featured_then_recent(client: Client, seller: Any) -> None:
    product(seller, "Star Product", featured=True)
    product(seller, "Plain Product")
    product(seller, "Featured Draft", featured=True, status=ProductStatus.DRAFT)

    response = client.get("/")

    assert response.status_code == 200
    html = response.content.decode()
    featured = html.split('data-testid="featured"')[1].split("</section>")[0]
    recent = html.split('data-testid="recent"')[1].split("</section>")[0]
    assert "Star Product" in featured and "Plain Product" not in featured
    assert "Plain Product" in recent and "Star Product" not in recent  # shown once
    assert "Featured Draft" not in html
    assert 'href="/s/ada-games"' in html
    assert "<title>Marketplace — digital goods from independent sellers</title>" in html
    assert meta(html, "og:url") == "http://127.0.0.1:8000/"
    assert meta(html, "description") and meta(html, "og:description") == meta(html, "description")


def test_the_front_page_when_nothing_is_on_sale(client: Client, db: Any) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert 'data-testid="empty"' in response.content.decode()


def test_the_front_page_query_count_does_not_grow(
    client: Client, seller: Any, django_assert_max_num_queries: Any
) -> None:
    for n in range(8):
        product(SellerFactory(), f"Featured {n}", featured=True, prices=(100, 200))
    for n in range(20):
        product(SellerFactory(), f"Recent {n}", prices=(100,))
    with django_assert_max_num_queries(MAX_PAGE_QUERIES):
        response = client.get("/")
    assert response.content.decode().count('data-testid="product-card"') == 6 + 12


def test_a_new_seller_gets_a_store_address(api_client: Any) -> None:
    response = api_client.post(
        "/api/v1/auth/register",
        {"email": "new@example.com", "password": "a-long-enough-password-1", "name": "Dashboard", "role": "seller"},
        format="json",
    )
    assert response.status_code == 201
    from marketplace.accounts.models import User

    assert User.objects.get(email="new@example.com").store_slug == "store-dashboard"  # "dashboard" is reserved


def test_public_product_view_has_page_fields(api_client: Any, seller: Any) -> None:
    made = product(seller, "Puzzle Pack", slug="puzzle-pack", description="Hi *there* [x](javascript:alert(1))")
    data = api_client.get(f"/api/v1/public/checkout/{made.slug}").json()["data"]
    assert data["description_html"] == '<p>Hi <em>there</em> <a rel="nofollow noopener noreferrer">x</a></p>'
    assert data["cover_image_url"] == ""
    assert (data["seller_slug"], data["support_email"]) == ("ada-games", "help@ada.example")


def test_public_media_serves_covers_only(client: Client, settings: Any, tmp_path: Any) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }
    (tmp_path / "covers" / "usr_1").mkdir(parents=True)
    (tmp_path / "covers" / "usr_1" / "a.jpg").write_bytes(b"\xff\xd8jpeg")
    (tmp_path / "secret.txt").write_text("no")

    ok = client.get("/media/covers/usr_1/a.jpg")

    assert ok.status_code == 200 and b"".join(ok.streaming_content) == b"\xff\xd8jpeg"
    assert "immutable" in ok["Cache-Control"]
    assert client.get("/media/secret.txt").status_code == 404
    assert client.get("/media/covers/../secret.txt").status_code == 404


# --- Discount links --------------------------------------------------------------------------


@pytest.fixture
def discounted(seller: Any) -> Any:
    from catalog.discounts import discount_save

    made = product(seller, "Puzzle Pack", prices=(2000,), slug="puzzle-pack")
    discount_save(seller=seller, data={"code": "SPRING20", "kind": "percent", "value": 20})
    discount_save(seller=seller, data={"code": "OTHER", "kind": "percent", "value": 10, "product_ids": []})
    return made


def test_a_discount_link_fills_and_applies_the_code(client: Client, discounted: Any) -> None:
    html = client.get("/c/puzzle-pack?discount=spring20").content.decode()
    assert 'value="spring20"' in html
    assert "Code SPRING20 applied: −$4.00" in html
    assert 'data-testid="total">$16.00<' in html


def test_a_bad_discount_link_says_why_and_charges_full_price(client: Client, discounted: Any) -> None:
    html = client.get("/c/puzzle-pack?discount=NOPE").content.decode()
    error = html.split('id="id_discount_code-error"')[1].split("</p>")[0]
    assert " hidden" not in error.split(">")[0]
    assert error.endswith(">This discount code is not valid.")
    assert 'data-testid="total">$20.00<' in html


def test_an_overlong_discount_link_is_refused_calmly(client: Client, discounted: Any) -> None:
    response = client.get("/c/puzzle-pack?discount=" + "X" * 500)
    assert response.status_code == 200
    assert 'data-testid="total">$20.00<' in response.content.decode()


def test_the_dashboard_lists_each_codes_link_with_a_copy_button(client: Client, seller: Any, discounted: Any) -> None:
    client.force_login(seller)
    html = client.get("/dashboard/settings/discounts/").content.decode()
    assert "http://127.0.0.1:8000/c/puzzle-pack?discount=SPRING20" in html
    link_ids = re.findall(
        r'<code id="(discount-link-[^"]+)">http://127\.0\.0\.1:8000/c/puzzle-pack\?discount=SPRING20', html
    )
    assert link_ids and f'data-copy="#{link_ids[0]}"' in html
    assert "<script>" not in html  # the copy button is static/js/dashboard.js, no inline script
