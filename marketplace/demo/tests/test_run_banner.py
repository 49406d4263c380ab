"""Issue 14: what ``make run`` (``run_embedded``) prints opens a page: no 404 among its addresses, the
dashboard is named, every demo product's checkout is listed (all 6), and it says where emails go."""

import re
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from marketplace.demo.management.commands.run_embedded import banner_lines
from marketplace.demo.management.commands.seed_demo import DEMO_PRODUCTS

pytestmark = pytest.mark.django_db
SITE = "http://127.0.0.1:8123"


@pytest.fixture(autouse=True)
def seeded(settings: Any, tmp_path: Path) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "private": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }
    settings.SITE_URL = SITE
    call_command("seed_demo", stdout=StringIO())


def test_every_address_printed_opens_a_page(client: Any) -> None:
    lines = banner_lines(SITE)
    urls = sorted(set(re.findall(rf"{re.escape(SITE)}/[^\s,)]*", "\n".join(lines))))
    assert f"{SITE}/dashboard/" in urls
    for url in urls:
        status = client.get(url[len(SITE) :]).status_code
        assert status in (200, 302), f"{url} answers {status}"
    assert "404" not in "\n".join(lines)
    # The first line names a page that opens (the front page once there is one, else the dashboard).
    first = re.search(rf"{re.escape(SITE)}/\S*", lines[0]).group(0)
    assert client.get(first[len(SITE) :]).status_code in (200, 302)


def test_all_six_demo_checkouts_are_printed() -> None:
    text = "\n".join(banner_lines(SITE))
    assert len(DEMO_PRODUCTS) == 6
    for demo in DEMO_PRODUCTS:
        assert f"{SITE}/c/{demo.slug}" in text


def test_it_says_where_emails_go(settings: Any, tmp_path: Path) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")
    assert f"  Emails:    written as files to {tmp_path / 'mail'}/" in banner_lines(SITE)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "smtp.example.com", 587
    assert "  Emails:    sent through SMTP at smtp.example.com:587" in banner_lines(SITE)


def test_the_embedded_default_writes_emails_to_var_mail() -> None:
    """The README's word ("every email is written as a file to var/mail/") against the settings."""
    from marketplace.settings import base, local

    assert local.EMAIL_BACKEND == "django.core.mail.backends.filebased.EmailBackend"
    assert Path(base.EMAIL_FILE_PATH) == Path(base.VAR_DIR) / "mail"
    readme = (Path(base.BASE_DIR) / "README.md").read_text()
    assert "var/mail/" in readme
