"""The browser tests' Chromium, one per test module (see ``tests/helpers/browser_pages.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from browser_pages import launched_chromium
from playwright.sync_api import Browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as browser:
        yield browser
