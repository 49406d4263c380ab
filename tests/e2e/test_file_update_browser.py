"""Issue 14: a new file uploaded to a product reaches an earlier buyer. In Chromium, the buyer
downloads v1 from their library; the seller uploads v2 and puts it on the product (the API, as the
dashboard's product form does); the same library button now downloads v2."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from catalog.models import DeliveryType, Upload
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory
from orders.tests.helpers import make_order, pay
from tests.e2e.browser import open_page

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_an_earlier_buyer_downloads_the_new_file_from_the_library(
    chromium_path: str,
    live_server: Any,
    settings: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "private": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }
    storage = storages["private"]
    seller = SellerFactory(name="Ada's Shop")
    v1 = storage.save("uploads/e2e/guide.pdf", ContentFile(b"%PDF-1.4 first edition"))
    Upload.objects.create(seller=seller, key=v1, filename="guide.pdf", size=22, content_type="application/pdf")
    product = ProductFactory(
        seller=seller, slug="e2e-guide", title="The Guide", delivery_type=DeliveryType.FILE, delivery_content=v1
    )
    VariantFactory(product=product, price=900)
    pay(make_order(product, email="early.buyer@example.com"), django_capture_on_commit_callbacks)
    settings.SITE_URL = live_server.url

    with open_page(chromium_path, monkeypatch=monkeypatch, accept_downloads=True) as page:
        mail.outbox.clear()
        page.goto(f"{live_server.url}/library")
        page.fill("input[name=email]", "early.buyer@example.com")
        page.click("button[type=submit]")
        page.wait_for_load_state("load")
        link = re.search(r"http://[^\s\"<]+/library/signin/[^\s\"<]+", mail.outbox[0].body).group(0)
        page.goto(link)
        if "/library/signin/" in page.url:
            page.click("form button[type=submit]")
        page.wait_for_url(f"{live_server.url}/library")

        with page.expect_download() as first:
            page.get_by_test_id("library-download").click()
        assert Path(first.value.path()).read_bytes() == b"%PDF-1.4 first edition"

        v2 = storage.save("uploads/e2e/guide-2.pdf", ContentFile(b"%PDF-1.4 second edition"))
        Upload.objects.create(seller=seller, key=v2, filename="guide-2.pdf", size=23, content_type="application/pdf")
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(seller).access_token}")
        assert (
            api.patch(f"/api/v1/products/{product.id}", {"delivery": {"content": v2}}, format="json").status_code == 200
        )

        page.reload()
        button = page.get_by_test_id("library-download")
        assert "guide-2.pdf" in button.inner_text()
        with page.expect_download() as second:
            button.click()
        assert Path(second.value.path()).read_bytes() == b"%PDF-1.4 second edition"
