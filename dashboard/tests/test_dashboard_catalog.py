"""The seller's catalog pages: products list, create and edit, archive, uploads and code pools."""

import io
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.inventory import codes_import, rows_from_json
from catalog.models import Code, CodeStatus, Product, Upload, Variant
from catalog.tests.factories import ProductFactory, VariantFactory
from dashboard.catalog.views import human_size, minor_to_text, money_to_minor
from marketplace.accounts.tests.factories import SellerFactory, UserFactory
from orders.models import Order, OrderStatus

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def private_storage(settings: Any, tmp_path: Any) -> Any:
    """Uploads go to a throwaway folder, never into var/media."""
    settings.STORAGES = {
        **settings.STORAGES,
        "private": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }
    return tmp_path


@pytest.fixture
def seller():
    return SellerFactory(name="Ada's Shop", email="ada@example.com")


@pytest.fixture
def seller_client(client, seller):
    client.force_login(seller)
    return client


@pytest.fixture
def other_product():
    product = ProductFactory(
        seller=SellerFactory(), title="Someone else's", delivery_type="code_pool", delivery_content=""
    )
    VariantFactory(product=product, name="Theirs", price=500)
    return product


def code_pool_product(seller, *, title="Gift Card", names=("€10",), currency="EUR"):
    product = ProductFactory(
        seller=seller, title=title, currency=currency, delivery_type="code_pool", delivery_content=""
    )
    for position, name in enumerate(names):
        VariantFactory(product=product, name=name, price=1000 * (position + 1), position=position)
    return product


def form_data(**overrides: Any) -> dict[str, Any]:
    """A complete product form as the browser posts it: two variant rows and one blank one."""
    data = {
        "title": "Pixel Brushes",
        "description": "Fifty brushes.",
        "status": "active",
        "currency": "USD",
        "currency_other": "",
        "delivery_type": "text",
        "delivery_text": "Download: https://example.com/brushes",
        "delivery_link": "",
        "delivery_file": "",
        "license_activation_limit": "",
        "license_expires_in_days": "",
        "license_prefix": "",
        "partner_url": "",
        "redemption_instructions": "",
        "variants-TOTAL_FORMS": "3",
        "variants-INITIAL_FORMS": "0",
        "variants-MIN_NUM_FORMS": "0",
        "variants-MAX_NUM_FORMS": "100",
        "variants-0-id": "",
        "variants-0-name": "Basic",
        "variants-0-price": "19.99",
        "variants-0-stock": "",
        "variants-1-id": "",
        "variants-1-name": "Pro",
        "variants-1-price": "1,249.50",
        "variants-1-stock": "10",
        "variants-2-id": "",
        "variants-2-name": "",
        "variants-2-price": "",
        "variants-2-stock": "",
    }
    data.update(overrides)
    return data


def csv_file(text: str, name: str = "codes.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


# --- Money as people type it ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "currency", "expected"),
    [
        ("19.99", "USD", 1999),
        ("1,249.5", "USD", 124950),
        ("0", "USD", 0),
        ("1.234", "KWD", 1234),
        ("50000", "UGX", 50000),
        ("12", "JPY", 12),
    ],
)
def test_money_to_minor_is_exact_in_the_currencys_exponent(raw, currency, expected):
    assert money_to_minor(raw, currency) == expected


@pytest.mark.parametrize(
    ("raw", "currency"),
    [("19.999", "USD"), ("1.5", "JPY"), ("abc", "USD"), ("-1", "USD"), ("", "USD"), ("1.2345", "KWD")],
)
def test_money_to_minor_refuses_what_is_not_exact(raw, currency):
    with pytest.raises(ValueError, match=r"."):
        money_to_minor(raw, currency)


def test_minor_to_text_and_sizes():
    assert minor_to_text(1999, "USD") == "19.99"
    assert minor_to_text(1234, "KWD") == "1.234"
    assert minor_to_text(50000, "UGX") == "50000"
    assert human_size(512) == "512 bytes"
    assert human_size(2 * 1024 * 1024) == "2.0 MB"


# --- Access --------------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get("/dashboard/products/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/dashboard/products/")


def test_a_buyer_gets_403_on_every_catalog_page(client, other_product):
    client.force_login(UserFactory())
    variant = other_product.variants.get()
    for url in [
        "/dashboard/products/",
        "/dashboard/products/new/",
        f"/dashboard/products/{other_product.id}/edit/",
        f"/dashboard/products/{other_product.id}/variants/{variant.id}/codes/",
    ]:
        assert client.get(url).status_code == 403, url
    response = client.post("/dashboard/products/new/", form_data())
    assert response.status_code == 403
    assert not Product.objects.filter(title="Pixel Brushes").exists()


def test_another_sellers_product_and_variant_are_404_pages(seller_client, seller, other_product):
    variant = other_product.variants.get()
    base = f"/dashboard/products/{other_product.id}"
    for url in [f"{base}/edit/", f"{base}/archive/", f"{base}/variants/{variant.id}/codes/"]:
        response = seller_client.get(url)
        assert response.status_code == 404, url
        assert "Not found" in response.content.decode()
    # Writes are refused just the same and change nothing.
    assert seller_client.post(f"{base}/edit/", form_data(title="Mine now")).status_code == 404
    assert seller_client.post(f"{base}/archive/", {"confirm": "yes"}).status_code == 404
    upload = seller_client.post(f"{base}/variants/{variant.id}/codes/upload/", {"file": csv_file("code\nX1\n")})
    assert upload.status_code == 404
    other_product.refresh_from_db()
    assert other_product.title == "Someone else's" and other_product.status == "active"
    assert not Code.objects.exists()
    # My own product with their variant id is not found either.
    mine = code_pool_product(seller)
    assert seller_client.get(f"/dashboard/products/{mine.id}/variants/{variant.id}/codes/").status_code == 404


# --- Products list -------------------------------------------------------------------------------


def test_empty_list_says_what_to_do_next(seller_client):
    html = seller_client.get("/dashboard/products/").content.decode()
    assert "Create your first product" in html
    assert 'href="/dashboard/products/new/"' in html


def _paid_order(product, *, total, refunded=0, status=OrderStatus.DELIVERED, number):
    from django.utils import timezone

    return Order.objects.create(
        order_number=str(number),
        seller=product.seller,
        product=product,
        buyer_email="b@example.com",
        currency=product.currency,
        subtotal=total,
        total_amount=total,
        refunded_amount=refunded,
        status=status,
        paid_at=timezone.now() if status != OrderStatus.PENDING else None,
    )


def test_list_shows_price_stock_and_sales_in_a_fixed_number_of_queries(seller_client, seller):
    text = ProductFactory(seller=seller, title="Ebook", currency="USD")
    VariantFactory(product=text, name="Standard", price=1999, stock=None)
    pool = code_pool_product(seller, title="Gift Card", names=("€10", "€20"))
    codes_import(variant=pool.variants.get(name="€10"), rows=rows_from_json(["A-1111", "A-2222", "A-3333"]))
    _paid_order(text, total=1999, number=10000001)
    _paid_order(text, total=1999, refunded=999, status=OrderStatus.PARTIALLY_REFUNDED, number=10000002)
    _paid_order(text, total=1999, status=OrderStatus.PENDING, number=10000003)  # not paid: not a sale

    seller_client.get("/dashboard/products/")  # warm the session and the user
    with CaptureQueriesContext(connection) as first:
        response = seller_client.get("/dashboard/products/")
    html = response.content.decode()

    assert response.status_code == 200
    ebook_row = html.split(f'data-product="{text.id}"')[1].split("</tr>")[0]
    assert "$19.99" in ebook_row
    assert "Unlimited" in ebook_row
    assert "2 paid orders" in ebook_row
    assert "$29.99" in ebook_row  # 1999 + (1999 - 999)
    pool_row = html.split(f'data-product="{pool.id}"')[1].split("</tr>")[0]
    assert "€10.00" in pool_row and "€20.00" in pool_row
    assert "3 codes" in pool_row and "0 codes" in pool_row
    assert "0 paid orders" in pool_row

    for n in range(5):  # more products and sales: still the same number of queries
        more = ProductFactory(seller=seller, title=f"More {n}")
        VariantFactory(product=more, price=100)
        _paid_order(more, total=100, number=20000000 + n)
    with CaptureQueriesContext(connection) as second:
        seller_client.get("/dashboard/products/")
    assert len(second.captured_queries) == len(first.captured_queries)


def test_list_shows_only_my_products(seller_client, other_product):
    html = seller_client.get("/dashboard/products/").content.decode()
    assert "Someone else" not in html


# --- Create --------------------------------------------------------------------------------------


def test_new_product_form_renders_with_two_variant_rows(seller_client):
    response = seller_client.get("/dashboard/products/new/")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'name="variants-0-name"' in html and 'name="variants-1-name"' in html
    assert 'id="variant-template"' in html
    assert 'data-upload-url="/dashboard/uploads/"' in html
    assert "js/dashboard-upload.js" in html


def test_create_product_with_two_variants_in_minor_units(seller_client, seller):
    response = seller_client.post("/dashboard/products/new/", form_data())

    assert response.status_code == 302, response.content.decode()
    assert response["Location"] == "/dashboard/products/"
    product = Product.objects.get(seller=seller)
    assert product.title == "Pixel Brushes"
    assert product.status == "active"
    assert product.delivery_type == "text"
    assert product.delivery_content == "Download: https://example.com/brushes"
    variants = list(product.variants.order_by("position").values_list("name", "price", "stock"))
    assert variants == [("Basic", 1999, None), ("Pro", 124950, 10)]


def test_kwd_prices_have_three_decimals(seller_client, seller):
    data = form_data(currency="KWD", **{"variants-0-price": "1.234", "variants-1-price": "10"})
    response = seller_client.post("/dashboard/products/new/", data)
    assert response.status_code == 302, response.content.decode()
    product = Product.objects.get(seller=seller)
    assert product.currency == "KWD"
    assert list(product.variants.order_by("position").values_list("price", flat=True)) == [1234, 10000]
    # The edit page shows them back as typed.
    html = seller_client.get(f"/dashboard/products/{product.id}/edit/").content.decode()
    assert 'value="1.234"' in html and 'value="10.000"' in html


def test_other_currency_is_typed_and_validated(seller_client, seller):
    response = seller_client.post("/dashboard/products/new/", form_data(currency="other", currency_other="zzz"))
    assert response.status_code == 200
    assert "&#x27;ZZZ&#x27; is not an ISO 4217 currency code." in response.content.decode()
    assert not Product.objects.exists()

    response = seller_client.post("/dashboard/products/new/", form_data(currency="other", currency_other="czk"))
    assert response.status_code == 302
    assert Product.objects.get().currency == "CZK"


def test_invalid_link_shows_the_error_next_to_the_field_and_creates_nothing(seller_client):
    data = form_data(delivery_type="link", delivery_text="", delivery_link="http://insecure.example.com/file")
    response = seller_client.post("/dashboard/products/new/", data)

    assert response.status_code == 200
    html = response.content.decode()
    field = html.split('id="field-delivery_link"')[1].split("<div data-delivery=")[0]
    assert 'data-testid="error-delivery_link">Must be a valid https:// URL.' in field
    assert "Nothing was saved" in html
    # What was typed is kept.
    assert 'value="http://insecure.example.com/file"' in html
    assert 'value="19.99"' in html
    assert not Product.objects.exists()
    assert not Variant.objects.exists()


def test_bad_price_is_shown_on_its_row_and_creates_nothing(seller_client):
    response = seller_client.post("/dashboard/products/new/", form_data(**{"variants-1-price": "12.345"}))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="error-variants-1-price">Enter a positive amount with at most 2 decimal places.' in html
    assert not Product.objects.exists()


def test_service_errors_land_on_the_right_variant_row(seller_client):
    # The blank row in the middle is skipped: the service's "variants.1" is the form's row 2.
    data = form_data(
        **{"variants-1-name": "", "variants-1-price": "", "variants-2-name": "basic", "variants-2-price": "5"}
    )
    response = seller_client.post("/dashboard/products/new/", data)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="error-variants-2-name">Another variant of this product already has this name.' in html
    assert not Product.objects.exists()


def test_a_product_needs_a_variant(seller_client):
    data = form_data(**{"variants-0-name": "", "variants-0-price": "", "variants-1-name": "", "variants-1-price": ""})
    response = seller_client.post("/dashboard/products/new/", data)
    assert response.status_code == 200
    assert "Add at least one variant with a name and a price." in response.content.decode()
    assert not Product.objects.exists()


def test_missing_title_is_shown_next_to_it(seller_client):
    response = seller_client.post("/dashboard/products/new/", form_data(title=""))
    assert 'data-testid="error-title">This field is required.' in response.content.decode()
    assert not Product.objects.exists()


def test_code_pool_product_goes_on_to_its_codes(seller_client, seller):
    data = form_data(delivery_type="code_pool", delivery_text="", **{"variants-1-stock": "99"})
    response = seller_client.post("/dashboard/products/new/", data)
    product = Product.objects.get(seller=seller)
    first = product.variants.get(position=0)
    assert response.status_code == 302
    assert response["Location"] == f"/dashboard/products/{product.id}/variants/{first.id}/codes/"
    assert product.delivery_type == "code_pool"
    assert list(product.variants.values_list("stock", flat=True)) == [None, None]  # stock is the codes


def test_license_key_settings_and_their_errors(seller_client, seller):
    data = form_data(
        delivery_type="license_key",
        delivery_text="",
        license_activation_limit="3",
        license_expires_in_days="365",
        license_prefix="pix",
    )
    assert seller_client.post("/dashboard/products/new/", data).status_code == 302
    product = Product.objects.get(seller=seller)
    assert product.delivery_options["license"] == {"activation_limit": 3, "expires_in_days": 365, "prefix": "PIX"}

    bad = form_data(title="Other", delivery_type="license_key", license_prefix="no-dash")
    html = seller_client.post("/dashboard/products/new/", bad).content.decode()
    assert 'data-testid="error-license_prefix">Up to 12 uppercase letters or digits.' in html
    assert Product.objects.count() == 1


# --- Uploads -------------------------------------------------------------------------------------


def test_dashboard_upload_returns_the_reference_and_a_file_product_uses_it(seller_client, seller):
    content = b"%PDF-1.7 brushes"
    response = seller_client.post(
        "/dashboard/uploads/",
        {"file": SimpleUploadedFile("Brushes Pack.pdf", content, "application/pdf")},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert data["filename"] == "Brushes_Pack.pdf"
    assert data["size"] == len(content)
    assert data["content_type"] == "application/pdf"
    assert data["url"].startswith(f"uploads/{seller.id}/")
    assert Upload.objects.get(seller=seller).key == data["url"]

    response = seller_client.post(
        "/dashboard/products/new/", form_data(delivery_type="file", delivery_file=data["url"])
    )
    assert response.status_code == 302
    product = Product.objects.get(seller=seller)
    assert product.delivery_content == data["url"]
    html = seller_client.get(f"/dashboard/products/{product.id}/edit/").content.decode()
    assert "Brushes_Pack.pdf" in html and "16 bytes" in html


def test_upload_needs_csrf_and_a_seller(client, seller):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(seller)
    response = csrf_client.post("/dashboard/uploads/", {"file": SimpleUploadedFile("a.pdf", b"x")})
    assert response.status_code == 403
    client.force_login(UserFactory())
    assert client.post("/dashboard/uploads/", {"file": SimpleUploadedFile("a.pdf", b"x")}).status_code == 403
    assert not Upload.objects.exists()


def test_upload_errors_come_back_in_the_envelope(seller_client, settings):
    response = seller_client.post("/dashboard/uploads/", {})
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"file": ["Choose a file to upload."]}
    settings.MAX_UPLOAD_SIZE = 10
    response = seller_client.post("/dashboard/uploads/", {"file": SimpleUploadedFile("a.pdf", b"x" * 11)})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert not Upload.objects.exists()


def test_a_file_reference_of_someone_else_is_refused_next_to_the_file(seller_client, other_product):
    theirs = Upload.objects.create(
        seller=other_product.seller,
        key="uploads/x/y/theirs.pdf",
        filename="theirs.pdf",
        size=3,
        content_type="application/pdf",
    )
    response = seller_client.post("/dashboard/products/new/", form_data(delivery_type="file", delivery_file=theirs.key))
    assert 'data-testid="error-delivery_file">No upload of yours has this reference.' in response.content.decode()
    assert Product.objects.count() == 1  # only the other seller's


# --- Edit ----------------------------------------------------------------------------------------


def test_edit_renames_reprices_adds_and_removes_variants(seller_client, seller):
    product = ProductFactory(seller=seller, title="Ebook", currency="USD")
    keep = VariantFactory(product=product, name="Standard", price=1999, position=0)
    drop = VariantFactory(product=product, name="Old", price=500, position=1)
    html = seller_client.get(f"/dashboard/products/{product.id}/edit/").content.decode()
    assert 'value="Ebook"' in html and 'value="19.99"' in html and f'value="{keep.id}"' in html

    data = form_data(
        title="Ebook 2nd ed.",
        status="draft",
        **{
            "variants-TOTAL_FORMS": "3",
            "variants-INITIAL_FORMS": "2",
            "variants-0-id": keep.id,
            "variants-0-name": "Standard",
            "variants-0-price": "24.50",
            "variants-1-id": drop.id,
            "variants-1-name": "Old",
            "variants-1-price": "5",
            "variants-1-DELETE": "on",
            "variants-2-id": "",
            "variants-2-name": "Deluxe",
            "variants-2-price": "49",
            "variants-2-stock": "5",
        },
    )
    response = seller_client.post(f"/dashboard/products/{product.id}/edit/", data)

    assert response.status_code == 302, response.content.decode()
    product.refresh_from_db()
    assert (product.title, product.status) == ("Ebook 2nd ed.", "draft")
    rows = list(product.variants.order_by("position").values_list("id", "name", "price", "stock"))
    assert rows[0] == (keep.id, "Standard", 2450, None)
    assert rows[1][1:] == ("Deluxe", 4900, 5)
    assert len(rows) == 2
    assert not Variant.objects.filter(id=drop.id).exists()


def test_edit_with_a_bad_field_changes_nothing(seller_client, seller):
    product = ProductFactory(seller=seller, title="Ebook", currency="USD")
    variant = VariantFactory(product=product, name="Standard", price=1999)
    data = form_data(
        title="Changed",
        delivery_type="link",
        delivery_link="ftp://nope",
        **{
            "variants-TOTAL_FORMS": "1",
            "variants-INITIAL_FORMS": "1",
            "variants-0-id": variant.id,
            "variants-0-name": "Renamed",
            "variants-0-price": "1",
        },
    )
    response = seller_client.post(f"/dashboard/products/{product.id}/edit/", data)
    assert response.status_code == 200
    assert "Must be a valid https:// URL." in response.content.decode()
    product.refresh_from_db()
    variant.refresh_from_db()
    assert (product.title, product.delivery_type) == ("Ebook", "text")
    assert (variant.name, variant.price) == ("Standard", 1999)


def test_edit_keeps_the_partner_secret(seller_client, seller, settings):
    """The signing secret is shown once, on the page that answers its creation (never cached);
    the product's page shows its last 4 characters after, and an edit keeps it."""
    from catalog.delivery import partner_secret

    data = form_data(delivery_type="partner_api", delivery_text="", partner_url="https://partner.example.com/fulfill")
    created = seller_client.post("/dashboard/products/new/", data)
    assert created.status_code == 200
    assert created["Cache-Control"] == "no-store"
    product = Product.objects.get(seller=seller)
    secret = partner_secret(product.delivery_options)
    assert secret.startswith("whsec_")
    assert secret not in str(product.delivery_options)  # sealed at rest
    assert secret in created.content.decode()
    html = seller_client.get(f"/dashboard/products/{product.id}/edit/").content.decode()
    assert secret not in html and secret.removeprefix("whsec_")[:-4] not in html
    assert f"whsec_…{secret[-4:]}" in html

    variants = product.variants.order_by("position")
    edit = form_data(
        delivery_type="partner_api",
        partner_url="https://partner.example.com/v2",
        **{
            "variants-TOTAL_FORMS": "2",
            "variants-INITIAL_FORMS": "2",
            "variants-0-id": variants[0].id,
            "variants-1-id": variants[1].id,
            "variants-2-name": "",
        },
    )
    assert seller_client.post(f"/dashboard/products/{product.id}/edit/", edit).status_code == 302
    product.refresh_from_db()
    assert product.delivery_options["partner"]["url"] == "https://partner.example.com/v2"
    assert partner_secret(product.delivery_options) == secret


# --- Archive -------------------------------------------------------------------------------------


def test_archive_asks_first_then_deletes_a_product_without_orders(seller_client, seller):
    product = code_pool_product(seller)
    page = seller_client.get(f"/dashboard/products/{product.id}/archive/")
    assert page.status_code == 200
    assert "Delete “Gift Card”?" in page.content.decode()
    # A post without the confirmation only asks again.
    assert seller_client.post(f"/dashboard/products/{product.id}/archive/").status_code == 200
    assert Product.objects.filter(id=product.id).exists()

    response = seller_client.post(f"/dashboard/products/{product.id}/archive/", {"confirm": "yes"})
    assert response.status_code == 302
    assert not Product.objects.filter(id=product.id).exists()


def test_archive_keeps_a_product_with_orders(seller_client, seller):
    product = ProductFactory(seller=seller, title="Ebook")
    VariantFactory(product=product)
    _paid_order(product, total=1999, number=30000001)
    edit = seller_client.get(f"/dashboard/products/{product.id}/edit/").content.decode()
    assert 'data-confirm="Archive “Ebook”?' in edit
    seller_client.post(f"/dashboard/products/{product.id}/archive/", {"confirm": "yes"})
    product.refresh_from_db()
    assert product.status == "archived"


# --- Code pools ----------------------------------------------------------------------------------


def codes_url(product, variant, rest=""):
    return f"/dashboard/products/{product.id}/variants/{variant.id}/codes/{rest}"


def test_code_page_empty_state_and_counts(seller_client, seller):
    product = code_pool_product(seller)
    variant = product.variants.get()
    html = seller_client.get(codes_url(product, variant)).content.decode()
    assert "No codes yet." in html
    assert 'data-count="AVAILABLE">0<' in html


def test_csv_upload_by_xhr_reports_imported_duplicates_and_rejected_lines(seller_client, seller):
    product = code_pool_product(seller)
    variant = product.variants.get()
    codes_import(variant=variant, rows=rows_from_json(["ALREADY-0001"]))
    text = "code,pin\nGIFT-AAAA-1111,1234\nGIFT-BBBB-2222,\nALREADY-0001,\n,9999\nGIFT-AAAA-1111,\nTOO,MANY,COLUMNS\n"

    response = seller_client.post(
        codes_url(product, variant, "upload/"),
        {"file": csv_file(text)},
        HTTP_ACCEPT="application/json",
        HTTP_X_REQUESTED_WITH="XMLHttpRequest",
    )

    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["imported"] == 2
    assert data["duplicates"] == 2
    assert data["rejected_count"] == 2
    assert data["rejected"] == [
        {"line": 5, "reason": "code is empty."},
        {"line": 7, "reason": "Expected 2 columns, found 3."},
    ]
    assert data["counts"]["AVAILABLE"] == 3
    assert data["total"] == 3 and data["sellable"] == 3
    assert Code.objects.filter(variant=variant).count() == 3


def test_csv_upload_without_javascript_shows_the_report_on_the_page(seller_client, seller):
    product = code_pool_product(seller)
    variant = product.variants.get()
    response = seller_client.post(
        codes_url(product, variant, "upload/"), {"file": csv_file("code\nGIFT-AAAA-1111\nGIFT-BBBB-2222\n\nA,B\n")}
    )
    assert response.status_code == 302
    assert response["Location"] == codes_url(product, variant)
    html = seller_client.get(codes_url(product, variant)).content.decode()
    assert '<strong data-report="imported">2</strong> imported' in html
    assert '<strong data-report="rejected">1</strong> line rejected' in html
    assert "••••1111" in html and "••••2222" in html
    assert "GIFT-AAAA" not in html  # codes by their last 4 only
    # The report is shown once.
    assert "Import report" not in seller_client.get(codes_url(product, variant)).content.decode()


def test_a_bad_csv_is_refused_next_to_the_file_and_imports_nothing(seller_client, seller):
    product = code_pool_product(seller)
    variant = product.variants.get()
    response = seller_client.post(
        codes_url(product, variant, "upload/"), {"file": csv_file("serial\nX\n")}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 400
    assert "header with a `code` column" in response.json()["error"]["message"]

    seller_client.post(codes_url(product, variant, "upload/"), {})
    html = seller_client.get(codes_url(product, variant)).content.decode()
    assert 'data-testid="error-file">Choose a CSV file' in html
    assert not Code.objects.exists()


def test_codes_are_not_uploaded_into_a_product_that_is_not_a_code_pool(seller_client, seller):
    product = ProductFactory(seller=seller)
    variant = VariantFactory(product=product)
    html = seller_client.get(codes_url(product, variant)).content.decode()
    assert 'data-testid="not-code-pool"' in html and "codes-upload" not in html
    response = seller_client.post(
        codes_url(product, variant, "upload/"), {"file": csv_file("code\nA-1234\n")}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 409
    assert not Code.objects.exists()


def test_block_unblock_and_revoke_with_confirmation(seller_client, seller):
    product = code_pool_product(seller)
    variant = product.variants.get()
    codes_import(variant=variant, rows=rows_from_json(["GIFT-0000-9999"]))
    code = Code.objects.get()

    # Without the confirmation: a page that asks, and nothing changes.
    ask = seller_client.post(codes_url(product, variant, f"{code.id}/block/"), {"status": "AVAILABLE", "page": "1"})
    assert ask.status_code == 200
    assert "Block the code ending in 9999?" in ask.content.decode()
    code.refresh_from_db()
    assert code.status == CodeStatus.AVAILABLE

    done = seller_client.post(
        codes_url(product, variant, f"{code.id}/block/"), {"confirm": "yes", "status": "AVAILABLE", "page": "1"}
    )
    assert done.status_code == 302
    assert done["Location"] == codes_url(product, variant) + "?status=AVAILABLE&page=1"
    code.refresh_from_db()
    assert code.status == CodeStatus.BLOCKED
    html = seller_client.get(codes_url(product, variant)).content.decode()
    assert "The code ending in 9999 is blocked." in html
    assert 'data-count="BLOCKED">1<' in html and 'data-count="AVAILABLE">0<' in html

    seller_client.post(codes_url(product, variant, f"{code.id}/unblock/"), {"confirm": "yes"})
    code.refresh_from_db()
    assert code.status == CodeStatus.AVAILABLE

    seller_client.post(codes_url(product, variant, f"{code.id}/revoke/"), {"confirm": "yes"})
    code.refresh_from_db()
    assert code.status == CodeStatus.REVOKED
    # A move the pool does not allow is a message, not an error page.
    seller_client.post(codes_url(product, variant, f"{code.id}/unblock/"), {"confirm": "yes"})
    html = seller_client.get(codes_url(product, variant)).content.decode()
    assert "cannot be unblocked" in html
    code.refresh_from_db()
    assert code.status == CodeStatus.REVOKED


def test_code_actions_on_another_sellers_code_are_404(seller_client, seller, other_product):
    variant = other_product.variants.get()
    codes_import(variant=variant, rows=rows_from_json(["THEIRS-1234"]))
    code = Code.objects.get()
    mine = code_pool_product(seller)
    my_variant = mine.variants.get()
    assert (
        seller_client.post(codes_url(other_product, variant, f"{code.id}/block/"), {"confirm": "yes"}).status_code
        == 404
    )
    # Their code through my variant's URL is not found either.
    assert seller_client.post(codes_url(mine, my_variant, f"{code.id}/block/"), {"confirm": "yes"}).status_code == 404
    assert seller_client.post(codes_url(mine, my_variant, "nope/explode/"), {"confirm": "yes"}).status_code == 404
    code.refresh_from_db()
    assert code.status == CodeStatus.AVAILABLE


def test_code_list_filters_by_status_and_paginates(seller_client, seller):
    product = code_pool_product(seller)
    variant = product.variants.get()
    codes_import(variant=variant, rows=rows_from_json([f"CODE-{n:04d}" for n in range(60)]))
    Code.objects.filter(code_hint="0007").update(status=CodeStatus.BLOCKED)

    blocked = seller_client.get(codes_url(product, variant) + "?status=BLOCKED").content.decode()
    assert "••••0007" in blocked and "••••0008" not in blocked
    first = seller_client.get(codes_url(product, variant)).content.decode()
    assert "Page 1 of 2" in first and "••••0000" in first and "••••0055" not in first
    second = seller_client.get(codes_url(product, variant) + "?page=2").content.decode()
    assert "••••0055" in second


def test_import_report_lists_rejected_reasons_from_a_large_file(seller_client, seller):
    product = code_pool_product(seller)
    variant = product.variants.get()
    body = io.StringIO()
    body.write("code,expires_at\n")
    for n in range(300):
        body.write(f"BULK-{n:05d},\n")
    body.write("EXPIRED-0001,2001-01-01\n")
    response = seller_client.post(
        codes_url(product, variant, "upload/"), {"file": csv_file(body.getvalue())}, HTTP_ACCEPT="application/json"
    )
    data = response.json()["data"]
    assert data["imported"] == 300
    assert data["rejected"] == [{"line": 302, "reason": "The code has already expired."}]
