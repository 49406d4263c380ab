import re
from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.tests.factories import ProductFactory, VariantFactory
from orders.models import Order

from .helpers import make_order, pay

pytestmark = pytest.mark.django_db


def test_checkout_page_shows_the_price_formatted(client, text_product):
    response = client.get(f"/c/{text_product.slug}")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Secret Text" in html
    assert "$19.99" in html
    assert "Ada&#x27;s Shop" in html or "Ada's Shop" in html
    assert "OPEN-SESAME" not in html


@pytest.mark.parametrize(
    ("currency", "price", "shown"), [("UGX", 50000, "UGX50,000"), ("KWD", 1234, "KWD1.234"), ("EUR", 1500, "€15.00")]
)
def test_prices_use_the_currency_exponent(client, seller, currency, price, shown):
    product = ProductFactory(seller=seller, currency=currency)
    VariantFactory(product=product, price=price)
    html = client.get(f"/c/{product.slug}").content.decode()
    assert shown in html.replace("\xa0", "")


def test_submitting_the_form_opens_a_sandbox_payment(client, text_product):
    response = client.post(
        f"/c/{text_product.slug}",
        {
            "buyer_email": "page@example.com",
            "quantity": 2,
            "variant_id": text_product.variants.get().id,
            "idempotency_key": "page-1",
        },
    )
    assert response.status_code == 302
    assert "/sandbox/pay/pay_" in response["Location"]
    order = Order.objects.get()
    assert (order.buyer_email, order.total_amount, order.idempotency_key) == ("page@example.com", 3998, "page-1")
    again = client.post(
        f"/c/{text_product.slug}",
        {
            "buyer_email": "page@example.com",
            "quantity": 2,
            "variant_id": text_product.variants.get().id,
            "idempotency_key": "page-1",
        },
    )
    assert again["Location"] == response["Location"]
    assert Order.objects.count() == 1


def test_bad_email_shows_the_error_and_creates_nothing(client, text_product):
    response = client.post(
        f"/c/{text_product.slug}", {"buyer_email": "nope", "quantity": 1, "variant_id": text_product.variants.get().id}
    )
    assert response.status_code == 400
    assert "Enter a valid email address." in response.content.decode()
    assert Order.objects.count() == 0


def test_sold_out_shows_the_error(client, seller):
    product = ProductFactory(seller=seller)
    variant = VariantFactory(product=product, stock=0)
    response = client.post(f"/c/{product.slug}", {"buyer_email": "a@b.co", "quantity": 1, "variant_id": variant.id})
    assert response.status_code == 400
    assert "sold out" in response.content.decode()
    assert Order.objects.count() == 0


def test_unknown_product_page_is_404(client):
    assert client.get("/c/no-such-product").status_code == 404


def test_success_page_shows_the_delivery(client, text_product, django_capture_on_commit_callbacks):
    order = pay(make_order(text_product), django_capture_on_commit_callbacks)
    response = client.get(f"/c/{text_product.slug}/orders/{order.id}")
    assert response.status_code == 200
    html = response.content.decode()
    assert "The secret is OPEN-SESAME" in html
    assert "Your purchase is ready" in html


def test_success_page_before_payment_hides_the_delivery(client, text_product):
    order = make_order(text_product)
    html = client.get(f"/c/{text_product.slug}/orders/{order.id}").content.decode()
    assert "OPEN-SESAME" not in html
    assert "Confirming your payment" in html


def test_success_page_needs_the_capability_id(client, text_product):
    order = make_order(text_product)
    assert client.get(f"/c/{text_product.slug}/orders/{order.order_number}").status_code == 404
    assert client.get(f"/c/other-slug/orders/{order.id}").status_code == 404


# --- The checkout form: every field, errors next to their field, nothing created on error ---------


def field_error(html, name):
    """The text of a field's own error slot (next to the field), or None when it is hidden."""
    import re

    found = re.search(rf'<p class="field-error" id="id_{name}-error"[^>]*>([^<]*)</p>', html)
    assert found, f"no error slot for {name}"
    return None if " hidden>" in found.group(0) else found.group(1)


def _discount(seller, code="SAVE10", **data):
    from catalog.discounts import discount_save

    return discount_save(seller=seller, data={"code": code, "kind": "percent", "value": 10, **data})


def _post(client, product, **fields):
    data = {"buyer_email": "page@example.com", "quantity": 1, "variant_id": product.variants.first().id, **fields}
    return client.post(f"/c/{product.slug}", data)


def test_checkout_post_with_discount_and_recipient(client, seller, text_product):
    from catalog.models import Discount

    _discount(seller)
    response = _post(client, text_product, quantity=2, discount_code="save10", recipient_email="friend@example.com")
    assert response.status_code == 302
    order = Order.objects.get()
    assert (order.subtotal, order.discount_code, order.discount_amount, order.total_amount) == (
        3998,
        "SAVE10",
        400,
        3598,
    )
    assert (order.buyer_email, order.recipient_email) == ("page@example.com", "friend@example.com")
    assert Discount.objects.get().uses == 1


def test_invalid_discount_is_shown_next_to_its_field_and_creates_nothing(client, text_product):
    response = _post(client, text_product, discount_code="NOPE")
    assert response.status_code == 400
    html = response.content.decode()
    # The reason sits in the discount field's own error slot.
    assert field_error(html, "discount_code") == "This discount code is not valid."
    assert 'aria-invalid="true"' in html
    assert field_error(html, "buyer_email") is None
    assert Order.objects.count() == 0


def test_field_errors_are_next_to_their_fields(client, text_product):
    response = _post(client, text_product, buyer_email="nope", recipient_email="also-nope", quantity=0)
    assert response.status_code == 400
    html = response.content.decode()
    assert field_error(html, "buyer_email") == "Enter a valid email address."
    assert field_error(html, "recipient_email") == "Enter a valid email address."
    assert field_error(html, "quantity") == "Ensure this value is greater than or equal to 1."
    assert Order.objects.count() == 0


def test_sold_out_code_pool_is_marked_and_refused(client, seller):
    from catalog.models import DeliveryType

    product = ProductFactory(seller=seller, delivery_type=DeliveryType.CODE_POOL, delivery_content="")
    VariantFactory(product=product)
    html = client.get(f"/c/{product.slug}").content.decode()
    assert 'data-testid="sold-out"' in html
    assert 'id="pay"' not in html  # no form at all (checkout/tests/test_friction.py)
    response = _post(client, product)
    assert response.status_code == 400
    assert 'data-testid="sold-out"' in response.content.decode()
    assert Order.objects.count() == 0


def test_update_total_without_javascript_quotes_and_creates_nothing(client, seller, text_product):
    _discount(seller)
    response = _post(client, text_product, quantity=3, discount_code="SAVE10", action="quote")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="summary-subtotal">$59.97<' in html
    assert 'id="summary-discount">−$6.00<' in html
    assert 'id="summary-total" data-testid="total">$53.97<' in html
    assert Order.objects.count() == 0


def test_several_variants_are_radios_with_their_prices(client, seller):
    product = ProductFactory(seller=seller, currency="EUR")
    VariantFactory(product=product, name="Small", price=500, position=0)
    VariantFactory(product=product, name="Large", price=2500, position=1, stock=0)
    html = client.get(f"/c/{product.slug}").content.decode()
    assert html.count('type="radio" name="variant_id"') == 2
    assert "€5.00" in html and "€25.00" in html
    assert "Sold out" in html


def test_partner_product_asks_for_the_player_id_and_passes_it_on(client, seller):
    from catalog.models import DeliveryType

    product = ProductFactory(
        seller=seller,
        delivery_type=DeliveryType.PARTNER_API,
        delivery_content="",
        delivery_options={"partner": {"url": "https://partner.test/fulfill"}},
    )
    VariantFactory(product=product)
    assert 'name="player_id"' in client.get(f"/c/{product.slug}").content.decode()
    assert _post(client, product, player_id=" P-42 ").status_code == 302
    assert Order.objects.get().items.get().fulfillment_input == {"player_id": "P-42"}
    # Other products do not ask for it.
    assert 'name="player_id"' not in client.get("/c/" + ProductFactory(seller=seller).slug).content.decode()


def test_the_page_posts_without_javascript_with_a_server_made_idempotency_key(client, text_product):
    html = client.get(f"/c/{text_product.slug}").content.decode()
    assert 'name="idempotency_key" value="page-' in html
    assert "checkout.js" in html


def _poll_attributes(html: str) -> dict[str, str]:
    tag = re.search(r'<div id="order-body"[^>]*>', html)
    assert tag is not None, html[:500]
    return dict(re.findall(r'([\w-]+)="([^"]*)"', tag.group(0)))


def test_success_page_polls_its_own_partial(client, text_product):
    order = make_order(text_product)
    page = client.get(f"/c/{text_product.slug}/orders/{order.id}").content.decode()
    assert "htmx.min.js" in page
    poll = _poll_attributes(page)
    assert poll["data-status"] == "pending"
    assert poll["hx-trigger"] == "every 1s"  # a new order: delivery is seconds away
    assert poll["hx-swap"] == "outerHTML"
    assert poll["hx-get"].startswith("?partial=1&amp;since=")

    response = client.get(f"/c/{text_product.slug}/orders/{order.id}?partial=1")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="order-body"')
    assert "<html" not in html


def test_polling_answers_204_until_something_changes_then_the_new_fragment(
    client, text_product, django_capture_on_commit_callbacks
):
    order = make_order(text_product)
    url = f"/c/{text_product.slug}/orders/{order.id}"
    since = _poll_attributes(client.get(url).content.decode())["hx-get"].split("since=")[1]

    unchanged = client.get(url, {"partial": "1", "since": since})
    assert unchanged.status_code == 204
    assert unchanged.content == b""

    pay(order, django_capture_on_commit_callbacks)
    changed = client.get(url, {"partial": "1", "since": since})
    assert changed.status_code == 200
    fresh = _poll_attributes(changed.content.decode())
    assert fresh["data-status"] == "delivered"
    assert "hx-get" not in fresh and "hx-trigger" not in fresh  # finished: the page stops asking


def test_a_tab_left_open_on_a_stuck_order_polls_less_and_less(client, text_product):
    order = make_order(text_product)
    url = f"/c/{text_product.slug}/orders/{order.id}"
    triggers = []
    for minutes in (0, 5, 60):
        Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(minutes=minutes))
        triggers.append(_poll_attributes(client.get(url).content.decode())["hx-trigger"])
    assert triggers == ["every 1s", "every 5s", "every 30s"]


def test_success_page_shows_codes_with_copy_buttons_and_where_it_was_emailed(
    client, seller, django_capture_on_commit_callbacks
):
    from catalog.inventory import CodeRow, codes_import
    from catalog.models import DeliveryType

    product = ProductFactory(
        seller=seller,
        delivery_type=DeliveryType.CODE_POOL,
        delivery_content="",
        redemption_instructions="Redeem at example.test/redeem",
    )
    variant = VariantFactory(product=product)
    codes_import(variant=variant, rows=[CodeRow(1, "GIFT-AAAA-1111", pin="1234"), CodeRow(2, "GIFT-BBBB-2222")])
    order = pay(
        make_order(product, quantity=2, recipient_email="friend@example.com"), django_capture_on_commit_callbacks
    )
    html = client.get(f"/c/{product.slug}/orders/{order.id}").content.decode()
    assert "GIFT-AAAA-1111" in html and "GIFT-BBBB-2222" in html
    assert 'data-copy="GIFT-AAAA-1111"' in html
    assert ">1234</code>" in html
    assert "Redeem at example.test/redeem" in html
    assert "We also emailed this to <strong>friend@example.com</strong>" in html


def test_needs_attention_is_explained_calmly(client, text_product):
    order = make_order(text_product)
    Order.objects.filter(pk=order.pk).update(status="needs_attention", paid_at=order.created_at)
    html = client.get(f"/c/{text_product.slug}/orders/{order.id}").content.decode()
    assert 'data-testid="needs-attention"' in html
    assert "There is nothing you need to do" in html


def test_failed_payment_offers_try_again(client, text_product):
    order = make_order(text_product)
    Order.objects.filter(pk=order.pk).update(status="failed")
    html = client.get(f"/c/{text_product.slug}/orders/{order.id}").content.decode()
    # A form back to the checkout with the buyer's details (held in checkout/tests/test_friction.py).
    assert f'<form method="post" action="/c/{text_product.slug}" data-testid="try-again-form">' in html
    assert '<button type="submit" data-testid="try-again">Try again</button>' in html


def test_pages_have_lang_main_and_one_h1(client, text_product):
    for path in (f"/c/{text_product.slug}", "/library"):
        html = client.get(path).content.decode()
        assert '<html lang="en">' in html
        assert html.count("<main") == 1
        assert html.count("<h1") == 1
