"""The liveness probe on a shard channel (issue 11, requirement 4), in exact virtual time.

A cluster node's hub probes with ``SSUBSCRIBE``/``SPUBLISH`` on a channel whose slot the node
serves. A probe whose channel the server stops serving (a ``sunsubscribe``, ``MOVED``) is a
topology event, not a dead connection; a re-home in flight publishes again on the new channel;
a probe whose message never arrives (a replica moved under another master, which Redis 7.0
does not announce) is a dead verdict after exactly the probe's bound.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing
from in_memory_redis import SETTINGS, events, serving

from actors.redis import (
    Kind,
    PubSubHub,
    RedisConnection,
    RedisRedirectError,
    RedisReplyError,
    RedisTimeoutError,
    key_slot,
    open_redis_connection,
)
from actors.testing import MemoryRedisConnection, MemoryRedisServer

OLD = b"__actors:probe:test:{0}"
NEW = b"__actors:probe:test:{1}"


class Topology:
    """What a cluster client's ``not_served`` hears."""

    def __init__(self) -> None:
        self.events: list[tuple[Kind, bytes, str | None]] = []

    def not_served(self, kind: Kind, name: bytes, error: RedisReplyError | None) -> None:
        self.events.append((kind, name, None if error is None else error.code))


@asynccontextmanager
async def attached(server: MemoryRedisServer, hub: PubSubHub) -> AsyncIterator[RedisConnection]:
    async with open_redis_connection(
        SETTINGS, push_batch_handler=hub.push_many, connector=server.connect
    ) as connection:
        await hub.attach(connection)
        yield connection


def shard_hub(topology: Topology, **options: object) -> PubSubHub:
    return PubSubHub(
        probe_channel=OLD,
        probe_kind=Kind.SHARD,
        not_served=topology.not_served,
        **options,  # type: ignore[arg-type]
    )


async def test_the_probe_subscribes_and_publishes_on_its_shard_channel(
    autojump_clock: trio.testing.MockClock,
) -> None:
    hub = shard_hub(Topology())
    async with serving() as server, attached(server, hub):
        assert server.shard_numsub(OLD) == 1
        assert await hub.probe(3.0) == 0.0
        (connection,) = server.connections
        sent = [command[0].upper() for command in connection.commands]
        assert b"SSUBSCRIBE" in sent
        assert b"SPUBLISH" in sent
        assert b"PUBLISH" not in sent
        assert hub.statistics().subscriptions == ()  # the probe is hidden
        assert hub.statistics().probe_channel == OLD


async def test_a_sunsubscribe_of_the_probe_channel_is_a_topology_event_then_a_re_home(
    autojump_clock: trio.testing.MockClock,
) -> None:
    topology = Topology()
    hub = shard_hub(topology)
    async with serving() as server, attached(server, hub):
        assert server.move_slots(key_slot(OLD)) == 1
        await trio.testing.wait_all_tasks_blocked()
        assert topology.events == [(Kind.SHARD, OLD, None)]
        assert hub.probe_displaced
        # The connection answered its PING: alive, at once, no dead verdict.
        started = trio.current_time()
        assert await hub.probe(3.0) == 0.0
        assert trio.current_time() == started
        assert hub.connected
        # The topology's refresh re-homes it on a slot the node still serves.
        hub.rehome_probe(NEW)
        await trio.testing.wait_all_tasks_blocked()
        assert not hub.statistics().probe_displaced
        assert (server.shard_numsub(OLD), server.shard_numsub(NEW)) == (0, 1)
        assert await hub.probe(3.0) == 0.0
        (connection,) = server.connections
        # The displaced probe published nothing: the first token is the new channel's.
        assert connection.commands[-1] == (b"SPUBLISH", NEW, b"1")


async def test_a_probe_meeting_moved_is_a_topology_event_not_a_dead_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    topology = Topology()
    hub = shard_hub(topology)

    def moved(connection: MemoryRedisConnection, command: tuple[bytes, ...]) -> str | None:
        if command[0].upper() == b"SPUBLISH":
            return f"MOVED {key_slot(OLD)} 127.0.0.1:7001"
        return None

    async with serving() as server, attached(server, hub):
        server.set_command_hook(moved)
        assert await hub.probe(3.0) == 0.0
        assert topology.events == [(Kind.SHARD, OLD, "MOVED")]
        assert hub.probe_displaced
        assert hub.connected


async def test_a_re_home_in_flight_publishes_again_on_the_new_channel_without_a_dead_verdict(
    autojump_clock: trio.testing.MockClock,
) -> None:
    topology = Topology()
    published: list[tuple[float, bytes]] = []
    connections: list[RedisConnection] = []

    async def publish(channel: bytes, token: bytes) -> None:
        # The old channel's messages go nowhere now (its slot went to another shard).
        published.append((trio.current_time(), channel))
        if channel == NEW:
            await connections[0].spublish(channel, token)

    hub = shard_hub(topology, probe_publish=publish)
    async with serving() as server, attached(server, hub) as connection:
        connections.append(connection)
        async with trio.open_nursery() as nursery:

            async def rehome_later() -> None:
                await trio.sleep(0.5)
                hub.rehome_probe(NEW)

            nursery.start_soon(rehome_later)
            started = trio.current_time()
            assert await hub.probe(3.0) == 0.5
        assert published == [(started, OLD), (started + 0.5, NEW)]
        assert hub.connected


async def test_a_probe_whose_message_never_arrives_is_dead_after_exactly_its_bound(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A replica moved under another master on Redis 7.0: no push, the master's messages no
    longer reach it; only the probe can tell."""

    async def publish_to_the_old_master(channel: bytes, token: bytes) -> None:
        await trio.lowlevel.checkpoint()

    hub = shard_hub(Topology(), probe_publish=publish_to_the_old_master)
    async with serving() as server, attached(server, hub):
        started = trio.current_time()
        with pytest.raises(RedisTimeoutError, match=r"probe did not come back within 2\.0 s"):
            await hub.probe(2.0)
        assert trio.current_time() == started + 2.0


async def test_a_fresh_ssubscribe_meeting_moved_raises_the_redirect_without_an_error_log(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    hub = shard_hub(Topology())

    def moved(connection: MemoryRedisConnection, command: tuple[bytes, ...]) -> str | None:
        if command[0].upper() == b"SSUBSCRIBE" and command[1] == b"room":
            return f"MOVED {key_slot(b'room')} 127.0.0.1:7001"
        return None

    async with serving() as server, attached(server, hub):
        server.set_command_hook(moved)
        started = trio.current_time()
        with pytest.raises(RedisRedirectError):
            await hub.subscribe(Kind.SHARD, b"room", events()[0])
        assert trio.current_time() == started
        assert hub.table.get(Kind.SHARD, b"room") is None
    assert not [record for record in caplog.records if record.levelname == "ERROR"]
