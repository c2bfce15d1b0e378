"""The gateway and its tokens, over real sockets: ``/token`` only with the demo login, the rooms
a token allows, and RS256 tokens from an identity provider's key."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import jwt
import pytest
import trio_websocket
from gateway_helpers import (
    SECRET,
    Client,
    Server,
    connected,
    http_request,
    post_json,
    running_gateway,
)
from token_keys import KeyPair, claims, forged, rsa_pair, write

from actors import ActorSystem
from actors.server.gateway import KeyRing, TokenVerifier


@contextlib.asynccontextmanager
async def hello_with(server: Server, token: str) -> AsyncIterator[Client]:
    """A client that said hello with ``token`` (what follows is up to the test)."""
    async with trio_websocket.open_websocket_url(server.url()) as connection:
        client = Client(connection)
        try:
            await client.send(type="hello", token=token)
            yield client
        finally:
            await client.aclose()


def now_claims(**overrides: object) -> dict[str, object]:
    """Claims valid now, on the wall clock the gateway's verifier reads."""
    now = int(time.time())
    return claims(**{"iat": now, "exp": now + 600, **overrides})


async def test_without_the_demo_login_token_answers_404(system: ActorSystem) -> None:
    async with running_gateway(system, demo_login=False) as server:
        for method in ("POST", "GET"):
            status, _, body = await http_request(server.port, method, "/token", b"{}")
            assert (status, body) == (404, b"not found\n")
        async with connected(server, "ada"):  # tokens from elsewhere still sign in
            pass
    async with running_gateway(system) as server:
        status, document = await post_json(server.port, "/token", {"name": "ada"})
        assert status == 200, document
        assert jwt.get_unverified_header(document["token"])["alg"] == "HS256"


async def test_a_token_with_rooms_allows_only_those(system: ActorSystem) -> None:
    async with running_gateway(system) as server:
        token = jwt.encode(now_claims(rooms=["support", "lobby"]), SECRET, algorithm="HS256")
        async with hello_with(server, token) as ada:
            welcome = await ada.expect("welcome")
            assert welcome["rooms"] == ["lobby", "support"]  # the server's first, then others
            await ada.send(type="join", room="random", ref="r1")
            error = await ada.expect("error")
            assert error == {
                "type": "error",
                "code": "room_not_allowed",
                "message": "your token does not allow 'random'",
                "ref": "r1",
            }
            await ada.send(type="join", room="support")
            await ada.expect("joined", room="support")
        refused = server.gateway.metrics.frames_refused.labels("room_not_allowed")
        assert refused._value.get() == 1
        assert server.gateway.hubs.get("random") is None
        async with connected(server, "bob") as bob:  # no rooms claim: any room
            await bob.send(type="join", room="random")
            await bob.expect("joined", room="random")


@pytest.fixture(scope="module")
def provider() -> KeyPair:
    return rsa_pair()


async def test_rs256_tokens_from_a_provider_key(
    system: ActorSystem, provider: KeyPair, tmp_path: Path
) -> None:
    keys = KeyRing.from_public_key_file(write(tmp_path / "idp.pem", provider.public_pem), "RS256")
    async with running_gateway(system, tokens=TokenVerifier(keys), demo_login=False) as server:
        async with hello_with(server, provider.sign(now_claims(sub="ada"), "RS256")) as ada:
            assert (await ada.expect("welcome"))["user_id"] == "ada"
        attack = forged({"alg": "HS256"}, now_claims(sub="root"), provider.public_pem)
        unsigned = forged({"alg": "none"}, now_claims(sub="root"), None)
        expired = provider.sign(now_claims(exp=1_000_000), "RS256")
        for token in (attack, unsigned, expired):
            async with hello_with(server, token) as intruder:
                assert await intruder.closed() == 4001
        refused = server.gateway.metrics.handshakes_refused.labels("token")
        assert refused._value.get() == 3
        status, _, _ = await http_request(server.port, "POST", "/token", b'{"name": "x"}')
        assert status == 404
