"""The dashboard's nav marks the current page, links the customers page and the API docs; every page
has a favicon."""

import pytest

from marketplace.accounts.tests.factories import SellerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(client):
    client.force_login(SellerFactory())
    return client


@pytest.mark.parametrize(
    "path,section",
    [
        ("/dashboard/", "orders"),
        ("/dashboard/products/", "products"),
        ("/dashboard/customers/", "customers"),
        ("/dashboard/analytics/", "analytics"),
        ("/dashboard/balance/", "balance"),
        ("/dashboard/settings/", "settings"),
        ("/dashboard/settings/webhooks/", "settings"),
    ],
)
def test_the_nav_marks_the_current_page_only(browser, path, section):
    html = browser.get(path).content.decode()
    nav = html.split('<nav class="top">', 1)[1].split("</nav>", 1)[0]
    assert nav.count('aria-current="page"') == 1
    assert f'data-testid="nav-{section}" aria-current="page"' in nav


def test_the_nav_links_the_api_docs_and_the_page_has_a_favicon(browser):
    html = browser.get("/dashboard/").content.decode()
    assert '<a href="/api/docs/" data-testid="nav-api-docs">API docs</a>' in html
    assert 'rel="icon"' in html and "favicon.svg" in html


def test_the_favicon_is_served(client, settings):
    from django.contrib.staticfiles import finders

    assert finders.find("favicon.svg")
