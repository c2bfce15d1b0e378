"""``/admin`` over HTTP: the token, the 404 when off, the headers, the page's files."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import attrs
import orjson
import pytest
from line_reader import LineReader
from prometheus_client import CollectorRegistry
from server_process import ROOT, server_arguments, server_process

import actors.server.admin
from actors.server.admin import (
    ADMIN_TOKEN_ENVIRONMENT_VARIABLE,
    AdminRoutes,
    admin_token_from,
    is_admin_path,
)
from actors.server.cli import main
from actors.server.http import HttpRequest, HttpResponse
from actors.testing import free_port

TOKEN: Final = "an-admin-token-of-32-characters!"
WAIT: Final = 15.0  # seconds for one HTTP request to a local server
STATE: Final = {"version": 1, "tree": []}


def routes(registry: CollectorRegistry | None = None) -> AdminRoutes:
    return AdminRoutes(TOKEN.encode(), lambda: STATE, registry=registry)


async def ask(routes: AdminRoutes, path: str, **headers: str) -> HttpResponse:
    return await routes.respond(HttpRequest("GET", path, dict(headers)))


def header(response: HttpResponse, name: str) -> str:
    return dict(response.headers)[name]


async def test_the_state_needs_the_token_in_a_bearer_header() -> None:
    registry = CollectorRegistry()
    admin = routes(registry)
    for headers, reason in [
        ({}, "no"),
        ({"authorization": "Bearer not-the-token-but-long-enough"}, "wrong"),
        ({"authorization": f"Bearer {TOKEN}x"}, "wrong"),
        ({"authorization": f"Bearer {TOKEN[:-1]}"}, "wrong"),
        ({"authorization": f"Basic {TOKEN}"}, "wrong"),
        ({"authorization": TOKEN}, "wrong"),
        ({"authorization": "Bearer \xe9\xff"}, "wrong"),  # latin-1 as read off the socket
    ]:
        answer = await ask(admin, "/admin/state", **headers)
        assert answer.status == 401, headers
        assert orjson.loads(answer.body) == {"error": f"{reason} admin token"}
        assert header(answer, "www-authenticate").startswith("Bearer")
        assert header(answer, "cache-control") == "no-store"
    refused = {
        reason: registry.get_sample_value("actors_admin_requests_refused_total", {"reason": reason})
        for reason in ("no", "wrong")
    }
    assert refused == {"no": 1.0, "wrong": 6.0}
    for scheme in ("Bearer", "bearer"):
        answer = await ask(admin, "/admin/state", authorization=f"{scheme} {TOKEN}")
        assert answer.status == 200
        assert answer.content_type == "application/json"
        assert orjson.loads(answer.body) == STATE
        assert header(answer, "cache-control") == "no-store"


async def test_the_page_and_its_files_carry_a_strict_policy() -> None:
    admin = routes()
    for path, kind in [
        ("/admin", "text/html"),
        ("/admin/admin.js", "text/javascript"),
        ("/admin/admin.css", "text/css"),
        ("/admin/app.css", "text/css"),
    ]:
        answer = await ask(admin, path)
        assert answer.status == 200, path
        assert answer.content_type.startswith(kind)
        assert answer.body
        assert header(answer, "cache-control") == "no-store"
        policy = header(answer, "content-security-policy")
        assert "default-src 'none'" in policy
        assert "script-src 'self';" in policy
        assert "style-src 'self';" in policy
        assert "unsafe-inline" not in policy
    for path in ["/admin/", "/admin/../gateway/_web.py", "/admin/state/x", "/admin/nothing"]:
        answer = await ask(admin, path, authorization=f"Bearer {TOKEN}")
        assert answer.status == 404, path
    answer = await admin.respond(HttpRequest("POST", "/admin/state", {}))
    assert answer.status == 405
    assert is_admin_path("/admin")
    assert is_admin_path("/admin/state")
    assert not is_admin_path("/administrator")


def test_the_page_has_no_inline_script_or_style() -> None:
    """The policy forbids them: the page must not need them."""
    page = (Path(actors.server.admin.__file__).parent / "static" / "admin.html").read_text()
    assert re.findall(r"<script\b[^>]*>", page) == ['<script type="module" src="/admin/admin.js">']
    assert "<style" not in page
    assert " style=" not in page
    assert not re.search(r"\son[a-z]+=", page)  # no inline event handlers


def test_the_token_comes_from_the_flag_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ADMIN_TOKEN_ENVIRONMENT_VARIABLE, raising=False)
    assert admin_token_from(None) is None
    assert admin_token_from(TOKEN) == TOKEN.encode()
    monkeypatch.setenv(ADMIN_TOKEN_ENVIRONMENT_VARIABLE, "")
    assert admin_token_from(None) is None
    monkeypatch.setenv(ADMIN_TOKEN_ENVIRONMENT_VARIABLE, "from-the-environment-1")
    assert admin_token_from(None) == b"from-the-environment-1"
    assert admin_token_from(TOKEN) == TOKEN.encode()  # the flag wins
    for bad in ["", "short", "x" * 15, "sixteen chars ok", "ünïcödé-is-not-ascii"]:
        with pytest.raises(ValueError, match="admin token"):
            admin_token_from(bad)
    assert admin_token_from("x" * 16) == b"x" * 16
    with pytest.raises(ValueError, match="at least 16"):
        AdminRoutes(b"short", lambda: STATE)


def test_serve_refuses_a_short_admin_token_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--port", "0", "--demo-login", "--admin-token", "too-short"]) == 2
    assert "admin token must be at least 16 bytes" in capsys.readouterr().err


@attrs.frozen
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def get(port: int, path: str, token: str | None = None) -> Answer:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=WAIT) as response:
            headers = {name.lower(): value for name, value in response.headers.items()}
            return Answer(response.status, headers, response.read())
    except urllib.error.HTTPError as error:
        with error:
            headers = {name.lower(): value for name, value in error.headers.items()}
            return Answer(error.code, headers, error.read())


def test_serve_answers_404_under_admin_without_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ADMIN_TOKEN_ENVIRONMENT_VARIABLE, raising=False)
    with server_process("memory://") as server:
        for path in ["/admin", "/admin/state", "/admin/admin.js"]:
            assert get(server.port, path, TOKEN).status == 404, path
        assert get(server.port, "/health").status == 200


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_serve_answers_the_state_to_the_token_alone(
    how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if how == "flag":
        monkeypatch.delenv(ADMIN_TOKEN_ENVIRONMENT_VARIABLE, raising=False)
        extra: tuple[str, ...] = ("--admin-token", TOKEN)
    else:
        monkeypatch.setenv(ADMIN_TOKEN_ENVIRONMENT_VARIABLE, TOKEN)
        extra = ()
    with server_process("memory://", "--server-name", "observed", *extra) as server:
        for token in (None, "wrong-token-of-twenty-chars"):
            answer = get(server.port, "/admin/state", token)
            assert answer.status == 401
            assert answer.headers["cache-control"] == "no-store"
        answer = get(server.port, "/admin/state", TOKEN)
        assert answer.status == 200
        assert answer.headers["cache-control"] == "no-store"
        document = orjson.loads(answer.body)
        assert document["version"] == 1
        assert document["server"] == "observed"
        assert document["gateway"]["sessions"]["count"] == 0
        # The gateway's supervisor is one of the top-level actors, with its four children.
        children = [[child["child_id"] for child in node["children"]] for node in document["tree"]]
        assert ["stats", "presence", "hubs", "sessions"] in children
        page = get(server.port, "/admin")
        assert page.status == 200
        assert b"/admin/admin.js" in page.body
        assert page.headers["cache-control"] == "no-store"


def test_serve_with_a_short_token_in_the_environment_exits_with_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "actors", "serve", "--port", "0", "--demo-login"],
        cwd=ROOT,
        env={**os.environ, ADMIN_TOKEN_ENVIRONMENT_VARIABLE: "short"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: the admin token must be at least 16 bytes long, not 5"
    ]


@contextmanager
def listening(redis_url: str, *extra: str) -> Iterator[tuple[int, LineReader]]:
    """``serve`` on ``redis_url``, as soon as it listens (before the gateway is up): its port,
    and the reader of what it writes (its log included) from then on."""
    process = subprocess.Popen(
        server_arguments(redis_url, *extra),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        output = LineReader(process.stdout)
        address = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")
        match = address.search(output.wait_for(address, WAIT * 2))
        assert match is not None
        yield int(match[1]), output
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_the_observer_answers_while_redis_is_out_of_reach(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before the gateway is up, the state has the tree and the connection down, and no
    gateway; without a token, /admin is 404 then too (not the 503 of the gateway's paths)."""
    monkeypatch.delenv(ADMIN_TOKEN_ENVIRONMENT_VARIABLE, raising=False)
    closed = f"redis://127.0.0.1:{free_port()}"
    with listening(closed, "--admin-token", TOKEN) as (port, output):
        assert get(port, "/admin/state").status == 401
        # The connection's supervisor logs its failure once the hub has recorded why.
        output.wait_for(re.compile(r"redis-connection .* failed: .*connection refused"), WAIT)
        answer = get(port, "/admin/state", TOKEN)
        assert answer.status == 200
        document = orjson.loads(answer.body)
        [redis] = document["connections"]
        assert document["gateway"] is None
        assert redis["connected"] is False
        assert "refused" in redis["last_error"]
        assert any(node["child_id"] == "redis-connection" for node in walk(document["tree"]))
        assert get(port, "/").status == 503  # the chat page waits for the broker
    with listening(closed) as (port, _):
        assert get(port, "/admin/state", TOKEN).status == 404
        assert get(port, "/admin").status == 404


def walk(nodes: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for node in nodes:
        yield node
        yield from walk(node["children"])
