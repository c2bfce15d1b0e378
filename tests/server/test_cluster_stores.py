"""Presence, chat history and dead letters on a real Redis Cluster (issue 11, requirement 5).

Every key and channel of one presence scope or chat room carries the scope or room as its hash
tag, so each Lua script touches one slot and each shard channel lives where the state is. Here
the stores run through ``open_pubsub("redis+cluster://...")`` on rooms whose slots are on
different masters.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial

import attrs
import orjson
import pytest
import trio

from actors import ActorSystem, Message, message_type
from actors.messages import check_room_name
from actors.presence import (
    PresenceDiff,
    PresenceJoin,
    PresenceLeave,
    PresenceSettings,
    PresenceTracker,
    RedisPresenceStore,
    open_presence_tracker,
    presence_channel,
    presence_keys,
)
from actors.pubsub import (
    ClusterPubSub,
    DeadLetter,
    ErrorPolicy,
    PubSub,
    dead_letters_to_channel,
    dead_letters_to_list,
    open_pubsub,
)
from actors.pubsub._history import history_keys
from actors.redis import key_slot
from actors.server.chat import (
    ChatMessage,
    RateLimit,
    open_chat_service,
    room_channel,
)
from actors.server.gateway import typing_channel
from actors.testing import Inbox, RedisCluster, RedisClusterNode

TIMEOUT = 20.0
FAST = PresenceSettings(ttl=1.0, heartbeat=0.15, sweep_interval=0.1, grace=0.0)
RATE = RateLimit(rate=1000.0, burst=1000)


def cluster_url(cluster: RedisCluster) -> str:
    seeds = [f"{node.host}:{node.port}" for node in cluster.nodes]
    return "redis+cluster://" + ",".join(seeds[:2])


def rooms_by_master(cluster: RedisCluster, prefix: str) -> dict[RedisClusterNode, str]:
    """A room (or scope) name whose slot is on each master."""
    masters = cluster.masters()
    ranges = {master: master.cluster_nodes()[master.node_id].slots for master in masters}
    found: dict[RedisClusterNode, str] = {}
    for index in range(1000):
        name = f"{prefix}{index}"
        slot = key_slot(name)
        for master, owned in ranges.items():
            if master not in found and any(first <= slot <= last for first, last in owned):
                found[master] = name
        if len(found) == len(masters):
            return found
    raise AssertionError("no room for every master")


def room_names(room: str) -> list[str]:
    """Every key and shard channel of a room tagged with its name: typing and presence (its
    messages go on the guide's classic channel, whose history keys are in that channel's slot)."""
    return [typing_channel(room), presence_channel(room), *presence_keys(room)]


@pytest.mark.parametrize("room", ["lobby", "room-1", "a.b_c", "x" * 64])
def test_every_key_and_channel_of_a_room_or_scope_is_in_the_slot_of_its_name(room: str) -> None:
    names = room_names(check_room_name(room))
    assert {key_slot(name) for name in names} == {key_slot(room)}
    assert all(f"{{{room}}}" in name for name in names)
    # The history script touches its channel's keys only: one slot, the channel's.
    channel = room_channel(room)
    keys = history_keys(channel)
    assert {key_slot(name) for name in (keys.meta, keys.stream, keys.ids)} == {key_slot(channel)}


def test_the_names_carry_the_room_in_braces() -> None:
    assert room_channel("lobby") == "chat:lobby"  # the integration guide's, classic
    assert typing_channel("lobby") == "typing:{lobby}"
    assert history_keys(room_channel("lobby")).stream == "{chat:lobby}:history:stream"
    assert presence_channel("lobby") == "presence:{lobby}"
    assert presence_keys("lobby")[0] == "presence:{lobby}:members"


@pytest.fixture
async def cluster_url_of(redis_cluster: RedisCluster) -> str:
    return cluster_url(redis_cluster)


@pytest.fixture
async def cluster_pubsub(actor_system: ActorSystem, cluster_url_of: str) -> AsyncIterator[PubSub]:
    async with open_pubsub(actor_system, cluster_url_of) as pubsub:
        with trio.fail_after(TIMEOUT):
            await pubsub.broker.wait_connected()
        yield pubsub


async def _until(condition: Callable[[], Awaitable[bool]], seconds: float = TIMEOUT) -> None:
    with trio.fail_after(seconds):
        while True:
            if await condition():
                return
            await trio.sleep(0.02)


async def test_presence_store_scripts_run_on_each_scope_s_master(
    cluster_pubsub: PubSub, redis_cluster: RedisCluster
) -> None:
    connect = cluster_pubsub.broker.command_connection()
    assert connect is not None
    store = RedisPresenceStore(connect)
    scopes = rooms_by_master(redis_cluster, "scope")
    with trio.fail_after(TIMEOUT):
        for master, scope in scopes.items():
            joined = await store.join(scope, "ada", "phone", {"device": "phone"}, 30.0)
            assert joined.added
            assert joined.user_online
            assert (await store.join(scope, "bob", "c1", {}, 0.05)).added
            assert await store.heartbeat(scope, "ada", "phone", {"device": "phone"}, 30.0)
            snapshot = await store.snapshot(scope)
            assert snapshot.members.keys() == {("ada", "phone"), ("bob", "c1")}
            # The keys are on the master that owns the scope's slot.
            members = presence_keys(scope)[0]
            assert master.command("HLEN", members) == 2
            await trio.sleep(0.1)
            expired = await store.expire(scope)
            assert [(r.user_id, r.connection_id) for r in expired] == [("bob", "c1")]
            removal = await store.leave(scope, "ada", "phone")
            assert removal is not None
            assert removal.user_offline
            assert (await store.snapshot(scope)).members == {}


async def _trackers_agree(users: set[str], *trackers: PresenceTracker) -> bool:
    return all([await tracker.online_users() == users for tracker in trackers])


async def test_presence_trackers_share_scopes_on_every_master_by_shard_channels(
    actor_system: ActorSystem, cluster_url_of: str, redis_cluster: RedisCluster
) -> None:
    by_master = rooms_by_master(redis_cluster, "presence")
    scopes = list(by_master.values())
    seen = Inbox()

    async def record(diff: PresenceDiff) -> None:
        await seen((diff.scope, type(diff).__name__, diff.user_id))

    async with (
        open_pubsub(actor_system, cluster_url_of) as one,
        open_pubsub(actor_system, cluster_url_of) as two,
    ):
        for scope in scopes:
            await two.subscribe(
                presence_channel(scope), record, message_type=PresenceDiff, sharded=True
            )
        for master, scope in by_master.items():
            async with (
                open_presence_tracker(one, scope, settings=FAST) as a,
                open_presence_tracker(two, scope, settings=FAST) as b,
            ):
                # One shard subscription per process, on the master that owns the scope.
                channel = presence_channel(scope)
                assert master.command("PUBSUB", "SHARDNUMSUB", channel) == [channel.encode(), 2]
                assert await a.join("ada", "phone")
                assert await b.join("bob", "laptop")
                await _until(partial(_trackers_agree, {"ada", "bob"}, a, b))
                assert await a.leave("ada", "phone")
                await _until(partial(_trackers_agree, {"bob"}, a, b))
                assert await b.leave("bob", "laptop")
        said = await seen.wait_for(4 * len(scopes))
        for scope in scopes:
            assert [(kind, user) for s, kind, user in said if s == scope] == [
                (PresenceJoin.__name__, "ada"),
                (PresenceJoin.__name__, "bob"),
                (PresenceLeave.__name__, "ada"),
                (PresenceLeave.__name__, "bob"),
            ]


async def test_chat_history_and_messages_on_rooms_of_every_master(
    actor_system: ActorSystem, cluster_url_of: str, redis_cluster: RedisCluster
) -> None:
    rooms = rooms_by_master(redis_cluster, "room")
    received = Inbox()

    async def on_message(message: ChatMessage) -> None:
        await received((message.room, message.text))

    async with (
        open_pubsub(actor_system, cluster_url_of) as one,
        open_pubsub(actor_system, cluster_url_of) as two,
        open_chat_service(actor_system, one, history_size=3, rate=RATE) as first,
        open_chat_service(actor_system, two, history_size=3, rate=RATE) as second,
    ):
        with trio.fail_after(TIMEOUT):
            for room in rooms.values():
                await second.subscribe(room, on_message)
            for room in rooms.values():
                for index in range(5):
                    await first.send(room, "ada", f"{room} m{index}")
            heard = await received.wait_for(5 * len(rooms))
            for room in rooms.values():
                assert [text for r, text in heard if r == room] == [
                    f"{room} m{index}" for index in range(5)
                ]
                assert [m.text for m in await second.history(room)] == [
                    f"{room} m{index}" for index in (2, 3, 4)
                ]
                keys = history_keys(room_channel(room))
                owner = redis_cluster.master_of_slot(key_slot(keys.stream))
                assert owner.command("XLEN", keys.stream) == 5  # MAXLEN ~ trims whole nodes
            for room in rooms.values():
                newest = await first.read(room, limit=1)
                assert [(p.offset, m.text) for p, m in newest.messages] == [(5, f"{room} m4")]


@message_type("cluster-stores.event")
@attrs.frozen(kw_only=True)
class Event(Message):
    name: str


async def test_dead_letters_go_to_a_list_and_a_channel_on_a_cluster(
    cluster_pubsub: PubSub, redis_cluster: RedisCluster
) -> None:
    broker = cluster_pubsub.broker
    assert isinstance(broker, ClusterPubSub)
    watched = Inbox()

    async def watch(record: bytes) -> None:
        await watched(orjson.loads(record))

    async def handle(message: Event) -> None:
        pass

    lists = list(rooms_by_master(redis_cluster, "dead").values())
    sinks = [dead_letters_to_list(broker, f"{{{name}}}:dead", cap=2) for name in lists]
    to_channel = dead_letters_to_channel(broker, "dead-letters")

    async def every(letter: DeadLetter) -> None:
        for sink in sinks:
            await sink(letter)
        await to_channel(letter)

    with trio.fail_after(TIMEOUT):
        await cluster_pubsub.subscribe("dead-letters", watch, message_type=bytes)
        await cluster_pubsub.subscribe(
            "strict", handle, error_policy=ErrorPolicy(dead_letters=every)
        )
        for number in range(3):
            await broker.publish("strict", f"bad {number}".encode())
        records = await watched.wait_for(3)
        assert [record["payload"] for record in records] == ["bad 0", "bad 1", "bad 2"]
        connect = broker.command_connection()
        commands = await connect()
        for name in lists:
            kept = await commands.execute("LRANGE", f"{{{name}}}:dead", 0, -1)
            assert [orjson.loads(item)["payload"] for item in kept] == ["bad 2", "bad 1"]


async def test_dead_letters_to_a_list_need_redis(actor_system: ActorSystem) -> None:
    async with open_pubsub(actor_system, "memory://") as pubsub:
        with pytest.raises(TypeError, match="no Redis"):
            dead_letters_to_list(pubsub.broker, "dead")
    with pytest.raises(ValueError, match="wait"):
        dead_letters_to_list(pubsub.broker, "dead", wait=0)
