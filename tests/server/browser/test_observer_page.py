"""The observer page in a real headless Chromium against a real server and a real Redis.

The server runs as a child process on a private redis-server; killing that server crashes the
server's Redis connection actor, a child of its supervision tree, and the page must show the
restart, the crash as its last exit, and the connection going down and coming back.
"""

from __future__ import annotations

from playwright.sync_api import Browser, Locator, Page, Request, expect
from server_process import server_process

from actors.testing import RedisServer

TOKEN = "observer-token-for-the-page-test"
TIMEOUT = 15_000  # milliseconds for anything the page should show


def _row(page: Page, child_id: str) -> Locator:
    """The tree row of the child with this id (its own row, not its children's)."""
    return page.locator(f'[data-testid="actor"][data-child-id="{child_id}"] > .actor-row')


def _sign_in(page: Page, token: str) -> None:
    page.get_by_test_id("admin-token").fill(token)
    page.get_by_test_id("admin-sign-in").click()


def test_the_observer_shows_a_crashed_connection_actor_restart(
    browser: Browser, redis_server: RedisServer
) -> None:
    with server_process(redis_server.url, "--admin-token", TOKEN) as server:
        page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
        problems: list[str] = []
        page.on(
            "console",
            lambda message: problems.append(message.text) if message.type == "error" else None,
        )
        authorizations: list[str | None] = []

        def on_request(request: Request) -> None:
            if request.url.endswith("/admin/state"):
                authorizations.append(request.headers.get("authorization"))

        page.on("request", on_request)
        page.goto(f"{server.url}/admin")

        # A wrong token is refused, and the page asks again.
        _sign_in(page, "not-the-token-but-long-enough")
        expect(page.get_by_test_id("admin-error")).to_have_text(
            "That token was refused.", timeout=TIMEOUT
        )
        problems.clear()  # the browser logs the 401 itself
        _sign_in(page, TOKEN)
        expect(page.get_by_test_id("poll-state")).to_have_text("live", timeout=TIMEOUT)

        connection = _row(page, "redis-connection")
        expect(connection.get_by_test_id("actor-state")).to_have_text("running")
        expect(connection.get_by_test_id("actor-restarts")).to_have_text("0")
        expect(connection.get_by_test_id("actor-last-exit")).to_have_text("")
        expect(page.get_by_test_id("connection-state")).to_have_text("connected")
        # The gateway's own tree is there, its children by id.
        for child in ("stats", "presence", "hubs", "sessions"):
            expect(_row(page, child)).to_have_count(1)

        redis_server.kill()
        expect(page.get_by_test_id("connection-state")).to_have_text("down", timeout=TIMEOUT)
        expect(connection.get_by_test_id("actor-restarts")).not_to_have_text("0", timeout=TIMEOUT)
        expect(connection.get_by_test_id("actor-last-exit")).to_contain_text(
            "crashed: ", timeout=TIMEOUT
        )
        expect(page.get_by_test_id("connection-gap")).to_contain_text("open for")

        redis_server.restart()
        expect(page.get_by_test_id("connection-state")).to_have_text("connected", timeout=TIMEOUT)
        expect(page.get_by_test_id("connection-reconnects")).to_have_text("1")
        expect(page.get_by_test_id("connection-gap")).to_have_text("none")

        # The token lives in the tab's session storage: a reload needs no sign-in, and the
        # token travels in a header, never in a URL.
        page.reload()
        expect(page.get_by_test_id("poll-state")).to_have_text("live", timeout=TIMEOUT)
        assert TOKEN not in page.url
        assert authorizations
        assert set(authorizations[1:]) == {f"Bearer {TOKEN}"}
        assert problems == []  # no script error, no policy violation
        page.get_by_test_id("admin-sign-out").click()
        expect(page.get_by_test_id("admin-sign-in")).to_be_visible()
        assert page.evaluate("sessionStorage.length") == 0
        page.context.close()
