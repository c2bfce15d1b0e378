"""Health and metrics of typed Pub/Sub: the report a load balancer reads, the metrics Prometheus
scrapes. Labels use the channel group (the subscription's declared channel or pattern), never a
concrete per-user channel, so cardinality stays bounded.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Final

import trio

from actors._errors import ActorsError
from actors.messages import Message
from actors.observability import (
    GaugeReadings,
    HealthCheck,
    HealthReport,
    PubSubMetrics,
    combine_checks,
)
from actors.pubsub._redis import RedisPubSub
from actors.pubsub._subscription import SubscriptionObserver, _type_name
from actors.redis import HubObserver, Kind, failure_cause

if TYPE_CHECKING:
    from actors._errors import RedisConfigurationError
    from actors.pubsub._client import PubSub
    from actors.pubsub._subscription import SubscriptionSpec
    from actors.redis import RedisMessage

logger = logging.getLogger(__name__)

MAILBOX_DEGRADED: Final = 0.9  # a subscription mailbox this full makes the report degraded
SERVER_CHECK_TIMEOUT: Final = 1.0  # seconds the server's view may take


class MetricsObserver(SubscriptionObserver):
    """Feeds ``PubSubMetrics`` from every subscription."""

    def __init__(self, metrics: PubSubMetrics) -> None:
        self.metrics = metrics

    def received(self, spec: SubscriptionSpec, message: RedisMessage, decoded: object) -> None:
        group = spec.name.decode(errors="replace")
        self.metrics.message_received(group, _type_name(type(decoded)))
        if isinstance(decoded, Message):
            self.metrics.observe_lag_since(group, decoded.timestamp)

    def handled(self, spec: SubscriptionSpec, seconds: float) -> None:
        group = spec.name.decode(errors="replace")
        self.metrics.observe_processing(group, _handler_name(spec), seconds)

    def failed(self, spec: SubscriptionSpec, reason: str) -> None:
        group = spec.name.decode(errors="replace")
        if reason == "decode":
            self.metrics.decode_error(group)
        self.metrics.message_dropped(group, reason)

    def retried(self, spec: SubscriptionSpec) -> None:
        self.metrics.handler_retried(spec.name.decode(errors="replace"), _handler_name(spec))

    def dropped(self, spec: SubscriptionSpec, reason: str) -> None:
        self.metrics.message_dropped(spec.name.decode(errors="replace"), reason)

    def restarted(self, spec: SubscriptionSpec) -> None:
        self.metrics.subscription_restarted(spec.name.decode(errors="replace"))


class MetricsHubObserver(HubObserver):
    """Feeds the Redis connection's events to ``PubSubMetrics`` as they happen."""

    def __init__(self, metrics: PubSubMetrics) -> None:
        self.metrics = metrics

    def attached(self, *, reconnect: bool) -> None:
        if reconnect:
            self.metrics.redis_reconnected()

    def lost(self, reason: str) -> None:
        self.metrics.redis_connection_lost()

    def gap_closed(self, seconds: float) -> None:
        self.metrics.observe_gap(seconds)

    def failed(self, error: RedisConfigurationError) -> None:
        self.metrics.redis_connection_failed()


def gauge_readings(pubsub: PubSub) -> GaugeReadings:
    """What the gauges show now: read at scrape time, changing nothing."""
    subscribers: dict[str, int] = {}
    depth: dict[str, int] = {}
    for handle in pubsub.subscriptions():
        group = handle.name
        subscribers[group] = subscribers.get(group, 0) + 1
        depth[group] = depth.get(group, 0) + handle.ref.statistics().mailbox.size
    broker = pubsub.broker
    connected = broker.hub.connected if isinstance(broker, RedisPubSub) else None
    return GaugeReadings(subscribers=subscribers, mailbox_depth=depth, connected=connected)


def _handler_name(spec: SubscriptionSpec) -> str:
    return str(getattr(spec.handler, "__qualname__", repr(spec.handler)))


async def pubsub_health(pubsub: PubSub) -> HealthReport:
    """Up, degraded or down, with the details an operator needs.

    Down: not connected (with the cause: the last failed attempt or loss, or the failure that
    stopped the connection for good), or the liveness probe is overdue (a deaf connection is
    never up). Degraded: the server's subscription counts disagree with our table, or a
    subscription mailbox is nearly full. A report reads state only: it changes no metric.
    """
    checks: dict[str, HealthCheck] = {}
    broker = pubsub.broker
    if isinstance(broker, RedisPubSub):
        checks["connection"] = _connection_check(broker)
        checks["server"] = await _server_check(broker)
    else:
        checks["connection"] = HealthCheck.up(broker="memory")
    checks["subscriptions"] = _subscriptions_check(pubsub)
    return combine_checks(checks)


def _connection_check(broker: RedisPubSub) -> HealthCheck:
    statistics = broker.statistics()
    hub = statistics.hub
    options = broker.options
    detail = {
        "connected": hub.connected,
        "protocol": hub.protocol,
        "reconnects": hub.reconnects,
        "connection_restarts": statistics.connection_restarts,
        "last_message_age": hub.last_message_age,
        "last_probe_age": hub.last_probe_age,
        "gap_started": hub.gap_started,
        "gap_age": hub.gap_age,
        "last_error": hub.last_error,
    }
    failure = broker.hub.failure
    if failure is not None:
        return HealthCheck.down(
            **detail, reason=f"failed for good: {failure}", cause=failure_cause(failure)
        )
    if not hub.connected:
        error = broker.hub.last_exception
        return HealthCheck.down(
            **detail,
            reason=f"not connected: {hub.last_error or 'connecting'}",
            cause=failure_cause(error) if error is not None else "connecting",
        )
    # Activity proves the connection alive; without any, a probe must have come back lately.
    patience = options.probe_interval + options.probe_timeout + 1.0
    last_sign = min(
        hub.last_message_age if hub.last_message_age is not None else math.inf,
        hub.last_probe_age if hub.last_probe_age is not None else math.inf,
    )
    if last_sign > patience:
        return HealthCheck.down(**detail, reason="liveness probe overdue")
    return HealthCheck.up(**detail)


async def _server_check(broker: RedisPubSub) -> HealthCheck:
    names = [
        row.name
        for row in broker.hub.table.rows()
        if row.kind is Kind.CHANNEL and row.name != broker.hub.probe_channel
    ]
    # A deaf connection would hold the report until the probe replaces it: answer sooner.
    with trio.move_on_after(SERVER_CHECK_TIMEOUT) as scope:
        try:
            connection = broker.connection()
            info = await connection.info("stats")
            numsub = await connection.pubsub_numsub(*names) if names else {}
        except ActorsError as error:
            return HealthCheck.down(error=str(error))
    if scope.cancelled_caught:
        return HealthCheck.down(error=f"no answer within {SERVER_CHECK_TIMEOUT} s")
    missing = sorted(name for name, count in numsub.items() if not count)
    detail = {
        "pubsub_channels": info.get("pubsub_channels"),
        "pubsub_patterns": info.get("pubsub_patterns"),
        "our_channels": len(names),
        "channels_without_subscriber": missing[:20],
    }
    if missing:
        return HealthCheck.degraded(**detail, reason="the server lacks some of our subscriptions")
    return HealthCheck.up(**detail)


def _subscriptions_check(pubsub: PubSub) -> HealthCheck:
    rows = []
    worst = "up"
    for handle in pubsub.subscriptions():
        statistics = handle.statistics()
        mailbox = statistics.mailbox
        fill = mailbox.size / mailbox.capacity if mailbox.capacity else 0.0
        if fill >= MAILBOX_DEGRADED:
            worst = "degraded"
        rows.append(
            {
                "name": statistics.name,
                "pattern": statistics.pattern,
                "mailbox_depth": mailbox.size,
                "dropped": mailbox.dropped,
                "decode_errors": statistics.counters.decode_errors,
                "skipped": statistics.counters.skipped,
                "restarts": statistics.restarts,
                "last_message_at": statistics.counters.last_message_at,
            }
        )
    if worst == "degraded":
        return HealthCheck.degraded(subscriptions=rows, reason="a subscription mailbox is full")
    return HealthCheck.up(subscriptions=rows)
