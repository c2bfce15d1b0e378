"""The gateway's one port: the page, ``POST /token``, ``/metrics``, ``/health``, the probes
``/livez`` and ``/readyz``, and ``/ws``.

Plain HTTP is served by the h11 server of ``actors.observability``; a request to upgrade is
checked here (path, origin) and handed, bytes and all, to ``trio_websocket.wrap_server_stream``.
trio-websocket's own ``serve_websocket`` cannot be used: it answers a plain GET with 400 before
any handler runs, so the page could not share the port.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Final

import orjson
import trio
import trio_websocket

from actors._errors import InvalidIdentifierError
from actors.messages import check_user_id
from actors.observability import combine_checks
from actors.pubsub import Position
from actors.server.gateway._probes import broker_readiness, system_liveness
from actors.server.gateway._protocol import Hello, ProtocolError, parse_client_frame
from actors.server.gateway._session import CLOSE_UNAUTHORIZED
from actors.server.gateway._tokens import Identity, InvalidTokenError
from actors.server.http import HttpRequest, HttpResponse, ObservabilityRoutes, serve_http

if TYPE_CHECKING:
    from actors.observability import HealthReport
    from actors.server.gateway._gateway import Gateway
    from actors.server.http import HealthSource, ProbeSource

logger = logging.getLogger(__name__)

STATIC: Final = Path(__file__).parent / "static"
WEBSOCKET_PATH: Final = "/ws"
# A close frame's reason fits in 123 bytes of UTF-8; the refusals here are ASCII.
MAX_CLOSE_REASON: Final = 100
_CONTENT_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
_PAGE_HEADERS: Final = (
    ("cache-control", "no-cache"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    (
        "content-security-policy",
        "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
)
_JSON: Final = "application/json"


def _static_files() -> dict[str, tuple[bytes, str]]:
    """The page's files by URL path, read once: ``/`` and ``/static/NAME``."""
    files: dict[str, tuple[bytes, str]] = {}
    if STATIC.is_dir():
        for path in sorted(STATIC.iterdir()):
            content_type = _CONTENT_TYPES.get(path.suffix)
            if path.is_file() and content_type is not None:
                files[f"/static/{path.name}"] = (path.read_bytes(), content_type)
    if "/static/index.html" in files:
        files["/"] = files["/static/index.html"]
    return files


class GatewayWeb:
    """Answers the gateway's HTTP requests and takes over its WebSocket upgrades.

    Args:
        gateway: What the sessions run in.
        health: The ``/health`` source.
        liveness: The ``/livez`` source; default: the gateway's actor system
            (``system_liveness``).
        readiness: The ``/readyz`` source; default: the broker's connection
            (``broker_readiness``).
    """

    def __init__(
        self,
        gateway: Gateway,
        health: HealthSource,
        *,
        liveness: ProbeSource | None = None,
        readiness: ProbeSource | None = None,
    ) -> None:
        self.gateway = gateway
        self.observability = ObservabilityRoutes(
            gateway.registry,
            health,
            liveness=liveness or system_liveness(gateway.system),
            readiness=readiness or self._broker_ready,
        )
        self.files = _static_files()

    def _broker_ready(self) -> HealthReport:
        return combine_checks({"broker": broker_readiness(self.gateway.pubsub)})

    async def respond(self, request: HttpRequest) -> HttpResponse:
        """Answer a plain HTTP request: the page, its files, tokens, ``/metrics``, ``/health``."""
        answer = await self.observability.respond(request)
        if answer is not None:
            return answer
        if request.path == "/token":
            return self._token(request)
        entry = self.files.get(request.path)
        if entry is None:
            return HttpResponse.text(404, "not found")
        if request.method not in {"GET", "HEAD"}:
            return HttpResponse(405, b"method not allowed\n", headers=(("allow", "GET, HEAD"),))
        body, content_type = entry
        return HttpResponse(200, body, content_type, _PAGE_HEADERS)

    def _token(self, request: HttpRequest) -> HttpResponse:
        """The demo login: a token for any name, or 404 when it is off."""
        demo_login = self.gateway.demo_login
        if demo_login is None:
            return HttpResponse.text(404, "not found")
        if request.method != "POST":
            return HttpResponse(405, b"method not allowed\n", headers=(("allow", "POST"),))
        try:
            document = orjson.loads(request.body)
            name = document.get("name") if isinstance(document, dict) else None
            token, expires_at = demo_login.issue(check_user_id(name))
        except orjson.JSONDecodeError:
            return _json(400, {"error": 'the body must be JSON: {"name": "..."}'})
        except InvalidIdentifierError as error:
            return _json(400, {"error": str(error)})
        return _json(200, {"token": token, "user_id": name, "expires_at": expires_at})

    def origin_allowed(self, request: HttpRequest) -> bool:
        """Whether the request's ``Origin`` (if any) may open a WebSocket."""
        origin = request.headers.get("origin")
        if origin is None:
            return True  # not a browser: the token is what authenticates it
        allowed = self.gateway.settings.allowed_origins
        if allowed is None:
            host = request.headers.get("host", "")
            allowed = (f"http://{host}", f"https://{host}")
        return origin in allowed

    async def upgrade(self, request: HttpRequest, stream: trio.abc.Stream) -> HttpResponse | None:
        """Take over an upgrade request and run a session on it, or return the refusal."""
        refused = self.gateway.metrics.handshakes_refused
        if request.path != WEBSOCKET_PATH or not request.wants_upgrade("websocket"):
            refused.labels("path").inc()
            return HttpResponse.text(404, "not found")
        if not self.origin_allowed(request):
            refused.labels("origin").inc()
            logger.info("WebSocket from origin %r refused", request.headers.get("origin"))
            return HttpResponse.text(403, "origin not allowed")
        settings = self.gateway.settings
        connection: trio_websocket.WebSocketConnection | None = None
        hello: tuple[Identity, Hello] | None = None
        async with trio.open_nursery() as nursery:
            with trio.move_on_after(settings.hello_timeout):
                handshake = await trio_websocket.wrap_server_stream(
                    nursery, stream, max_message_size=settings.max_frame_bytes
                )
                connection = await handshake.accept()
                hello = await self._hello(connection)
            if connection is None or connection.closed is not None:
                pass
            elif hello is not None:
                agent = request.headers.get("user-agent", "")
                identity, frame = hello
                since = _notifications_since(frame)
                await self.gateway.serve_connection(
                    connection, identity.user_id, agent, since, identity.rooms
                )
            else:
                refused.labels("hello").inc()
                with trio.move_on_after(settings.close_timeout):
                    await connection.aclose(CLOSE_UNAUTHORIZED, "no hello")
            nursery.cancel_scope.cancel()
        return None

    async def _hello(
        self, connection: trio_websocket.WebSocketConnection
    ) -> tuple[Identity, Hello] | None:
        """The identity and the frame of a valid ``hello``; anything else closes with 4001."""
        try:
            data = await connection.get_message()
        except trio_websocket.ConnectionClosed:
            return None
        try:
            frame = parse_client_frame(data)
            if not isinstance(frame, Hello):
                raise ProtocolError("bad_frame", "say hello first")
            return self.gateway.tokens.verify(frame.token), frame
        except (ProtocolError, InvalidTokenError) as error:
            self.gateway.metrics.handshakes_refused.labels("token").inc()
            logger.info("a hello was refused: %s", error)
            with trio.move_on_after(self.gateway.settings.close_timeout):
                await connection.aclose(CLOSE_UNAUTHORIZED, str(error)[:MAX_CLOSE_REASON])
            return None


def _notifications_since(hello: Hello) -> Position | None:
    """The position of the last notification a reconnecting client got, if it said."""
    if hello.notifications_epoch is None or hello.notifications_offset is None:
        return None
    return Position(hello.notifications_epoch, hello.notifications_offset)


def _json(status: int, document: dict[str, object]) -> HttpResponse:
    return HttpResponse(
        status, orjson.dumps(document) + b"\n", _JSON, (("cache-control", "no-store"),)
    )


async def serve_gateway(
    gateway: Gateway,
    port: int,
    *,
    host: str = "127.0.0.1",
    health: HealthSource | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the gateway's page, token endpoint, metrics, health, probes and WebSocket on one
    port.

    Start it with ``port = await nursery.start(serve_gateway, gateway, 0)``.

    Args:
        gateway: What the sessions run in (``open_gateway``).
        port: The TCP port; 0 picks a free one.
        host: The address to bind; loopback by default (``0.0.0.0`` in a container).
        health: The ``/health`` source; default: the gateway's PubSub health.
        task_status: Given the bound port once the server listens.

    Raises:
        AddressInUseError: Another socket holds the address and port.
        OSError: The address cannot be bound for another reason.
    """
    web = GatewayWeb(gateway, health or gateway.pubsub.health)
    await serve_http(
        port,
        web.respond,
        host=host,
        upgrade=web.upgrade,
        server_name="actors-gateway",
        task_status=task_status,
    )
