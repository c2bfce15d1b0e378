"""The gateway's plain HTTP on the WebSocket's port: page, token, metrics, health."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
from gateway_helpers import connected, http_request, post_json, running_gateway

import actors.server.gateway
from actors import ActorSystem
from actors.messages import IDENTIFIER_PATTERN


async def test_the_page_and_its_files(system: ActorSystem) -> None:
    async with running_gateway(system) as server:
        status, headers, body = await http_request(server.port, "GET", "/")
        assert status == 200
        assert headers["content-type"] == "text/html; charset=utf-8"
        assert b"<html" in body.lower()
        assert "connect-src 'self'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        files = [
            ("/static/app.js", "text/javascript"),
            ("/static/actors-client.js", "text/javascript"),  # the client other pages import
            ("/static/app.css", "text/css"),
        ]
        for path, kind in files:
            status, headers, body = await http_request(server.port, "GET", path)
            assert status == 200
            assert headers["content-type"].startswith(kind)
            assert body
        for path in ["/static/../_web.py", "/static/", "/nothing", "/static/%2e%2e/_web.py"]:
            status, _, _ = await http_request(server.port, "GET", path)
            assert status == 404
        status, headers, _ = await http_request(server.port, "POST", "/")
        assert status == 405


async def test_a_token_for_a_name(system: ActorSystem) -> None:
    async with running_gateway(system) as server:
        status, document = await post_json(server.port, "/token", {"name": "ada.l-1_x"})
        assert status == 200
        assert document["user_id"] == "ada.l-1_x"
        assert server.gateway.tokens.verify(document["token"]).user_id == "ada.l-1_x"
        status, _, _ = await http_request(server.port, "GET", "/token")
        assert status == 405
        status, _, body = await http_request(server.port, "POST", "/token", b"{not json")
        assert status == 400
        assert "JSON" in orjson.loads(body)["error"]
        status, document = await post_json(server.port, "/token", ["ada"])
        assert status == 400


async def test_metrics_and_health_on_the_same_port(system: ActorSystem) -> None:
    async with running_gateway(system) as server:
        status, headers, body = await http_request(server.port, "GET", "/metrics")
        assert status == 200
        assert b"actors_gateway_sessions 0.0" in body
        async with connected(server, "ada"):
            _, _, body = await http_request(server.port, "GET", "/metrics")
            assert b"actors_gateway_sessions 1.0" in body
        status, headers, body = await http_request(server.port, "GET", "/health")
        assert status == 200
        assert headers["content-type"] == "application/json"
        assert orjson.loads(body)["status"] == "up"


def test_the_page_checks_names_by_the_servers_rule() -> None:
    """The page's rule of user ids and rooms is ``actors.messages``' rule, character for
    character, so the page never refuses a name the server takes, nor the reverse."""
    script = (Path(actors.server.gateway.__file__).parent / "static" / "app.js").read_text()
    match = re.search(r"^const IDENTIFIER_RULE = /\^(.*)\$/;$", script, flags=re.MULTILINE)
    assert match is not None
    assert match[1].replace("_.-", "_.\\-") == IDENTIFIER_PATTERN
    assert "const NAME_RULE = IDENTIFIER_RULE;" in script
    assert "const ROOM_RULE = IDENTIFIER_RULE;" in script
