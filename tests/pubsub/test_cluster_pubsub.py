"""Typed Pub/Sub on a real Redis Cluster (issue 11, requirements 2 to 4).

``redis+cluster://`` opens the topology actor: shard channels live on the master that owns their
slot, follow it when it moves (a gap named after the channel, then messages from the new owner),
and recover on the promoted replica when their master dies, while the others flow on. After each
recovery ``PUBSUB SHARDNUMSUB`` on every owner agrees with the table.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import attrs
import pytest
import trio

from actors import ActorSystem, Message, message_type
from actors.observability import HealthStatus
from actors.pubsub import (
    ClusterPubSub,
    ConnectionOptions,
    PubSub,
    PubSubSettings,
    RetryPolicy,
    open_pubsub,
)
from actors.redis import ConnectionLost, Kind, Resubscribed, key_slot
from actors.supervision import Backoff
from actors.testing import Inbox, RedisCluster, RedisClusterNode

TIMEOUT = 20.0
FAST = Backoff(initial=0.05, multiplier=2.0, maximum=0.5, jitter=0.0, reset_after=0.0)
SETTINGS = PubSubSettings(
    connection=ConnectionOptions(reconnect=FAST, probe_interval=1.0, probe_timeout=1.0),
    publish_retry=RetryPolicy(max_attempts=5, backoff=FAST),
)


@message_type("cluster-test.note")
@attrs.frozen(kw_only=True)
class Note(Message):
    text: str


def cluster_url(cluster: RedisCluster) -> str:
    """Two seed nodes, as a deployment would list a few."""
    seeds = [f"{node.host}:{node.port}" for node in cluster.nodes]
    return "redis+cluster://" + ",".join(seeds[:2])


def channels_by_master(cluster: RedisCluster) -> dict[RedisClusterNode, str]:
    """A shard channel on each master, found by its slot."""
    found: dict[RedisClusterNode, str] = {}
    masters = cluster.masters()
    ranges = {master: master.cluster_nodes()[master.node_id].slots for master in masters}
    for index in range(1000):
        name = f"{{room{index}}}.chat"
        slot = key_slot(name)
        for master, owned in ranges.items():
            if master not in found and any(first <= slot <= last for first, last in owned):
                found[master] = name
        if len(found) == len(masters):
            return found
    raise AssertionError("no channel for every master")


@pytest.fixture
async def cluster_pubsub(
    actor_system: ActorSystem, redis_cluster: RedisCluster
) -> AsyncIterator[PubSub]:
    async with open_pubsub(actor_system, cluster_url(redis_cluster), settings=SETTINGS) as pubsub:
        with trio.fail_after(TIMEOUT):
            await pubsub.broker.wait_connected()
        yield pubsub


def broker_of(pubsub: PubSub) -> ClusterPubSub:
    broker = pubsub.broker
    assert isinstance(broker, ClusterPubSub)
    return broker


def shard_table(broker: ClusterPubSub) -> dict[str, set[bytes]]:
    """Each node's shard subscriptions, as its hub holds them."""
    return {
        label: {row.name for row in hub.subscriptions if row.kind is Kind.SHARD}
        for label, hub in broker.statistics().nodes.items()
    }


async def assert_owners_agree(cluster: RedisCluster, names: list[str]) -> None:
    """``PUBSUB SHARDNUMSUB`` on each name's owner counts 1; the table puts it there."""
    for name in names:
        owner = cluster.master_of_slot(key_slot(name))
        reply = owner.command("PUBSUB", "SHARDNUMSUB", name)
        assert reply == [name.encode(), 1], (name, owner, reply)


async def test_sharded_channels_live_on_their_slots_owners_and_classic_ones_work(
    cluster_pubsub: PubSub, redis_cluster: RedisCluster
) -> None:
    broker = broker_of(cluster_pubsub)
    names = channels_by_master(redis_cluster)
    inbox, classic = Inbox(), Inbox()

    async def on_note(note: Note, channel: str) -> None:
        await inbox((channel, note.text))

    with trio.fail_after(TIMEOUT):
        for name in names.values():
            await cluster_pubsub.subscribe(name, on_note, sharded=True)
        await cluster_pubsub.subscribe("broadcast", classic, message_type=Note)
        for name in names.values():
            assert await cluster_pubsub.publish(name, Note(text=name), sharded=True) == 1
        assert await cluster_pubsub.publish("broadcast", Note(text="all")) == 1
        assert sorted(await inbox.wait_for(3)) == sorted((n, n) for n in names.values())
        assert [note.text for note in await classic.wait_for(1)] == ["all"]
    table = shard_table(broker)
    for master, name in names.items():
        assert name.encode() in table[f"{master.host}:{master.port}"]
    await assert_owners_agree(redis_cluster, list(names.values()))
    statistics = broker.statistics()
    assert statistics.uncovered_slots == 0
    assert statistics.refreshes >= 1


async def subscribe_each(
    pubsub: PubSub, names: list[str]
) -> tuple[dict[str, Inbox], dict[str, Inbox]]:
    """A sharded subscription per name, with its own inbox of notes and of gaps."""
    notes = {name: Inbox() for name in names}
    gaps = {name: Inbox() for name in names}
    for name in names:
        await pubsub.subscribe(
            name, notes[name], message_type=Note, sharded=True, on_gap=gaps[name]
        )
    return notes, gaps


async def test_a_migrated_slot_is_a_gap_of_its_channel_then_messages_from_the_new_owner(
    cluster_pubsub: PubSub, redis_cluster: RedisCluster
) -> None:
    broker = broker_of(cluster_pubsub)
    by_master = channels_by_master(redis_cluster)
    source, target = list(by_master)[:2]
    moving = by_master[source]
    names = list(by_master.values())
    with trio.fail_after(TIMEOUT):
        notes, gaps = await subscribe_each(cluster_pubsub, names)
        sent = 0
        async with trio.open_nursery() as nursery:

            async def traffic() -> None:
                """The other channels keep flowing during the move."""
                nonlocal sent
                while True:
                    for name in names:
                        if name != moving:
                            await cluster_pubsub.publish(name, Note(text="x"), sharded=True)
                    sent += 1
                    await trio.sleep(0.005)

            nursery.start_soon(traffic)
            moved_at = trio.current_time()
            await redis_cluster.migrate_slot_async(key_slot(moving), source, target)
            lost, back = await gaps[moving].wait_for(2)
            nursery.cancel_scope.cancel()
        assert isinstance(lost, ConnectionLost)
        assert (lost.kind, lost.name) == (Kind.SHARD, moving.encode())
        assert isinstance(back, Resubscribed)
        assert (back.kind, back.name, back.gap_start) == (Kind.SHARD, moving.encode(), lost.at)
        assert back.gap_end - moved_at < 2.0
        assert await cluster_pubsub.publish(moving, Note(text="after"), sharded=True) == 1
        assert (await notes[moving].wait_for(1))[0].text == "after"
        for name in names:
            if name != moving:
                assert gaps[name].items == []
                assert len(await notes[name].wait_for(sent)) >= sent
    assert moving.encode() in shard_table(broker)[f"{target.host}:{target.port}"]
    assert source.command("PUBSUB", "SHARDNUMSUB", moving) == [moving.encode(), 0]
    await assert_owners_agree(redis_cluster, names)


async def test_a_stale_map_meeting_moved_on_publish_follows_it(
    cluster_pubsub: PubSub, redis_cluster: RedisCluster
) -> None:
    """No subscription, so nothing tells the topology of the move: the publish meets MOVED."""
    broker = broker_of(cluster_pubsub)
    by_master = channels_by_master(redis_cluster)
    source, target = list(by_master)[:2]
    name = by_master[source]
    with trio.fail_after(TIMEOUT):
        await redis_cluster.migrate_slot_async(key_slot(name), source, target)
        redirects = broker.statistics().redirects
        assert await cluster_pubsub.publish(name, Note(text="lost?"), sharded=True) == 0
        assert broker.statistics().redirects == redirects + 1
        slot_map = broker.slot_map
        assert slot_map is not None
        owner = slot_map.master_of(key_slot(name))
        assert owner is not None
        assert owner.port == target.port


async def test_a_killed_master_s_channels_recover_on_its_replica_and_the_others_flow_on(
    cluster_pubsub: PubSub, redis_cluster: RedisCluster
) -> None:
    by_master = channels_by_master(redis_cluster)
    victim = next(iter(by_master))
    lost_name = by_master[victim]
    names = list(by_master.values())
    with trio.fail_after(TIMEOUT):
        notes, gaps = await subscribe_each(cluster_pubsub, names)
        killed_at = trio.current_time()
        redis_cluster.kill(victim)
        events = await gaps[lost_name].wait_for(2)
        recovered = trio.current_time() - killed_at
        assert [type(event) for event in events] == [ConnectionLost, Resubscribed]
        for name in names:
            if name != lost_name:
                assert await cluster_pubsub.publish(name, Note(text="on"), sharded=True) == 1
                assert (await notes[name].wait_for(1))[0].text == "on"
                assert gaps[name].items == []
        assert await cluster_pubsub.publish(lost_name, Note(text="back"), sharded=True) == 1
        assert (await notes[lost_name].wait_for(1))[0].text == "back"
    assert recovered < 8.0
    await assert_owners_agree(redis_cluster, names)


async def test_commands_are_routed_by_key_slot_and_follow_ask(
    cluster_pubsub: PubSub, redis_cluster: RedisCluster
) -> None:
    broker = broker_of(cluster_pubsub)
    connect = broker.command_connection()
    by_master = channels_by_master(redis_cluster)
    with trio.fail_after(TIMEOUT):
        commands = await connect()
        for master, name in by_master.items():
            tag = name.partition("}")[0] + "}"
            await commands.hset(f"{tag}.hash", {"owner": master.port})
            await commands.xadd(f"{tag}.stream", {"n": "1"})
            script = "return redis.call('HGET', KEYS[1], 'owner')"
            owner = await commands.eval(script, [f"{tag}.hash"])
            assert owner == str(master.port).encode()
            assert master.command("HGET", f"{tag}.hash", "owner") == str(master.port).encode()
            assert master.command("XLEN", f"{tag}.stream") == 1

        # A slot half migrated: its source answers ASK for a key it does not have.
        source, target = list(by_master)[:2]
        key = by_master[source] + ".asked"
        slot = key_slot(key)
        target.command("CLUSTER", "SETSLOT", slot, "IMPORTING", source.node_id)
        source.command("CLUSTER", "SETSLOT", slot, "MIGRATING", target.node_id)
        try:
            redirects = broker.statistics().redirects
            assert await commands.execute("SET", key, "v") == b"OK"
            assert broker.statistics().redirects == redirects + 1
        finally:
            for node in (source, target):
                node.command("CLUSTER", "SETSLOT", slot, "STABLE")
            target.command("FLUSHALL")


def label(node: RedisClusterNode) -> str:
    return f"{node.host}:{node.port}"


async def test_each_node_probes_on_a_shard_channel_it_serves_re_homed_when_its_slot_moves(
    cluster_pubsub: PubSub, redis_cluster: RedisCluster
) -> None:
    broker = broker_of(cluster_pubsub)
    masters = redis_cluster.masters()
    nodes = broker.statistics().nodes
    for master in masters:
        probe = nodes[label(master)].probe_channel
        assert probe is not None
        assert redis_cluster.master_of_slot(key_slot(probe)) is master
        assert master.command("PUBSUB", "SHARDNUMSUB", probe) == [probe, 1]
    source, target = masters[:2]
    old = nodes[label(source)].probe_channel
    assert old is not None
    with trio.fail_after(TIMEOUT):
        await redis_cluster.migrate_slot_async(key_slot(old), source, target)
        while (new := broker.statistics().nodes[label(source)].probe_channel) == old:  # noqa: ASYNC110
            await trio.sleep(0.02)
        assert new is not None
        assert redis_cluster.master_of_slot(key_slot(new)) is source
        while source.command("PUBSUB", "SHARDNUMSUB", new) != [new, 1]:  # noqa: ASYNC110
            await trio.sleep(0.02)
        # Two probe periods (1 s interval, 1 s timeout) later: no dead verdict came of it.
        await trio.sleep(2.5)
    hub = broker.statistics().nodes[label(source)]
    assert (hub.reconnects, hub.last_error, hub.probe_displaced) == (0, None, False)
    assert source.command("PUBSUB", "SHARDNUMSUB", old) == [old, 0]
    assert target.command("PUBSUB", "SHARDNUMSUB", old) == [old, 0]


async def test_replica_subscriptions_recover_when_the_replica_moves_under_another_master(
    actor_system: ActorSystem, redis_cluster: RedisCluster, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis 7.0 sends no push when a replica moves under another master (fixed in 7.4): its
    shard subscriptions just stop receiving. Nothing else asks for a refresh here (an hour
    between periodic ones): the per-node probe, whose ``SPUBLISH`` goes to the master and must
    reach the replica, catches it, and the subscription recovers on its slot's new subscriber."""
    url = cluster_url(redis_cluster) + "?replica_subscriptions=true&refresh_interval=3600"
    by_master = channels_by_master(redis_cluster)
    master, other = list(by_master)[:2]
    name = by_master[master]
    (replica,) = redis_cluster.replicas(master)
    async with open_pubsub(actor_system, url, settings=SETTINGS) as pubsub:
        broker = broker_of(pubsub)
        try:
            with trio.fail_after(TIMEOUT):
                await broker.wait_connected()
                notes, gaps = await subscribe_each(pubsub, [name])
                # The master's count is of its own receivers: none, the replica has them.
                assert await pubsub.publish(name, Note(text="one"), sharded=True) == 0
                assert (await notes[name].wait_for(1))[0].text == "one"
                assert replica.command("PUBSUB", "SHARDNUMSUB", name) == [name.encode(), 1]
                assert master.command("PUBSUB", "SHARDNUMSUB", name) == [name.encode(), 0]
                assert name.encode() in shard_table(broker)[label(replica)]
                moved_at = trio.current_time()
                assert replica.command("CLUSTER", "REPLICATE", other.node_id) == b"OK"
                lost, back = await gaps[name].wait_for(2)
                recovered = trio.current_time() - moved_at
                assert isinstance(lost, ConnectionLost)
                assert isinstance(back, Resubscribed)
                assert back.name == name.encode()
                await pubsub.publish(name, Note(text="two"), sharded=True)
                assert [note.text for note in await notes[name].wait_for(2)] == ["one", "two"]
            # The master's shard has no replica now: the subscription is on the master.
            assert master.command("PUBSUB", "SHARDNUMSUB", name) == [name.encode(), 1]
            # (The replica may still count it: Redis 7.0 answers its SUNSUBSCRIBE with MOVED
            # unless the probe's verdict replaced the connection. It receives nothing there.)
            assert name.encode() in shard_table(broker)[label(master)]
            assert not [record for record in caplog.records if record.levelname == "ERROR"]
            assert recovered < 8.0
            health = await pubsub.health()
            assert health.checks["server"].status is HealthStatus.UP
        finally:
            replica.command("CLUSTER", "REPLICATE", master.node_id)
            await redis_cluster.wait_ok_async()


async def test_the_server_check_asks_each_node_for_our_shard_subscriptions(
    cluster_pubsub: PubSub, redis_cluster: RedisCluster
) -> None:
    broker = broker_of(cluster_pubsub)
    by_master = channels_by_master(redis_cluster)
    with trio.fail_after(TIMEOUT):
        await subscribe_each(cluster_pubsub, list(by_master.values()))
        statistics = broker.statistics()
        server = (await broker.health_checks())["server"]
        assert server.status is HealthStatus.UP, server
        for master in by_master:
            assert server.detail["nodes"][label(master)] == {
                "shard_channels": 2,  # ours and the node's probe channel
                "without_subscriber": [],
            }
        # A node that does not answer within a second degrades the check; health never
        # changes what the statistics count.
        victim = next(iter(by_master))
        victim.command("CLIENT", "PAUSE", 1500, "ALL")
        server = (await broker.health_checks())["server"]
        assert server.status is HealthStatus.DEGRADED
        assert server.detail["nodes"][label(victim)]["error"] == "no answer within 1.0 s"
        after = broker.statistics()
        # (The pause may cost a probe, and so a refresh: only those count.)
        assert (after.moves, after.redirects) == (statistics.moves, statistics.redirects)


async def test_the_pinned_node_re_pins_when_a_failover_takes_its_master_role(
    cluster_pubsub: PubSub, redis_cluster: RedisCluster
) -> None:
    """A graceful failover keeps the old master's connection up (as a replica's): only the
    refresh can tell the classic connection to move, a gap of classic subscriptions alone."""
    broker = broker_of(cluster_pubsub)
    pinned = redis_cluster.master_of_slot(0)
    assert broker.pinned_node() == (pinned.host, pinned.port)
    (replica,) = redis_cluster.replicas(pinned)
    shard_name = next(
        name for master, name in channels_by_master(redis_cluster).items() if master is not pinned
    )
    notes, gaps = Inbox(), Inbox()
    with trio.fail_after(TIMEOUT):
        await cluster_pubsub.subscribe("broadcast", notes, message_type=Note, on_gap=gaps)
        _, shard_gaps = await subscribe_each(cluster_pubsub, [shard_name])
        await redis_cluster.failover_async(replica)
        try:
            lost, back = await gaps.wait_for(2)
            assert isinstance(lost, ConnectionLost)
            assert isinstance(back, Resubscribed)
            assert broker.pinned_node() == (replica.host, replica.port)
            assert await cluster_pubsub.publish("broadcast", Note(text="after")) == 1
            assert [note.text for note in await notes.wait_for(1)] == ["after"]
            assert shard_gaps[shard_name].items == []
        finally:
            # The roles as they were, for the tests that follow.
            await redis_cluster.failover_async(pinned)
