"""ACL users confined to some channels: NOPERM must surface as a clear error (issue 3, req. 8).

Not a hang, and not a desynchronised connection. In RESP3 a successful SUBSCRIBE gets no reply
frame, only push acknowledgements, so no reply waiter is registered for it; a refused one gets an
ordinary ``-NOPERM`` error reply, which must not be matched to the next command's waiter.
"""

from __future__ import annotations

import attrs
import pytest
import trio
from pubsub_test_helpers import FAST_BACKOFF, Collector, collector_actor, mailbox, wait_for

from actors import ActorSystem
from actors.pubsub import ConnectionOptions, MailboxSink, open_redis_pubsub
from actors.redis import RedisPermissionError, RedisSettings, open_redis_connection
from actors.testing import AclRedisServer

TIMEOUT = 10.0
PROMPTLY = 3.0  # seconds: far below the 30 s acknowledgement timeout

# A user that may use ``allowed:*`` and the hub's own probe channels, nothing else.
PROBING_USER = "prober"
PROBING_PASSWORD = "prober-secret"

OPTIONS = ConnectionOptions(reconnect=FAST_BACKOFF, max_restarts=100_000, within=1.0)


async def _create_probing_user(server: AclRedisServer) -> str:
    async with open_redis_connection(server.default_url) as admin:
        await admin.execute(
            "ACL", "SETUSER", PROBING_USER, "on", f">{PROBING_PASSWORD}", "~*", "resetchannels",
            "&allowed:*", "&__actors:probe:*", "+@all", "-@dangerous",
        )  # fmt: skip
    return f"redis://{PROBING_USER}:{PROBING_PASSWORD}@127.0.0.1:{server.port}"


async def test_the_acl_user_is_refused_outside_its_channels(
    acl_redis_server: AclRedisServer,
) -> None:
    """The fixture's premise: PUBLISH outside ``allowed:*`` is a typed NOPERM error."""
    with trio.fail_after(TIMEOUT):
        async with open_redis_connection(acl_redis_server.limited_url) as redis:
            assert await redis.publish("allowed:x", b"ok") == 0
            with pytest.raises(RedisPermissionError) as info:
                await redis.publish("notallowed", b"no")
            assert info.value.code == "NOPERM"
            assert await redis.ping() == b"PONG"


async def test_a_refused_subscribe_does_not_steal_the_next_commands_reply(
    acl_redis_server: AclRedisServer,
) -> None:
    """On one connection: the NOPERM answer to SUBSCRIBE is not the PUBLISH's reply."""
    with trio.fail_after(TIMEOUT):
        async with open_redis_connection(acl_redis_server.limited_url) as redis:
            redis.send_subscription_command("SUBSCRIBE", "notallowed")
            # Queued behind the SUBSCRIBE, written in the same socket write.
            assert await redis.publish("allowed:x", b"mine") == 0
            assert await redis.ping() == b"PONG"
            assert not redis.closed


async def test_subscribing_to_a_forbidden_channel_raises_promptly(
    acl_redis_server: AclRedisServer, system: ActorSystem
) -> None:
    url = await _create_probing_user(acl_redis_server)
    with trio.fail_after(TIMEOUT):
        async with open_redis_pubsub(system, url, options=OPTIONS) as pubsub:
            events = Collector()
            actor = await system.spawn(collector_actor, events, mailbox=mailbox())
            sink = MailboxSink(actor)
            # Connected first: a refusal that arrives while the first replay is still being
            # acknowledged is wiped by attach (_pubsub.py:175), a race reported separately.
            await pubsub.wait_connected()
            await pubsub.subscribe("allowed:news", sink)
            with trio.fail_after(PROMPTLY), pytest.raises(RedisPermissionError) as info:
                await pubsub.subscribe("notallowed", sink)
            assert info.value.code == "NOPERM"
            # Nothing of the refused subscription is left in the table.
            assert [s.name for s in pubsub.statistics().hub.subscriptions] == [b"allowed:news"]
            # The same connection goes on, in step: the publish gets its own reply.
            assert await pubsub.publish("allowed:news", b"after") == 1
            await events.wait_for_payload(b"after")
            with trio.fail_after(PROMPTLY), pytest.raises(RedisPermissionError):
                await pubsub.psubscribe("other:*", sink)
            assert await pubsub.connection().ping() == b"PONG"
            assert pubsub.statistics().connection_restarts == 0


async def test_a_user_confined_to_its_channels_can_use_pubsub(
    acl_redis_server: AclRedisServer, system: ActorSystem
) -> None:
    """The probe channel is refused: the hub drops it and probes with PING alone."""
    settings = RedisSettings.from_url(acl_redis_server.limited_url)
    options = attrs.evolve(OPTIONS, probe_interval=0.05, probe_timeout=2.0)
    with trio.fail_after(TIMEOUT):
        async with open_redis_pubsub(system, settings, options=options) as pubsub:
            await pubsub.wait_connected()
            events = Collector()
            actor = await system.spawn(collector_actor, events, mailbox=mailbox())
            with trio.fail_after(PROMPTLY):
                await pubsub.subscribe("allowed:news", MailboxSink(actor))
            assert await pubsub.publish("allowed:news", b"hello") == 1
            await events.wait_for_payload(b"hello")
            # The PING-only probe runs and proves the connection alive.
            await wait_for(
                lambda: _probe_seen(pubsub.statistics().hub.last_probe_age),
                what="a liveness probe",
            )
            assert pubsub.statistics().connection_restarts == 0


async def _probe_seen(age: float | None) -> bool:
    await trio.lowlevel.checkpoint()
    return age is not None


async def test_one_forbidden_name_in_a_replay_does_not_sink_its_batch(
    acl_redis_server: AclRedisServer, system: ActorSystem
) -> None:
    """Subscriptions made before the first connection are replayed together in one batch."""
    url = await _create_probing_user(acl_redis_server)
    with trio.fail_after(TIMEOUT):
        async with open_redis_pubsub(system, url, options=OPTIONS) as pubsub:
            events = Collector()
            actor = await system.spawn(collector_actor, events, mailbox=mailbox())
            sink = MailboxSink(actor)
            outcome: dict[str, object] = {}

            async def subscribe(name: str) -> None:
                try:
                    await pubsub.subscribe(name, sink)
                except RedisPermissionError as error:
                    outcome[name] = error
                else:
                    outcome[name] = "subscribed"

            # Both go into the table before the first connection replays it.
            with trio.fail_after(PROMPTLY):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(subscribe, "allowed:a")
                    nursery.start_soon(subscribe, "notallowed")
            assert outcome["allowed:a"] == "subscribed"
            assert isinstance(outcome["notallowed"], RedisPermissionError)
            assert await pubsub.publish("allowed:a", b"x") == 1
            await events.wait_for_payload(b"x")
