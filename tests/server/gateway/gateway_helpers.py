"""A gateway on a real port for tests, and a small WebSocket client that speaks its protocol."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import orjson
import trio
import trio.testing
import trio_websocket

from actors import ActorSystem
from actors.observability import PubSubMetrics
from actors.presence import PresenceSettings
from actors.pubsub import open_pubsub
from actors.server.gateway import (
    DemoLogin,
    Gateway,
    GatewaySettings,
    TokenVerifier,
    open_gateway,
    serve_gateway,
)

SECRET = b"a test secret of 32 bytes length"
TOKENS = TokenVerifier.from_secret(SECRET)
WAIT = 10.0  # seconds a test waits for something that should come at once
FAST_PRESENCE = PresenceSettings(ttl=6.0, heartbeat=2.0, sweep_interval=0.2, grace=0.0)


@attrs.frozen
class Server:
    gateway: Gateway
    port: int

    def url(self, path: str = "/ws") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def token(self, name: str) -> str:
        """A valid HS256 token for ``name`` (signed with the secret, demo login on or off)."""
        return DemoLogin(self.gateway.tokens).issue(name)[0]


@asynccontextmanager
async def running_gateway(
    system: ActorSystem,
    url: str = "memory://",
    settings: GatewaySettings | None = None,
    *,
    tokens: TokenVerifier = TOKENS,
    demo_login: bool = True,
) -> AsyncIterator[Server]:
    """A gateway served on a free port of the loopback interface, with the demo login unless
    ``demo_login`` is False."""
    settings = settings or GatewaySettings(presence=FAST_PRESENCE, stats_interval=3600)
    login = DemoLogin(tokens) if demo_login else None
    async with (
        open_pubsub(system, url, metrics=PubSubMetrics()) as pubsub,
        open_gateway(system, pubsub, tokens=tokens, demo_login=login, settings=settings) as gateway,
        trio.open_nursery() as nursery,
    ):
        port = await nursery.start(serve_gateway, gateway, 0)
        yield Server(gateway, port)
        nursery.cancel_scope.cancel()


class Client:
    """One WebSocket connection, read frame by frame."""

    def __init__(self, connection: trio_websocket.WebSocketConnection) -> None:
        self.connection = connection

    async def aclose(self) -> None:
        """Close the connection and its socket, whoever closed first."""
        with trio.move_on_after(WAIT):
            await self.connection.aclose()
        # trio-websocket's client leaves its socket open when the server closed first.
        await trio.aclose_forcefully(self.connection._stream)

    async def drop(self) -> None:
        """Cut the connection without a close frame, as a closed tab or a lost network does."""
        await trio.aclose_forcefully(self.connection._stream)

    async def send(self, **frame: Any) -> None:
        await self.connection.send_message(orjson.dumps(frame).decode())

    async def send_raw(self, data: str | bytes) -> None:
        await self.connection.send_message(data)

    async def receive(self) -> dict[str, Any]:
        with trio.fail_after(WAIT):
            data = await self.connection.get_message()
        assert isinstance(data, str)
        frame = orjson.loads(data)
        assert isinstance(frame, dict)
        return frame

    async def expect(self, kind: str, **fields: Any) -> dict[str, Any]:
        """The next frame of type ``kind``, skipping others; its fields must match ``fields``."""
        while True:
            frame = await self.receive()
            if frame["type"] == kind and all(frame.get(k) == v for k, v in fields.items()):
                return frame

    async def expect_presence(
        self, scope: str, *, joined: str | None = None, left: str | None = None
    ) -> dict[str, Any]:
        """The next ``presence_diff`` of ``scope`` with ``joined`` (or ``left``) among its users.

        Diffs are gathered per interval and may repeat what a state already said (a user's own
        join, say), so other diffs are skipped.
        """
        while True:
            frame = await self.expect("presence_diff", scope=scope)
            if (joined is None or joined in frame["joined"]) and (
                left is None or left in frame["left"]
            ):
                return frame

    async def expect_any(self, kinds: tuple[str, ...]) -> dict[str, Any]:
        """The next frame whose type is one of ``kinds``, skipping others."""
        while True:
            frame = await self.receive()
            if frame["type"] in kinds:
                return frame

    async def closed(self) -> int | None:
        """Read until the server closes; the close code."""
        with trio.fail_after(WAIT):
            while True:
                try:
                    await self.connection.get_message()
                except trio_websocket.ConnectionClosed as closed:
                    return closed.reason.code if closed.reason else None


@asynccontextmanager
async def connected_in_memory(gateway: Gateway, name: str) -> AsyncIterator[Client]:
    """A session of ``name`` over an in-memory stream, welcomed: no socket, so tests of it may
    run on virtual time (``autojump_clock``). The HTTP server and ``hello`` are skipped."""
    client_stream, server_stream = trio.testing.memory_stream_pair()

    async def serve(nursery: trio.Nursery) -> None:
        request = await trio_websocket.wrap_server_stream(nursery, server_stream)
        await gateway.serve_connection(await request.accept(), name)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve, nursery)
        # The stream is typed as a socket's, but any trio stream does.
        connection = await trio_websocket.wrap_client_stream(
            nursery,
            client_stream,  # type: ignore[arg-type]
            "gateway",
            "/ws",
            message_queue_size=64,
        )
        client = Client(connection)
        try:
            welcome = await client.receive()
            assert welcome["type"] == "welcome", welcome
            yield client
        finally:
            await client.aclose()


@asynccontextmanager
async def connected(
    server: Server,
    name: str,
    *,
    hello: bool = True,
    message_queue_size: int = 64,
    headers: list[tuple[bytes, bytes]] | None = None,
    hello_fields: dict[str, Any] | None = None,
) -> AsyncIterator[Client]:
    """A client connected (and, with ``hello``, welcomed) as ``name``; ``hello_fields`` go in
    its ``hello`` besides the token."""
    async with trio_websocket.open_websocket_url(
        server.url(), extra_headers=headers, message_queue_size=message_queue_size
    ) as connection:
        client = Client(connection)
        try:
            if hello:
                await client.send(type="hello", token=server.token(name), **(hello_fields or {}))
                welcome = await client.receive()
                assert welcome["type"] == "welcome", welcome
                assert welcome["user_id"] == name
            yield client
        finally:
            await client.aclose()


async def http_request(
    port: int,
    method: str,
    path: str,
    body: bytes = b"",
    headers: list[tuple[str, str]] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request on a new connection: status, headers (lower case) and body."""
    import h11

    client = h11.Connection(h11.CLIENT)
    request_headers = [("host", f"127.0.0.1:{port}"), ("content-length", str(len(body)))]
    request_headers += headers or []
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        data = client.send(h11.Request(method=method, target=path, headers=request_headers))
        data = (data or b"") + (client.send(h11.Data(data=body)) if body else b"") or b""
        data += client.send(h11.EndOfMessage()) or b""
        await stream.send_all(data)
        status, response_headers, content = 0, {}, bytearray()
        with trio.fail_after(WAIT):
            while True:
                event = client.next_event()
                if event is h11.NEED_DATA:
                    client.receive_data(await stream.receive_some(65536))
                elif isinstance(event, h11.Response):
                    status = event.status_code
                    response_headers = {k.decode(): v.decode() for k, v in event.headers}
                elif isinstance(event, h11.Data):
                    content += event.data
                elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                    return status, response_headers, bytes(content)


async def post_json(port: int, path: str, document: object) -> tuple[int, dict[str, Any]]:
    status, _, body = await http_request(
        port, "POST", path, orjson.dumps(document), [("content-type", "application/json")]
    )
    answer = orjson.loads(body)
    assert isinstance(answer, dict)
    return status, answer
