"""The chat page's steps for the browser tests: a page per person, signing in, joining a room.

The browser is the ``browser`` fixture of ``tests/server/browser/conftest.py``.
"""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

GRACE = 1.0
FAST_PRESENCE = (
    "--presence-ttl",
    "6",
    "--presence-heartbeat",
    "2",
    "--presence-sweep",
    "0.5",
    "--presence-grace",
    str(GRACE),
)
TIMEOUT = 15_000  # milliseconds for anything the page should show


def open_page(browser: Browser, url: str) -> Page:
    """The page in a browser context of its own (its own storage, as another person's)."""
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    page.goto(url)
    return page


def sign_in(browser: Browser, url: str, name: str, page: Page | None = None) -> Page:
    """Sign in as ``name`` (on a new page unless one is given) and wait to be connected."""
    page = page or open_page(browser, url)
    page.get_by_test_id("name-input").fill(name)
    page.get_by_test_id("sign-in").click()
    expect(page.get_by_test_id("connection-state")).to_have_text("connected", timeout=TIMEOUT)
    return page


def join(page: Page, room: str) -> None:
    page.get_by_test_id("room-input").fill(room)
    page.get_by_test_id("room-join").click()
    expect(page.get_by_test_id(f"room-{room}")).to_be_visible(timeout=TIMEOUT)
