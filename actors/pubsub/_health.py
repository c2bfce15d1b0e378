"""Health and metrics of typed Pub/Sub: the report a load balancer reads, the metrics Prometheus
scrapes. Labels use the channel group (the subscription's declared channel or pattern), never a
concrete per-user channel, so cardinality stays bounded.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

from actors.messages import Message
from actors.observability import (
    GaugeReadings,
    HealthCheck,
    HealthReport,
    PubSubMetrics,
    combine_checks,
)
from actors.pubsub._subscription import SubscriptionObserver, _type_name
from actors.redis import HubObserver

if TYPE_CHECKING:
    from actors._errors import RedisConfigurationError
    from actors.pubsub._client import PubSub
    from actors.pubsub._recovery import Recovered, Unrecoverable
    from actors.pubsub._subscription import SubscriptionSpec
    from actors.redis import Kind, RedisMessage

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

    def recovered(self, spec: SubscriptionSpec, event: Recovered) -> None:
        self.metrics.messages_recovered(spec.name.decode(errors="replace"), event.count)

    def unrecoverable(self, spec: SubscriptionSpec, event: Unrecoverable) -> None:
        self.metrics.unrecoverable_gap(spec.name.decode(errors="replace"), event.cause)


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

    def ended_by_server(self, kind: Kind) -> None:
        self.metrics.redis_subscription_ended_by_server(kind.value)


def gauge_readings(pubsub: PubSub) -> GaugeReadings:
    """What the gauges show now: read at scrape time, changing nothing."""
    subscribers: dict[str, int] = {}
    depth: dict[str, int] = {}
    for handle in pubsub.subscriptions():
        group = handle.name
        subscribers[group] = subscribers.get(group, 0) + 1
        depth[group] = depth.get(group, 0) + handle.ref.statistics().mailbox.size
    connected = pubsub.broker.connected
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
    checks = await pubsub.broker.health_checks()
    checks["subscriptions"] = _subscriptions_check(pubsub)
    return combine_checks(checks)


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
