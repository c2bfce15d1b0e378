"""Observability: Prometheus metrics and health reports.

This layer imports nothing of the Redis or Pub/Sub layers: they feed it. Of the runtime it
implements the ``Instrument`` hooks (``MetricsInstrument``), which the runtime defines. A channel
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
from actors.observability._logs import (
    LOG_FORMATS,
    RECORD_CONTEXT_KEYS,
    JsonLogFormatter,
    LogFormat,
    configure_logging,
)
from actors.observability._metrics import (
    OVERFLOW_LABEL,
    GaugeReadings,
    GuardedMetric,
    MetricsInstrument,
    PubSubMetrics,
)

__all__ = [
    "LOG_FORMATS",
    "OVERFLOW_LABEL",
    "RECORD_CONTEXT_KEYS",
    "GaugeReadings",
    "GuardedMetric",
    "HealthCheck",
    "HealthReport",
    "HealthStatus",
    "JsonLogFormatter",
    "LogFormat",
    "MetricsInstrument",
    "PubSubMetrics",
    "combine_checks",
    "configure_logging",
    "worst_status",
]
