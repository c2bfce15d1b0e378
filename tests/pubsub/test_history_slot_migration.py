"""A publish with history while its slot is being migrated.

The history script touches the channel's meta hash, its stream and its ids. While the slot
migrates, the source answers ``ASK`` for keys it no longer has and the target answers
``-TRYAGAIN Multiple keys request during rehashing of slot`` while some keys are still on the
source: a routine resharding step, transient. The cluster's routing sends the command again
within ``reconnect_wait`` (and follows ``ASK`` and ``MOVED``), so the publish completes once the
keys have moved.
"""

from __future__ import annotations

import attrs
import trio

from actors import ActorSystem, Message, message_type
from actors.pubsub import ConnectionOptions, History, PubSubSettings, RetryPolicy, open_pubsub
from actors.redis import RedisReplyError, key_slot
from actors.supervision import Backoff
from actors.testing import RedisCluster

FAST = Backoff(initial=0.05, multiplier=2.0, maximum=0.5, jitter=0.0, reset_after=0.0)
SETTINGS = PubSubSettings(
    histories={"seq:{*}": History(size=1000, ttl=600.0)},
    connection=ConnectionOptions(reconnect=FAST),
    publish_retry=RetryPolicy(max_attempts=5, backoff=FAST),
)


@message_type("history-migration.numbered")
@attrs.frozen(kw_only=True)
class Numbered(Message):
    n: int


async def test_a_publish_with_history_waits_out_a_slot_migration(
    actor_system: ActorSystem, redis_cluster: RedisCluster
) -> None:
    seeds = ",".join(f"{node.host}:{node.port}" for node in redis_cluster.nodes[:2])
    channel = "seq:{a}"
    slot = key_slot(channel)
    failure: RedisReplyError | None = None
    async with open_pubsub(actor_system, "redis+cluster://" + seeds, settings=SETTINGS) as pubsub:
        with trio.fail_after(20):
            await pubsub.broker.wait_connected()
            await pubsub.publish(channel, Numbered(n=1), sharded=True)
            source = redis_cluster.master_of_slot(slot)
            target = next(m for m in redis_cluster.masters() if m is not source)
            # The first step of a resharding: the slot is migrating, its keys still on the source.
            target.command("CLUSTER", "SETSLOT", slot, "IMPORTING", source.node_id)
            source.command("CLUSTER", "SETSLOT", slot, "MIGRATING", target.node_id)
            async with trio.open_nursery() as nursery:

                async def finish_the_migration() -> None:
                    await trio.sleep(0.3)
                    keys = source.command("CLUSTER", "GETKEYSINSLOT", slot, 100)
                    assert isinstance(keys, list)
                    source.command("MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", *keys)
                    for node in redis_cluster.masters():
                        node.command("CLUSTER", "SETSLOT", slot, "NODE", target.node_id)

                nursery.start_soon(finish_the_migration)
                # Issued mid-migration: it should complete once the slot has moved.
                try:
                    await pubsub.publish(channel, Numbered(n=2), sharded=True)
                except RedisReplyError as error:
                    failure = error  # raised once the migration is finished, for the next test
            await redis_cluster.wait_ok_async()
            if failure is not None:
                raise failure
            found = await pubsub.history_store.read(channel, after=0, up_to=None, limit=10)
    assert found is not None
    assert [offset for offset, _ in found.entries] == [1, 2]
