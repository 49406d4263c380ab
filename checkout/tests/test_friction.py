"""Friction on the hosted checkout and its success page (issue 14, "Friction and polish"): a declined
payment's "Try again" keeps what the buyer typed, the success page's headline agrees with its status
badge, and a sold-out product shows no form to fill."""

import re

import pytest

from catalog.discounts import discount_save
from catalog.models import DeliveryType
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory
from orders.models import Order, OrderStatus
from orders.pricing import CheckoutLine
from orders.services import order_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def seller():
    return SellerFactory(name="Ada's Shop")


@pytest.fixture
def two_options(seller):
    product = ProductFactory(seller=seller, slug="two-options", title="Two options", currency="USD")
    VariantFactory(product=product, name="Standard", price=1000, position=0)
    deluxe = VariantFactory(product=product, name="Deluxe", price=3000, position=1)
    return product, deluxe


def _input_value(html: str, name: str) -> str | None:
    found = re.search(rf'<input[^>]*name="{name}"[^>]*>', html)
    if not found:
        return None
    value = re.search(r'value="([^"]*)"', found.group(0))
    return value.group(1) if value else ""


def _try_again_form(html: str) -> tuple[str, dict[str, str]]:
    """The "Try again" form of a failed order's page: where it posts and the fields it sends."""
    form = re.search(r'<form method="post" action="([^"]+)" data-testid="try-again-form">(.*?)</form>', html, re.S)
    assert form, "no Try again form"
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.group(2)))
    return form.group(1), fields


def test_try_again_after_a_declined_payment_keeps_the_buyers_form(client, seller, two_options):
    product, deluxe = two_options
    discount_save(seller=seller, data={"code": "SAVE10", "kind": "percent", "value": 10})
    order = order_create(
        product=product,
        buyer_email="kept@example.com",
        recipient_email="friend@example.com",
        lines=[CheckoutLine(deluxe.id, 2)],
        discount_code="SAVE10",
    ).order
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.FAILED)

    html = client.get(f"/c/{product.slug}/orders/{order.id}").content.decode()
    action, fields = _try_again_form(html)
    assert action == f"/c/{product.slug}"
    assert fields["action"] == "quote"  # recomputes the total; creates nothing
    assert "idempotency_key" not in fields  # a fresh attempt gets a fresh key

    response = client.post(action, fields)
    assert response.status_code == 200
    page = response.content.decode()
    assert _input_value(page, "buyer_email") == "kept@example.com"
    assert _input_value(page, "recipient_email") == "friend@example.com"
    assert _input_value(page, "quantity") == "2"
    assert _input_value(page, "discount_code") == "SAVE10"
    assert re.search(rf'<input type="radio" name="variant_id" [^>]*value="{deluxe.id}" checked', page)
    assert 'id="summary-total" data-testid="total">$54.00<' in page
    key = _input_value(page, "idempotency_key")
    assert key and key != order.idempotency_key
    assert Order.objects.count() == 1


def test_try_again_keeps_the_partner_players_id(client, seller):
    product = ProductFactory(
        seller=seller,
        delivery_type=DeliveryType.PARTNER_API,
        delivery_content="",
        delivery_options={"partner": {"url": "https://partner.test/fulfill"}},
    )
    variant = VariantFactory(product=product, price=500)
    order = order_create(
        product=product,
        buyer_email="gamer@example.com",
        lines=[CheckoutLine(variant.id, 1, {"player_id": "PLAYER-42"})],
    ).order
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.FAILED)
    action, fields = _try_again_form(client.get(f"/c/{product.slug}/orders/{order.id}").content.decode())
    assert fields["player_id"] == "PLAYER-42"
    page = client.post(action, fields).content.decode()
    assert _input_value(page, "player_id") == "PLAYER-42"
    assert _input_value(page, "buyer_email") == "gamer@example.com"


def _headline_and_badge(html: str) -> tuple[str, str]:
    headline = re.search(r'<h1 id="headline">([^<]*)</h1>', html)
    badge = re.search(r'data-testid="status">([^<]*)</span>', html)
    assert headline and badge
    return headline.group(1), badge.group(1)


@pytest.mark.parametrize(
    ("status", "headline", "badge"),
    [
        (OrderStatus.PENDING, "Confirming your payment…", "Awaiting payment"),
        (OrderStatus.PAID, "Payment received: delivering your purchase…", "Paid — delivering"),
        (OrderStatus.PARTIALLY_DELIVERED, "Part of your purchase is ready", "Partially delivered"),
        (OrderStatus.DELIVERED, "Your purchase is ready", "Delivered"),
        (OrderStatus.NEEDS_ATTENTION, "We are sorting out your delivery", "Needs attention"),
        (OrderStatus.FAILED, "Payment failed", "Payment failed"),
        (OrderStatus.CANCELLED, "This order was cancelled", "Cancelled"),
        (OrderStatus.REFUNDED, "This order was refunded", "Refunded"),
        (OrderStatus.PARTIALLY_REFUNDED, "Your purchase is ready", "Partially refunded"),
    ],
)
def test_success_page_headline_agrees_with_the_status_badge(client, two_options, status, headline, badge):
    product, deluxe = two_options
    order = order_create(product=product, buyer_email="b@example.com", lines=[CheckoutLine(deluxe.id, 1)]).order
    Order.objects.filter(pk=order.pk).update(status=status)
    html = client.get(f"/c/{product.slug}/orders/{order.id}").content.decode()
    assert _headline_and_badge(html) == (headline, badge)
    if status != OrderStatus.PENDING:  # only an unpaid order is still being confirmed
        assert "Confirming your payment" not in html


def test_paid_fragment_never_says_confirming_beside_paid(client, two_options):
    """The polled fragment (what htmx swaps in) holds the same: paid means paid."""
    product, deluxe = two_options
    order = order_create(product=product, buyer_email="b@example.com", lines=[CheckoutLine(deluxe.id, 1)]).order
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.PAID)
    html = client.get(f"/c/{product.slug}/orders/{order.id}", {"partial": "1"}).content.decode()
    assert "Paid — delivering" in html
    assert "Confirming your payment" not in html


def test_sold_out_product_shows_no_form_to_fill(client, seller):
    product = ProductFactory(seller=seller, title="Limited print")
    VariantFactory(product=product, stock=0)
    response = client.get(f"/c/{product.slug}")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="sold-out"' in html
    assert "Sold out" in html
    assert "<form" not in html
    assert "<input" not in html
    assert 'id="pay"' not in html
    assert "Limited print" in html


def test_sold_out_post_shows_the_sold_out_state_and_creates_nothing(client, seller):
    product = ProductFactory(seller=seller)
    variant = VariantFactory(product=product, stock=0)
    response = client.post(f"/c/{product.slug}", {"buyer_email": "a@b.co", "quantity": 1, "variant_id": variant.id})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'data-testid="sold-out"' in html
    assert "<input" not in html
    assert Order.objects.count() == 0


def test_one_sold_out_option_keeps_the_form_for_the_others(client, seller):
    product = ProductFactory(seller=seller)
    VariantFactory(product=product, name="Small", price=500, position=0)
    VariantFactory(product=product, name="Large", price=2500, position=1, stock=0)
    html = client.get(f"/c/{product.slug}").content.decode()
    assert 'data-testid="sold-out"' not in html
    assert 'id="pay"' in html and 'name="buyer_email"' in html
