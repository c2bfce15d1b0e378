"""Shard subscriptions on a cluster's terms: one hash slot per ``SSUBSCRIBE`` in a replay.

In virtual time against ``MemoryRedisServer`` (which records every command), and on a real
cluster-enabled ``redis-server`` with every slot assigned to it, which refuses a command whose
names span slots (``CROSSSLOT``).
"""

from __future__ import annotations

import trio
import trio.testing
from _servers import cluster_node_args
from in_memory_redis import SETTINGS, connection_options, events, serving

from actors import ActorSystem
from actors.pubsub import open_redis_pubsub
from actors.redis import (
    ConnectionLost,
    RedisMessage,
    Resubscribed,
    key_slot,
    open_redis_connection,
)
from actors.redis._pubsub import REPLAY_BATCH
from actors.testing import MemoryRedisConnection, RedisServer, RedisServerFactory, wait_until


def shard_names() -> list[bytes]:
    """300 shard channels spread over slots, and 300 sharing one slot (more than a batch)."""
    spread = [f"shard:{index}".encode() for index in range(300)]
    hot = [f"{{hot}}:{index}".encode() for index in range(300)]
    return [name for pair in zip(spread, hot, strict=True) for name in pair]


def subscribe_commands(connection: MemoryRedisConnection, command: bytes) -> list[list[bytes]]:
    """The names of each ``command`` (such as ``SSUBSCRIBE``) the connection sent, in order."""
    return [list(sent[1:]) for sent in connection.commands if sent[0].upper() == command]


async def test_a_replay_sends_one_slot_per_ssubscribe_and_batches_within_a_slot(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    sink, received = events()
    names = shard_names()
    channels = [f"news:{index}".encode() for index in range(300)]
    async with (
        serving() as server,
        open_redis_pubsub(system, SETTINGS, options=connection_options(server)) as pubsub,
    ):
        for name in names:
            await pubsub.ssubscribe(name, sink)
        for channel in channels:
            await pubsub.subscribe(channel, sink)
        server.restart()
        assert isinstance(await received.receive(), ConnectionLost)
        assert isinstance(await received.receive(), Resubscribed)
        (replayed,) = server.connections

        commands = subscribe_commands(replayed, b"SSUBSCRIBE")
        assert all(len({key_slot(name) for name in command}) == 1 for command in commands)
        assert all(len(command) <= REPLAY_BATCH for command in commands)
        assert sorted(name for command in commands for name in command) == sorted(names)
        # Batched within a slot: the 300 names of {hot} in two commands, 256 and 44.
        hot = [command for command in commands if key_slot(command[0]) == key_slot("hot")]
        assert [len(command) for command in hot] == [REPLAY_BATCH, 300 - REPLAY_BATCH]
        assert len(commands) == len({key_slot(name) for name in names}) + 1
        # Channels are not slot-bound: 300 of them, and the probe channel, in two commands.
        assert [len(command) for command in subscribe_commands(replayed, b"SUBSCRIBE")] == [
            REPLAY_BATCH,
            301 - REPLAY_BATCH,
        ]
        assert all(server.shard_numsub(name) == 1 for name in names)
        assert await server.spublish(b"{hot}:299", b"after") == 1
        message = await received.receive()
        assert isinstance(message, RedisMessage)
        assert (message.channel, message.payload) == (b"{hot}:299", b"after")


async def own_every_slot(server: RedisServer) -> None:
    """Assign every slot to the lone node and wait until it serves them (``cluster_state:ok``,
    which a master reaches about two seconds after it started)."""
    async with open_redis_connection(server.url) as redis:
        assert await redis.execute("CLUSTER", "ADDSLOTSRANGE", 0, 16383) == b"OK"

        async def cluster_ok() -> bool:
            info: bytes = await redis.execute("CLUSTER", "INFO")
            return b"cluster_state:ok" in info

        await wait_until(cluster_ok, what="cluster_state:ok", interval=0.05)


async def test_a_replay_on_a_cluster_node_meets_no_crossslot(
    system: ActorSystem, redis_server_factory: RedisServerFactory
) -> None:
    server = redis_server_factory(cluster_node_args())
    names = shard_names()
    sink, received = events()
    with trio.fail_after(30):
        await own_every_slot(server)
        async with (
            open_redis_pubsub(system, server.url) as pubsub,
            open_redis_connection(server.url) as admin,
        ):
            for name in names:
                await pubsub.ssubscribe(name, sink)
            # The server cuts the subscribed connection: the client reconnects and replays.
            assert await admin.execute("CLIENT", "KILL", "TYPE", "pubsub") == 1
            assert isinstance(await received.receive(), ConnectionLost)
            assert isinstance(await received.receive(), Resubscribed)
            # Not one command was refused, CROSSSLOT or other (a refused batch would have been
            # sent again name by name, so the subscriptions alone would not tell).
            errors = await admin.execute("INFO", "errorstats")
            assert b"errorstat_" not in errors, errors
            hub = pubsub.statistics().hub
            assert hub.last_error is None
            assert len(hub.subscriptions) == len(names)
            assert all(row.acknowledged for row in hub.subscriptions)
            numsub = await admin.execute("PUBSUB", "SHARDNUMSUB", "{hot}:7", "shard:7")
            assert numsub == [b"{hot}:7", 1, b"shard:7", 1]
            for channel in (b"{hot}:7", b"shard:7"):
                assert await admin.execute("SPUBLISH", channel, "after") == 1
                message = await received.receive()
                assert isinstance(message, RedisMessage)
                assert message.channel == channel
