"""The Playwright set-up the browser tests share: Debian's Chromium, one page per test.

``chromium_path`` (a fixture in ``conftest.py``) finds the executable (``CHROMIUM_PATH``, default
``/usr/bin/chromium``) before anything else is started; without it, or without the playwright
package, the test is skipped with the reason, unless ``REQUIRE_BROWSER=1`` (CI), which turns a
missing browser into a failure. :func:`open_page` starts Chromium and gives one fresh page.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import pytest
from django.db import connections

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DEFAULT_TIMEOUT_MS = 30_000


def browser_unavailable(reason: str) -> NoReturn:
    """Skips the test with ``reason``; fails it instead when ``REQUIRE_BROWSER=1``."""
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


def find_chromium() -> str:
    """Chromium's executable, once it and the playwright package are known to be there."""
    executable = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if not Path(executable).exists():
        browser_unavailable(f"Chromium not found at {executable} (apt-get install chromium, or set CHROMIUM_PATH)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        browser_unavailable("the playwright package is not installed")
    return executable


@contextmanager
def open_browser(executable: str, *, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Chromium, started through Playwright; closed afterwards with every database connection of
    this thread. One per test: Playwright's sync API cannot run twice in one thread, so a test with
    two people in it opens two contexts (:func:`new_page`) in this one browser.

    Playwright's sync API runs an event loop in this thread: the ORM calls a test makes between
    browser steps are ordinary blocking calls, which Django would otherwise refuse; and they get a
    database connection of their own (Django's connections are context-local), which is closed here
    so that it does not keep the PostgreSQL test database open.
    """
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
            connections.close_all()


@contextmanager
def new_page(browser: Any, **context_kwargs: Any) -> Iterator[Any]:
    """A fresh page in a new context of ``browser`` made with ``context_kwargs`` (viewport, ...), with
    a default timeout of 30 s; the context is closed afterwards."""
    context = browser.new_context(**context_kwargs)
    try:
        page = context.new_page()
        page.set_default_timeout(DEFAULT_TIMEOUT_MS)
        yield page
    finally:
        context.close()


@contextmanager
def open_page(executable: str, *, monkeypatch: pytest.MonkeyPatch, **context_kwargs: Any) -> Iterator[Any]:
    """A fresh Chromium page in a new context made with ``context_kwargs`` in a browser of its own
    (see :func:`open_browser`)."""
    with open_browser(executable, monkeypatch=monkeypatch) as browser, new_page(browser, **context_kwargs) as page:
        yield page
