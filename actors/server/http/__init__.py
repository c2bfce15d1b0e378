"""A small HTTP/1.1 server on trio and h11, and the routes that serve ``/metrics``, ``/health``
and the probes ``/livez`` and ``/readyz``.

The framework's observability layer builds metrics and health reports; this package puts them on
the wire: ``serve_observability`` on a port of their own, or ``ObservabilityRoutes`` inside
another server (the gateway serves its page, its WebSocket and these routes on one port).
"""

from __future__ import annotations

from actors._errors import AddressInUseError
from actors.server.http._routes import (
    LIVENESS_PATH,
    READINESS_PATH,
    HealthSource,
    ObservabilityRoutes,
    ProbeSource,
    serve_observability,
)
from actors.server.http._server import (
    HttpRequest,
    HttpResponse,
    ReplayStream,
    UpgradeHandler,
    serve_http,
)

__all__ = [
    "LIVENESS_PATH",
    "READINESS_PATH",
    "AddressInUseError",
    "HealthSource",
    "HttpRequest",
    "HttpResponse",
    "ObservabilityRoutes",
    "ProbeSource",
    "ReplayStream",
    "UpgradeHandler",
    "serve_http",
    "serve_observability",
]
