"""The ``memory://`` broker (issue 4, requirement 4): Redis Pub/Sub semantics in one process.

Delivery is synchronous, so every test reads what a publish delivered right after it, with
``receive_nowait``: nothing is ever waited for.
"""

from __future__ import annotations

import math

import pytest
import trio
import trio.testing

from actors import ActorContext, ActorSystem, MailboxConfig, Overflow
from actors._errors import RedisConnectionError, RedisTimeoutError
from actors.pubsub import (
    Broker,
    ChannelSink,
    MailboxSink,
    MemoryBroker,
    RedisPubSub,
    memory_broker_name,
    open_broker,
    open_memory_broker,
)
from actors.pubsub._broker import within
from actors.redis import Kind, PubSubStatistics, RedisMessage, SubscriptionEvent


class Inbox:
    """A sink over a trio memory channel, with the receiving side at hand."""

    def __init__(self, capacity: int = 100) -> None:
        self.send, self.receive = trio.open_memory_channel[SubscriptionEvent](capacity)
        self.sink = ChannelSink(self.send)

    def take(self) -> list[RedisMessage]:
        """Everything delivered so far."""
        taken: list[RedisMessage] = []
        while True:
            try:
                event = self.receive.receive_nowait()
            except trio.WouldBlock:
                return taken
            assert isinstance(event, RedisMessage)
            taken.append(event)


class RaisingSink:
    def __init__(self) -> None:
        self.calls = 0

    def deliver(self, event: SubscriptionEvent) -> bool:
        self.calls += 1
        raise RuntimeError("this sink is broken")


class RefusingSink:
    def deliver(self, event: SubscriptionEvent) -> bool:
        return False


def rows(statistics: PubSubStatistics) -> dict[tuple[Kind, bytes], tuple[int, int, int]]:
    """(sinks, delivered, dropped) per subscription."""
    return {
        (row.kind, row.name): (row.sinks, row.delivered, row.dropped)
        for row in statistics.subscriptions
    }


async def test_round_trip() -> None:
    async with open_memory_broker() as broker:
        inbox = Inbox()
        subscription = await broker.subscribe("news", inbox.sink)
        assert (subscription.kind, subscription.name) == (Kind.CHANNEL, b"news")
        assert await broker.publish("news", "héllo") == 1
        [message] = inbox.take()
        assert (message.kind, message.channel, message.payload) == (
            Kind.CHANNEL,
            b"news",
            "héllo".encode(),
        )
        assert message.pattern is None
        assert message.subscription == b"news"
        assert await broker.publish(b"other", b"x") == 0
        assert inbox.take() == []


async def test_pattern_deliveries_carry_the_concrete_channel() -> None:
    async with open_memory_broker() as broker:
        inbox = Inbox()
        await broker.psubscribe("events.*", inbox.sink)
        assert await broker.publish("events.created", b"1") == 1
        assert await broker.publish("events.deleted", b"2") == 1
        assert await broker.publish("eventsXdeleted", b"3") == 0
        assert [(m.kind, m.pattern, m.channel, m.payload) for m in inbox.take()] == [
            (Kind.PATTERN, b"events.*", b"events.created", b"1"),
            (Kind.PATTERN, b"events.*", b"events.deleted", b"2"),
        ]


async def test_receivers_are_counted_per_name_not_per_local_sink() -> None:
    """As ``RedisPubSub`` gets them from Redis: one connection, one count per subscription."""
    async with open_memory_broker() as broker:
        inboxes = [Inbox() for _ in range(3)]
        for inbox in inboxes:
            await broker.subscribe("a.b", inbox.sink)
        assert await broker.publish("a.b", b"1") == 1
        # The same message object reaches every sink of the name.
        [first], [second], [third] = (inbox.take() for inbox in inboxes)
        assert first is second is third
        pattern_inboxes = [Inbox(), Inbox()]
        await broker.psubscribe("a.*", pattern_inboxes[0].sink)
        await broker.psubscribe("a.*", pattern_inboxes[1].sink)
        assert await broker.publish("a.b", b"2") == 2
        await broker.psubscribe("*.b", Inbox().sink)
        assert await broker.publish("a.b", b"3") == 3
        assert await broker.publish("a.c", b"4") == 1
        assert await broker.publish("z.b", b"5") == 1


async def test_a_sink_on_a_channel_and_a_matching_pattern_gets_it_twice() -> None:
    async with open_memory_broker() as broker:
        inbox = Inbox()
        await broker.subscribe("a.b", inbox.sink)
        await broker.psubscribe("a.*", inbox.sink)
        assert await broker.publish("a.b", b"x") == 2
        assert [(m.kind, m.pattern) for m in inbox.take()] == [
            (Kind.CHANNEL, None),
            (Kind.PATTERN, b"a.*"),
        ]


async def test_introspection_answers_like_pubsub() -> None:
    async with open_memory_broker() as broker:
        sink = Inbox().sink
        await broker.subscribe("news.sport", sink)
        await broker.subscribe("news.sport", Inbox().sink)
        await broker.subscribe("news.weather", sink)
        await broker.subscribe("other", sink)
        await broker.psubscribe("news.*", sink)
        await broker.psubscribe("news.*", Inbox().sink)
        await broker.psubscribe("x?", sink)
        await broker.ssubscribe("shard", sink)
        assert await broker.pubsub_channels() == ["news.sport", "news.weather", "other"]
        assert await broker.pubsub_channels("news.*") == ["news.sport", "news.weather"]
        assert await broker.pubsub_channels(b"[ot]*") == ["other"]
        assert await broker.pubsub_numsub("news.sport", b"other", "nothing", "shard") == {
            "news.sport": 1,
            "other": 1,
            "nothing": 0,
            "shard": 0,
        }
        assert await broker.pubsub_numsub() == {}
        assert await broker.pubsub_numpat() == 2


async def test_subscriptions_are_reference_counted() -> None:
    async with open_memory_broker() as broker:
        inboxes = [Inbox() for _ in range(3)]
        handles = [await broker.subscribe("rc", inbox.sink) for inbox in inboxes]
        pattern_handles = [await broker.psubscribe("r*", inbox.sink) for inbox in inboxes[:2]]
        assert await broker.pubsub_numsub("rc") == {"rc": 1}
        assert await broker.pubsub_numpat() == 1
        await handles[0].close()
        await handles[1].close()
        assert await broker.pubsub_numsub("rc") == {"rc": 1}
        assert await broker.publish("rc", b"1") == 2
        assert [len(inbox.take()) for inbox in inboxes] == [1, 1, 1]
        await handles[2].close()
        assert await broker.pubsub_numsub("rc") == {"rc": 0}
        assert await broker.pubsub_channels() == []
        assert await broker.publish("rc", b"2") == 1
        await handles[2].close()  # closing twice is harmless
        await pattern_handles[0].close()
        assert await broker.pubsub_numpat() == 1
        await pattern_handles[1].close()
        assert await broker.pubsub_numpat() == 0
        assert await broker.publish("rc", b"3") == 0
        assert broker.statistics().subscriptions == ()


async def test_drops_are_counted_and_a_failing_sink_does_not_stop_the_others() -> None:
    async with open_memory_broker() as broker:
        small = Inbox(capacity=1)
        raising = RaisingSink()
        good = Inbox()
        await broker.subscribe("c", small.sink)
        await broker.subscribe("c", raising)
        await broker.subscribe("c", RefusingSink())
        await broker.subscribe("c", good.sink)
        for number in range(3):
            assert await broker.publish("c", b"%d" % number) == 1
        assert [m.payload for m in good.take()] == [b"0", b"1", b"2"]
        assert [m.payload for m in small.take()] == [b"0"]
        assert raising.calls == 3
        # 4 sinks x 3 messages: 1 + 3 delivered; the full channel dropped 2, the others 3 each.
        assert rows(broker.statistics()) == {(Kind.CHANNEL, b"c"): (4, 4, 8)}


async def test_a_full_mailbox_drops_and_the_publisher_never_waits(system: ActorSystem) -> None:
    async def never_reads(context: ActorContext) -> None:
        await trio.sleep_forever()

    async with open_memory_broker() as broker:
        ref = await system.spawn(
            never_reads, mailbox=MailboxConfig(capacity=5, overflow=Overflow.BLOCK)
        )
        await broker.subscribe("slow", MailboxSink(ref))
        with trio.fail_after(5):
            for number in range(20):
                assert await broker.publish("slow", b"%d" % number) == 1
        assert rows(broker.statistics()) == {(Kind.CHANNEL, b"slow"): (1, 5, 15)}


async def test_statistics_have_the_hub_shape() -> None:
    async with open_memory_broker() as broker:
        statistics = broker.statistics()
        assert statistics.connected
        assert statistics.protocol is None
        assert statistics.reconnects == 0
        assert statistics.last_message_age is None
        assert statistics.gap_started is None
        await broker.psubscribe("p.*", Inbox().sink)
        await broker.publish("p.1", b"x")
        statistics = broker.statistics()
        assert statistics.last_message_age is not None
        assert statistics.last_message_age >= 0
        [row] = statistics.subscriptions
        assert (row.kind, row.name, row.sinks, row.delivered, row.dropped, row.acknowledged) == (
            Kind.PATTERN,
            b"p.*",
            1,
            1,
            0,
            True,
        )
        assert statistics.unroutable == 0
    assert not broker.statistics().connected


async def test_shard_channels_only_hear_spublish() -> None:
    async with open_memory_broker() as broker:
        inbox = Inbox()
        await broker.ssubscribe("orders:{eu}", inbox.sink)
        await broker.psubscribe("orders:*", Inbox().sink)
        assert await broker.publish("orders:{eu}", b"1") == 1  # the pattern only
        assert await broker.spublish("orders:{eu}", b"2") == 1
        [message] = inbox.take()
        assert (message.kind, message.channel, message.payload) == (
            Kind.SHARD,
            b"orders:{eu}",
            b"2",
        )


async def test_wait_connected_connection_and_closing() -> None:
    async with open_memory_broker() as broker:
        await broker.wait_connected()
        with pytest.raises(RedisConnectionError, match="memory://"):
            broker.connection()
        handle = await broker.subscribe("x", Inbox().sink)
        with pytest.raises(ValueError, match="empty"):
            await broker.subscribe("", Inbox().sink)
        with pytest.raises(ValueError, match="empty"):
            await broker.psubscribe(b"", Inbox().sink)
    assert broker.closed
    await handle.close()  # harmless after the broker closed
    await broker.aclose()  # idempotent
    with pytest.raises(trio.ClosedResourceError):
        await broker.publish("x", b"1")
    with pytest.raises(trio.ClosedResourceError):
        await broker.subscribe("x", Inbox().sink)


async def test_a_cancelled_publish_delivers_nothing_and_a_cancelled_subscribe_adds_nothing() -> (
    None
):
    async with open_memory_broker() as broker:
        inbox = Inbox()
        await broker.subscribe("c", inbox.sink)
        with trio.CancelScope() as scope:
            scope.cancel()
            await broker.publish("c", b"lost")
        assert scope.cancelled_caught
        assert inbox.take() == []
        with trio.CancelScope() as scope:
            scope.cancel()
            await broker.subscribe("d", inbox.sink)
        assert await broker.pubsub_numsub("d") == {"d": 0}


async def test_named_brokers_share_a_server_as_separate_clients(system: ActorSystem) -> None:
    """Each ``open_broker("memory://NAME")`` is one client, as each Redis connection is."""
    async with (
        open_broker(system, "memory://shared-test") as first,
        open_broker(system, "memory://shared-test") as second,
        open_broker(system, "memory://") as private,
    ):
        assert isinstance(first, MemoryBroker)
        assert isinstance(second, MemoryBroker)
        assert isinstance(private, MemoryBroker)
        one, two = Inbox(), Inbox()
        await first.subscribe("room", one.sink)
        await first.subscribe("room", Inbox().sink)
        await second.subscribe("room", two.sink)
        await second.psubscribe("r*", two.sink)
        await first.psubscribe("r*", one.sink)
        # Two clients hold the channel and two hold the pattern.
        assert await private.publish("room", b"0") == 0
        assert await first.publish("room", b"1") == 4
        assert await second.pubsub_numsub("room") == {"room": 2}
        assert await second.pubsub_numpat() == 1  # distinct patterns, as Redis 7 counts them
        assert [(m.kind, m.payload) for m in one.take()] == [
            (Kind.CHANNEL, b"1"),
            (Kind.PATTERN, b"1"),
        ]
        assert len(two.take()) == 2
        assert await private.pubsub_channels() == []
    # The last client gone, the name starts afresh.
    async with open_broker(system, "memory://shared-test") as again:
        assert isinstance(again, MemoryBroker)
        assert await again.pubsub_numsub("room") == {"room": 0}


async def test_a_client_leaving_gives_up_its_names(system: ActorSystem) -> None:
    async with open_broker(system, "memory://leaving") as staying:
        async with open_broker(system, "memory://leaving") as leaving:
            await leaving.subscribe("c", Inbox().sink)
            await leaving.psubscribe("c*", Inbox().sink)
            assert isinstance(staying, MemoryBroker)
            assert await staying.publish("c", b"1") == 2
        assert await staying.publish("c", b"2") == 0
        assert await staying.pubsub_numpat() == 0


def test_memory_urls() -> None:
    assert memory_broker_name("memory://") is None
    assert memory_broker_name("memory://demo") == "demo"
    assert memory_broker_name("memory://demo/") == "demo"
    for bad in ("memory://demo/x", "memory://demo?x=1", "redis://localhost"):
        with pytest.raises(ValueError, match="memory://"):
            memory_broker_name(bad)


@pytest.mark.parametrize("url", ["ftp://host", "localhost:6379", "memory://a/b"])
async def test_open_broker_refuses_other_urls(system: ActorSystem, url: str) -> None:
    with pytest.raises(ValueError, match="memory://"):
        async with open_broker(system, url):
            pass


def test_both_brokers_implement_the_interface() -> None:
    """Checked by mypy: both brokers are a ``Broker``."""

    def as_broker(redis: RedisPubSub) -> Broker:
        return redis

    memory: Broker = MemoryBroker()
    assert memory is not None
    assert callable(as_broker)


async def test_within_gives_up_at_exactly_the_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """How a publish path without deadlines of its own (a history script, a routed shard
    publish) honours the deadline ``PubSub.publish`` hands down."""

    async def answer(after: float) -> int:
        await trio.sleep(after)
        return 7

    assert await within(math.inf, answer(100)) == 7
    assert await within(trio.current_time() + 5, answer(4)) == 7
    started = trio.current_time()
    with pytest.raises(RedisTimeoutError, match="may or may not have been published"):
        await within(started + 3, answer(10))
    assert trio.current_time() == started + 3
