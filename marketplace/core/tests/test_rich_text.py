"""Links in text deliveries are clickable, and nothing else from the seller's text becomes markup."""

from marketplace.core.templatetags.rich_text import linkify_text


def test_addresses_become_links_with_a_safe_rel():
    out = linkify_text("Join at https://discord.gg/abc123. Then read https://example.com/guide?x=1&y=2")
    link = '<a href="https://discord.gg/abc123" rel="nofollow noopener noreferrer">https://discord.gg/abc123</a>'
    assert link + ". Then" in out  # the full stop is not part of the address
    assert 'href="https://example.com/guide?x=1&amp;y=2"' in out


def test_markup_in_the_text_stays_text():
    out = linkify_text('<script>alert(1)</script> <a href="javascript:alert(2)">x</a> <img src=x onerror=alert(3)>')
    assert "<script" not in out and "<img" not in out and "<a " not in out  # all of it shown as text
    assert "&lt;script&gt;" in out


def test_an_address_cannot_break_out_of_its_attribute():
    out = linkify_text('https://example.com/"onmouseover="alert(1)')
    assert out.startswith('<a href="https://example.com/" rel="nofollow noopener noreferrer">https://example.com/</a>')
    assert out.count("<a ") == 1


def test_other_schemes_are_not_linked():
    out = linkify_text("javascript:alert(1) ftp://example.com data:text/html,x")
    assert "<a" not in out


def test_newlines_and_plain_text_are_kept():
    assert linkify_text("Line one\nLine two") == "Line one\nLine two"
    assert linkify_text("") == ""


def test_the_success_page_and_the_email_show_clickable_safe_links(db, django_capture_on_commit_callbacks, client):
    from catalog.tests.factories import ProductFactory, VariantFactory
    from marketplace.accounts.tests.factories import SellerFactory
    from orders.tests.helpers import buyer_mails, make_order, pay

    product = ProductFactory(
        seller=SellerFactory(), slug="club", delivery_content="Join https://discord.gg/abc <b>now</b>"
    )
    VariantFactory(product=product, price=500)
    order = pay(make_order(product), django_capture_on_commit_callbacks)
    link = '<a href="https://discord.gg/abc" rel="nofollow noopener noreferrer">https://discord.gg/abc</a>'
    page = client.get(f"/c/club/orders/{order.id}").content.decode()
    assert link in page and "&lt;b&gt;now&lt;/b&gt;" in page and "<b>now</b>" not in page
    html = buyer_mails()[0].alternatives[0][0]
    assert link in html and "<b>now</b>" not in html
