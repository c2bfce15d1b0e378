"""``actors-client.js`` on a page of its own, in headless Chromium, against real servers sharing
a private redis-server: it connects, joins, says and receives; when its server stops it
reconnects by itself, joins again from its last position (getting exactly what it missed) and
receives again.

The test page (``client_page/``) is served by the test, on the gateway's own origin, with the
gateway's content security policy (no inline script or style): Playwright answers its requests
in the browser, so the server knows nothing of it.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import trio
import trio_websocket
from browser_pages import FAST_PRESENCE, TIMEOUT
from playwright.sync_api import Browser, Page, Route, expect
from server_process import server_process

from actors.testing import RedisServer, free_port

CLIENT_PAGE = Path(__file__).parent / "client_page"
DOCS = Path(__file__).parents[3] / "docs" / "client.md"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


def _serve_client_page(page: Page, server_url: str) -> None:
    """Answer ``/client/NAME`` with ``client_page/NAME``, with the headers the gateway gives its
    own page (the content security policy among them)."""
    with urllib.request.urlopen(server_url, timeout=10) as response:
        policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy  # and no script-src to loosen it: no inline scripts
    assert "script-src" not in policy
    # A page Playwright answers has no address, so Chromium counts it as a public one, and
    # would block its connections to 127.0.0.1 (local network access) unless allowed.
    page.context.grant_permissions(["local-network-access"])

    def answer(route: Route) -> None:
        name = route.request.url.split("/client/", 1)[1].split("?", 1)[0] or "index.html"
        path = CLIENT_PAGE / name
        if path.parent != CLIENT_PAGE or not path.is_file():
            route.fulfill(status=404, body="not found")
            return
        headers = {
            "content-type": CONTENT_TYPES[path.suffix],
            "content-security-policy": policy,
            "x-content-type-options": "nosniff",
        }
        route.fulfill(status=200, headers=headers, body=path.read_bytes())

    page.route("**/client/*", answer)


def _seen(page: Page, event: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = page.evaluate(
        "(event) => window.seen.filter((entry) => entry.event === event)", event
    )
    return seen


def _until_seen(page: Page, entry: dict[str, Any]) -> None:
    """Wait until the page has seen ``entry`` (all its fields, among others)."""
    page.wait_for_function(
        """(entry) => window.seen && window.seen.some(
            (seen) => Object.entries(entry).every(
                ([key, value]) => JSON.stringify(seen[key]) === JSON.stringify(value)))""",
        arg=entry,
        timeout=TIMEOUT,
    )


def _say_elsewhere(port: int, user: str, text: str) -> None:
    """``user`` says ``text`` in the lobby through the server on ``port``, as a script would."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/token",
        data=json.dumps({"name": user}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        token = json.load(response)["token"]

    async def say() -> None:
        with trio.fail_after(10):
            url = f"ws://127.0.0.1:{port}/ws"
            async with trio_websocket.open_websocket_url(url) as socket:

                async def until(kind: str) -> None:
                    while orjson.loads(await socket.get_message())["type"] != kind:
                        pass

                await socket.send_message(orjson.dumps({"type": "hello", "token": token}).decode())
                await until("welcome")
                await socket.send_message(orjson.dumps({"type": "join", "room": "lobby"}).decode())
                await until("joined")
                frame = {"type": "say", "room": "lobby", "text": text, "ref": "m-1"}
                await socket.send_message(orjson.dumps(frame).decode())
                await until("ack")

    trio.run(say)


def test_the_client_module_reconnects_rejoins_from_its_position_and_receives_again(
    browser: Browser, redis_server: RedisServer
) -> None:
    port = free_port()
    with server_process(redis_server.url, *FAST_PRESENCE) as other:
        with server_process(redis_server.url, "--port", str(port), *FAST_PRESENCE) as first:
            page = browser.new_context().new_page()
            _serve_client_page(page, first.url)
            page.goto(f"{first.url}/client/index.html?name=ada")
            expect(page.locator("body")).to_have_attribute(
                "data-state", "connected", timeout=TIMEOUT
            )
            _until_seen(page, {"event": "joined", "room": "lobby", "resumed": False})

            page.get_by_label("Message").fill("hello from a page of its own")
            page.get_by_label("Message").press("Enter")
            _until_seen(
                page, {"event": "message", "user": "ada", "text": "hello from a page of its own"}
            )
            _say_elsewhere(other.port, "bob", "hi ada")
            _until_seen(page, {"event": "message", "user": "bob", "text": "hi ada"})
            expect(page.locator("#log li")).to_have_text(
                ["ada: hello from a page of its own", "bob: hi ada"]
            )

        # The server stopped (1001): the client waits and tries again, counting its attempts.
        _until_seen(page, {"event": "state", "state": "reconnecting", "attempt": 1})
        _say_elsewhere(other.port, "bob", "while you were away")
        with server_process(redis_server.url, "--port", str(port), *FAST_PRESENCE):
            expect(page.locator("body")).to_have_attribute(
                "data-state", "connected", timeout=30_000
            )
            # It joined again from its last position: exactly what it missed, once.
            _until_seen(page, {"event": "joined", "room": "lobby", "resumed": True})
            rejoined = [entry for entry in _seen(page, "joined") if entry["resumed"]]
            assert [entry["texts"] for entry in rejoined] == [["while you were away"]]
            _say_elsewhere(other.port, "bob", "and after")
            _until_seen(page, {"event": "message", "user": "bob", "text": "and after"})
            page.get_by_label("Message").fill("back again")
            page.get_by_label("Message").press("Enter")
            _until_seen(page, {"event": "message", "user": "ada", "text": "back again"})
            texts = [entry["text"] for entry in _seen(page, "message")]
            assert texts == ["hello from a page of its own", "hi ada", "and after", "back again"]
            page.context.close()


BACKOFF = """async () => {
    const { backoffDelay, BACKOFF_MAX } = await import("/static/actors-client.js");
    return {
        max: BACKOFF_MAX,
        delays: [
            [0, 0], [0, 0.5], [0, 1], [1, 0.5], [3, 0.5], [4, 0], [4, 1], [5, 0], [5, 1], [20, 1],
        ].map(([attempt, random]) => backoffDelay(attempt, () => random)),
    };
}"""


def test_the_client_module_backs_off_from_half_a_second_to_at_most_ten(browser: Browser) -> None:
    """0.5 s doubling per attempt, times 0.75 to 1.25 for jitter, and never over 10 s (from
    the fifth attempt on, from 7.5 s to 10 s)."""
    with server_process("memory://") as server:
        page = browser.new_context().new_page()
        page.goto(server.url)
        answer = page.evaluate(BACKOFF)
        assert answer["max"] == 10_000
        assert answer["delays"] == [375, 500, 625, 1000, 4000, 6000, 10_000, 7500, 10_000, 10_000]
        page.context.close()


def test_the_docs_show_the_client_pages_script_as_it_is() -> None:
    """docs/client.md's example is the test page's script, character for character."""
    docs = DOCS.read_text()
    marker = "<!-- the script of tests/server/browser/client_page/page.js, as it is -->\n```js\n"
    assert marker in docs
    shown = docs.split(marker, 1)[1].split("\n```", 1)[0]
    assert shown == (CLIENT_PAGE / "page.js").read_text().rstrip("\n")


TOKENS = """async () => {
    const { ChatClient, fetchToken } = await import("/static/actors-client.js");
    const outcome = (promise) => promise.then(
        (value) => ({ value }),
        (error) => ({ error: { name: error.name, fatal: error.fatal, status: error.status } }),
    );
    // The first token is refused (4001): the client asks for another, once, and gets in.
    let asked = 0;
    const once = new ChatClient({
        token: async () => (++asked === 1 ? "not a token" : fetchToken("ada")),
    });
    const welcome = await once.connect({ timeout: 10000 });
    once.close();
    const closed = once.state;
    const again = await outcome(once.connect({ timeout: 10000 })); // closed for good
    // Refused every time: the client gives up at the second refusal.
    let calls = 0;
    const never = new ChatClient({ token: async () => { calls += 1; return "not a token"; } });
    let fatal = 0;
    never.on("fatal", () => { fatal += 1; });
    const refused = await outcome(never.connect({ timeout: 10000 }));
    // A name the server refuses is refused for good (400), and so is the client's token function.
    const badName = await outcome(fetchToken("not a name"));
    // No server there: connect's wait ends at its bound; the client goes on trying.
    const nobody = new ChatClient({ token: async () => "x", url: "ws://127.0.0.1:9/ws" });
    const late = await outcome(nobody.connect({ timeout: 300 }));
    const stillTrying = nobody.state;
    nobody.close();
    return {
        asked, user: welcome.user_id, closed, again: again.error, calls, fatal,
        refused: refused.error, state: never.state, badName: badName.error, late: late.error,
        stillTrying,
    };
}"""


def test_the_client_module_asks_for_a_new_token_once_then_gives_up(browser: Browser) -> None:
    with server_process("memory://") as server:
        page = browser.new_context().new_page()
        page.goto(server.url)
        answer = page.evaluate(TOKENS)
        assert answer == {
            "asked": 2,
            "user": "ada",
            "closed": "closed",
            "again": {"name": "Error", "fatal": None, "status": None},
            "calls": 2,
            "fatal": 1,
            "refused": {"name": "TokenError", "fatal": True, "status": 0},
            "state": "closed",
            "badName": {"name": "TokenError", "fatal": True, "status": 400},
            "late": {"name": "TimeoutError", "fatal": None, "status": None},
            "stillTrying": "connecting",
        }
        page.context.close()
