"""The WebSocket protocol of docs/protocol.md against a real gateway on a real port.

Every refused input gets its error code and the session goes on; only the cases the protocol
says close the connection do, with their close codes.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
import trio
import trio.lowlevel
import trio_websocket
from gateway_helpers import (
    FAST_PRESENCE,
    Client,
    Server,
    connected,
    http_request,
    running_gateway,
)

from actors import ActorSystem
from actors.server.gateway import GatewaySettings


@pytest.fixture
async def server(system: ActorSystem) -> AsyncIterator[Server]:
    async with running_gateway(system) as server:
        yield server


async def _still_serves(client: Client) -> None:
    await client.send(type="ping", ref="still-there")
    assert await client.expect("pong") == {"type": "pong", "ref": "still-there"}


async def test_welcome_then_the_global_presence(server: Server) -> None:
    async with connected(server, "ada") as ada:
        state = await ada.receive()
        assert state == {"type": "presence_state", "scope": "global", "users": ["ada"]}
        async with connected(server, "bob") as bob:
            assert (await bob.receive())["users"] == ["ada", "bob"]
            diff = await ada.expect_presence("global", joined="bob")
            assert diff["left"] == []
        diff = await ada.expect_presence("global", left="bob")
        assert diff["joined"] == []


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\x00binary", "bad_frame"),
        ("not json", "bad_frame"),
        ("[1, 2]", "bad_frame"),
        ('{"room": "lobby"}', "bad_frame"),
        ('{"type": 7}', "bad_frame"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"type": "join", "room": "lobby", "colour": "red"}', "bad_frame"),
        ('{"type": "join"}', "bad_frame"),
        ('{"type": "join", "room": 5}', "bad_frame"),
        ('{"type": "join", "room": true}', "bad_frame"),
        ('{"type": "history", "room": "lobby", "limit": "ten"}', "bad_frame"),
        ('{"type": "join", "room": "*"}', "invalid_room"),
        ('{"type": "join", "room": "chat:*"}', "invalid_room"),
        ('{"type": "join", "room": "two words"}', "invalid_room"),
        ('{"type": "join", "room": ""}', "invalid_room"),
        ('{"type": "join", "room": "global"}', "invalid_room"),
        ('{"type": "join", "room": "' + "r" * 65 + '"}', "invalid_room"),
        ('{"type": "say", "room": "lobby", "text": "hi"}', "not_joined"),
        ('{"type": "typing", "room": "lobby"}', "not_joined"),
        ('{"type": "history", "room": "lobby"}', "not_joined"),
        ('{"type": "leave", "room": "lobby"}', "not_joined"),
        ('{"type": "ping", "ref": "' + "x" * 65 + '"}', "bad_frame"),
    ],
)
async def test_a_bad_frame_gets_an_error_and_the_session_goes_on(
    server: Server, frame: str | bytes, code: str
) -> None:
    async with connected(server, "ada") as ada:
        await ada.send_raw(frame)
        error = await ada.expect("error")
        assert error["code"] == code, error
        assert error["message"]
        await _still_serves(ada)
    assert server.gateway.metrics.frames_refused.labels(code)._value.get() == 1


async def test_errors_echo_the_ref(server: Server) -> None:
    async with connected(server, "ada") as ada:
        await ada.send(type="say", room="lobby", text="hi", ref="m-1")
        assert await ada.expect("error") == {
            "type": "error",
            "code": "not_joined",
            "message": "join 'lobby' first",
            "ref": "m-1",
        }


async def test_texts_are_checked(server: Server) -> None:
    async with connected(server, "ada") as ada:
        await ada.send(type="join", room="lobby")
        await ada.expect("joined", room="lobby")
        for text in ["", "   \n", "x" * 2001]:
            await ada.send(type="say", room="lobby", text=text, ref="t")
            assert (await ada.expect("error"))["code"] == "invalid_text"
        await ada.send(type="say", room="lobby", text="x" * 2000, ref="ok")
        assert (await ada.expect("ack"))["ref"] == "ok"


async def test_the_rate_limit_refuses_a_burst(server: Server) -> None:
    async with connected(server, "ada") as ada:
        await ada.send(type="join", room="lobby")
        await ada.expect("joined")
        codes = []
        for number in range(12):  # bursts of 10 pass
            await ada.send(type="say", room="lobby", text=f"m{number}", ref=str(number))
        for _ in range(12):
            frame = await ada.expect_any(("ack", "error"))
            codes.append(frame.get("code", "ack"))
        # Bursts of 10, then 5 a second: the two extra are refused unless a refill came between.
        assert codes[:10] == ["ack"] * 10
        assert "rate_limited" in codes[10:]


async def test_at_most_twenty_rooms(server: Server) -> None:
    async with connected(server, "ada") as ada:
        for number in range(20):
            await ada.send(type="join", room=f"room{number}")
            await ada.expect("joined", room=f"room{number}")
        await ada.send(type="join", room="one-too-many", ref="j")
        assert (await ada.expect("error"))["code"] == "too_many_rooms"
        await ada.send(type="leave", room="room0")
        await ada.expect("left", room="room0")
        await ada.send(type="join", room="one-too-many")
        await ada.expect("joined", room="one-too-many")


async def test_no_hello_in_time_closes_with_4001(system: ActorSystem) -> None:
    settings = GatewaySettings(hello_timeout=0.2, presence=FAST_PRESENCE)
    async with (
        running_gateway(system, settings=settings) as server,
        connected(server, "ada", hello=False) as ada,
    ):
        assert await ada.closed() == 4001


@pytest.mark.parametrize(
    "first",
    [
        '{"type": "hello", "token": "forged.token"}',
        '{"type": "hello", "token": 5}',
        '{"type": "join", "room": "lobby"}',
        "not json",
    ],
)
async def test_a_bad_hello_closes_with_4001(server: Server, first: str) -> None:
    async with connected(server, "ada", hello=False) as ada:
        await ada.send_raw(first)
        assert await ada.closed() == 4001
    assert server.gateway.metrics.handshakes_refused.labels("token")._value.get() == 1


async def test_tokens_of_another_secret_or_expired_close_with_4001(server: Server) -> None:
    from actors.server.gateway import DemoLogin, TokenVerifier

    others = TokenVerifier.from_secret(b"another secret of the same size!")
    other = DemoLogin(others).issue("ada")[0]
    expired = DemoLogin(server.gateway.tokens, clock=lambda: 1e9).issue("ada")[0]
    for token in [other, expired]:
        async with connected(server, "ada", hello=False) as ada:
            await ada.send(type="hello", token=token)
            assert await ada.closed() == 4001


async def test_a_second_hello_closes_with_4001(server: Server) -> None:
    async with connected(server, "ada") as ada:
        await ada.send(type="hello", token=server.token("ada"))
        assert await ada.closed() == 4001


async def test_a_frame_over_the_limit_closes_with_1009(server: Server) -> None:
    async with connected(server, "ada") as ada:
        await ada.send(type="ping", ref="x" * 20_000)
        assert await ada.closed() == 1009


async def test_a_flood_closes_with_4003(server: Server) -> None:
    async with connected(server, "ada") as ada:
        with contextlib.suppress(trio_websocket.ConnectionClosed):
            for _ in range(200):  # the server closes after the 51st
                await ada.send(type="ping")
        assert await ada.closed() == 4003


async def test_refused_frames_in_a_row_close_with_4003(system: ActorSystem) -> None:
    settings = GatewaySettings(max_refused_in_a_row=5, presence=FAST_PRESENCE)
    async with (
        running_gateway(system, settings=settings) as server,
        connected(server, "ada") as ada,
    ):
        for _ in range(4):
            await ada.send_raw("nonsense")
        await ada.send(type="ping")  # a good frame resets the count
        for _ in range(5):
            await ada.send_raw("nonsense")
        assert await ada.closed() == 4003


async def test_a_client_that_stops_reading_is_closed_with_4002(system: ActorSystem) -> None:
    settings = GatewaySettings(send_queue_size=16, presence=FAST_PRESENCE)
    async with (
        running_gateway(system, settings=settings) as server,
        connected(server, "ada", message_queue_size=1) as ada,
    ):
        (session,) = server.gateway.sessions
        frame = '{"type":"update","event":{"type":"padding","data":"' + "x" * 15_000 + '"}}'
        with trio.fail_after(30):
            while session.close_code is None:  # the socket fills up, then the queue
                session.push(frame)
                await trio.lowlevel.checkpoint()
        assert session.close_code == 4002
        assert await ada.closed() == 4002
    assert server.gateway.metrics.slow_sessions._value.get() == 1


async def test_a_client_that_does_not_answer_pings_is_closed_with_4004(
    system: ActorSystem,
) -> None:
    settings = GatewaySettings(
        ping_interval=0.1, ping_timeout=0.2, close_timeout=1.0, presence=FAST_PRESENCE
    )
    async with (
        running_gateway(system, settings=settings) as server,
        connected(server, "ada", message_queue_size=1) as ada,
    ):
        (session,) = server.gateway.sessions
        # The presence state waits in the client library's one-frame queue; the pong frame
        # then blocks its reader, which stops reading the socket: pings go unanswered.
        await ada.send(type="ping")
        with trio.fail_after(10):
            await session.stopped.wait()
        assert session.close_code == 4004
        assert await ada.closed() == 4004


async def test_stopping_the_server_closes_sessions_with_1001(system: ActorSystem) -> None:
    async with running_gateway(system) as server, connected(server, "ada") as ada:
        await server.gateway.close_sessions()
        assert await ada.closed() == 1001


def _upgrade_headers(origin: str | None = None) -> list[tuple[str, str]]:
    headers = [
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ]
    return headers + ([("origin", origin)] if origin else [])


async def test_origins(system: ActorSystem) -> None:
    async with running_gateway(system) as server:
        own = f"http://127.0.0.1:{server.port}"
        async with connected(server, "ada", headers=[(b"Origin", own.encode())]) as ada:
            await _still_serves(ada)
        for origin in ["http://evil.example", "null", f"http://127.0.0.1:{server.port + 1}"]:
            status, _, body = await http_request(
                server.port, "GET", "/ws", headers=_upgrade_headers(origin)
            )
            assert (status, body) == (403, b"origin not allowed\n")
        assert server.gateway.metrics.handshakes_refused.labels("origin")._value.get() == 3
    settings = GatewaySettings(allowed_origins=("https://chat.example",), presence=FAST_PRESENCE)
    async with running_gateway(system, settings=settings) as server:
        async with connected(server, "ada", headers=[(b"Origin", b"https://chat.example")]):
            pass
        status, _, _ = await http_request(server.port, "GET", "/ws", headers=_upgrade_headers(own))
        assert status == 403


async def test_only_slash_ws_upgrades(server: Server) -> None:
    for path in ["/", "/elsewhere", "/ws/more"]:
        status, _, _ = await http_request(server.port, "GET", path, headers=_upgrade_headers())
        assert status == 404
    headers = [("connection", "Upgrade"), ("upgrade", "h2c")]
    status, _, _ = await http_request(server.port, "GET", "/ws", headers=headers)
    assert status == 404


async def test_a_session_that_fails_closes_with_1011_and_others_go_on(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    from actors.server.gateway import Session

    async def broken(self: Session, room: str, ref: str | None) -> None:
        raise RuntimeError("a bug in join")

    async with connected(server, "ada") as ada, connected(server, "bob") as bob:
        monkeypatch.setattr(Session, "join", broken)
        await ada.send(type="join", room="lobby")
        assert await ada.closed() == 1011
        await _still_serves(bob)
    assert server.gateway.metrics.sessions_closed.labels("1011")._value.get() == 1


async def test_a_broken_handshake_is_refused_and_the_server_goes_on(server: Server) -> None:
    without_key = [("connection", "Upgrade"), ("upgrade", "websocket")]
    status, _, _ = await http_request(server.port, "GET", "/ws", headers=without_key)
    assert status == 400
    old_version = [*without_key, ("sec-websocket-version", "8"), ("sec-websocket-key", "x")]
    status, headers, _ = await http_request(server.port, "GET", "/ws", headers=old_version)
    assert (status, headers["sec-websocket-version"]) == (426, "13")
    async with connected(server, "ada") as ada:
        await _still_serves(ada)
