"""The licence-key page of a product: hints only, activations, status; disable, enable, reset; never
another seller's product or key."""

import pytest
from rest_framework.test import APIClient

from catalog.models import DeliveryType
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory
from orders.models import License, LicenseActivation, OrderEvent
from orders.tests.helpers import make_order, pay

pytestmark = pytest.mark.django_db


def license_product_of(seller, slug):
    product = ProductFactory(
        seller=seller,
        slug=slug,
        title=f"App {slug}",
        delivery_type=DeliveryType.LICENSE_KEY,
        delivery_content="",
        delivery_options={"license": {"activation_limit": 3}},
    )
    VariantFactory(product=product, price=4900)
    return product


@pytest.fixture
def me():
    return SellerFactory(name="Ada's Shop", email="ada@example.com")


@pytest.fixture
def sold(me, django_capture_on_commit_callbacks):
    product = license_product_of(me, "ada-app")
    order = pay(make_order(product, quantity=2, email="ann@example.com"), django_capture_on_commit_callbacks)
    licenses = list(License.objects.filter(product=product).order_by("created_at", "id"))
    response = APIClient().post(
        "/api/v1/licenses/activate", {"license_key": licenses[0].key, "instance_name": "Ann's laptop"}, format="json"
    )
    assert response.status_code == 201
    return product, order, licenses


@pytest.fixture
def theirs(django_capture_on_commit_callbacks):
    other = SellerFactory(name="Other")
    product = license_product_of(other, "other-app")
    pay(make_order(product, email="bob@example.com"), django_capture_on_commit_callbacks)
    return product, License.objects.get(product=product)


@pytest.fixture
def browser(client, me):
    client.force_login(me)
    return client


def test_page_lists_hints_buyers_and_activations_never_keys(browser, sold, theirs, django_assert_max_num_queries):
    product, order, licenses = sold
    with django_assert_max_num_queries(12):
        response = browser.get(f"/dashboard/products/{product.id}/licenses/")
    assert response.status_code == 200
    html = response.content.decode()
    for lic in licenses:
        assert f'data-license="{lic.id}"' in html
        assert f"••••{lic.key_hint}" in html
        assert lic.key not in html
    assert f'data-license="{theirs[1].id}"' not in html
    assert "ann@example.com" in html and f"Order {order.order_number}" in html
    assert "Ann&#x27;s laptop" in html
    assert "1 of 3" in html
    assert 'data-testid="disable-' in html and 'data-testid="reset-' in html


def test_filters_by_status_and_search(browser, sold):
    product, _, licenses = sold
    License.objects.filter(pk=licenses[1].pk).update(status="disabled")
    html = browser.get(f"/dashboard/products/{product.id}/licenses/?status=disabled").content.decode()
    assert f'data-license="{licenses[1].id}"' in html and f'data-license="{licenses[0].id}"' not in html
    html = browser.get(f"/dashboard/products/{product.id}/licenses/?q={licenses[0].key_hint}").content.decode()
    assert f'data-license="{licenses[0].id}"' in html and f'data-license="{licenses[1].id}"' not in html
    html = browser.get(f"/dashboard/products/{product.id}/licenses/?q=nobody@x").content.decode()
    assert 'data-testid="empty"' in html


def test_disable_asks_first_then_disables_and_records(browser, sold):
    product, order, licenses = sold
    url = f"/dashboard/products/{product.id}/licenses/{licenses[0].id}/disable/"
    confirm = browser.post(url)
    assert confirm.status_code == 200 and 'data-testid="confirm"' in confirm.content.decode()
    assert License.objects.get(pk=licenses[0].pk).status == "active"
    done = browser.post(url, {"confirm": "yes", "status": "active"})
    assert done.status_code == 302 and done["Location"].endswith("/licenses/?status=active")
    assert License.objects.get(pk=licenses[0].pk).status == "disabled"
    assert OrderEvent.objects.filter(order=order, type="license_disabled").count() == 1
    browser.post(f"/dashboard/products/{product.id}/licenses/{licenses[0].id}/enable/", {"confirm": "yes"})
    assert License.objects.get(pk=licenses[0].pk).status == "active"


def test_reset_activations(browser, sold):
    product, _, licenses = sold
    browser.post(f"/dashboard/products/{product.id}/licenses/{licenses[0].id}/reset/", {"confirm": "yes"})
    assert not LicenseActivation.objects.filter(license=licenses[0], deactivated_at__isnull=True).exists()


def test_a_refused_change_shows_its_message(browser, sold):
    product, _, licenses = sold
    License.objects.filter(pk=licenses[0].pk).update(status="refunded")
    response = browser.post(
        f"/dashboard/products/{product.id}/licenses/{licenses[0].id}/enable/", {"confirm": "yes"}, follow=True
    )
    assert "This key was refunded" in response.content.decode()
    assert License.objects.get(pk=licenses[0].pk).status == "refunded"


def test_another_sellers_product_and_key_are_not_found(browser, sold, theirs):
    product, _, _ = sold
    their_product, their_key = theirs
    assert browser.get(f"/dashboard/products/{their_product.id}/licenses/").status_code == 404
    for path in (
        f"/dashboard/products/{their_product.id}/licenses/{their_key.id}/disable/",
        f"/dashboard/products/{product.id}/licenses/{their_key.id}/disable/",  # through my own product
    ):
        assert browser.post(path, {"confirm": "yes"}).status_code == 404
    assert License.objects.get(pk=their_key.pk).status == "active"


def test_the_product_pages_link_to_the_keys(browser, sold):
    product, _, _ = sold
    assert f"/dashboard/products/{product.id}/licenses/" in browser.get("/dashboard/products/").content.decode()
    assert (
        f"/dashboard/products/{product.id}/licenses/"
        in browser.get(f"/dashboard/products/{product.id}/edit/").content.decode()
    )
