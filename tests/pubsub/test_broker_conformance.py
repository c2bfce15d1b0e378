"""One suite, both brokers (issue 4, requirement 4): ``memory://`` behaves as Redis does.

History and recovery, the suite's other half, are in ``test_recovery.py`` (same ``broker_url``).

Every scenario runs on a ``memory://NAME`` broker and on ``RedisPubSub`` against a private
``redis-server``, both opened through ``open_broker``, with the same expected values; the last
test also runs one script on both and compares the transcripts. Redis delivers asynchronously,
so a scenario collects what a sink received by publishing a fence message after the others and
reading up to it (one connection keeps its order); the memory broker has delivered already.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from actors import ActorSystem
from actors.pubsub import (
    Broker,
    ChannelSink,
    ConnectionOptions,
    MemoryBroker,
    RedisPubSub,
    glob_match,
    open_broker,
)
from actors.redis import Kind, RedisMessage, SubscriptionEvent

TIMEOUT = 20.0
OPTIONS = ConnectionOptions(ack_timeout=10.0)
FENCE = "conformance:fence"
PROBE_PREFIX = "__actors:probe:"
_names = itertools.count(1)


@asynccontextmanager
async def connect(system: ActorSystem, url: str) -> AsyncIterator[Broker]:
    """One client: a memory broker or a Redis connection, ready to publish."""
    async with open_broker(system, url, options=OPTIONS) as broker:
        await broker.wait_connected()
        yield broker


class Inbox:
    def __init__(self) -> None:
        self.send, self.receive = trio.open_memory_channel[SubscriptionEvent](10_000)
        self.sink = ChannelSink(self.send)


async def drain(publisher: Broker, subscriber: Broker, inbox: Inbox) -> list[RedisMessage]:
    """What the inbox received before a fence published now (the fence not included)."""
    fence = await subscriber.subscribe(FENCE, inbox.sink)
    try:
        await publisher.publish(FENCE, b"")
        received: list[RedisMessage] = []
        while True:
            event = await inbox.receive.receive()
            assert isinstance(event, RedisMessage), event
            if event.channel == FENCE.encode():
                return received
            received.append(event)
    finally:
        await fence.close()


def summary(messages: list[RedisMessage]) -> list[tuple[str, bytes | None, bytes, bytes]]:
    return [(m.kind.value, m.pattern, m.channel, m.payload) for m in messages]


async def channels(broker: Broker, pattern: str) -> list[str]:
    if isinstance(broker, MemoryBroker):
        return await broker.pubsub_channels(pattern)
    assert isinstance(broker, RedisPubSub)
    names = await broker.connection().pubsub_channels(pattern)
    return [name for name in names if not name.startswith(PROBE_PREFIX)]


async def numsub(broker: Broker, *names: str) -> dict[str, int]:
    if isinstance(broker, MemoryBroker):
        return await broker.pubsub_numsub(*names)
    assert isinstance(broker, RedisPubSub)
    return await broker.connection().pubsub_numsub(*names)


async def shardnumsub(broker: Broker, *names: str) -> dict[str, int]:
    if isinstance(broker, MemoryBroker):
        return await broker.pubsub_shardnumsub(*names)
    assert isinstance(broker, RedisPubSub)
    return await broker.connection().pubsub_shardnumsub(*names)


async def numpat(broker: Broker) -> int:
    if isinstance(broker, MemoryBroker):
        return await broker.pubsub_numpat()
    assert isinstance(broker, RedisPubSub)
    return await broker.connection().pubsub_numpat()


# --- scenarios ----------------------------------------------------------------------------------


async def test_publish_counts_and_pattern_channels(system: ActorSystem, broker_url: str) -> None:
    with trio.fail_after(TIMEOUT):
        async with connect(system, broker_url) as broker:
            first, second, pattern = Inbox(), Inbox(), Inbox()
            await broker.subscribe("news.sport", first.sink)
            await broker.subscribe(b"news.sport", second.sink)
            await broker.psubscribe("news.*", pattern.sink)
            # Two local sinks share one subscription: the channel counts once, the pattern once.
            assert await broker.publish("news.sport", b"goal") == 2
            assert await broker.publish("news.weather", "rain") == 1
            assert await broker.publish("other", b"nobody") == 0
            expected_channel = [("channel", None, b"news.sport", b"goal")]
            assert summary(await drain(broker, broker, first)) == expected_channel
            assert summary(await drain(broker, broker, second)) == expected_channel
            assert summary(await drain(broker, broker, pattern)) == [
                ("pattern", b"news.*", b"news.sport", b"goal"),
                ("pattern", b"news.*", b"news.weather", b"rain"),
            ]


async def test_a_channel_and_a_matching_pattern_deliver_twice(
    system: ActorSystem, broker_url: str
) -> None:
    with trio.fail_after(TIMEOUT):
        async with connect(system, broker_url) as broker:
            inbox = Inbox()
            await broker.subscribe("a.b", inbox.sink)
            await broker.psubscribe("a.*", inbox.sink)
            await broker.psubscribe("*.b", inbox.sink)
            assert await broker.publish("a.b", b"x") == 3
            received = summary(await drain(broker, broker, inbox))
            assert sorted(received, key=repr) == sorted(
                [
                    ("channel", None, b"a.b", b"x"),
                    ("pattern", b"a.*", b"a.b", b"x"),
                    ("pattern", b"*.b", b"a.b", b"x"),
                ],
                key=repr,
            )


async def test_unsubscribe_is_reference_counted(system: ActorSystem, broker_url: str) -> None:
    with trio.fail_after(TIMEOUT):
        async with connect(system, broker_url) as broker:
            base_numpat = await numpat(broker)
            inboxes = [Inbox() for _ in range(3)]
            handles = [await broker.subscribe("rc", inbox.sink) for inbox in inboxes]
            patterns = [await broker.psubscribe("rc*", inbox.sink) for inbox in inboxes[:2]]
            assert await numsub(broker, "rc", "none") == {"rc": 1, "none": 0}
            assert await numpat(broker) == base_numpat + 1
            await handles[0].close()
            await handles[1].close()
            assert await numsub(broker, "rc") == {"rc": 1}
            assert await broker.publish("rc", b"1") == 2
            await handles[2].close()
            assert await numsub(broker, "rc") == {"rc": 0}
            assert await channels(broker, "rc*") == []
            assert await broker.publish("rc", b"2") == 1
            await patterns[0].close()
            assert await numpat(broker) == base_numpat + 1
            await patterns[1].close()
            assert await numpat(broker) == base_numpat
            assert await broker.publish("rc", b"3") == 0


GLOB_PATTERNS: dict[str, set[str]] = {
    "g.*": {"g.a", "g.d", "g.ax", "g.dx", "g.*", "g.?", "g.[a]", "g.]", "g.zz", "g.", "g.abz"},
    "g.?": {"g.a", "g.d", "g.*", "g.?", "g.]"},
    "g.[abc]": {"g.a"},
    "g.[^abc]": {"g.d", "g.*", "g.?", "g.]"},
    "g.[a-c]x": {"g.ax"},
    "g.[c-a]x": {"g.ax"},
    "g.\\*": {"g.*"},
    "g.\\?": {"g.?"},
    "g.\\[a]": {"g.[a]"},
    "g.[\\]]": {"g.]"},
    "g.*z*": {"g.zz", "g.abz"},
    "g.[]": set(),
}
GLOB_CHANNELS = sorted(set().union(*GLOB_PATTERNS.values()) | {"g.dx", "h.a"})


def test_the_glob_table_is_what_glob_match_says() -> None:
    for pattern, matched in GLOB_PATTERNS.items():
        assert {c for c in GLOB_CHANNELS if glob_match(pattern.encode(), c.encode())} == matched


async def test_glob_rules_for_deliveries(system: ActorSystem, broker_url: str) -> None:
    with trio.fail_after(TIMEOUT):
        async with connect(system, broker_url) as broker:
            inboxes = {pattern: Inbox() for pattern in GLOB_PATTERNS}
            for pattern, inbox in inboxes.items():
                await broker.psubscribe(pattern, inbox.sink)
            for channel in GLOB_CHANNELS:
                expected = sum(channel in matched for matched in GLOB_PATTERNS.values())
                assert await broker.publish(channel, b"m") == expected, channel
            for pattern, inbox in inboxes.items():
                received = await drain(broker, broker, inbox)
                assert {m.pattern for m in received} <= {pattern.encode()}
                assert sorted(m.channel.decode() for m in received) == sorted(
                    GLOB_PATTERNS[pattern]
                ), pattern


async def test_glob_rules_for_introspection(system: ActorSystem, broker_url: str) -> None:
    with trio.fail_after(TIMEOUT):
        async with connect(system, broker_url) as broker:
            sink = Inbox().sink
            for channel in GLOB_CHANNELS:
                await broker.subscribe(channel, sink)
            for pattern, matched in GLOB_PATTERNS.items():
                assert await channels(broker, pattern) == sorted(matched), pattern
            assert await numsub(broker, "g.*", "g.\\*") == {"g.*": 1, "g.\\*": 0}


async def test_each_client_counts_once(system: ActorSystem, broker_url: str) -> None:
    """Two clients (two ``open_broker`` calls: two Redis connections, or two memory brokers
    on one named server) each count once per channel and per matching pattern."""
    with trio.fail_after(TIMEOUT):
        async with connect(system, broker_url) as first, connect(system, broker_url) as second:
            one, two = Inbox(), Inbox()
            await first.subscribe("room", one.sink)
            await first.subscribe("room", Inbox().sink)
            await second.subscribe("room", two.sink)
            await second.psubscribe("r*", two.sink)
            await first.psubscribe("r*", one.sink)
            assert await first.publish("room", b"1") == 4
            assert await second.publish("rest", b"2") == 2
            assert await numsub(first, "room") == {"room": 2}
            assert await numpat(second) == 1  # distinct patterns (Redis 7)
            assert sorted(summary(await drain(first, first, one)), key=repr) == sorted(
                [
                    ("channel", None, b"room", b"1"),
                    ("pattern", b"r*", b"room", b"1"),
                    ("pattern", b"r*", b"rest", b"2"),
                ],
                key=repr,
            )
            assert len(await drain(first, second, two)) == 3


async def test_shard_channels_are_a_namespace_of_their_own(
    system: ActorSystem, broker_url: str
) -> None:
    """SPUBLISH reaches SSUBSCRIBE subscribers only; PUBLISH never reaches them; no pattern
    matches a shard channel; each client counts once, as ``PUBSUB SHARDNUMSUB`` says."""
    with trio.fail_after(TIMEOUT):
        async with connect(system, broker_url) as first, connect(system, broker_url) as second:
            shard, plain, pattern, other = Inbox(), Inbox(), Inbox(), Inbox()
            handle = await first.ssubscribe("{room}.news", shard.sink)
            await first.ssubscribe(b"{room}.news", Inbox().sink)
            await first.subscribe("{room}.news", plain.sink)
            await first.psubscribe("{room}*", pattern.sink)
            await second.ssubscribe("{room}.news", other.sink)
            assert await first.spublish("{room}.news", b"sharded") == 2
            assert await first.publish("{room}.news", b"plain") == 2  # the channel, the pattern
            assert await second.spublish("{room}.other", b"nobody") == 0
            assert await shardnumsub(first, "{room}.news", "{room}.other") == {
                "{room}.news": 2,
                "{room}.other": 0,
            }
            assert await numsub(first, "{room}.news") == {"{room}.news": 1}
            assert summary(await drain(first, first, shard)) == [
                ("shard", None, b"{room}.news", b"sharded")
            ]
            assert summary(await drain(first, first, plain)) == [
                ("channel", None, b"{room}.news", b"plain")
            ]
            assert summary(await drain(first, first, pattern)) == [
                ("pattern", b"{room}*", b"{room}.news", b"plain")
            ]
            assert summary(await drain(first, second, other)) == [
                ("shard", None, b"{room}.news", b"sharded")
            ]
            await handle.close()  # one local sink is left: the name stays
            assert await shardnumsub(second, "{room}.news") == {"{room}.news": 2}


async def script(broker: Broker) -> list[object]:
    """A scenario whose every observable result is recorded."""
    transcript: list[object] = []
    inbox = Inbox()
    handles = [
        await broker.subscribe("s.one", inbox.sink),
        await broker.subscribe("s.one", Inbox().sink),
        await broker.psubscribe("s.[ot]*", inbox.sink),
        await broker.psubscribe("s.\\[*", inbox.sink),
        await broker.psubscribe("s.?", inbox.sink),
    ]
    for channel in ["s.one", "s.two", "s.[x", "s.x", "s.", "t.one", "s.on"]:
        transcript.append((channel, await broker.publish(channel, channel)))
    transcript.append(sorted(summary(await drain(broker, broker, inbox)), key=repr))
    transcript.append(await channels(broker, "s.*"))
    transcript.append(await numsub(broker, "s.one", "s.two"))
    for handle in handles[::2]:
        await handle.close()
        transcript.append(
            (
                await broker.publish("s.one", b"again"),
                await numsub(broker, "s.one"),
                await channels(broker, "s*"),
            )
        )
    return transcript


async def test_memory_and_redis_give_the_same_transcript(
    system: ActorSystem, redis_url: str
) -> None:
    with trio.fail_after(TIMEOUT):
        async with connect(system, "memory://") as memory, connect(system, redis_url) as redis:
            assert isinstance(memory, MemoryBroker)
            assert isinstance(redis, RedisPubSub)
            base = await numpat(redis)
            memory_transcript = await script(memory)
            redis_transcript = await script(redis)
            assert memory_transcript == redis_transcript
            # Left: the second sink of s.one and the pattern s.\\[*.
            assert await numpat(redis) == base + 1
            assert await numpat(memory) == 1
            rows = {(row.kind, row.name) for row in memory.statistics().subscriptions}
            assert rows == {(Kind.CHANNEL, b"s.one"), (Kind.PATTERN, b"s.\\[*")}
