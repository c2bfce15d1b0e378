"""Prometheus metrics for Pub/Sub and the actor runtime, with a cardinality guard.

Every Pub/Sub metric is labelled by *channel group*: the channel or pattern a subscription
declared (``notifications``, ``events.*``, ``user:*``), never the concrete channel a message
came on (``user:42``). The caller passes the group; per-user channels would otherwise make one
time series per user. As a second line of defence, each metric keeps at most
``max_label_values`` distinct label-value combinations: beyond that, new combinations fold into
one series whose labels are all ``"other"``, and ``actors_metrics_label_overflow_total{metric}``
counts every folded observation.

The hot path is one dictionary look-up: the labelled child of each combination is cached.

Counters and histograms are fed where their events happen (a message dropped, a subscription
restarted, a reconnect). Gauges (subscribers, mailbox depths, whether Redis is connected) are
read when Prometheus scrapes, from a ``GaugeReadings`` source the Pub/Sub layer registers with
``read_gauges_from``: no figure moves because someone asked for a health report.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, Generic, TypeVar

import attrs
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from actors.runtime import Instrument

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from actors.runtime import ActorRef, ExitReason, Overflow

__all__ = [
    "DEFAULT_MAX_LABEL_VALUES",
    "DURATION_BUCKETS",
    "OVERFLOW_LABEL",
    "UNNAMED_ACTOR",
    "GaugeReadings",
    "GuardedMetric",
    "MetricsInstrument",
    "PubSubMetrics",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_LABEL_VALUES: Final = 1_000
"""Distinct label-value combinations a metric keeps before folding new ones into ``other``."""
OVERFLOW_LABEL: Final = "other"
"""The label value that combinations beyond the limit fold into."""
UNNAMED_ACTOR: Final = "unnamed"
"""The ``actor`` label of actors spawned without a registered name."""
DURATION_BUCKETS: Final[tuple[float, ...]] = (
    *(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05),
    *(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
)
"""Histogram buckets in seconds, from 100 microseconds to five minutes."""

_M = TypeVar("_M", Counter, Gauge, Histogram)


class GuardedMetric(Generic[_M]):
    """A labelled metric whose children are cached and whose label-value combinations are bounded.

    Made by ``PubSubMetrics.counter``, ``gauge`` and ``histogram``.
    """

    __slots__ = ("_children", "_limit", "_metric", "_other", "_overflow", "name")

    def __init__(self, name: str, metric: _M, limit: int, overflow: Counter) -> None:
        self.name = name
        self._metric: _M = metric
        self._limit = limit
        self._overflow = overflow.labels(name)
        self._children: dict[tuple[str, ...], _M] = {}
        self._other: _M | None = None

    def child(self, *values: str) -> _M:
        """The labelled child for ``values``; the ``other`` child once the limit is reached.

        Args:
            values: One value per label name, in the order the metric declared them.

        Returns:
            The prometheus_client child to ``inc``, ``set`` or ``observe``.
        """
        found = self._children.get(values)
        if found is not None:
            return found
        if len(self._children) < self._limit:
            created: _M = self._metric.labels(*values)
            self._children[values] = created
            return created
        self._overflow.inc()
        if self._other is None:
            logger.warning(
                "metric %s reached %d label combinations; new ones fold into %r",
                self.name,
                self._limit,
                OVERFLOW_LABEL,
            )
            other: _M = self._metric.labels(*(OVERFLOW_LABEL for _ in values))
            self._other = other
        return self._other


@attrs.frozen(kw_only=True)
class GaugeReadings:
    """What the gauges show at one scrape, read from the running Pub/Sub."""

    subscribers: Mapping[str, int]
    """Local subscriptions per channel group."""
    mailbox_depth: Mapping[str, int]
    """Messages queued for each channel group's handlers (summed over its subscriptions)."""
    connected: bool | None = None
    """Whether the broker is connected and its subscriptions are active; None for a broker
    without a connection (``memory://``)."""


class _ScrapeCollector(Collector):
    """Reads the gauges from their source when the registry is collected."""

    def __init__(self, source: Callable[[], GaugeReadings], limit: int) -> None:
        self.source = source
        self.limit = limit

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Names only: registering must not read the source.
        yield from self._families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        readings = self.source()
        subscribers, depth, connected = self._families()
        for family, values in (
            (subscribers, readings.subscribers),
            (depth, readings.mailbox_depth),
        ):
            for group, value in self._folded(values).items():
                family.add_metric([group], value)
        yield subscribers
        yield depth
        if readings.connected is not None:
            connected.add_metric([], 1.0 if readings.connected else 0.0)
            yield connected

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "actors_pubsub_subscribers",
                "Local subscriptions per channel group.",
                labels=["channel_group"],
            ),
            GaugeMetricFamily(
                "actors_pubsub_mailbox_depth",
                "Messages queued for a channel group's handlers.",
                labels=["channel_group"],
            ),
            GaugeMetricFamily(
                "actors_redis_connected",
                "1 while the Redis connection is attached with every subscription active.",
            ),
        )

    def _folded(self, values: Mapping[str, int]) -> dict[str, int]:
        """At most ``limit`` groups; the rest summed into ``other``, as the guard folds."""
        folded: dict[str, int] = {}
        for group in sorted(values):
            key = group if len(folded) < self.limit or group in folded else OVERFLOW_LABEL
            folded[key] = folded.get(key, 0) + values[group]
        return folded


class PubSubMetrics:
    """The Pub/Sub metrics of one process, registered in a Prometheus registry.

    Args:
        registry: Where to register the metrics; by default a new registry of its own (never
            the global default one, so that two clients or tests do not collide).
        max_label_values: Distinct label-value combinations each metric keeps before new ones
            fold into ``"other"``.

    Raises:
        ValueError: If ``max_label_values`` is below 1, or if ``registry`` already holds
            metrics of these names.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        max_label_values: int = DEFAULT_MAX_LABEL_VALUES,
    ) -> None:
        if max_label_values < 1:
            raise ValueError(f"max_label_values must be at least 1, not {max_label_values}")
        self.registry: Final = CollectorRegistry() if registry is None else registry
        self.max_label_values: Final = max_label_values
        self.label_overflow: Final = Counter(
            "actors_metrics_label_overflow_total",
            "Observations whose labels folded into 'other' by the cardinality guard.",
            ["metric"],
            registry=self.registry,
        )
        group = ("channel_group",)
        self._published = self.counter(
            "actors_pubsub_messages_published_total",
            "Messages published, by channel group and message type.",
            (*group, "type"),
        )
        self._received = self.counter(
            "actors_pubsub_messages_received_total",
            "Messages delivered to a subscription, by channel group and message type.",
            (*group, "type"),
        )
        self._dropped = self.counter(
            "actors_pubsub_messages_dropped_total",
            "Messages dropped (mailbox overflow, skip policy, ...), by channel group and reason.",
            (*group, "reason"),
        )
        self._decode_errors = self.counter(
            "actors_pubsub_decode_errors_total", "Payloads that failed to decode.", group
        )
        self._retries = self.counter(
            "actors_pubsub_handler_retries_total",
            "Handler calls retried by an error policy.",
            (*group, "handler"),
        )
        self._restarts = self.counter(
            "actors_pubsub_subscription_restarts_total", "Subscription actors restarted.", group
        )
        self._recovered = self.counter(
            "actors_pubsub_messages_recovered_total",
            "Messages a recovering subscription read back from its channel's history.",
            group,
        )
        self._unrecoverable = self.counter(
            "actors_pubsub_unrecoverable_gaps_total",
            "Gaps a channel's history could not fill, by channel group and cause.",
            (*group, "cause"),
        )
        self._reconnects = Counter(
            "actors_redis_reconnects_total",
            "Redis connections attached after the first one.",
            registry=self.registry,
        )
        self._gap = Histogram(
            "actors_redis_gap_seconds",
            "How long subscriptions were inactive across a lost connection, per gap.",
            registry=self.registry,
            buckets=DURATION_BUCKETS,
        )
        self._losses = Counter(
            "actors_redis_connection_losses_total",
            "Attached Redis connections that were lost (each one starts a gap).",
            registry=self.registry,
        )
        self._failures = Counter(
            "actors_redis_connection_failures_total",
            "Redis connections stopped for good by a failure retrying cannot heal.",
            registry=self.registry,
        )
        self._ended_by_server = Counter(
            "actors_redis_subscriptions_ended_by_server_total",
            "Subscriptions the server ended unasked (a shard channel's slot moved), by kind.",
            ("kind",),
            registry=self.registry,
        )
        self._gauge_source: _ScrapeCollector | None = None
        self._processing = self.histogram(
            "actors_pubsub_processing_seconds",
            "Time a handler took for one message.",
            (*group, "handler"),
        )
        self._lag = self.histogram(
            "actors_pubsub_lag_seconds",
            "Time from a message's timestamp (its publication) to its receipt.",
            group,
        )

    def counter(
        self, name: str, documentation: str, labels: tuple[str, ...]
    ) -> GuardedMetric[Counter]:
        """Register a labelled, guarded counter in this registry (for other layers' metrics).

        Args:
            name: The metric's name, ending in ``_total``.
            documentation: The ``HELP`` text.
            labels: The label names.

        Returns:
            The guarded family; ``family.child(*values)`` gives the cached child.
        """
        metric = Counter(name, documentation, labels, registry=self.registry)
        return GuardedMetric(name, metric, self.max_label_values, self.label_overflow)

    def gauge(self, name: str, documentation: str, labels: tuple[str, ...]) -> GuardedMetric[Gauge]:
        """Register a labelled, guarded gauge; arguments and result as for ``counter``."""
        metric = Gauge(name, documentation, labels, registry=self.registry)
        return GuardedMetric(name, metric, self.max_label_values, self.label_overflow)

    def histogram(
        self, name: str, documentation: str, labels: tuple[str, ...]
    ) -> GuardedMetric[Histogram]:
        """Register a guarded histogram with ``DURATION_BUCKETS``; as for ``counter``."""
        metric = Histogram(
            name, documentation, labels, registry=self.registry, buckets=DURATION_BUCKETS
        )
        return GuardedMetric(name, metric, self.max_label_values, self.label_overflow)

    def message_published(self, channel_group: str, type_name: str, count: int = 1) -> None:
        """Count ``count`` messages of type ``type_name`` published to ``channel_group``."""
        self._published.child(channel_group, type_name).inc(count)

    def message_received(self, channel_group: str, type_name: str, count: int = 1) -> None:
        """Count ``count`` messages of type ``type_name`` delivered to ``channel_group``."""
        self._received.child(channel_group, type_name).inc(count)

    def message_dropped(self, channel_group: str, reason: str, count: int = 1) -> None:
        """Count dropped messages; ``reason`` is a fixed word such as ``"overflow"``."""
        self._dropped.child(channel_group, reason).inc(count)

    def decode_error(self, channel_group: str) -> None:
        """Count one payload of ``channel_group`` that failed to decode."""
        self._decode_errors.child(channel_group).inc()

    def handler_retried(self, channel_group: str, handler: str) -> None:
        """Count one retry of ``handler`` by its error policy."""
        self._retries.child(channel_group, handler).inc()

    def subscription_restarted(self, channel_group: str) -> None:
        """Count one restart of a subscription actor of ``channel_group``."""
        self._restarts.child(channel_group).inc()

    def messages_recovered(self, channel_group: str, count: int) -> None:
        """Count ``count`` messages read back from ``channel_group``'s history."""
        self._recovered.child(channel_group).inc(count)

    def unrecoverable_gap(self, channel_group: str, cause: str) -> None:
        """Count a gap the history could not fill; ``cause`` is a word such as ``trimmed``."""
        self._unrecoverable.child(channel_group, cause).inc()

    def redis_reconnected(self, count: int = 1) -> None:
        """Count Redis connections attached after the first one."""
        self._reconnects.inc(count)

    def redis_connection_lost(self) -> None:
        """Count an attached Redis connection that was lost."""
        self._losses.inc()

    def redis_connection_failed(self) -> None:
        """Count a Redis connection stopped for good (a failure retrying cannot heal)."""
        self._failures.inc()

    def redis_subscription_ended_by_server(self, kind: str) -> None:
        """Count a subscription the server ended unasked: ``kind`` is ``channel``,
        ``pattern`` or ``shard``."""
        self._ended_by_server.labels(kind).inc()

    def observe_gap(self, seconds: float) -> None:
        """Record how long subscriptions were inactive across one lost connection."""
        self._gap.observe(max(seconds, 0.0))

    def read_gauges_from(self, source: Callable[[], GaugeReadings]) -> None:
        """Read ``actors_pubsub_subscribers``, ``actors_pubsub_mailbox_depth`` and
        ``actors_redis_connected`` from ``source`` at every scrape.

        Args:
            source: Called when Prometheus scrapes; quick, and free of side effects. Channel
                groups beyond ``max_label_values`` are summed into ``"other"``.

        Raises:
            ValueError: These metrics already read from another source.
        """
        if self._gauge_source is not None:
            raise ValueError("these metrics already read their gauges from another source")
        self._gauge_source = _ScrapeCollector(source, self.max_label_values)
        self.registry.register(self._gauge_source)

    def stop_reading_gauges(self) -> None:
        """Forget the gauges' source (its Pub/Sub has closed); the gauges leave the scrape."""
        if self._gauge_source is not None:
            self.registry.unregister(self._gauge_source)
            self._gauge_source = None

    def observe_processing(self, channel_group: str, handler: str, seconds: float) -> None:
        """Record that ``handler`` took ``seconds`` for one message of ``channel_group``."""
        self._processing.child(channel_group, handler).observe(seconds)

    def observe_lag(self, channel_group: str, seconds: float) -> None:
        """Record a publish-to-receive lag; negative lags (clock skew) count as zero."""
        self._lag.child(channel_group).observe(max(seconds, 0.0))

    def observe_lag_since(
        self, channel_group: str, sent_at: datetime, *, now: datetime | None = None
    ) -> None:
        """Record the lag from a message's timestamp to ``now``.

        Args:
            channel_group: The subscription's declared channel or pattern.
            sent_at: The message's timestamp; an offset-naive one is taken as UTC.
            now: The time of receipt; by default the current wall-clock time.
        """
        if sent_at.tzinfo is None:
            sent_at = sent_at.replace(tzinfo=UTC)
        received = datetime.now(UTC) if now is None else now
        self.observe_lag(channel_group, (received - sent_at).total_seconds())


class MetricsInstrument(Instrument):
    """Counts actor crashes, restarts and mailbox drops per actor name.

    Pass it to ``open_actor_system(instruments=[...])``. Actor names share the cardinality
    guard of ``metrics``; actors without a registered name count as ``"unnamed"``. Create one
    per ``PubSubMetrics``: a second would register the same names again.

    Args:
        metrics: Whose registry and label limit to use.

    Raises:
        ValueError: If the registry already holds these metrics.
    """

    def __init__(self, metrics: PubSubMetrics) -> None:
        self.metrics: Final = metrics
        self._crashes = metrics.counter(
            "actors_actor_crashes_total", "Actor incarnations that raised.", ("actor",)
        )
        self._restarts = metrics.counter(
            "actors_actor_restarts_total", "Actor restarts by a supervisor.", ("actor",)
        )
        self._drops = metrics.counter(
            "actors_actor_mailbox_dropped_total",
            "Messages an actor's mailbox overflow policy discarded or refused.",
            ("actor", "policy"),
        )

    def actor_crashed(self, ref: ActorRef, error: BaseException) -> None:
        """Count a crash of ``ref``."""
        self._crashes.child(ref.name or UNNAMED_ACTOR).inc()

    def actor_restarted(self, ref: ActorRef, reason: ExitReason, delay: float) -> None:
        """Count a restart of ``ref``."""
        self._restarts.child(ref.name or UNNAMED_ACTOR).inc()

    def message_dropped(self, ref: ActorRef, message: object, policy: Overflow) -> None:
        """Count a message ``ref``'s mailbox discarded or refused, by overflow policy."""
        self._drops.child(ref.name or UNNAMED_ACTOR, policy.value).inc()
