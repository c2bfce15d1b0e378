"""A small HTTP/1.1 server on trio and h11 for ``/metrics`` and ``/health``.

Each connection runs in its own task, so a slow client never holds up another. Connections are
kept alive between requests; each request must arrive whole within ``connection_timeout``
(an idle keep-alive connection is closed quietly after it, a half-sent request gets 408), and
requests larger than ``max_request_bytes`` get 431 or 413. A malformed request gets 400; no
request ever stops the server.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final

import h11
import trio
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from actors.observability._health import HealthCheck, HealthReport, combine_checks
from actors.observability._metrics import PubSubMetrics

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["HealthSource", "serve_observability"]

logger = logging.getLogger(__name__)

HealthSource = Callable[[], Awaitable[HealthReport]] | Callable[[], HealthReport]
"""What ``/health`` calls for the report: a function or an async function."""

DEFAULT_MAX_REQUEST_BYTES: Final = 16 * 1024
DEFAULT_CONNECTION_TIMEOUT: Final = 30.0
DEFAULT_HEALTH_TIMEOUT: Final = 5.0
_RECEIVE_BYTES: Final = 8192
_JSON: Final = b"application/json"
_TEXT: Final = b"text/plain; charset=utf-8"
_SERVER: Final = b"actors-observability"


class _RequestTooLarge(Exception):
    """The body of a request is larger than the server takes."""


class _Connection:
    """One client connection: reads requests and writes responses until either side is done."""

    def __init__(self, server: _Server, stream: trio.SocketStream) -> None:
        self.server = server
        self.stream = stream
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=server.max_request_bytes)
        self.received_in_cycle = 0

    async def run(self) -> None:
        """Serve requests until the client closes, times out, errs or asks to close."""
        while True:
            self.received_in_cycle = len(self.h11.trailing_data[0])  # pipelined bytes
            with trio.move_on_after(self.server.connection_timeout) as scope:
                request = await self._read_request()
            if scope.cancelled_caught:
                if self.received_in_cycle:
                    await self._send_simple(408, b"request timeout\n", close=True)
                return
            if request is None:
                return
            status, content_type, body, extra = await self.server.respond(request)
            await self._send(request, status, content_type, body, extra)
            if self.h11.our_state is not h11.DONE or self.h11.their_state is not h11.DONE:
                return
            self.h11.start_next_cycle()

    async def _next_event(self) -> h11.Event | type[h11.PAUSED]:
        while True:
            event = self.h11.next_event()
            if event is h11.PAUSED or isinstance(event, h11.Event):
                return event
            data = await self.stream.receive_some(_RECEIVE_BYTES)
            self.received_in_cycle += len(data)
            self.h11.receive_data(data)

    async def _read_request(self) -> h11.Request | None:
        """The next whole request (its body read and dropped), or None once the client closed."""
        event = await self._next_event()
        if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None
        if not isinstance(event, h11.Request):  # pragma: no cover - h11 gives a request first
            raise h11.RemoteProtocolError("expected a request", error_status_hint=400)
        request, body_bytes = event, 0
        # h11 bounds a head that arrives in pieces; one that arrives whole is measured here.
        head_bytes = len(request.method) + len(request.target) + 14
        head_bytes += sum(len(name) + len(value) + 4 for name, value in request.headers)
        if head_bytes > self.server.max_request_bytes:
            raise h11.RemoteProtocolError("request head too large", error_status_hint=431)
        while True:
            event = await self._next_event()
            if isinstance(event, h11.Data):
                body_bytes += len(event.data)
                if body_bytes > self.server.max_request_bytes:
                    raise _RequestTooLarge
            elif isinstance(event, h11.EndOfMessage):
                return request
            else:  # pragma: no cover - h11 raises RemoteProtocolError for broken framing
                raise h11.RemoteProtocolError("unexpected event", error_status_hint=400)

    async def _send(
        self,
        request: h11.Request,
        status: int,
        content_type: bytes,
        body: bytes,
        extra: list[tuple[bytes, bytes]],
    ) -> None:
        headers = [
            (b"content-type", content_type),
            (b"content-length", str(len(body)).encode()),
            (b"server", _SERVER),
            *extra,
        ]
        data = self.h11.send(h11.Response(status_code=status, headers=headers)) or b""
        if request.method != b"HEAD":
            data += self.h11.send(h11.Data(data=body)) or b""
        data += self.h11.send(h11.EndOfMessage()) or b""
        with trio.fail_after(self.server.connection_timeout):
            await self.stream.send_all(data)

    async def _send_simple(self, status: int, body: bytes, *, close: bool) -> None:
        """Send an error response, if the connection is still in a state to send one."""
        if self.h11.our_state not in {h11.IDLE, h11.SEND_RESPONSE}:
            return
        headers = [
            (b"content-type", _TEXT),
            (b"content-length", str(len(body)).encode()),
            (b"server", _SERVER),
        ]
        if close:
            headers.append((b"connection", b"close"))
        try:
            data = self.h11.send(h11.Response(status_code=status, headers=headers)) or b""
            data += self.h11.send(h11.Data(data=body)) or b""
            data += self.h11.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError:  # pragma: no cover - defensive
            return
        with trio.move_on_after(self.server.connection_timeout):
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
            logger.exception("observability connection failed")
            await self._send_simple(500, b"internal error\n", close=True)
        finally:
            await trio.aclose_forcefully(self.stream)


class _Server:
    """What every connection shares: the sources and the limits."""

    def __init__(
        self,
        registry: CollectorRegistry,
        health: HealthSource,
        *,
        max_request_bytes: int,
        connection_timeout: float,
        health_timeout: float,
    ) -> None:
        self.registry = registry
        self.health = health
        self.max_request_bytes = max_request_bytes
        self.connection_timeout = connection_timeout
        self.health_timeout = health_timeout

    async def respond(
        self, request: h11.Request
    ) -> tuple[int, bytes, bytes, list[tuple[bytes, bytes]]]:
        """Status, content type, body and extra headers for ``request``."""
        path = request.target.split(b"?", 1)[0]
        if path not in {b"/metrics", b"/health"}:
            return 404, _TEXT, b"not found\n", []
        if request.method not in {b"GET", b"HEAD"}:
            return 405, _TEXT, b"method not allowed\n", [(b"allow", b"GET, HEAD")]
        if path == b"/metrics":
            return 200, CONTENT_TYPE_LATEST.encode(), generate_latest(self.registry), []
        report = await self.report()
        return report.http_status, _JSON, report.to_json().encode() + b"\n", []

    async def report(self) -> HealthReport:
        """The health report, or a "down" one if the source fails or takes too long."""
        try:
            with trio.fail_after(self.health_timeout):
                result = self.health()
                if inspect.isawaitable(result):
                    result = await result
            if not isinstance(result, HealthReport):
                raise TypeError(f"the health source returned {result!r}, not a HealthReport")
            return result
        except trio.TooSlowError:
            detail = {"error": f"no report within {self.health_timeout} s"}
        except Exception as error:
            logger.exception("health check failed")
            detail = {"error": f"{type(error).__name__}: {error}"}
        return combine_checks({"health": HealthCheck.down(**detail)})


async def serve_observability(
    port: int,
    *,
    host: str = "127.0.0.1",
    metrics: PubSubMetrics | CollectorRegistry,
    health: HealthSource,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    connection_timeout: float = DEFAULT_CONNECTION_TIMEOUT,
    health_timeout: float = DEFAULT_HEALTH_TIMEOUT,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``/metrics`` (Prometheus text format) and ``/health`` (JSON) until cancelled.

    Start it with ``port = await nursery.start(serve_observability, 0, metrics=..., health=...)``.
    ``/health`` answers 200 for up and degraded and 503 for down; other paths get 404, methods
    other than GET and HEAD get 405.

    Args:
        port: The TCP port to listen on; 0 picks a free one.
        host: The address to bind; the loopback interface by default.
        metrics: The metrics to expose, or any Prometheus registry.
        health: Called for each ``/health`` request; a function or an async function.
        max_request_bytes: The largest request head, and the largest body, accepted.
        connection_timeout: Seconds each request may take to arrive, and each response to
            be sent; an idle keep-alive connection is closed after it.
        health_timeout: Seconds ``health`` may take before the report is "down".
        task_status: Given the bound port once the server listens.

    Raises:
        OSError: If the address cannot be bound.
    """
    registry = metrics.registry if isinstance(metrics, PubSubMetrics) else metrics
    server = _Server(
        registry,
        health,
        max_request_bytes=max_request_bytes,
        connection_timeout=connection_timeout,
        health_timeout=health_timeout,
    )
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound_port: int = listeners[0].socket.getsockname()[1]
    logger.info("observability endpoint listening on %s:%d", host, bound_port)

    async def handle(stream: trio.SocketStream) -> None:
        await _Connection(server, stream).serve()

    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, handle, listeners)
        task_status.started(bound_port)
