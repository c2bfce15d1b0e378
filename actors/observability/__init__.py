"""Observability: instrument hooks, Prometheus metrics, health reports and their HTTP endpoint.

This layer imports nothing of the runtime, Redis or Pub/Sub layers: they feed it. A channel
group (the label of every Pub/Sub metric) is the subscription's declared channel or pattern,
never the concrete channel, so that per-user channels cannot explode label cardinality.
"""

from __future__ import annotations

from actors.observability._health import (
    HealthCheck,
    HealthReport,
    HealthStatus,
    combine_checks,
    worst_status,
)
from actors.observability._http import HealthSource, ObservabilityRoutes, serve_observability
from actors.observability._http_server import (
    HttpRequest,
    HttpResponse,
    ReplayStream,
    UpgradeHandler,
    serve_http,
)
from actors.observability._instrument import Instrument
from actors.observability._metrics import (
    OVERFLOW_LABEL,
    GaugeReadings,
    GuardedMetric,
    MetricsInstrument,
    PubSubMetrics,
)

__all__ = [
    "OVERFLOW_LABEL",
    "GaugeReadings",
    "GuardedMetric",
    "HealthCheck",
    "HealthReport",
    "HealthSource",
    "HealthStatus",
    "HttpRequest",
    "HttpResponse",
    "Instrument",
    "MetricsInstrument",
    "ObservabilityRoutes",
    "PubSubMetrics",
    "ReplayStream",
    "UpgradeHandler",
    "combine_checks",
    "serve_http",
    "serve_observability",
    "worst_status",
]
