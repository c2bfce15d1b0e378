"""Shard subscriptions on a cluster's terms: one hash slot per ``SSUBSCRIBE`` in a replay.

In virtual time against ``MemoryRedisServer`` (which records every command), and on a real
cluster-enabled ``redis-server`` with every slot assigned to it, which refuses a command whose
names span slots (``CROSSSLOT``).
"""

from __future__ import annotations

import pytest
import trio
import trio.testing
from _servers import cluster_node_args, cluster_ok, own_every_slot
from in_memory_redis import SETTINGS, connection_options, events, serving

from actors import ActorSystem
from actors.pubsub import open_redis_pubsub
from actors.redis import (
    ConnectionLost,
    Kind,
    RedisMessage,
    Resubscribed,
    SubscriptionEvent,
    key_slot,
    open_redis_connection,
)
from actors.redis._pubsub import REPLAY_BATCH
from actors.testing import MemoryRedisConnection, RedisServerFactory, wait_until


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


# -- the server ends a subscription: a gap of that subscription alone ----------------------------

MOVED_REASON = "the server ended the shard subscription (its hash slot moved)"


def nothing_more(received: trio.MemoryReceiveChannel[SubscriptionEvent]) -> bool:
    """Whether no event waits in ``received``."""
    try:
        event = received.receive_nowait()
    except trio.WouldBlock:
        return True
    raise AssertionError(f"unexpected {event!r}")


async def test_a_moved_slot_is_a_gap_of_its_subscriptions_alone(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    moved_sink, moved = events()
    kept_sink, kept = events()
    async with (
        serving() as server,
        open_redis_pubsub(system, SETTINGS, options=connection_options(server)) as pubsub,
    ):
        await pubsub.ssubscribe("moved", moved_sink)
        await pubsub.ssubscribe("kept", kept_sink)
        await pubsub.subscribe("news", kept_sink)
        await trio.sleep(1)
        assert server.move_slots(key_slot("moved")) == 1

        lost = await moved.receive()
        assert lost == ConnectionLost(at=1.0, reason=MOVED_REASON, kind=Kind.SHARD, name=b"moved")
        back = await moved.receive()
        # The hub subscribed again at once, on the same connection (one server: the right one).
        assert back == Resubscribed(gap_start=1.0, gap_end=1.0, kind=Kind.SHARD, name=b"moved")
        assert trio.current_time() == 1.0
        (connection,) = server.connections
        assert subscribe_commands(connection, b"SSUBSCRIBE") == [[b"moved"], [b"kept"], [b"moved"]]
        assert server.shard_numsub("moved") == 1
        assert await server.spublish("moved", "after the move") == 1
        message = await moved.receive()
        assert isinstance(message, RedisMessage)
        assert message.payload == b"after the move"

        # Nobody else heard of it, and the connection never was in a gap.
        assert nothing_more(kept)
        hub = pubsub.statistics().hub
        assert (hub.connected, hub.reconnects, hub.gap_started) == (True, 0, None)
        assert hub.server_unsubscribed == 1
        assert all(row.acknowledged for row in hub.subscriptions)
        assert len(server.attempts) == 1


@pytest.mark.parametrize(
    ("kind", "subscribe", "reason"),
    [
        (Kind.CHANNEL, "subscribe", "the server ended the channel subscription"),
        (Kind.PATTERN, "psubscribe", "the server ended the pattern subscription"),
    ],
)
async def test_an_unsubscribe_push_for_a_channel_or_pattern_is_a_gap_too(
    system: ActorSystem,
    autojump_clock: trio.testing.MockClock,
    kind: Kind,
    subscribe: str,
    reason: str,
) -> None:
    sink, received = events()
    async with (
        serving() as server,
        open_redis_pubsub(system, SETTINGS, options=connection_options(server)) as pubsub,
    ):
        await getattr(pubsub, subscribe)("news", sink)
        await trio.sleep(2)
        assert server.end_subscriptions(kind, "news") == 1
        assert await received.receive() == ConnectionLost(
            at=2.0, reason=reason, kind=kind, name=b"news"
        )
        assert await received.receive() == Resubscribed(
            gap_start=2.0, gap_end=2.0, kind=kind, name=b"news"
        )
        assert await server.publish("news", "still here") == 1
        assert isinstance(await received.receive(), RedisMessage)
        assert pubsub.statistics().hub.server_unsubscribed == 1


async def test_our_own_unsubscribe_is_no_gap_even_when_subscribed_again_at_once(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    first_sink, first = events()
    second_sink, second = events()
    async with (
        serving() as server,
        open_redis_pubsub(system, SETTINGS, options=connection_options(server)) as pubsub,
    ):
        subscription = await pubsub.ssubscribe("news", first_sink)
        await subscription.close()  # SUNSUBSCRIBE goes out; its acknowledgement is ours
        await pubsub.ssubscribe("news", second_sink)  # SSUBSCRIBE right behind it
        (connection,) = server.connections
        names = connection.command_names()
        assert [name for name in names if name.endswith("SUBSCRIBE")][-3:] == [
            "SSUBSCRIBE",
            "SUNSUBSCRIBE",
            "SSUBSCRIBE",
        ]
        assert await server.spublish("news", "x") == 1
        assert isinstance(await second.receive(), RedisMessage)
        assert nothing_more(first)
        assert nothing_more(second)
        assert pubsub.statistics().hub.server_unsubscribed == 0


async def test_a_resubscription_the_node_redirects_keeps_the_gap_open_until_a_replay(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    sink, received = events()
    moved_to_another_node: list[bool] = [True]

    def redirect(connection: MemoryRedisConnection, command: tuple[bytes, ...]) -> str | None:
        if command[0].upper() == b"SSUBSCRIBE" and moved_to_another_node[0]:
            return f"MOVED {key_slot('news')} 127.0.0.1:7001"
        return None

    async with (
        serving() as server,
        open_redis_pubsub(system, SETTINGS, options=connection_options(server)) as pubsub,
    ):
        await pubsub.ssubscribe("news", sink)
        await trio.sleep(1)
        server.set_command_hook(redirect)
        server.move_slots(key_slot("news"))
        assert await received.receive() == ConnectionLost(
            at=1.0, reason=MOVED_REASON, kind=Kind.SHARD, name=b"news"
        )
        await server.wait_until(
            lambda: server.connections[0].command_names().count("SSUBSCRIBE") == 2
        )
        await trio.sleep(1)
        # Redirected: no refusal of the name, so the subscription and its sink stay, unconfirmed.
        (row,) = pubsub.statistics().hub.subscriptions
        assert (row.name, row.sinks, row.acknowledged) == (b"news", 1, False)
        assert nothing_more(received)

        # The next connection's replay subscribes it again and ends both gaps.
        moved_to_another_node[0] = False
        server.drop_connections()
        connection_lost = await received.receive()
        assert isinstance(connection_lost, ConnectionLost)
        assert (connection_lost.at, connection_lost.kind) == (2.0, None)
        assert await received.receive() == Resubscribed(
            gap_start=1.0, gap_end=2.125, kind=Kind.SHARD, name=b"news"
        )
        assert await received.receive() == Resubscribed(gap_start=2.0, gap_end=2.125)
        assert await server.spublish("news", "back") == 1
        assert isinstance(await received.receive(), RedisMessage)


async def test_a_slot_deleted_and_added_back_on_a_cluster_node_is_a_gap_of_its_channels(
    system: ActorSystem, redis_server_factory: RedisServerFactory
) -> None:
    server = redis_server_factory(cluster_node_args())
    moved_sink, moved = events()
    kept_sink, kept = events()
    slot = key_slot("news")
    assert key_slot("other") != slot
    with trio.fail_after(30):
        await own_every_slot(server)
        async with (
            open_redis_pubsub(system, server.url) as pubsub,
            open_redis_connection(server.url) as admin,
        ):
            await pubsub.ssubscribe("news", moved_sink)
            await pubsub.ssubscribe("other", kept_sink)
            # The slot leaves the node and comes back at once (MULTI/EXEC): the server sends a
            # sunsubscribe push for "news", and serves the slot again when we subscribe again.
            await admin.execute("MULTI")
            await admin.execute("CLUSTER", "DELSLOTS", slot)
            await admin.execute("CLUSTER", "ADDSLOTS", slot)
            assert await admin.execute("EXEC") == [b"OK", b"OK"]
            lost = await moved.receive()
            assert isinstance(lost, ConnectionLost)
            assert (lost.reason, lost.kind, lost.name) == (MOVED_REASON, Kind.SHARD, b"news")
            back = await moved.receive()
            assert isinstance(back, Resubscribed)
            assert (back.gap_start, back.kind, back.name) == (lost.at, Kind.SHARD, b"news")
            assert await admin.execute("SPUBLISH", "news", "after") == 1
            message = await moved.receive()
            assert isinstance(message, RedisMessage)
            assert message.payload == b"after"
            assert nothing_more(kept)
            hub = pubsub.statistics().hub
            assert (hub.server_unsubscribed, hub.reconnects) == (1, 0)

            # The slot leaves for good: subscribing again meets CLUSTERDOWN, the gap stays open.
            await admin.execute("CLUSTER", "DELSLOTS", slot)
            lost = await moved.receive()
            assert isinstance(lost, ConnectionLost)
            assert lost.name == b"news"

            async def refused_again() -> bool:
                errors: bytes = await admin.execute("INFO", "errorstats")
                return b"errorstat_CLUSTERDOWN" in errors

            await wait_until(refused_again, what="the resubscription refused")
            (row,) = [row for row in pubsub.statistics().hub.subscriptions if row.name == b"news"]
            assert (row.sinks, row.acknowledged) == (1, False)
            # Back on the node, and a new connection: its replay ends the gap.
            await admin.execute("CLUSTER", "ADDSLOTS", slot)
            await wait_until(lambda: cluster_ok(admin), what="cluster_state:ok")
            assert await admin.execute("CLIENT", "KILL", "TYPE", "pubsub") == 1
            assert isinstance(await moved.receive(), ConnectionLost)
            back = await moved.receive()
            assert isinstance(back, Resubscribed)
            assert (back.gap_start, back.name) == (lost.at, b"news")
            assert isinstance(await moved.receive(), Resubscribed)  # the connection's gap
            assert await admin.execute("SPUBLISH", "news", "again") == 1
            message = await moved.receive()
            assert isinstance(message, RedisMessage)
            assert message.payload == b"again"
