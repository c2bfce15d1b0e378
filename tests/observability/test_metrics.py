"""PubSubMetrics and MetricsInstrument: names, labels, the cardinality guard, actor hooks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import trio
import trio.testing
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest

from actors import ActorContext, ActorSystem, Crashed, MailboxConfig, Overflow, open_actor_system
from actors.observability import OVERFLOW_LABEL, GaugeReadings, MetricsInstrument, PubSubMetrics


def exposition(metrics: PubSubMetrics) -> str:
    return generate_latest(metrics.registry).decode()


def sample(metrics: PubSubMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_every_pubsub_metric_appears_in_the_exposition_with_its_labels() -> None:
    metrics = PubSubMetrics()
    metrics.message_published("notifications", "NotificationMessage")
    metrics.message_received("events.*", "Event", count=2)
    metrics.message_dropped("events.*", "overflow")
    metrics.decode_error("events.*")
    metrics.handler_retried("events.*", "handle_events")
    metrics.subscription_restarted("presence")
    metrics.redis_reconnected()
    metrics.redis_connection_lost()
    metrics.redis_connection_failed()
    metrics.observe_gap(0.3)
    metrics.read_gauges_from(
        lambda: GaugeReadings(
            subscribers={"events.*": 3}, mailbox_depth={"events.*": 17}, connected=True
        )
    )
    metrics.observe_processing("events.*", "handle_events", 0.002)
    metrics.observe_lag("events.*", 0.5)
    text = exposition(metrics)
    for line in [
        'actors_pubsub_messages_published_total{channel_group="notifications",'
        'type="NotificationMessage"} 1.0',
        'actors_pubsub_messages_received_total{channel_group="events.*",type="Event"} 2.0',
        'actors_pubsub_messages_dropped_total{channel_group="events.*",reason="overflow"} 1.0',
        'actors_pubsub_decode_errors_total{channel_group="events.*"} 1.0',
        'actors_pubsub_handler_retries_total{channel_group="events.*",handler="handle_events"} 1.0',
        'actors_pubsub_subscription_restarts_total{channel_group="presence"} 1.0',
        "actors_redis_reconnects_total 1.0",
        "actors_redis_connection_losses_total 1.0",
        "actors_redis_connection_failures_total 1.0",
        'actors_redis_gap_seconds_bucket{le="0.5"} 1.0',
        "actors_redis_connected 1.0",
        'actors_pubsub_subscribers{channel_group="events.*"} 3.0',
        'actors_pubsub_mailbox_depth{channel_group="events.*"} 17.0',
        'actors_pubsub_processing_seconds_bucket{channel_group="events.*",'
        'handler="handle_events",le="0.0025"} 1.0',
        'actors_pubsub_processing_seconds_count{channel_group="events.*",'
        'handler="handle_events"} 1.0',
        'actors_pubsub_lag_seconds_bucket{channel_group="events.*",le="0.5"} 1.0',
        'actors_pubsub_lag_seconds_bucket{channel_group="events.*",le="0.25"} 0.0',
    ]:
        assert line in text, line
    assert "# TYPE actors_pubsub_processing_seconds histogram" in text
    assert "# TYPE actors_pubsub_subscribers gauge" in text


def test_histogram_buckets_span_sub_millisecond_to_minutes() -> None:
    metrics = PubSubMetrics()
    metrics.observe_processing("g", "h", 0.00005)
    metrics.observe_processing("g", "h", 240.0)
    labels = {"channel_group": "g", "handler": "h"}
    bucket = "actors_pubsub_processing_seconds_bucket"
    assert sample(metrics, bucket, **labels, le="0.0001") == 1.0
    assert sample(metrics, bucket, **labels, le="60.0") == 1.0
    assert sample(metrics, bucket, **labels, le="300.0") == 2.0


def test_metrics_use_their_own_registry_unless_given_one() -> None:
    first, second = PubSubMetrics(), PubSubMetrics()
    first.message_published("a", "T")
    assert (
        sample(second, "actors_pubsub_messages_published_total", channel_group="a", type="T")
        is None
    )
    registry = CollectorRegistry()
    assert PubSubMetrics(registry).registry is registry
    with pytest.raises(ValueError, match="Duplicated"):
        PubSubMetrics(registry)


def test_lag_is_measured_from_the_message_timestamp() -> None:
    metrics = PubSubMetrics()
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    metrics.observe_lag_since("updates", now - timedelta(milliseconds=30), now=now)
    metrics.observe_lag_since("updates", (now + timedelta(seconds=2)).replace(tzinfo=None), now=now)
    assert sample(
        metrics, "actors_pubsub_lag_seconds_sum", channel_group="updates"
    ) == pytest.approx(0.03)
    assert sample(metrics, "actors_pubsub_lag_seconds_count", channel_group="updates") == 2.0


def test_label_values_beyond_the_limit_fold_into_other_and_are_counted() -> None:
    metrics = PubSubMetrics(max_label_values=3)
    for user in range(5):
        metrics.message_received(f"user:{user}", "Notification")
    metrics.message_received("user:0", "Notification")
    name = "actors_pubsub_messages_received_total"
    assert sample(metrics, name, channel_group="user:0", type="Notification") == 2.0
    assert sample(metrics, name, channel_group="user:2", type="Notification") == 1.0
    assert sample(metrics, name, channel_group="user:3", type="Notification") is None
    assert sample(metrics, name, channel_group=OVERFLOW_LABEL, type=OVERFLOW_LABEL) == 2.0
    assert sample(metrics, "actors_metrics_label_overflow_total", metric=name) == 2.0
    series = [line for line in exposition(metrics).splitlines() if line.startswith(name)]
    assert len(series) == 4


def test_the_limit_is_per_metric() -> None:
    metrics = PubSubMetrics(max_label_values=1)
    metrics.message_published("a", "T")
    metrics.message_received("b", "T")
    metrics.decode_error("c")
    assert (
        sample(metrics, "actors_pubsub_messages_received_total", channel_group="b", type="T") == 1
    )
    assert sample(metrics, "actors_pubsub_decode_errors_total", channel_group="c") == 1
    overflow = "actors_metrics_label_overflow_total"
    assert sample(metrics, overflow, metric="actors_pubsub_decode_errors_total") == 0.0


def test_gauges_are_read_at_each_scrape_and_only_then() -> None:
    """The source is read by a scrape and by nothing else; a group that is gone is gone."""
    metrics = PubSubMetrics(max_label_values=2)
    readings = [GaugeReadings(subscribers={"chat:1": 2}, mailbox_depth={"chat:1": 5})]
    reads = 0

    def source() -> GaugeReadings:
        nonlocal reads
        reads += 1
        return readings[-1]

    metrics.read_gauges_from(source)
    assert reads == 0  # registering reads nothing
    assert sample(metrics, "actors_pubsub_subscribers", channel_group="chat:1") == 2.0
    assert sample(metrics, "actors_pubsub_mailbox_depth", channel_group="chat:1") == 5.0
    assert sample(metrics, "actors_redis_connected") is None  # no connection behind it
    readings.append(
        GaugeReadings(
            subscribers={"chat:2": 1, "chat:3": 1, "chat:4": 4},
            mailbox_depth={"chat:2": 0, "chat:3": 0, "chat:4": 9},
            connected=False,
        )
    )
    assert sample(metrics, "actors_pubsub_subscribers", channel_group="chat:1") is None
    assert sample(metrics, "actors_pubsub_subscribers", channel_group="chat:2") == 1.0
    assert sample(metrics, "actors_pubsub_subscribers", channel_group="chat:3") == 1.0
    # Past max_label_values the rest is summed into "other", as the guard folds counters.
    assert sample(metrics, "actors_pubsub_subscribers", channel_group=OVERFLOW_LABEL) == 4.0
    assert sample(metrics, "actors_pubsub_mailbox_depth", channel_group=OVERFLOW_LABEL) == 9.0
    assert sample(metrics, "actors_redis_connected") == 0.0
    with pytest.raises(ValueError, match="another source"):
        metrics.read_gauges_from(source)
    metrics.stop_reading_gauges()
    reads_before = reads
    assert sample(metrics, "actors_pubsub_subscribers", channel_group="chat:2") is None
    assert reads == reads_before


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_label_values"):
        PubSubMetrics(max_label_values=0)


def test_cached_children_make_repeated_observations_cheap() -> None:
    """The same label values give the same child object, created once."""
    metrics = PubSubMetrics()
    family = metrics.counter("app_things_total", "Things.", ("channel_group",))
    assert family.child("x") is family.child("x")
    assert family.name == "app_things_total"


async def test_instrument_counts_crashes_and_drops_per_actor_name() -> None:
    metrics = PubSubMetrics()
    instrument = MetricsInstrument(metrics)
    release = trio.Event()

    async def fragile(context: ActorContext) -> None:
        await release.wait()
        await context.receive()
        raise RuntimeError("boom")

    async with open_actor_system(instruments=[instrument]) as system:
        ref = await system.spawn(
            fragile,
            name="fragile",
            mailbox=MailboxConfig(capacity=1, overflow=Overflow.DROP_NEWEST),
        )
        ref.tell_nowait("kept")
        ref.tell_nowait("dropped")
        release.set()
        await ref.wait_stopped()
    assert sample(metrics, "actors_actor_crashes_total", actor="fragile") == 1.0
    assert (
        sample(metrics, "actors_actor_mailbox_dropped_total", actor="fragile", policy="drop_newest")
        == 1.0
    )


async def test_instrument_counts_restarts_and_names_unnamed_actors(system: ActorSystem) -> None:
    metrics = PubSubMetrics(max_label_values=1)
    instrument = MetricsInstrument(metrics)

    async def idle(context: ActorContext) -> None:
        await trio.sleep_forever()

    named = await system.spawn(idle, name="worker")
    anonymous = await system.spawn(idle)
    instrument.actor_restarted(named, Crashed(RuntimeError()), 0.1)
    instrument.actor_restarted(named, Crashed(RuntimeError()), 0.2)
    instrument.actor_crashed(anonymous, RuntimeError())
    assert sample(metrics, "actors_actor_restarts_total", actor="worker") == 2.0
    assert sample(metrics, "actors_actor_crashes_total", actor="unnamed") == 1.0
