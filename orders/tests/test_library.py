"""The buyer's library (one-time email links), downloads (expiry, limit, refunds) and buyer emails."""

import re

import pytest
from django.core import mail, signing
from django.core.files.base import ContentFile
from django.core.files.storage import storages

from catalog.inventory import CodeRow, codes_import
from catalog.models import DeliveryType, Upload
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.core.ratelimit import PageRateThrottle
from orders.library import LINK_SALT
from orders.models import OrderItem

from .helpers import buyer_mails, make_order, pay

RATE_PER_EMAIL = PageRateThrottle("library_email").num_requests

pytestmark = pytest.mark.django_db

LINK = re.compile(r"http://[^\s\"<]+/library/signin/[^\s\"<]+")


@pytest.fixture
def private_storage(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "private": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }
    return storages["private"]


@pytest.fixture
def file_product(seller, private_storage):
    key = private_storage.save("uploads/test/guide.pdf", ContentFile(b"%PDF-1.4 the guide"))
    Upload.objects.create(seller=seller, key=key, filename="guide.pdf", size=18, content_type="application/pdf")
    product = ProductFactory(
        seller=seller, slug="the-guide", title="The Guide", delivery_type=DeliveryType.FILE, delivery_content=key
    )
    VariantFactory(product=product, price=900)
    return product


@pytest.fixture
def code_product(seller):
    product = ProductFactory(
        seller=seller, slug="gift-cards", title="Gift card", delivery_type=DeliveryType.CODE_POOL, delivery_content=""
    )
    variant = VariantFactory(product=product, price=2500)
    codes_import(variant=variant, rows=[CodeRow(i, f"CODE-{i:04d}-SECRET") for i in range(1, 5)])
    return product


def ask_link(client, email, **extra):
    mail.outbox.clear()
    return client.post("/library", {"email": email}, **extra)


def signin_link(client, email):
    response = ask_link(client, email)
    assert response.status_code == 200
    assert len(mail.outbox) == 1
    return LINK.search(mail.outbox[0].body).group(0)


def path_of(url, settings):
    return url[len(settings.SITE_URL) :] if url.startswith(settings.SITE_URL) else url


# --- Asking for a link -----------------------------------------------------------------------------


def test_request_sends_one_email_with_a_link(client, text_product, settings, django_capture_on_commit_callbacks):
    pay(make_order(text_product, email="ann@example.com"), django_capture_on_commit_callbacks)
    mail.outbox.clear()
    response = client.post("/library", {"email": "Ann@Example.com "})
    assert response.status_code == 200
    assert "If there are purchases for" in response.content.decode()
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ann@example.com"]
    [link] = LINK.findall(message.body)
    assert link.startswith(settings.SITE_URL + "/library/signin/")
    html, mime = message.alternatives[0]
    assert mime == "text/html" and link in html


def test_request_never_reveals_whether_the_email_has_orders(client, text_product):
    make_order(text_product, email="ann@example.com")
    with_orders = ask_link(client, "ann@example.com")
    without = ask_link(client, "nobody@example.com")
    assert without.status_code == with_orders.status_code == 200
    assert len(mail.outbox) == 0  # nothing is sent where there is nothing to show
    strip = lambda r, e: r.content.decode().replace(e, "EMAIL")  # noqa: E731
    csrf = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')
    assert csrf.sub("", strip(with_orders, "ann@example.com")) == csrf.sub("", strip(without, "nobody@example.com"))


def test_requests_are_rate_limited_per_email_and_per_ip(client, text_product):
    make_order(text_product, email="ann@example.com")
    for _ in range(RATE_PER_EMAIL):
        assert ask_link(client, "ann@example.com").status_code == 200
    assert len(mail.outbox) == 1
    mail.outbox.clear()
    refused = client.post("/library", {"email": "ann@example.com"})
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert mail.outbox == []
    # Another address from the same IP still works until the IP's own limit.
    assert ask_link(client, "other@example.com").status_code == 200
    for n in range(30):
        last = client.post("/library", {"email": f"x{n}@example.com"})
    assert last.status_code == 429
    # Another IP is unaffected.
    assert client.post("/library", {"email": "y@example.com"}, REMOTE_ADDR="10.0.0.9").status_code == 200


def test_invalid_email_shows_the_error_next_to_the_field(client):
    response = client.post("/library", {"email": "nope"})
    assert response.status_code == 400
    assert 'data-testid="email-error" aria-live="polite">Enter a valid email address.' in response.content.decode()
    assert mail.outbox == []


# --- Using the link --------------------------------------------------------------------------------


def test_link_works_once(client, text_product, settings, django_capture_on_commit_callbacks):
    pay(make_order(text_product, email="ann@example.com"), django_capture_on_commit_callbacks)
    ask_link(client, "ann@example.com")
    path = path_of(LINK.search(mail.outbox[0].body).group(0), settings)
    # Opening the link (as a mail scanner would) only asks to confirm; it does not use it up.
    assert client.get(path).status_code == 200
    assert client.get(path).status_code == 200
    response = client.post(path)
    assert response.status_code == 302 and response["Location"] == "/library"
    html = client.get("/library").content.decode()
    assert "The secret is OPEN-SESAME" in html
    # Used: refused, on another browser too.
    other = type(client)()
    assert other.post(path).status_code == 400
    assert "already used" in other.get(path).content.decode()
    assert "OPEN-SESAME" not in other.get("/library").content.decode()


def test_expired_and_forged_links_are_refused(client, text_product, settings, monkeypatch):
    make_order(text_product, email="ann@example.com")
    ask_link(client, "ann@example.com")
    path = path_of(LINK.search(mail.outbox[0].body).group(0), settings)
    monkeypatch.setattr("orders.library.LINK_TTL_SECONDS", -1)
    expired = client.post(path)
    assert expired.status_code == 400 and "expired" in expired.content.decode()
    monkeypatch.setattr("orders.library.LINK_TTL_SECONDS", 900)
    forged = signing.dumps({"e": "ann@example.com", "n": "x"}, salt="another salt")
    assert client.post(f"/library/signin/{forged}").status_code == 400
    tampered = path[:-3] + ("aaa" if not path.endswith("aaa") else "bbb")
    assert client.post(tampered).status_code == 400
    assert client.session.get("library_email") is None
    # A correctly signed token with our salt is accepted — the salt is what makes a link ours.
    good = signing.dumps({"e": "ann@example.com", "n": "fresh"}, salt=LINK_SALT)
    assert client.post(f"/library/signin/{good}").status_code == 302


def test_library_lists_only_that_emails_orders_newest_first(
    client, text_product, code_product, settings, django_capture_on_commit_callbacks
):
    mine_old = pay(make_order(code_product, email="ann@example.com"), django_capture_on_commit_callbacks)
    gift = pay(
        make_order(code_product, email="bob@example.com", recipient_email="ann@example.com"),
        django_capture_on_commit_callbacks,
    )
    theirs = pay(make_order(code_product, email="eve@example.com"), django_capture_on_commit_callbacks)
    mine_new = make_order(text_product, email="ANN@example.com")  # pending
    ann_codes = [c for o in (mine_old, gift) for c in o.items.get().codes.values_list("code", flat=True)]
    [eve_code] = theirs.items.get().codes.values_list("code", flat=True)

    signin = path_of(signin_link(client, "ann@example.com"), settings)
    client.post(signin)
    html = client.get("/library").content.decode()
    order_ids = re.findall(r'data-order="(ord_\w+)"', html)
    assert order_ids == [mine_new.id, gift.id, mine_old.id]
    for code in ann_codes:
        assert code in html
    assert eve_code not in html
    assert theirs.id not in html
    assert "a gift for you" in html


def test_library_without_sign_in_shows_only_the_form(client, code_product, django_capture_on_commit_callbacks):
    order = pay(make_order(code_product, email="ann@example.com"), django_capture_on_commit_callbacks)
    html = client.get("/library").content.decode()
    assert "Email me a sign-in link" in html
    assert order.items.get().codes.get().code not in html


def test_sign_out(client, text_product, settings):
    make_order(text_product, email="ann@example.com")
    client.post(path_of(signin_link(client, "ann@example.com"), settings))
    assert "Sign out" in client.get("/library").content.decode()
    client.post("/library/signout")
    assert "Email me a sign-in link" in client.get("/library").content.decode()


def test_library_is_a_constant_number_of_queries(
    client, code_product, settings, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    for _ in range(3):
        pay(make_order(code_product, email="ann@example.com"), django_capture_on_commit_callbacks)
    client.post(path_of(signin_link(client, "ann@example.com"), settings))
    with django_assert_max_num_queries(15):
        assert client.get("/library").status_code == 200


# --- Downloads -------------------------------------------------------------------------------------


def test_library_download_gives_a_fresh_signed_link(client, file_product, settings, django_capture_on_commit_callbacks):
    order = pay(make_order(file_product, email="ann@example.com"), django_capture_on_commit_callbacks)
    item = order.items.get()
    client.post(path_of(signin_link(client, "ann@example.com"), settings))
    response = client.get(f"/library/items/{item.id}/download")
    assert response.status_code == 302
    download = client.get(path_of(response["Location"], settings))
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == b"%PDF-1.4 the guide"
    item.refresh_from_db()
    assert item.download_count == 1


def test_library_download_of_someone_elses_item_is_not_found(
    client, file_product, settings, django_capture_on_commit_callbacks
):
    theirs = pay(make_order(file_product, email="eve@example.com"), django_capture_on_commit_callbacks)
    make_order(file_product, email="ann@example.com")
    client.post(path_of(signin_link(client, "ann@example.com"), settings))
    assert client.get(f"/library/items/{theirs.items.get().id}/download").status_code == 404
    assert OrderItem.objects.get(pk=theirs.items.get().id).download_count == 0


def test_download_limit_then_410(client, api_client, file_product, settings, django_capture_on_commit_callbacks):
    file_product.download_limit = 2
    file_product.save()
    order = pay(make_order(file_product, email="ann@example.com"), django_capture_on_commit_callbacks)
    item = order.items.get()
    url = f"/api/v1/orders/{order.id}/resource?item={item.id}"
    assert api_client.get(url).status_code == 302
    assert api_client.get(url).status_code == 302
    refused = api_client.get(url)
    assert refused.status_code == 410
    assert refused.json()["error"]["code"] == "download_limit_reached"
    item.refresh_from_db()
    assert item.download_count == 2
    # The library says so, kindly, and does not count further.
    client.post(path_of(signin_link(client, "ann@example.com"), settings))
    assert 'data-testid="limit-reached"' in client.get("/library").content.decode()
    page = client.get(f"/library/items/{item.id}/download")
    assert page.status_code == 410
    assert "Download limit reached" in page.content.decode()
    item.refresh_from_db()
    assert item.download_count == 2


def test_download_link_refused_after_a_full_refund(client, file_product, settings, django_capture_on_commit_callbacks):
    from orders.services.refunds import order_refund_create

    order = pay(make_order(file_product, email="ann@example.com"), django_capture_on_commit_callbacks)
    item = order.items.get()
    location = client.get(f"/api/v1/orders/{order.id}/resource?item={item.id}")["Location"]
    link = path_of(location, settings)
    assert client.get(link).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        order_refund_create(order=order, amount=None, reason="Asked for it")
    order.refresh_from_db()
    assert order.status == "refunded"
    refused = client.get(link)
    assert refused.status_code == 410
    assert "refunded" in refused.content.decode()
    assert client.get(f"/api/v1/orders/{order.id}/resource?item={item.id}").status_code == 410


def test_download_links_last_a_day_by_default():
    from django.conf import settings as django_settings

    assert django_settings.DOWNLOAD_LINK_TTL_SECONDS == 24 * 60 * 60


def test_a_token_without_an_item_is_refused(client, file_product):
    token = signing.dumps({"k": file_product.delivery_content, "f": "guide.pdf"}, salt="orders.download", compress=True)
    assert client.get(f"/downloads/{token}").status_code == 404


# --- Emails ----------------------------------------------------------------------------------------


def test_delivery_email_links_to_the_library(text_product, django_capture_on_commit_callbacks, settings):
    pay(make_order(text_product, email="ann@example.com"), django_capture_on_commit_callbacks)
    [message] = buyer_mails()
    assert f"{settings.SITE_URL}/library" in message.body
    assert f"{settings.SITE_URL}/library" in message.alternatives[0][0]


@pytest.mark.parametrize("amount", [None, 500])
def test_refund_email(code_product, amount, django_capture_on_commit_callbacks):
    from orders.emails import send_refund_email
    from orders.services.refunds import order_refund_create

    order = pay(make_order(code_product, email="ann@example.com"), django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        refund = order_refund_create(order=order, amount=amount, reason="Changed my mind")
    mail.outbox.clear()
    send_refund_email(order, refund)
    [message] = mail.outbox
    assert message.to == ["ann@example.com"]
    assert f"#{order.order_number}" in message.subject
    shown = "$25.00" if amount is None else "$5.00"
    assert shown in message.body and shown in message.alternatives[0][0]
    assert "Changed my mind" in message.body
    if amount is None:
        assert "no longer work" in message.body
    else:
        assert "stays available" in message.body
