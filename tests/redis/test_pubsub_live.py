"""Pub/Sub through ``open_redis_pubsub`` against private servers (issue 3, requirements 4, 6, 7).

Subscribers are actors fed by ``MailboxSink`` or trio channels fed by ``ChannelSink``; the
server's own view (``PUBSUB NUMSUB``/``NUMPAT``, ``CLIENT LIST``) is checked through a command
on the same multiplexed connection or a second raw one.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

import pytest
import trio
from _servers import FakeRedisTcpServer
from pubsub_test_helpers import (
    FAST_OPTIONS,
    Collector,
    client_list,
    collector_actor,
    mailbox,
    never_reading_actor,
    numsub_matches_table,
    wait_for,
)

from actors import ActorSystem, MailboxConfig, Overflow
from actors.pubsub import ChannelSink, MailboxSink, open_redis_pubsub
from actors.redis import (
    Kind,
    RedisConnection,
    RedisMessage,
    SubscriptionEvent,
    open_redis_connection,
)
from actors.testing import RedisServer

TIMEOUT = 20.0


async def test_subscribe_psubscribe_publish_round_trip(
    any_redis_server: RedisServer | FakeRedisTcpServer, system: ActorSystem
) -> None:
    with trio.fail_after(TIMEOUT):
        async with open_redis_pubsub(system, any_redis_server.url, options=FAST_OPTIONS) as pubsub:
            channel_events = Collector("channel actor")
            pattern_events = Collector("pattern actor")
            channel_actor = await system.spawn(collector_actor, channel_events, mailbox=mailbox())
            pattern_actor = await system.spawn(collector_actor, pattern_events, mailbox=mailbox())
            send, receive = trio.open_memory_channel[SubscriptionEvent](100)
            await pubsub.subscribe("news.sport", MailboxSink(channel_actor))
            await pubsub.psubscribe("news.*", MailboxSink(pattern_actor))
            await pubsub.subscribe(b"news.sport", ChannelSink(send))
            assert pubsub.statistics().hub.connected
            assert pubsub.statistics().hub.protocol == any_redis_server.protocol

            # Two channel subscribers and one pattern subscriber: Redis counts 2 receivers
            # (one per subscription of our single connection: the channel and the pattern).
            assert await pubsub.publish("news.sport", b"goal") == 2
            assert await pubsub.publish("news.weather", "rain") == 1
            assert await pubsub.publish("other", b"nobody") == 0

            await channel_events.wait_for_payload(b"goal")
            await pattern_events.wait_until(lambda: len(pattern_events.messages) == 2)
            from_channel = receive.receive_nowait()
            assert isinstance(from_channel, RedisMessage)
            assert (from_channel.channel, from_channel.payload) == (b"news.sport", b"goal")

            [message] = channel_events.messages
            assert message.kind is Kind.CHANNEL
            assert message.pattern is None
            # Pattern handlers see the concrete channel each message was published on.
            assert [(m.pattern, m.channel, m.payload) for m in pattern_events.messages] == [
                (b"news.*", b"news.sport", b"goal"),
                (b"news.*", b"news.weather", b"rain"),
            ]
            with pytest.raises(trio.WouldBlock):
                receive.receive_nowait()

            rows = {(s.kind, s.name): s for s in pubsub.statistics().hub.subscriptions}
            assert rows[(Kind.CHANNEL, b"news.sport")].sinks == 2
            assert rows[(Kind.CHANNEL, b"news.sport")].delivered == 2
            assert rows[(Kind.PATTERN, b"news.*")].delivered == 2
            assert all(row.acknowledged and row.dropped == 0 for row in rows.values())
            assert pubsub.statistics().hub.unroutable == 0


async def test_a_subscriber_of_a_channel_and_a_matching_pattern_gets_both(
    any_redis_server: RedisServer | FakeRedisTcpServer, system: ActorSystem
) -> None:
    """As Redis sends it: once per subscription (the documented behaviour)."""
    with trio.fail_after(TIMEOUT):
        async with open_redis_pubsub(system, any_redis_server.url, options=FAST_OPTIONS) as pubsub:
            events = Collector()
            actor = await system.spawn(collector_actor, events, mailbox=mailbox())
            sink = MailboxSink(actor)
            await pubsub.subscribe("a.b", sink)
            await pubsub.psubscribe("a.*", sink)
            assert await pubsub.publish("a.b", b"x") == 2
            await events.wait_until(lambda: len(events.messages) == 2)
            assert sorted((m.kind.value, m.payload) for m in events.messages) == [
                ("channel", b"x"),
                ("pattern", b"x"),
            ]


async def _server_agrees(query: Callable[[], Awaitable[object]], expected: object) -> None:
    """Wait until the server's view matches: in RESP3 at once (one ordered connection), in
    RESP2 after the separate subscriber connection's UNSUBSCRIBE has been processed."""

    async def agrees() -> bool:
        return await query() == expected

    await wait_for(agrees, what=f"the server to report {expected!r}")


async def test_subscriptions_are_reference_counted_on_the_server(
    any_redis_server: RedisServer | FakeRedisTcpServer, system: ActorSystem
) -> None:
    with trio.fail_after(TIMEOUT):
        async with open_redis_pubsub(system, any_redis_server.url, options=FAST_OPTIONS) as pubsub:
            sends = [trio.open_memory_channel[SubscriptionEvent](10)[0] for _ in range(3)]
            sinks = [ChannelSink(send) for send in sends]
            await pubsub.wait_connected()
            redis = pubsub.connection()
            base_numpat = await redis.pubsub_numpat()

            first = await pubsub.subscribe("rc", sinks[0])
            second = await pubsub.subscribe("rc", sinks[1])
            third = await pubsub.subscribe("rc", sinks[2])
            # Subscribing waits for the acknowledgement, so the server agrees at once.
            assert await redis.pubsub_numsub("rc") == {"rc": 1}
            before = redis.statistics().commands_sent
            await first.close()
            await second.close()
            assert await redis.pubsub_numsub("rc") == {"rc": 1}
            # Only the NUMSUB command went out: the closes sent no UNSUBSCRIBE.
            assert redis.statistics().commands_sent == before + 1
            await third.close()
            await _server_agrees(lambda: redis.pubsub_numsub("rc"), {"rc": 0})
            assert pubsub.hub.table.get(Kind.CHANNEL, b"rc") is None

            p1 = await pubsub.psubscribe("rc.*", sinks[0])
            p2 = await pubsub.psubscribe("rc.*", sinks[1])
            assert await redis.pubsub_numpat() == base_numpat + 1
            await p1.close()
            assert await redis.pubsub_numpat() == base_numpat + 1
            await p2.close()
            await _server_agrees(redis.pubsub_numpat, base_numpat)

            # Subscribing again after the last one left subscribes again.
            again = await pubsub.subscribe("rc", sinks[0])
            assert await redis.pubsub_numsub("rc") == {"rc": 1}
            assert await pubsub.publish("rc", b"back") == 1
            await again.close()


async def test_a_thousand_channels_each_with_its_own_actor(
    any_redis_server: RedisServer | FakeRedisTcpServer, system: ActorSystem
) -> None:
    channels = 1000
    per_channel = 5
    with trio.fail_after(TIMEOUT):
        async with open_redis_pubsub(system, any_redis_server.url, options=FAST_OPTIONS) as pubsub:
            collectors = [Collector(f"c{index}") for index in range(channels)]

            async def subscribe(index: int) -> None:
                actor = await system.spawn(
                    collector_actor, collectors[index], mailbox=mailbox(per_channel * 2)
                )
                await pubsub.subscribe(f"ch:{index}", MailboxSink(actor))

            async with trio.open_nursery() as nursery:
                for index in range(channels):
                    nursery.start_soon(subscribe, index)
            redis = pubsub.connection()
            assert await numsub_matches_table(pubsub, redis)

            async def publish(start: int) -> None:
                for index in range(start, channels, 50):
                    for number in range(per_channel):
                        assert await pubsub.publish(f"ch:{index}", b"%d" % number) == 1

            async with trio.open_nursery() as nursery:
                for start in range(50):
                    nursery.start_soon(publish, start)
            expected = [b"%d" % number for number in range(per_channel)]
            for index, collector in enumerate(collectors):
                await collector.wait_for_messages(per_channel)
                assert collector.payloads == expected, index
                assert {m.channel for m in collector.messages} == {f"ch:{index}".encode()}
            stats = pubsub.statistics().hub
            assert len(stats.subscriptions) == channels
            assert all(s.delivered == per_channel and s.dropped == 0 for s in stats.subscriptions)
            # Publishes from 50 tasks were pipelined: fewer socket writes than commands.
            assert redis.statistics().writes < redis.statistics().commands_sent


FLOOD = 50_000
SLOW_CAPACITY = 10


# A flood of 50,000 messages under its own fail_after(60), which must fire before the session
# guard, with the redis-server fixture's start and stop on top.
@pytest.mark.timeout(120)
async def test_a_slow_consumer_loses_only_its_own_messages(
    redis_server: RedisServer, system: ActorSystem
) -> None:
    """Requirement 7: a subscriber that never reads drops by its policy; the others get all."""
    payload_size = 150
    with trio.fail_after(60):
        async with (
            open_redis_pubsub(system, redis_server.url, options=FAST_OPTIONS) as pubsub,
            open_redis_connection(redis_server.url) as publisher,
        ):
            fast = [Collector(f"fast{index}") for index in range(3)]
            fast_refs = [
                await system.spawn(collector_actor, c, mailbox=mailbox(math.inf)) for c in fast
            ]
            slow_refs = {
                policy: await system.spawn(
                    never_reading_actor,
                    mailbox=MailboxConfig(capacity=SLOW_CAPACITY, overflow=policy),
                )
                for policy in (Overflow.DROP_NEWEST, Overflow.DROP_OLDEST)
            }
            # A FAIL-policy slow reader on a pattern of its own: its refusals reach the table.
            failing = await system.spawn(
                never_reading_actor,
                mailbox=MailboxConfig(capacity=SLOW_CAPACITY, overflow=Overflow.FAIL),
            )
            for ref in slow_refs.values():
                await pubsub.subscribe("flood", MailboxSink(ref))
            for ref in fast_refs:
                await pubsub.subscribe("flood", MailboxSink(ref))
            await pubsub.psubscribe("flo*", MailboxSink(failing))
            our_id = pubsub.connection().server_info["id"]
            omem_seen: list[int] = []

            async def sample_output_buffer() -> None:
                async with open_redis_connection(redis_server.url) as observer:
                    while True:
                        clients = client_list(await observer.execute("CLIENT", "LIST"))
                        for client in clients:
                            if client.get("id") == str(our_id):
                                omem_seen.append(int(client["omem"]))
                        await trio.sleep(0.005)

            async def flood(start: int, step: int) -> None:
                for number in range(start, FLOOD, step):
                    body = b"%08d" % number
                    await publisher.publish("flood", body + b"x" * (payload_size - len(body)))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(sample_output_buffer)
                async with trio.open_nursery() as publishers:
                    for start in range(20):
                        publishers.start_soon(flood, start, 20)
                for collector in fast:
                    await collector.wait_for_messages(FLOOD)
                nursery.cancel_scope.cancel()

            for collector in fast:
                numbers = sorted(int(p[:8]) for p in collector.payloads)
                assert numbers == list(range(FLOOD)), collector.name
            newest = slow_refs[Overflow.DROP_NEWEST].statistics().mailbox
            oldest = slow_refs[Overflow.DROP_OLDEST].statistics().mailbox
            assert newest.size == SLOW_CAPACITY
            assert newest.dropped_newest == FLOOD - SLOW_CAPACITY
            assert newest.dropped == FLOOD - SLOW_CAPACITY
            assert oldest.size == SLOW_CAPACITY
            assert oldest.dropped_oldest == FLOOD - SLOW_CAPACITY
            assert failing.statistics().mailbox.rejected == FLOOD - SLOW_CAPACITY

            stats = pubsub.statistics()
            rows = {(s.kind, s.name): s for s in stats.hub.subscriptions}
            pattern_row = rows[(Kind.PATTERN, b"flo*")]
            assert pattern_row.dropped == FLOOD - SLOW_CAPACITY
            assert pattern_row.delivered == SLOW_CAPACITY
            # The shared connection was never cut or replaced.
            assert stats.connection_restarts == 0
            assert stats.hub.reconnects == 0
            assert stats.hub.connected
            assert pubsub.connection().server_info["id"] == our_id
            # Redis's output buffer for our connection stayed far below any pub/sub limit.
            assert omem_seen, "CLIENT LIST never showed our connection"
            assert max(omem_seen) < 4 * 1024 * 1024, max(omem_seen)


async def test_policy_drops_are_counted_by_the_subscription(
    redis_server: RedisServer, system: ActorSystem
) -> None:
    """drop_newest and drop_oldest losses reach SubscriptionStatistics.dropped too."""
    total = 200
    with trio.fail_after(TIMEOUT):
        async with open_redis_pubsub(system, redis_server.url, options=FAST_OPTIONS) as pubsub:
            done = Collector()
            done_ref = await system.spawn(collector_actor, done, mailbox=mailbox())
            for policy, channel in ((Overflow.DROP_NEWEST, "n"), (Overflow.DROP_OLDEST, "o")):
                ref = await system.spawn(
                    never_reading_actor,
                    mailbox=MailboxConfig(capacity=SLOW_CAPACITY, overflow=policy),
                )
                await pubsub.subscribe(channel, MailboxSink(ref))
                await pubsub.subscribe(channel, MailboxSink(done_ref))
            for number in range(total):
                await pubsub.publish("n", b"%d" % number)
                await pubsub.publish("o", b"%d" % number)
            await done.wait_until(lambda: len(done.messages) == 2 * total)
            rows = {s.name: s for s in pubsub.statistics().hub.subscriptions}
            for name in (b"n", b"o"):
                assert rows[name].dropped == total - SLOW_CAPACITY, rows[name]
                assert rows[name].delivered == total + SLOW_CAPACITY, rows[name]


async def test_resp2_mode_against_fakeredis(
    fakeredis_server: FakeRedisTcpServer, system: ActorSystem
) -> None:
    """fakeredis answers HELLO 3 but pushes plain arrays: RESP2 mode with two connections."""
    with trio.fail_after(TIMEOUT):
        async with open_redis_pubsub(system, fakeredis_server.url, options=FAST_OPTIONS) as pubsub:
            events = Collector()
            actor = await system.spawn(collector_actor, events, mailbox=mailbox())
            send, receive = trio.open_memory_channel[SubscriptionEvent](100)
            await pubsub.subscribe("r2", MailboxSink(actor))
            await pubsub.psubscribe("r2.*", ChannelSink(send))
            assert pubsub.statistics().hub.protocol == 2
            # The command connection still takes commands while another one is subscribed.
            redis = pubsub.connection()
            assert await redis.ping() == b"PONG"
            assert await redis.execute("SET", "k", "v") == b"OK"
            assert await redis.pubsub_numsub("r2") == {"r2": 1}
            assert await pubsub.publish("r2", b"one") == 1
            assert await pubsub.publish("r2.x", b"two") == 1
            await events.wait_for_payload(b"one")
            with trio.fail_after(5):
                message = await receive.receive()
            assert isinstance(message, RedisMessage)
            assert (message.pattern, message.channel, message.payload) == (
                b"r2.*",
                b"r2.x",
                b"two",
            )
            assert [m.channel for m in events.messages] == [b"r2"]
            subscription = await pubsub.subscribe("r2b", MailboxSink(actor))
            await subscription.close()
            # UNSUBSCRIBE went out on the subscriber connection, PUBLISH goes on the command
            # one: no order between them, so wait for the server to see it.
            await wait_for(
                lambda: _numsub_is(redis, "r2b", 0), what="r2b unsubscribed on the server"
            )
            assert await pubsub.publish("r2b", b"gone") == 0


async def _numsub_is(redis: RedisConnection, channel: str, count: int) -> bool:
    return (await redis.pubsub_numsub(channel))[channel] == count


async def test_shard_channels_are_subscribed_and_routed(
    redis_server: RedisServer, system: ActorSystem
) -> None:
    """SSUBSCRIBE / SPUBLISH (Redis 7 sharded Pub/Sub) go through the same table and routing."""
    send, receive = trio.open_memory_channel[SubscriptionEvent](10)
    with trio.fail_after(TIMEOUT):
        async with open_redis_pubsub(system, redis_server.url, options=FAST_OPTIONS) as pubsub:
            subscription = await pubsub.ssubscribe("orders:{eu}", ChannelSink(send))
            assert await pubsub.connection().execute("SPUBLISH", "orders:{eu}", "42") == 1
            event = await receive.receive()
            assert isinstance(event, RedisMessage)
            assert (event.kind, event.channel, event.payload) == (Kind.SHARD, b"orders:{eu}", b"42")
            await subscription.close()
            assert await pubsub.connection().execute("SPUBLISH", "orders:{eu}", "43") == 0
