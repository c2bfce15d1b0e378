"""Faults against private real servers (issue 3, requirements 5, 6 and 8).

SIGKILL and restart mid-stream, ``CLIENT KILL TYPE pubsub``, a server-side output-buffer kill, a
black-holed connection found by the liveness probe, 100 kill/restart cycles under load, pending
commands failing at once, publishing while disconnected. After every reconnect the server's
``PUBSUB NUMSUB`` must agree with the hub's table and every subscriber must have been told about
the gap: ``ConnectionLost``, then ``Resubscribed`` with ``gap_start < gap_end``.

Reconnects use a 10-50 ms backoff without jitter; every wait has a deadline; the only sleeps are
short polls of a real process's state.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import attrs
import pytest
import trio
from _proxy import BlackHoleProxy
from _servers import encode_command
from pubsub_test_helpers import (
    FAST_OPTIONS,
    POLL,
    Collector,
    collector_actor,
    mailbox,
    numsub_matches_table,
    wait_for,
)

from actors import ActorSystem, RedisConnectionError, RedisError
from actors.pubsub import ChannelSink, MailboxSink, RedisPubSub, open_redis_pubsub
from actors.redis import (
    ConnectionLost,
    RedisConnectionLostError,
    RedisSettings,
    Resubscribed,
    SubscriptionEvent,
    open_redis_connection,
)
from actors.testing import RedisServer, RedisServerFactory

TIMEOUT = 20.0
CHANNELS = ("f:a", "f:b", "f:c")
PATTERN = "f:*"


@attrs.define
class Subscribers:
    """One actor per channel, one pattern actor, and one memory-channel subscriber."""

    pubsub: RedisPubSub
    by_channel: dict[str, Collector]
    pattern: Collector
    channel_sink: Collector

    @property
    def all(self) -> list[Collector]:
        return [*self.by_channel.values(), self.pattern, self.channel_sink]

    async def wait_gap_closed(self, gaps: int) -> None:
        """Wait until every subscriber was told about ``gaps`` complete gaps."""
        for collector in self.all:
            await collector.wait_for_resubscribed(gaps)

    async def wait_final_message(self, payload: bytes) -> None:
        """Publish ``payload`` on every channel; every subscriber must receive it."""
        for channel in CHANNELS:
            await self.pubsub.publish(channel, payload)
        for collector in self.by_channel.values():
            await collector.wait_for_payload(payload)
        await self.pattern.wait_until(lambda: self.pattern.payloads.count(payload) == 3)
        await self.channel_sink.wait_for_payload(payload)


def assert_gaps_well_formed(collector: Collector, *, gaps: int | None = None) -> None:
    """Gap events alternate ``ConnectionLost`` / ``Resubscribed``, each gap with start < end."""
    events = collector.gap_events
    if gaps is not None:
        assert len(events) == 2 * gaps, (collector.name, events)
    assert len(events) % 2 == 0, (collector.name, events)
    for lost, back in zip(events[::2], events[1::2], strict=True):
        assert isinstance(lost, ConnectionLost), (collector.name, events)
        assert isinstance(back, Resubscribed), (collector.name, events)
        assert back.gap_start == lost.at
        assert back.gap_start < back.gap_end
    if events:
        # Messages flowed again after the last gap was closed.
        last = collector.events.index(events[-1])
        assert any(
            not isinstance(e, ConnectionLost | Resubscribed) for e in collector.events[last:]
        )


@asynccontextmanager
async def subscribed(
    system: ActorSystem, pubsub: RedisPubSub, nursery: trio.Nursery
) -> AsyncIterator[Subscribers]:
    by_channel = {channel: Collector(channel) for channel in CHANNELS}
    for channel, collector in by_channel.items():
        actor = await system.spawn(collector_actor, collector, mailbox=mailbox())
        await pubsub.subscribe(channel, MailboxSink(actor))
    pattern = Collector("pattern")
    actor = await system.spawn(collector_actor, pattern, mailbox=mailbox())
    await pubsub.psubscribe(PATTERN, MailboxSink(actor))
    channel_sink = Collector("memory channel")
    send, receive = trio.open_memory_channel[SubscriptionEvent](100_000)
    await pubsub.subscribe(CHANNELS[0], ChannelSink(send))

    async def drain() -> None:
        async for event in receive:
            channel_sink.add(event)

    nursery.start_soon(drain)
    yield Subscribers(pubsub, by_channel, pattern, channel_sink)


async def keep_publishing(url: str, channels: Sequence[str], published: list[int]) -> None:
    """Publish continuously on a raw connection of its own, ignoring errors while Redis is down."""
    settings = attrs.evolve(RedisSettings.from_url(url), connect_timeout=0.5)
    number = 0
    while True:
        try:
            async with open_redis_connection(settings) as redis:
                while not redis.closed:
                    for channel in channels:
                        await redis.publish(channel, b"load %d" % number)
                    number += 1
                    published[0] = number
        except (RedisError, OSError):
            pass
        await trio.sleep(POLL)


async def assert_numsub_agrees(pubsub: RedisPubSub) -> None:
    await pubsub.wait_connected()
    assert await numsub_matches_table(pubsub, pubsub.connection())
    patterns = await pubsub.connection().execute("PUBSUB", "NUMPAT")
    assert patterns == 1


async def test_sigkill_and_restart_mid_stream(
    redis_server: RedisServer, system: ActorSystem
) -> None:
    with trio.fail_after(TIMEOUT):
        async with (
            open_redis_pubsub(system, redis_server.url, options=FAST_OPTIONS) as pubsub,
            trio.open_nursery() as nursery,
            subscribed(system, pubsub, nursery) as subscribers,
        ):
            published = [0]
            nursery.start_soon(keep_publishing, redis_server.url, CHANNELS, published)
            # Mid-stream: every subscriber is receiving.
            for collector in subscribers.all:
                await collector.wait_for_messages(20)
            redis_server.kill()
            for collector in subscribers.all:
                await collector.wait_for_lost()
            assert not pubsub.statistics().hub.connected
            assert pubsub.statistics().hub.gap_started is not None
            await redis_server.restart_async()
            await subscribers.wait_gap_closed(1)
            # Messages from the publisher flow again after the gap.
            for collector in subscribers.all:
                await collector.wait_for_message_after_gap()
            await subscribers.wait_final_message(b"final")
            await assert_numsub_agrees(pubsub)
            for collector in subscribers.all:
                assert_gaps_well_formed(collector, gaps=1)
            stats = pubsub.statistics()
            assert stats.hub.reconnects == 1
            assert stats.hub.gap_started is None
            assert stats.connection_restarts >= 1
            nursery.cancel_scope.cancel()


async def test_client_kill_type_pubsub(redis_server: RedisServer, system: ActorSystem) -> None:
    with trio.fail_after(TIMEOUT):
        async with (
            open_redis_pubsub(system, redis_server.url, options=FAST_OPTIONS) as pubsub,
            open_redis_connection(redis_server.url) as admin,
            trio.open_nursery() as nursery,
            subscribed(system, pubsub, nursery) as subscribers,
        ):
            await subscribers.wait_final_message(b"before")
            old_id = pubsub.connection().server_info["id"]
            killed = await admin.execute("CLIENT", "KILL", "TYPE", "pubsub")
            assert killed == 1  # only our multiplexed connection is a pub/sub client
            await subscribers.wait_gap_closed(1)
            await subscribers.wait_final_message(b"after")
            await assert_numsub_agrees(pubsub)
            assert pubsub.connection().server_info["id"] != old_id
            assert pubsub.statistics().hub.reconnects == 1
            for collector in subscribers.all:
                assert_gaps_well_formed(collector, gaps=1)
            nursery.cancel_scope.cancel()


def _flood_while_blocking(port: int, channel: str, total_bytes: int) -> int:
    """Publish ``total_bytes`` on a blocking socket, synchronously: the trio loop (our reader
    included) cannot run meanwhile, so Redis's output buffer for our connection fills up."""
    payload = b"x" * 65536
    count = total_bytes // len(payload)
    command = encode_command("PUBLISH", channel, payload)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(command * count)
        replies = b""
        while replies.count(b"\r\n") < count:
            chunk = sock.recv(65536)
            if not chunk:
                break
            replies += chunk
    return count


async def test_output_buffer_kill_reconnects_and_resubscribes(
    redis_server_factory: RedisServerFactory, system: ActorSystem
) -> None:
    server = redis_server_factory(("--client-output-buffer-limit", "pubsub 64kb 32kb 0"))
    with trio.fail_after(TIMEOUT):
        async with (
            open_redis_pubsub(system, server.url, options=FAST_OPTIONS) as pubsub,
            trio.open_nursery() as nursery,
            subscribed(system, pubsub, nursery) as subscribers,
        ):
            await subscribers.wait_final_message(b"before")
            # Far more than the kernel's socket buffers can hold on top of 64 KiB.
            _flood_while_blocking(server.port, CHANNELS[1], 48 * 1024 * 1024)
            await subscribers.wait_gap_closed(1)
            await subscribers.wait_final_message(b"after")
            await assert_numsub_agrees(pubsub)
            assert "output buffer limits" in server.log()
            assert pubsub.statistics().hub.reconnects == 1
            for collector in subscribers.all:
                assert_gaps_well_formed(collector, gaps=1)
            nursery.cancel_scope.cancel()


async def test_a_black_holed_connection_is_found_by_the_probe(
    black_hole_proxy: BlackHoleProxy, system: ActorSystem
) -> None:
    options = attrs.evolve(FAST_OPTIONS, probe_interval=0.2, probe_timeout=0.5)
    with trio.fail_after(TIMEOUT):
        async with (
            open_redis_pubsub(system, black_hole_proxy.url, options=options) as pubsub,
            trio.open_nursery() as nursery,
            subscribed(system, pubsub, nursery) as subscribers,
        ):
            await subscribers.wait_final_message(b"before")
            # Idle long enough for a probe to come back: liveness is proven, not assumed.
            await wait_for(
                lambda: _is_not_none(pubsub.statistics().hub.last_probe_age),
                what="a first probe",
            )
            assert black_hole_proxy.accepted == 1
            await black_hole_proxy.black_hole()
            lost_at = trio.current_time()
            # Nothing is closed: only the probe can notice.
            for collector in subscribers.all:
                await collector.wait_for_lost()
            detected_after = trio.current_time() - lost_at
            assert detected_after < 0.2 + 0.5 + 1.0, detected_after
            lost = subscribers.pattern.gap_events[0]
            assert isinstance(lost, ConnectionLost)
            assert "probe" in lost.reason, lost
            # The replacement connects through the proxy, which joins it upstream on restore.
            await wait_for(
                lambda: _is_true(black_hole_proxy.accepted >= 2), what="a new connection"
            )
            black_hole_proxy.restore()
            await subscribers.wait_gap_closed(1)
            await subscribers.wait_final_message(b"after")
            await assert_numsub_agrees(pubsub)
            stats = pubsub.statistics()
            assert stats.hub.reconnects >= 1
            assert stats.connection_restarts >= 1
            for collector in subscribers.all:
                assert_gaps_well_formed(collector, gaps=1)
            nursery.cancel_scope.cancel()


async def _is_not_none(value: object) -> bool:
    await trio.lowlevel.checkpoint()
    return value is not None


async def _is_true(value: bool) -> bool:
    await trio.lowlevel.checkpoint()
    return value


# A hundred restarts of a real Redis under their own fail_after(50), which must fire before the
# session guard, with the redis-server fixture's start and stop on top.
@pytest.mark.timeout(120)
async def test_a_hundred_kill_restart_cycles_under_load(
    redis_server: RedisServer, system: ActorSystem
) -> None:
    cycles = 100
    with trio.fail_after(50):
        async with (
            open_redis_pubsub(system, redis_server.url, options=FAST_OPTIONS) as pubsub,
            trio.open_nursery() as nursery,
            subscribed(system, pubsub, nursery) as subscribers,
        ):
            published = [0]
            nursery.start_soon(keep_publishing, redis_server.url, CHANNELS, published)
            for cycle in range(cycles):
                redis_server.kill()
                await redis_server.restart_async()
                if cycle % 2 == 0:
                    # Half the time, let it reconnect; otherwise kill it again at once, while it
                    # is connecting or replaying.
                    await pubsub.wait_connected()
            await pubsub.wait_connected()
            await subscribers.wait_final_message(b"final")
            await assert_numsub_agrees(pubsub)
            stats = pubsub.statistics()
            assert stats.hub.reconnects >= cycles // 2, stats.hub.reconnects
            assert len(stats.hub.subscriptions) == len(CHANNELS) + 1
            assert all(s.acknowledged for s in stats.hub.subscriptions)
            assert published[0] > 0
            for collector in subscribers.all:
                gaps = collector.gap_events
                assert len(gaps) >= cycles // 2
                assert_gaps_well_formed(collector)
            nursery.cancel_scope.cancel()


async def test_pending_commands_fail_at_once_when_the_server_dies(
    redis_server: RedisServer, system: ActorSystem
) -> None:
    with trio.fail_after(TIMEOUT):
        async with open_redis_pubsub(system, redis_server.url, options=FAST_OPTIONS) as pubsub:
            await pubsub.wait_connected()
            redis = pubsub.connection()
            errors: list[BaseException] = []

            async def pending(*command: str) -> None:
                try:
                    await redis.execute(*command)
                except RedisConnectionLostError as error:
                    errors.append(error)

            async with trio.open_nursery() as nursery:
                # BLPOP blocks on the server, so everything behind it stays pending.
                nursery.start_soon(pending, "BLPOP", "never", "0")
                await wait_for(
                    lambda: _is_true(redis.statistics().pending_commands >= 1),
                    what="BLPOP pending",
                )
                for number in range(10):
                    nursery.start_soon(pending, "PUBLISH", "p", str(number))
                await wait_for(
                    lambda: _is_true(redis.statistics().pending_commands >= 11),
                    what="11 pending commands",
                )
                redis_server.kill()
                killed_at = trio.current_time()
            assert trio.current_time() - killed_at < 1.0
            assert len(errors) == 11
            assert all(type(error) is RedisConnectionLostError for error in errors)


async def test_publish_while_disconnected_raises(
    redis_server: RedisServer, system: ActorSystem
) -> None:
    with trio.fail_after(TIMEOUT):
        async with open_redis_pubsub(system, redis_server.url, options=FAST_OPTIONS) as pubsub:
            events = Collector()
            actor = await system.spawn(collector_actor, events, mailbox=mailbox())
            await pubsub.subscribe("d", MailboxSink(actor))
            redis_server.kill()
            await events.wait_until(lambda: len(events.gap_events) == 1)
            for _ in range(5):  # while reconnect attempts keep failing
                with trio.fail_after(1), pytest.raises(RedisConnectionError):
                    await pubsub.publish("d", b"lost")
                await trio.sleep(POLL)
            assert not pubsub.statistics().hub.connected
            await redis_server.restart_async()
            await pubsub.wait_connected()
            assert await pubsub.publish("d", b"back") == 1
            await events.wait_for_payload(b"back")
            assert b"lost" not in events.payloads
            assert_gaps_well_formed(events, gaps=1)
