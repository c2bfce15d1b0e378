"""The page in a real headless Chromium, driven by Playwright, against a real server process.

Playwright's sync API cannot run inside trio, so these are plain ``def`` tests and the server
runs in a child process (``python -m actors serve --port 0``). The browser is the system's
Chromium (Debian's ``chromium`` package, installed by ``.ci/run``); nothing is downloaded. The
``browser`` fixture is ``conftest.py``'s, the page's steps ``tests/helpers/browser_pages.py``'s.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from browser_pages import FAST_PRESENCE, TIMEOUT
from browser_pages import join as _join
from browser_pages import open_page as _open
from browser_pages import sign_in as _sign_in
from playwright.sync_api import Browser, Locator, Page, WebSocket, expect
from server_process import (
    server_process,  # tests/server/gateway, on the path from the root conftest
)

from actors.testing import RedisServer, free_port

SCREENSHOT = Path(__file__).parents[3] / "docs" / "images" / "chat.png"


def test_two_people_chat_see_each_other_and_typing_then_one_leaves(browser: Browser) -> None:
    with server_process("memory://", *FAST_PRESENCE) as server:
        ada = _sign_in(browser, server.url, "ada")
        bob = _sign_in(browser, server.url, "bob")
        for page in (ada, bob):
            # Both land in the first suggested room and see each other online.
            expect(page.get_by_test_id("room-lobby")).to_be_visible(timeout=TIMEOUT)
            online = page.get_by_test_id("online-users").get_by_test_id("online-user")
            expect(online).to_have_count(2, timeout=TIMEOUT)
            expect(online.filter(has_text="ada")).to_have_count(1)
            expect(online.filter(has_text="bob")).to_have_count(1)

        ada.get_by_test_id("composer").press_sequentially("hello b", delay=20)
        expect(bob.get_by_test_id("typing")).to_contain_text("ada", timeout=TIMEOUT)
        ada.get_by_test_id("composer").fill("hello @bob, welcome to the lobby")
        ada.get_by_test_id("composer").press("Enter")
        for page in (ada, bob):
            message = page.get_by_test_id("messages").get_by_test_id("message").last
            expect(message.get_by_test_id("message-author")).to_have_text("ada", timeout=TIMEOUT)
            expect(message.get_by_test_id("message-text")).to_have_text(
                "hello @bob, welcome to the lobby"
            )
        expect(bob.get_by_test_id("toast").first).to_contain_text("ada", timeout=TIMEOUT)
        bob.get_by_test_id("composer").fill("hi ada! nice to see you here")
        bob.get_by_test_id("send").click()
        expect(ada.get_by_test_id("message").last.get_by_test_id("message-text")).to_have_text(
            "hi ada! nice to see you here", timeout=TIMEOUT
        )
        expect(bob.get_by_test_id("typing")).not_to_contain_text("ada", timeout=TIMEOUT)
        if os.environ.get("ACTORS_UPDATE_SCREENSHOT"):
            SCREENSHOT.parent.mkdir(exist_ok=True)
            ada.screenshot(path=str(SCREENSHOT))

        bob.context.close()
        # Offline for ada once the grace window has passed (and a sweep has run).
        online = ada.get_by_test_id("online-users").get_by_test_id("online-user")
        expect(online).to_have_text(["ada"], timeout=TIMEOUT)
        ada.context.close()


def test_the_page_reconnects_and_rejoins_by_itself(browser: Browser) -> None:
    port = str(free_port())
    with server_process("memory://", "--port", port, *FAST_PRESENCE) as first:
        ada = _sign_in(browser, first.url, "ada")
        ada.get_by_test_id("room-input").fill("ops")
        ada.get_by_test_id("room-join").click()
        expect(ada.get_by_test_id("room-ops")).to_be_visible(timeout=TIMEOUT)
    # The server stopped (SIGTERM, close code 1001): the page tries again by itself.
    expect(ada.get_by_test_id("connection-state")).to_have_text("reconnecting", timeout=TIMEOUT)
    with server_process("memory://", "--port", port, *FAST_PRESENCE) as second:
        expect(ada.get_by_test_id("connection-state")).to_have_text("connected", timeout=30_000)
        ada.get_by_test_id("room-ops").click()
        ada.get_by_test_id("composer").fill("back again")
        ada.get_by_test_id("composer").press("Enter")
        expect(ada.get_by_test_id("message").last.get_by_test_id("message-text")).to_have_text(
            "back again", timeout=TIMEOUT
        )
        # The server knows the room was joined again: its hub is there.
        assert second.port == first.port
        ada.context.close()


# Waits (up to the timeout given, in milliseconds) until the gateway's sessions gauge, read by
# the page itself, is 0: the server has ended every session, and so left their rooms.
UNTIL_NO_SESSIONS = """async (timeout) => {
    const deadline = Date.now() + timeout;
    while (Date.now() < deadline) {
        const metrics = await (await fetch("/metrics", { cache: "no-store" })).text();
        if (/^actors_gateway_sessions 0(\\.0)?$/m.test(metrics)) return true;
        await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return false;
}"""
# Every name the room's member list shows, from now on, however briefly.
RECORD_MEMBERS = """() => {
    window.__membersShown = new Set();
    const list = document.getElementById("room-members");
    const record = () => {
        for (const member of list.querySelectorAll('[data-testid="room-member"]')) {
            window.__membersShown.add(member.textContent);
        }
    };
    new MutationObserver(record).observe(list, { childList: true, subtree: true });
}"""


@pytest.mark.parametrize("how", ["signs out", "closes the tab"])
def test_a_member_who_went_is_never_listed_for_the_next_joiner(browser: Browser, how: str) -> None:
    """The room's hub stops with ada's session; bob, joining next, is shown bob alone."""
    grace = ("--presence-grace", "5", "--presence-sweep", "1")  # the defaults' grace window
    with server_process("memory://", *grace) as server:
        ada = _sign_in(browser, server.url, "ada")
        _join(ada, "ops")
        members = ada.get_by_test_id("room-members").get_by_test_id("room-member")
        expect(members).to_have_text(["ada"], timeout=TIMEOUT)
        if how == "signs out":
            ada.get_by_test_id("sign-out").click()
            expect(ada.get_by_test_id("sign-in")).to_be_visible(timeout=TIMEOUT)
        else:
            ada.context.close()
        bob = _open(browser, server.url)
        assert bob.evaluate(UNTIL_NO_SESSIONS, TIMEOUT)  # her session has ended: she has left
        _sign_in(browser, server.url, "bob", bob)
        bob.evaluate(RECORD_MEMBERS)
        _join(bob, "ops")

        members = bob.get_by_test_id("room-members").get_by_test_id("room-member")
        expect(members.filter(has_text="bob")).to_have_count(1, timeout=TIMEOUT)
        assert members.all_inner_texts() == ["bob"]  # right after the join is shown
        # Past her grace window: she has gone offline for bob too (the global list), ...
        online = bob.get_by_test_id("online-users").get_by_test_id("online-user")
        expect(online).to_have_text(["bob"], timeout=TIMEOUT)
        # ... and the room never listed her meanwhile.
        expect(members).to_have_text(["bob"])
        assert bob.evaluate("[...window.__membersShown]") == ["bob"]
        if how == "signs out":
            ada.context.close()
        bob.context.close()


def test_signing_out_leaves_the_room_at_once_for_those_who_stay_and_those_who_come(
    browser: Browser,
) -> None:
    """Signing out is a leave the user asks for: carol, who stays (so the room's hub keeps
    running), sees ada go at once, not after the grace window, and bob, joining next, never
    sees her."""
    grace = ("--presence-grace", "30", "--presence-sweep", "1")  # far longer than the test
    with server_process("memory://", *grace) as server:
        carol = _sign_in(browser, server.url, "carol")
        _join(carol, "ops")
        ada = _sign_in(browser, server.url, "ada")
        _join(ada, "ops")
        carol_members = carol.get_by_test_id("room-members").get_by_test_id("room-member")
        expect(carol_members).to_have_text(["carol", "ada"], timeout=TIMEOUT)  # self first
        ada.get_by_test_id("sign-out").click()
        expect(ada.get_by_test_id("sign-in")).to_be_visible(timeout=TIMEOUT)
        expect(carol_members).to_have_text(["carol"], timeout=TIMEOUT)
        bob = _sign_in(browser, server.url, "bob")
        bob.evaluate(RECORD_MEMBERS)
        _join(bob, "ops")
        members = bob.get_by_test_id("room-members").get_by_test_id("room-member")
        expect(members).to_have_text(["bob", "carol"], timeout=TIMEOUT)
        assert sorted(bob.evaluate("[...window.__membersShown]")) == ["bob", "carol"]
        for page in (ada, bob, carol):
            page.context.close()


def test_a_message_sent_while_the_page_was_away_appears_once_after_it_reconnects(
    browser: Browser, redis_server: RedisServer
) -> None:
    """Two servers on one Redis: ada's goes down, bob (on the other) says something, ada's
    comes back on its port; her page joins again with its last position and gets exactly the
    message it missed, once, between what it had and what comes next."""
    port = str(free_port())
    with server_process(redis_server.url, *FAST_PRESENCE) as other:
        bob = _sign_in(browser, other.url, "bob")
        with server_process(redis_server.url, "--port", port, *FAST_PRESENCE) as first:
            ada = _open(browser, first.url)
            frames = _record_frames(ada)
            _sign_in(browser, first.url, "ada", ada)
            expect(ada.get_by_test_id("room-lobby")).to_be_visible(timeout=TIMEOUT)
            _say(bob, "before the outage")
            expect(_texts(ada)).to_have_text(["before the outage"], timeout=TIMEOUT)
        expect(ada.get_by_test_id("connection-state")).to_have_text("reconnecting", timeout=TIMEOUT)
        _say(bob, "while you were away")
        with server_process(redis_server.url, "--port", port, *FAST_PRESENCE):
            expect(ada.get_by_test_id("connection-state")).to_have_text("connected", timeout=30_000)
            expect(_texts(ada)).to_have_text(
                ["before the outage", "while you were away"], timeout=TIMEOUT
            )
            # The page said where it was, and got just the message it missed.
            rejoined = [f for f in frames if f["type"] == "joined" and f["room"] == "lobby"][-1]
            assert rejoined["resumed"] is True
            assert [m["text"] for m in rejoined["history"]] == ["while you were away"]
            _say(bob, "after it")
            expect(_texts(ada)).to_have_text(
                ["before the outage", "while you were away", "after it"], timeout=TIMEOUT
            )
        ada.context.close()
        bob.context.close()


def _record_frames(page: Page) -> list[dict[str, Any]]:
    """Every frame the page's WebSockets receive from now on, parsed."""
    frames: list[dict[str, Any]] = []

    def on_websocket(socket: WebSocket) -> None:
        socket.on("framereceived", lambda payload: frames.append(json.loads(payload)))

    page.on("websocket", on_websocket)
    return frames


def _say(page: Page, text: str) -> None:
    page.get_by_test_id("composer").fill(text)
    page.get_by_test_id("composer").press("Enter")
    expect(_texts(page).last).to_have_text(text, timeout=TIMEOUT)


def _texts(page: Page) -> Locator:
    return page.get_by_test_id("messages").get_by_test_id("message-text")
