"""The page's sessions and what it shows of them, in headless Chromium against a server process:
a tab is a session of its own, a lost connection shows in the footer and the member lists,
toasts keep clear of the controls, and avatars tell apart names with one initial."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from browser_pages import FAST_PRESENCE, TIMEOUT, open_page, sign_in
from playwright.sync_api import Browser, Page, WebSocket, expect
from server_process import server_process

from actors.testing import free_port


def test_two_tabs_of_one_browser_are_two_users(browser: Browser) -> None:
    """Two pages of one browser context share its localStorage, as two windows of one browser
    do; each signs in as its own person, and a reload keeps each tab's person."""
    with server_process("memory://", *FAST_PRESENCE) as server:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        first = context.new_page()
        first.goto(server.url)
        sign_in(browser, server.url, "ada", first)
        second = context.new_page()
        second.goto(server.url)
        # Not ada again: the second tab asks who it is.
        expect(second.get_by_test_id("name-input")).to_be_visible(timeout=TIMEOUT)
        expect(second.get_by_test_id("name-input")).to_have_value("")
        sign_in(browser, server.url, "bob", second)
        for page in (first, second):
            online = page.get_by_test_id("online-users").get_by_test_id("online-user")
            expect(online).to_have_count(2, timeout=TIMEOUT)
        expect(first.get_by_test_id("current-user")).to_have_text("ada")
        expect(second.get_by_test_id("current-user")).to_have_text("bob")
        first.reload()
        expect(first.get_by_test_id("connection-state")).to_have_text("connected", timeout=TIMEOUT)
        expect(first.get_by_test_id("current-user")).to_have_text("ada")
        expect(second.get_by_test_id("current-user")).to_have_text("bob")
        context.close()


# The colour of the footer's connection dot (the signed-in user's avatar's badge).
FOOTER_DOT = (
    """() => getComputedStyle(document.getElementById("me-avatar"), "::after").backgroundColor"""
)
RETRY_TEXT = re.compile(r"^Disconnected · (retry \d+ in \d+ s|reconnecting, attempt \d+)$")
LIST_TEXT = re.compile(
    r"^Disconnected: last known \((retry \d+ in \d+ s|reconnecting, attempt \d+)\)$"
)


def test_the_footer_and_member_lists_show_a_lost_connection_until_it_is_back(
    browser: Browser,
) -> None:
    port = str(free_port())
    with server_process("memory://", "--port", port, *FAST_PRESENCE) as first:
        ada = open_page(browser, first.url)
        sent = _record_sent_frames(ada)
        sign_in(browser, first.url, "ada", ada)
        expect(ada.get_by_test_id("room-lobby")).to_have_attribute("data-joined", "true")
        footer = ada.get_by_test_id("footer-status")
        expect(footer).to_have_text("Connected")
        connected_dot = ada.evaluate(FOOTER_DOT)
        _expect_lists_live(ada)
        expect(ada.get_by_test_id("server-stats")).to_be_visible(timeout=TIMEOUT)  # every 5 s
    # The server stopped: the page waits, retries, and says so everywhere.
    expect(footer).to_have_attribute("data-state", "reconnecting", timeout=TIMEOUT)
    expect(footer).to_have_text(RETRY_TEXT, timeout=TIMEOUT)
    expect(footer).to_have_text(re.compile(r"(retry|attempt) 2\b"), timeout=TIMEOUT)  # counts
    assert ada.evaluate(FOOTER_DOT) != connected_dot  # no longer green
    for status, people in [
        ("online-status", "online-users"),
        ("room-members-status", "room-members"),
    ]:
        expect(ada.get_by_test_id(status)).to_be_visible()
        expect(ada.get_by_test_id(status)).to_have_text(LIST_TEXT)
        expect(ada.get_by_test_id(people)).to_have_attribute("data-state", "stale")
    expect(ada.get_by_test_id("server-stats")).to_be_hidden()
    with server_process("memory://", "--port", port, *FAST_PRESENCE):
        expect(footer).to_have_text("Connected", timeout=30_000)
        expect(footer).to_have_attribute("data-state", "connected")
        _expect_lists_live(ada)
        assert ada.evaluate(FOOTER_DOT) == connected_dot
        expect(ada.get_by_test_id("room-lobby")).to_have_attribute("data-joined", "true")
        ada.context.close()
    # Each connection that got in joined the lobby once: the first, and the one after the restart.
    joins = [
        [frame["room"] for frame in frames if frame["type"] == "join"]
        for frames in sent
        if any(frame["type"] == "hello" for frame in frames)
    ]
    assert [rooms for rooms in joins if rooms] == [["lobby"], ["lobby"]]


def _record_sent_frames(page: Page) -> list[list[dict[str, Any]]]:
    """The frames the page sends from now on, parsed, a list per WebSocket."""
    sockets: list[list[dict[str, Any]]] = []

    def on_websocket(socket: WebSocket) -> None:
        frames: list[dict[str, Any]] = []
        sockets.append(frames)
        socket.on("framesent", lambda payload: frames.append(json.loads(payload)))

    page.on("websocket", on_websocket)
    return sockets


def _expect_lists_live(page: Page) -> None:
    for status, people in [
        ("online-status", "online-users"),
        ("room-members-status", "room-members"),
    ]:
        expect(page.get_by_test_id(status)).to_be_hidden(timeout=TIMEOUT)
        expect(page.get_by_test_id(people)).to_have_attribute("data-state", "live")


# The boxes of the toasts (and their region) and of every control shown: the room's member
# list, the composer, and every visible button outside the toasts.
BOXES = """() => {
    const box = (el) => {
        const r = el.getBoundingClientRect();
        return { left: r.left, top: r.top, right: r.right, bottom: r.bottom };
    };
    const shown = (el) => {
        const style = getComputedStyle(el);
        const r = el.getBoundingClientRect();
        return style.visibility !== "hidden" && style.display !== "none" && r.width > 0 &&
            r.height > 0 && r.right > 0 && r.bottom > 0 &&
            r.left < window.innerWidth && r.top < window.innerHeight;
    };
    const region = document.getElementById("toasts");
    const controls = [
        document.getElementById("members-panel"),
        document.getElementById("composer-form"),
        ...[...document.querySelectorAll("button")].filter((b) => !region.contains(b)),
    ].filter(shown);
    return {
        region: box(region),
        toasts: [...region.children].map(box),
        controls: controls.map((el) => ({ what: el.id || el.className || el.tagName, ...box(el) })),
    };
}"""


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return bool(
        a["left"] < b["right"]
        and b["left"] < a["right"]
        and a["top"] < b["bottom"]
        and b["top"] < a["bottom"]
    )


@pytest.mark.parametrize("size", [(1280, 800), (900, 700), (390, 760)], ids=str)
def test_toasts_never_cover_the_member_list_the_composer_or_a_button(
    browser: Browser, size: tuple[int, int]
) -> None:
    width, height = size
    with server_process("memory://", *FAST_PRESENCE) as server:
        ada = sign_in(browser, server.url, "ada")
        ada.set_viewport_size({"width": width, "height": height})
        bob = sign_in(browser, server.url, "bob")
        expect(ada.get_by_test_id("room-lobby")).to_have_attribute("data-joined", "true")
        expect(bob.get_by_test_id("room-lobby")).to_have_attribute("data-joined", "true")
        for number in range(3):  # three mentions: three toasts stacked
            bob.get_by_test_id("composer").fill(f"@ada look at this, number {number}")
            bob.get_by_test_id("composer").press("Enter")
        toasts = ada.get_by_test_id("toast")
        expect(toasts).to_have_count(3, timeout=TIMEOUT)
        boxes = ada.evaluate(BOXES)
        assert len(boxes["controls"]) >= 2  # the composer and its button at least
        if width >= 1100:
            assert "members-panel" in [control["what"] for control in boxes["controls"]]
        for toast in [boxes["region"], *boxes["toasts"]]:
            for control in boxes["controls"]:
                assert not _overlap(toast, control), (toast, control)
        ada.context.close()
        bob.context.close()


AVATAR = """(list) => [...document.querySelectorAll(
    `[data-testid="${list}"] [data-testid="avatar"]`
)].map((el) => [el.dataset.name, el.textContent, getComputedStyle(el).backgroundColor])"""


def test_avatars_of_names_with_one_initial_differ(browser: Browser) -> None:
    with server_process("memory://", *FAST_PRESENCE) as server:
        alice = sign_in(browser, server.url, "alice")
        adam = sign_in(browser, server.url, "adam")
        online = alice.get_by_test_id("online-users").get_by_test_id("online-user")
        expect(online).to_have_count(2, timeout=TIMEOUT)
        avatars = {
            name: (text, colour) for name, text, colour in alice.evaluate(AVATAR, "online-users")
        }
        assert avatars["alice"][0] == "AL"
        assert avatars["adam"][0] == "AD"
        assert avatars["alice"][1] != avatars["adam"][1]
        # The same name has the same avatar wherever it is shown.
        for page in (alice, adam):
            members = page.get_by_test_id("room-members").get_by_test_id("room-member")
            expect(members).to_have_count(2, timeout=TIMEOUT)
        assert sorted(alice.evaluate(AVATAR, "room-members")) == sorted(
            adam.evaluate(AVATAR, "room-members")
        )
        alice.context.close()
        adam.context.close()


def test_a_name_of_two_parts_shows_the_first_letter_of_each(browser: Browser) -> None:
    with server_process("memory://", *FAST_PRESENCE) as server:
        ada = sign_in(browser, server.url, "ada.lovelace")
        online = ada.get_by_test_id("online-users").get_by_test_id("online-user")
        expect(online).to_have_count(1, timeout=TIMEOUT)
        [(name, text, _)] = ada.evaluate(AVATAR, "online-users")
        assert (name, text) == ("ada.lovelace", "AL")
        ada.context.close()
