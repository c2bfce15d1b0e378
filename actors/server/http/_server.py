"""A small HTTP/1.1 server on trio and h11, with a hand-off for protocol upgrades.

Each connection runs in its own task, so a slow client never holds up another. Connections are
kept alive between requests; each request must arrive whole within ``connection_timeout``
(an idle keep-alive connection is closed quietly after it, a half-sent request gets 408), and
requests larger than ``max_request_bytes`` get 431 or 413. A malformed request gets 400; no
request ever stops the server.

A request asking to upgrade (``Connection: upgrade``) is handed, with the stream, to the
``upgrade`` callback: the stream it gets replays the request's bytes first, so a WebSocket
library can read the handshake itself as if it had been first on the connection.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Awaitable, Callable
from typing import Final

import attrs
import h11
import trio

from actors._errors import AddressInUseError

__all__ = ["HttpRequest", "HttpResponse", "ReplayStream", "UpgradeHandler", "serve_http"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_REQUEST_BYTES: Final = 16 * 1024
DEFAULT_CONNECTION_TIMEOUT: Final = 30.0
_RECEIVE_BYTES: Final = 8192
TEXT: Final = "text/plain; charset=utf-8"


@attrs.frozen
class HttpRequest:
    """One request, its body read whole (at most ``max_request_bytes``)."""

    method: str
    target: str
    """The path and query, as sent."""
    headers: dict[str, str]
    """Header names in lower case; a repeated header's values joined with ``", "``."""
    body: bytes = b""

    @property
    def path(self) -> str:
        """The target without its query string."""
        return self.target.split("?", 1)[0]

    def wants_upgrade(self, protocol: str) -> bool:
        """Whether the request asks to switch to ``protocol`` (such as ``"websocket"``)."""
        connection = {
            part.strip() for part in self.headers.get("connection", "").lower().split(",")
        }
        return "upgrade" in connection and self.headers.get("upgrade", "").lower() == protocol


@attrs.frozen
class HttpResponse:
    """What a handler answers."""

    status: int
    body: bytes = b""
    content_type: str = TEXT
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def text(cls, status: int, text: str) -> HttpResponse:
        """A plain text response; a newline is added."""
        return cls(status, text.encode() + b"\n")


Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]
"""Answers one request."""

UpgradeHandler = Callable[[HttpRequest, trio.abc.Stream], Awaitable["HttpResponse | None"]]
"""Takes over a connection whose request asks for an upgrade and returns None, or refuses it
by returning the response to send (without touching the stream); either way the server closes
the connection afterwards."""


class _RequestTooLarge(Exception):
    """The body of a request is larger than the server takes."""


class ReplayStream(trio.abc.Stream):
    """A stream that first gives back bytes already read from it, then reads on."""

    def __init__(self, stream: trio.abc.Stream, already_read: bytes) -> None:
        self.stream = stream
        self._replay = already_read
        # Every frame of a WebSocket goes through here: skip a layer of calls for sending.
        self.send_all = stream.send_all  # type: ignore[method-assign]

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._replay:
            size = len(self._replay) if max_bytes is None else max_bytes
            data, self._replay = self._replay[:size], self._replay[size:]
            await trio.lowlevel.checkpoint()
            return data
        return bytes(await self.stream.receive_some(max_bytes))

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.stream.send_all(data)  # pragma: no cover - replaced in __init__

    async def wait_send_all_might_not_block(self) -> None:
        await self.stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.stream.aclose()


@attrs.frozen
class _Limits:
    max_request_bytes: int
    connection_timeout: float


class _Connection:
    """One client connection: reads requests and writes responses until either side is done."""

    def __init__(
        self,
        stream: trio.SocketStream,
        handler: Handler,
        upgrade: UpgradeHandler | None,
        limits: _Limits,
        server_name: bytes,
    ) -> None:
        self.stream = stream
        self.handler = handler
        self.upgrade = upgrade
        self.limits = limits
        self.server_name = server_name
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_request_bytes)
        self.raw = bytearray()  # what arrived in this cycle, replayed to an upgrade handler

    async def run(self) -> None:
        """Serve requests until the client closes, times out, errs, asks to close or upgrades."""
        while True:
            self.raw = bytearray(self.h11.trailing_data[0])  # pipelined bytes
            with trio.move_on_after(self.limits.connection_timeout) as scope:
                request = await self._read_request()
            if scope.cancelled_caught:
                if self.raw:
                    await self._send_simple(408, b"request timeout\n", close=True)
                return
            if request is None:
                return
            if self.upgrade is not None and request.headers.get("upgrade"):
                refusal = await self.upgrade(request, ReplayStream(self.stream, bytes(self.raw)))
                if refusal is not None:
                    closing = (*refusal.headers, ("connection", "close"))
                    await self._send(request, attrs.evolve(refusal, headers=closing))
                return
            response = await self.handler(request)
            await self._send(request, response)
            if self.h11.our_state is not h11.DONE or self.h11.their_state is not h11.DONE:
                return
            self.h11.start_next_cycle()

    async def _next_event(self) -> h11.Event | type[h11.PAUSED]:
        while True:
            event = self.h11.next_event()
            if event is h11.PAUSED or isinstance(event, h11.Event):
                return event
            data = await self.stream.receive_some(_RECEIVE_BYTES)
            self.raw += data
            self.h11.receive_data(data)

    async def _read_request(self) -> HttpRequest | None:
        """The next whole request with its body, or None once the client closed."""
        event = await self._next_event()
        if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None
        if not isinstance(event, h11.Request):  # pragma: no cover - h11 gives a request first
            raise h11.RemoteProtocolError("expected a request", error_status_hint=400)
        head, body = event, bytearray()
        limit = self.limits.max_request_bytes
        # h11 bounds a head that arrives in pieces; one that arrives whole is measured here.
        head_bytes = len(head.method) + len(head.target) + 14
        head_bytes += sum(len(name) + len(value) + 4 for name, value in head.headers)
        if head_bytes > limit:
            raise h11.RemoteProtocolError("request head too large", error_status_hint=431)
        while True:
            event = await self._next_event()
            if isinstance(event, h11.Data):
                body += event.data
                if len(body) > limit:
                    raise _RequestTooLarge
            elif isinstance(event, h11.EndOfMessage) or event is h11.PAUSED:
                # PAUSED: an upgrade request, whose end h11 leaves to whoever takes over.
                break
            else:  # pragma: no cover - h11 raises RemoteProtocolError for broken framing
                raise h11.RemoteProtocolError("unexpected event", error_status_hint=400)
        headers: dict[str, str] = {}
        for name, value in head.headers:
            key, text = name.decode("latin-1"), value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        return HttpRequest(
            method=head.method.decode("ascii", "replace"),
            target=head.target.decode("ascii", "replace"),
            headers=headers,
            body=bytes(body),
        )

    async def _send(self, request: HttpRequest, response: HttpResponse) -> None:
        headers = [
            (b"content-type", response.content_type.encode()),
            (b"content-length", str(len(response.body)).encode()),
            (b"server", self.server_name),
            *((name.encode(), value.encode()) for name, value in response.headers),
        ]
        data = self.h11.send(h11.Response(status_code=response.status, headers=headers)) or b""
        if request.method != "HEAD":
            data += self.h11.send(h11.Data(data=response.body)) or b""
        data += self.h11.send(h11.EndOfMessage()) or b""
        with trio.fail_after(self.limits.connection_timeout):
            await self.stream.send_all(data)

    async def _send_simple(self, status: int, body: bytes, *, close: bool) -> None:
        """Send an error response, if the connection is still in a state to send one."""
        if self.h11.our_state not in {h11.IDLE, h11.SEND_RESPONSE}:
            return
        headers = [
            (b"content-type", TEXT.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"server", self.server_name),
        ]
        if close:
            headers.append((b"connection", b"close"))
        try:
            data = self.h11.send(h11.Response(status_code=status, headers=headers)) or b""
            data += self.h11.send(h11.Data(data=body)) or b""
            data += self.h11.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError:  # pragma: no cover - defensive
            return
        with trio.move_on_after(self.limits.connection_timeout):
            await self.stream.send_all(data)

    async def serve(self) -> None:
        """Run the connection and close it, whatever happens; only cancellation propagates."""
        try:
            await self.run()
        except h11.RemoteProtocolError as error:
            logger.debug("malformed request: %s", error)
            body = (
                b"request head too large\n" if error.error_status_hint == 431 else b"bad request\n"
            )
            await self._send_simple(error.error_status_hint, body, close=True)
        except _RequestTooLarge:
            await self._send_simple(413, b"request too large\n", close=True)
        except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError):
            pass
        except Exception:
            logger.exception("HTTP connection failed")
            await self._send_simple(500, b"internal error\n", close=True)
        finally:
            await trio.aclose_forcefully(self.stream)


async def serve_http(
    port: int,
    handler: Handler,
    *,
    host: str = "127.0.0.1",
    upgrade: UpgradeHandler | None = None,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    connection_timeout: float = DEFAULT_CONNECTION_TIMEOUT,
    server_name: str = "actors",
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve HTTP/1.1 until cancelled: ``port = await nursery.start(serve_http, 0, handler)``.

    Args:
        port: The TCP port to listen on; 0 picks a free one.
        handler: Answers each request.
        host: The address to bind; the loopback interface by default.
        upgrade: Takes over connections whose request carries an ``Upgrade`` header; without
            it they are answered by ``handler`` like any other.
        max_request_bytes: The largest request head, and the largest body, accepted.
        connection_timeout: Seconds each request may take to arrive, and each response to be
            sent; an idle keep-alive connection is closed after it.
        server_name: The ``Server`` header.
        task_status: Given the bound port once the server listens.

    Raises:
        AddressInUseError: Another socket holds the address and port.
        OSError: The address cannot be bound for another reason.
    """
    limits = _Limits(max_request_bytes, connection_timeout)
    try:
        listeners = await trio.open_tcp_listeners(port, host=host)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise AddressInUseError(host, port) from error
        raise
    bound_port: int = listeners[0].socket.getsockname()[1]
    logger.info("HTTP server listening on %s:%d", host, bound_port)

    async def handle(stream: trio.SocketStream) -> None:
        await _Connection(stream, handler, upgrade, limits, server_name.encode()).serve()

    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, handle, listeners)
        task_status.started(bound_port)
