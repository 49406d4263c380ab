"""Issue 10, item 19: a Content-Security-Policy that allows only the site's own assets, and API docs
served without the internet.

Every response (pages, the API, the admin) carries the policy; it runs no inline script (every
template's behaviour is a static file), loads nothing from another host, and ``/api/redoc/`` and
``/api/docs/`` take Redoc and Swagger UI from drf-spectacular-sidecar, with no web fonts and no
validator badge from elsewhere. Real Chromium then shows the pages with no policy violation.
"""

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings
from django.template import engines
from django.test import Client

from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory

CSP = "Content-Security-Policy"


def directives(header: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            parsed[words[0]] = words[1:]
    return parsed


class Sources(HTMLParser):
    """Every URL a page loads (script, stylesheet, icon, image, frame, object) and its inline scripts
    and event-handler attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self.handlers: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        self.handlers += [f"<{tag} {name}=...>" for name in values if name.startswith("on")]
        if tag == "script":
            if values.get("src"):
                self.urls.append(values["src"])
            else:
                self.inline_scripts += 1
        elif tag == "link":
            self.urls.append(values.get("href", ""))
        elif tag in ("img", "iframe", "embed", "source", "audio", "video"):
            self.urls.append(values.get("src", ""))
        elif tag == "object":
            self.urls.append(values.get("data", ""))


def page_sources(html: str) -> Sources:
    parser = Sources()
    parser.feed(html)
    return parser


def assert_own_assets_only(html: str, *, host: str = "testserver") -> None:
    found = page_sources(html)
    foreign = [url for url in found.urls if re.match(r"(?i)^(https?:)?//", url) and urlsplit(url).hostname != host]
    assert foreign == [], foreign
    assert found.inline_scripts == 0
    assert found.handlers == []


def assert_policy(response: Any) -> None:
    header = response.get(CSP)
    assert header, f"no {CSP} on {response.wsgi_request.path}"
    policy = directives(header)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]  # no 'unsafe-inline', no 'unsafe-eval', no other host
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    for name, sources in policy.items():
        assert not [s for s in sources if re.match(r"(?i)^(https?:)?//|^\*$|^https?:$", s)], (name, sources)


@pytest.fixture
def product(db: Any) -> Any:
    product = ProductFactory(
        seller=SellerFactory(name="Policy Shop"),
        slug="policy-text",
        title="Policy text",
        currency="USD",
        delivery_content="The secret is CSP-0001",
    )
    VariantFactory(product=product, name="Standard", price=1999)
    return product


@pytest.mark.django_db
def test_pages_api_and_admin_carry_the_policy(client: Client, product: Any) -> None:
    responses = {
        "checkout page": client.get(f"/c/{product.slug}"),
        "sign-in page": client.get("/accounts/login/"),
        "front page": client.get("/"),
        "API": client.get(f"/api/v1/public/checkout/{product.slug}"),
        "API error": client.get("/api/v1/public/checkout/nope"),
        "API schema": client.get("/api/schema/"),
        "admin": client.get("/admin/login/"),
        "health": client.get("/healthz"),
    }
    for name, response in responses.items():
        assert response.status_code in (200, 404), (name, response.status_code)
        assert_policy(response)


@pytest.mark.parametrize("path", ["/api/redoc/", "/api/docs/"])
@pytest.mark.django_db
def test_api_docs_load_nothing_from_another_host(client: Client, path: str) -> None:
    response = client.get(path)
    html = response.content.decode()

    assert response.status_code == 200
    assert_policy(response)
    assert_own_assets_only(html)
    assert "fonts.googleapis.com" not in html and "fonts.gstatic.com" not in html
    scripts = [url for url in page_sources(html).urls if url.endswith(".js") or "script" in url]
    assert scripts
    assert all(url.startswith(("/static/drf_spectacular_sidecar/", "/api/")) for url in scripts), scripts


@pytest.mark.django_db
def test_swagger_ui_starts_from_a_script_file_without_the_online_validator(client: Client) -> None:
    script = client.get("/api/docs/?script=")

    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert '"validatorUrl": null' in script.content.decode()


@pytest.mark.django_db
def test_the_redoc_bundle_fetches_no_logo_from_another_host(client: Client) -> None:
    response = client.get("/api/redoc/redoc.standalone.js")
    source = b"".join(response.streaming_content) if response.streaming else response.content  # type: ignore[attr-defined]

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert b"Redoc" in source
    assert b"cdn.redoc.ly" not in source


def template_files() -> Iterator[Path]:
    """Every template the site renders: the project's and each app's own."""
    for engine in engines.all():
        for folder in engine.template_dirs:  # type: ignore[attr-defined]
            root = Path(folder)
            if root.is_relative_to(django_settings.BASE_DIR) and ".venv" not in root.parts:
                yield from sorted(root.rglob("*.html"))


def test_no_template_has_an_inline_script_or_event_handler() -> None:
    """The policy runs neither; a template that relied on one would simply stop working."""
    checked = 0
    offenders = []
    for path in template_files():
        if "emails" in path.parts:  # mail clients, not browsers on this site
            continue
        found = page_sources(re.sub(r"{%.*?%}|{{.*?}}", "x", path.read_text(), flags=re.S))
        if found.inline_scripts or found.handlers or "javascript:" in path.read_text():
            offenders.append((str(path), found.inline_scripts, found.handlers))
        checked += 1
    assert checked > 40
    assert offenders == []


# --- real Chromium -------------------------------------------------------------------------------

WATCH_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(event.violatedDirective + " " + (event.blockedURI || "inline"));
});
"""


@pytest.mark.browser
@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_pages_show_in_chromium_without_a_policy_violation(
    live_server: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.test import Client as DjangoClient
    from playwright.sync_api import expect

    from orders.models import Order
    from tests.e2e.browser import find_chromium, new_page, open_browser

    executable = find_chromium()
    settings.SITE_URL = live_server.url
    seller = SellerFactory(name="Policy Shop", email="policy@seller.test")
    product = ProductFactory(seller=seller, slug="policy-chromium", title="Policy text", currency="USD")
    VariantFactory(product=product, name="Standard", price=1999)
    host = urlsplit(live_server.url).hostname
    signed_in = DjangoClient()
    signed_in.force_login(seller)
    session = signed_in.cookies[django_settings.SESSION_COOKIE_NAME].value

    with open_browser(executable, monkeypatch=monkeypatch) as browser, new_page(browser) as page:
        console: list[str] = []
        foreign: list[str] = []
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
        page.on("request", lambda request: foreign.append(request.url) if _foreign(request.url, host) else None)
        page.context.add_init_script(WATCH_VIOLATIONS)
        page.context.add_cookies(
            [{"name": django_settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}]
        )

        def visit(path: str) -> None:
            page.goto(f"{live_server.url}{path}", wait_until="networkidle")
            assert page.evaluate("window.__cspViolations") == [], path

        # The checkout page (its script validates and posts the form), then the sandbox's page.
        visit(f"/c/{product.slug}")
        page.fill("#id_buyer_email", "policy.buyer@example.com")
        page.click("#pay")
        page.wait_for_url(re.compile(re.escape(f"{live_server.url}/sandbox/pay/")))
        assert page.evaluate("window.__cspViolations") == []
        order = Order.objects.get(buyer_email="policy.buyer@example.com")

        # The success page polls with htmx.
        visit(f"/c/{product.slug}/orders/{order.id}")
        # The dashboard's order page asks before a destructive change, from its static script.
        visit(f"/dashboard/orders/{order.order_number}")
        asked: list[str] = []

        def dismiss(dialog: Any) -> None:
            asked.append(dialog.message)
            dialog.dismiss()

        page.once("dialog", dismiss)
        page.select_option("#status-select", "cancelled")
        page.click("#change-status")
        expect(page.locator("#status-form")).to_be_visible()
        assert asked == [
            f"Change the status of order #{order.order_number} from {order.get_status_display()} to Cancelled? "
            "Its reserved codes are released."
        ]
        assert Order.objects.get(pk=order.pk).status == "pending"  # dismissed: nothing sent

        # The API docs render from the sidecar.
        visit("/api/redoc/")
        expect(page.locator(".api-content")).to_be_visible()
        visit("/api/docs/")
        expect(page.locator(".swagger-ui .info")).to_be_visible()
        visit("/admin/login/")
        refused = [line for line in console if "Content Security Policy" in line or "Refused to" in line]
        loaded_elsewhere = list(foreign)

        # The watch works, and the policy holds: an image from another host is refused.
        page.evaluate("document.body.appendChild(Object.assign(new Image(), {src: 'https://elsewhere.invalid/x.png'}))")
        page.wait_for_function("window.__cspViolations.length > 0")
        assert page.evaluate("window.__cspViolations") == ["img-src https://elsewhere.invalid/x.png"]

    assert refused == []
    assert loaded_elsewhere == []


def _foreign(url: str, host: str | None) -> bool:
    return url.startswith(("http://", "https://")) and urlsplit(url).hostname != host
