"""Playwright with Debian's chromium against pytest-django's live server.

Playwright cannot download browsers here, so the tests drive the system chromium. Without one they
are skipped with the reason, unless H2H_REQUIRE_BROWSER=1 (as in CI), which turns that into a failure.
"""

import os
import shutil
from pathlib import Path

import pytest

# Debian's standard location, used only when chromium is not on the PATH.
DEBIAN_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1366, "height": 768}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def chromium_executable() -> str | None:
    found = shutil.which("chromium")
    if found:
        return found
    return DEBIAN_CHROMIUM if os.access(DEBIAN_CHROMIUM, os.X_OK) else None


def _unavailable(reason: str) -> None:
    if os.environ.get("H2H_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (H2H_REQUIRE_BROWSER=1 requires the browser tests to run)", pytrace=False)
    pytest.skip(f"browser tests skipped: {reason}")


@pytest.fixture
def browser(transactional_db):
    """A chromium for one test, started after the test database is set up and closed before it is flushed.

    Playwright's sync API runs an event loop in this thread, and Django keeps database connections
    per thread *and* per async context: while it runs, the ORM calls of the test use connections of
    their own. Starting it inside the test (not once per session) keeps pytest-django's setup and
    flush on the test's connection; those extra connections are closed before it stops. Django's
    async-safety check is relaxed only meanwhile, so nothing else in the run inherits that.
    """
    executable = chromium_executable()
    if executable is None:
        _unavailable("no chromium found (install Debian's chromium: apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    from django.db import connections

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            try:
                yield launched
            finally:
                launched.close()
                connections.close_all()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def new_page(browser, live_server):
    """Open pages in fresh browser contexts (separate cookies) at 1366x768."""
    contexts = []

    def open_page():
        context = browser.new_context(viewport=VIEWPORT, base_url=live_server.url, locale="en-GB",
                                      timezone_id="Europe/Berlin")
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def screenshot():
    """Save the page to docs/screenshots/<name>.png (the README shows them)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> None:
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)

    return take
