"""Chromium (Playwright, the system's browser) and the chat page's steps, for the browser tests.

The ``browser`` fixture of ``tests/server/browser/conftest.py`` launches it; the tests open a page
per person with ``open_page`` and sign in with ``sign_in``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGUMENTS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
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


@contextmanager
def launched_chromium() -> Iterator[Browser]:
    """The system's Chromium, headless; skipped without one (failed on CI, which installs it)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"no Chromium at {CHROMIUM}: .ci/run installs Debian's chromium")
        pytest.skip("no system Chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGUMENTS)
        yield browser
        browser.close()


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
