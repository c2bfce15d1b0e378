"""``/metrics``, ``/health``, ``/livez`` and ``/readyz`` over HTTP: on a port of their own, or
within another server.

``ObservabilityRoutes`` answers the four paths; ``serve_observability`` serves them alone on the
small HTTP server of ``_http_server`` (limits and error handling are described there).

``/health`` is the detailed report (it may ask Redis, within ``health_timeout``). The probes are
for an orchestrator and read only what the process already knows, without I/O: ``/livez`` says
whether the process should be restarted (its supervision tree has fallen), ``/readyz`` whether
it should get traffic (Redis connected with every subscription restored). None of them changes
a metric.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final

import trio
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from actors.observability._health import HealthCheck, HealthReport, combine_checks
from actors.observability._metrics import PubSubMetrics
from actors.server.http._server import (
    DEFAULT_CONNECTION_TIMEOUT,
    DEFAULT_MAX_REQUEST_BYTES,
    HttpRequest,
    HttpResponse,
    serve_http,
)

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = [
    "LIVENESS_PATH",
    "READINESS_PATH",
    "HealthSource",
    "ObservabilityRoutes",
    "ProbeSource",
    "serve_observability",
]

logger = logging.getLogger(__name__)

HealthSource = Callable[[], Awaitable[HealthReport]] | Callable[[], HealthReport]
"""What ``/health`` calls for the report: a function or an async function."""
ProbeSource = Callable[[], HealthReport]
"""What ``/livez`` or ``/readyz`` calls: a plain function that reads state it already has (no
I/O, no await): 200 unless the report is down."""

DEFAULT_HEALTH_TIMEOUT: Final = 5.0
_JSON: Final = "application/json"
LIVENESS_PATH: Final = "/livez"
READINESS_PATH: Final = "/readyz"
PATHS: Final = frozenset({"/metrics", "/health", LIVENESS_PATH, READINESS_PATH})


class ObservabilityRoutes:
    """Answers ``/metrics`` (Prometheus text format), ``/health``, ``/livez`` and ``/readyz``
    (JSON).

    ``/health`` answers 200 for up and degraded and 503 for down, and so do the probes; methods
    other than GET and HEAD get 405.

    Args:
        metrics: The metrics to expose, or any Prometheus registry.
        health: Called for each ``/health`` request; a function or an async function.
        health_timeout: Seconds ``health`` may take before the report is "down".
        liveness: Called for each ``/livez`` request; default: always up (the process
            answers).
        readiness: Called for each ``/readyz`` request; default: always up.
    """

    def __init__(
        self,
        metrics: PubSubMetrics | CollectorRegistry,
        health: HealthSource,
        *,
        health_timeout: float = DEFAULT_HEALTH_TIMEOUT,
        liveness: ProbeSource | None = None,
        readiness: ProbeSource | None = None,
    ) -> None:
        self.registry = metrics.registry if isinstance(metrics, PubSubMetrics) else metrics
        self.health = health
        self.health_timeout = health_timeout
        self.liveness = liveness or _always_up
        self.readiness = readiness or _always_up

    async def respond(self, request: HttpRequest) -> HttpResponse | None:
        """The response for ``/metrics`` or ``/health``; None for any other path."""
        path = request.path
        if path not in PATHS:
            return None
        if request.method not in {"GET", "HEAD"}:
            return HttpResponse(405, b"method not allowed\n", headers=(("allow", "GET, HEAD"),))
        if path == "/metrics":
            return HttpResponse(200, generate_latest(self.registry), CONTENT_TYPE_LATEST)
        if path == LIVENESS_PATH:
            report = self.liveness()
        elif path == READINESS_PATH:
            report = self.readiness()
        else:
            report = await self.report()
        await trio.lowlevel.checkpoint()
        return HttpResponse(
            report.http_status,
            report.to_json().encode() + b"\n",
            _JSON,
            (("cache-control", "no-store"),),
        )

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


def _always_up() -> HealthReport:
    return combine_checks({})


async def serve_observability(
    port: int,
    *,
    host: str = "127.0.0.1",
    metrics: PubSubMetrics | CollectorRegistry,
    health: HealthSource,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    connection_timeout: float = DEFAULT_CONNECTION_TIMEOUT,
    health_timeout: float = DEFAULT_HEALTH_TIMEOUT,
    liveness: ProbeSource | None = None,
    readiness: ProbeSource | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``/metrics`` (Prometheus text format), ``/health``, ``/livez`` and ``/readyz``
    (JSON) until cancelled.

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
        liveness: The ``/livez`` source; default: always up.
        readiness: The ``/readyz`` source; default: always up.
        task_status: Given the bound port once the server listens.

    Raises:
        AddressInUseError: Another socket holds the address and port.
        OSError: The address cannot be bound for another reason.
    """
    routes = ObservabilityRoutes(
        metrics,
        health,
        health_timeout=health_timeout,
        liveness=liveness,
        readiness=readiness,
    )

    async def respond(request: HttpRequest) -> HttpResponse:
        return await routes.respond(request) or HttpResponse.text(404, "not found")

    await serve_http(
        port,
        respond,
        host=host,
        max_request_bytes=max_request_bytes,
        connection_timeout=connection_timeout,
        server_name="actors-observability",
        task_status=task_status,
    )
