"""``run_server``: the chat server as a program (``python -m actors serve``)."""

from __future__ import annotations

import logging
import os
import secrets
import signal
from functools import partial
from typing import TYPE_CHECKING, Final

import trio

from actors.observability import (
    HealthCheck,
    HealthReport,
    MetricsInstrument,
    PubSubMetrics,
    combine_checks,
)
from actors.pubsub import open_pubsub
from actors.redis import redact_url
from actors.runtime import DEFAULT_GC_THRESHOLD, open_actor_system, tune_garbage_collector
from actors.server.admin import AdminRoutes, is_admin_path, observer_state
from actors.server.gateway._gateway import GatewaySettings, open_gateway
from actors.server.gateway._probes import broker_readiness, system_liveness
from actors.server.gateway._web import GatewayWeb
from actors.server.http import (
    HttpRequest,
    HttpResponse,
    ObservabilityRoutes,
    serve_http,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from actors.pubsub import PubSub
    from actors.runtime import ActorSystem
    from actors.server.gateway._gateway import Gateway
    from actors.server.gateway._tokens import DemoLogin, TokenVerifier

logger = logging.getLogger(__name__)

SECRET_ENVIRONMENT_VARIABLE: Final = "ACTORS_GATEWAY_SECRET"
"""Where ``serve`` reads the HS256 token secret when ``--secret`` is not given."""
SECRET_BYTES: Final = 32  # a made-up token secret: 256 bits, as HS256's key
SESSIONS_CLOSE_GRACE: Final = 1.0  # seconds sessions get to close on a signal
SHUTDOWN_BOUND: Final = 2.0
"""Seconds from SIGINT or SIGTERM to the end of ``run_server``, at any moment: the sessions'
``SESSIONS_CLOSE_GRACE``, then the rooms, presence and the Redis connection (a deployment's
grace period after its stop signal must be longer)."""


def secret_from(value: str | None) -> bytes | None:
    """The HS256 token secret: ``value``, else ``$ACTORS_GATEWAY_SECRET``; None if neither."""
    text = value or os.environ.get(SECRET_ENVIRONMENT_VARIABLE)
    return text.encode() if text else None


def random_secret() -> bytes:
    """A made-up HS256 secret: fine for one process with the demo login, which issues tokens
    with it; processes sharing Redis must share a secret."""
    return secrets.token_bytes(SECRET_BYTES)


async def run_server(
    *,
    url: str = "memory://",
    host: str = "127.0.0.1",
    port: int = 8000,
    tokens: TokenVerifier,
    demo_login: DemoLogin | None = None,
    settings: GatewaySettings | None = None,
    announce: Callable[[str], object] = print,
    gc_threshold: int | None = DEFAULT_GC_THRESHOLD,
    admin_token: bytes | None = None,
) -> None:
    """Run the chat server until SIGINT or SIGTERM, then stop in order.

    HTTP is served at once: ``/health`` (503 with the cause while the broker is out of reach)
    and ``/metrics``, announced as ``listening on ...``. The gateway (page, token, WebSocket)
    starts once the broker is connected, announced as ``serving on ...``; until then those
    paths answer 503. The Redis connection retries quietly meanwhile.

    On a signal, at any moment (startup included), every session gets up to
    ``SESSIONS_CLOSE_GRACE`` (1 s) to close with 1001 (clients reconnect, possibly to another
    process), then the rooms, presence and the Redis connection stop.

    Args:
        tokens: Verifies the token of each connection's ``hello``.
        demo_login: Issues tokens for any name at ``POST /token``; None: ``/token`` is 404.
        gc_threshold: Once the server is up, ``tune_garbage_collector(gc_threshold)``: a
            session is a task, and a fan-out leaves a frame in flight in each of them, which
            Python's default collector setting turns into full collections (see
            docs/performance.md); None leaves the collector as it is.
        admin_token: Serve the observer (``/admin``, docs/observer.md) to whoever holds this
            token (``admin_token_from``); None: ``/admin`` answers 404.

    Raises:
        AddressInUseError: Another socket holds ``host`` and ``port``; nothing was served.
        RedisConfigurationError: The Redis connection cannot work as configured (refused
            credentials, a refused ``SELECT``, a certificate that does not verify).
    """
    try:
        await _serve_until_signalled(
            url, host, port, (tokens, demo_login), settings, announce, gc_threshold, admin_token
        )
    except BaseExceptionGroup as group:
        # One failure (a port in use, Redis refusing us) comes wrapped by the nurseries it
        # crossed: raise it as itself, for a plain error message.
        error: BaseException = group
        while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
            error = error.exceptions[0]
        if error is group:
            raise
        raise error from None


async def _serve_until_signalled(
    url: str,
    host: str,
    port: int,
    identity: tuple[TokenVerifier, DemoLogin | None],
    settings: GatewaySettings | None,
    announce: Callable[[str], object],
    gc_threshold: int | None,
    admin_token: bytes | None = None,
) -> None:
    metrics = PubSubMetrics()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with (
            open_actor_system(instruments=[MetricsInstrument(metrics)]) as system,
            open_pubsub(system, url, metrics=metrics) as pubsub,
            trio.open_nursery() as nursery,
        ):
            # HTTP first: /health and /metrics answer while the broker is out of reach (503
            # with the cause), the page and the WebSocket answer 503 until the gateway is up.
            # The pubsub block above starts at once, connected or not.
            site = _Site(system, pubsub)
            if admin_token is not None:
                site.admin = _admin_routes(admin_token, system, pubsub, site, settings)
            bound = await nursery.start(
                partial(
                    serve_http,
                    port,
                    site.respond,
                    host=host,
                    upgrade=site.upgrade,
                    server_name="actors-gateway",
                )
            )
            shown = "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host
            where = f"http://{shown}:{bound} ({redact_url(url)})"
            announce(f"listening on {where}: /health and /metrics answer now")

            def ready() -> None:
                announce(f"serving on {where}")

            nursery.start_soon(
                _run_gateway, system, pubsub, identity, settings, site, gc_threshold, ready
            )
            async for received in signals:
                logger.info("signal %d: stopping", received)
                break
            if site.gateway is not None:
                # Sessions first, so that clients reconnect elsewhere; a client that does not
                # answer its close frame in time is dropped with the rest.
                with trio.move_on_after(SESSIONS_CLOSE_GRACE):
                    await site.gateway.close_sessions()
            nursery.cancel_scope.cancel()


class _Site:
    """The server's HTTP face: health, probes and metrics from the start, the gateway once it
    is up. ``/livez`` answers 200 from the start (Redis or not); ``/readyz`` once the gateway is
    up and the broker connected with its subscriptions restored."""

    def __init__(self, system: ActorSystem, pubsub: PubSub) -> None:
        assert pubsub.metrics is not None
        self.pubsub = pubsub
        self.liveness = system_liveness(system)
        self.starting = ObservabilityRoutes(
            pubsub.metrics, pubsub.health, liveness=self.liveness, readiness=self.readiness
        )
        self.gateway: Gateway | None = None
        self.web: GatewayWeb | None = None
        self.admin: AdminRoutes | None = None
        """The observer, if an admin token is configured; else ``/admin`` answers 404."""

    def readiness(self) -> HealthReport:
        gateway = HealthCheck.up() if self.web is not None else HealthCheck.down(reason="starting")
        return combine_checks({"broker": broker_readiness(self.pubsub), "gateway": gateway})

    def gateway_up(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.web = GatewayWeb(
            gateway, gateway.pubsub.health, liveness=self.liveness, readiness=self.readiness
        )

    async def respond(self, request: HttpRequest) -> HttpResponse:
        if is_admin_path(request.path):
            if self.admin is None:
                return HttpResponse.text(404, "not found")
            return await self.admin.respond(request)
        if self.web is not None:
            return await self.web.respond(request)
        answer = await self.starting.respond(request)
        return answer or _starting()

    async def upgrade(self, request: HttpRequest, stream: trio.abc.Stream) -> HttpResponse | None:
        if self.web is not None:
            return await self.web.upgrade(request, stream)
        return _starting()


def _admin_routes(
    token: bytes,
    system: ActorSystem,
    pubsub: PubSub,
    site: _Site,
    settings: GatewaySettings | None,
) -> AdminRoutes:
    """The observer of this process: it answers from the start, the gateway's part once up."""
    server_name = (settings or GatewaySettings()).server_name

    def state() -> dict[str, object]:
        return observer_state(system, pubsub, site.gateway, server_name=server_name)

    assert pubsub.metrics is not None
    return AdminRoutes(token, state, registry=pubsub.metrics.registry)


def _starting() -> HttpResponse:
    return HttpResponse.text(503, "starting: waiting for the message broker")


async def _run_gateway(
    system: ActorSystem,
    pubsub: PubSub,
    identity: tuple[TokenVerifier, DemoLogin | None],
    settings: GatewaySettings | None,
    site: _Site,
    gc_threshold: int | None,
    ready: Callable[[], object],
) -> None:
    """Start the gateway once the broker is connected (its subscriptions would otherwise wait
    for acknowledgements that cannot come), then run it until cancelled."""
    await pubsub.broker.wait_connected()
    tokens, demo_login = identity
    async with open_gateway(
        system, pubsub, tokens=tokens, demo_login=demo_login, settings=settings
    ) as gateway:
        site.gateway_up(gateway)
        if gc_threshold is not None:
            tune_garbage_collector(gc_threshold)
        ready()
        await trio.sleep_forever()
