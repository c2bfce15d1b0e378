"""Notifications and live updates across two ``PubSub`` connections to a private redis-server.

Real sockets: no autojump clock; waits have deadlines.
"""

from __future__ import annotations

import attrs
import pytest

from actors import ActorSystem, InvalidIdentifierError, message_type
from actors.pubsub import DeadLetter, ErrorPolicy, PubSubSettings, RedisPubSub, open_pubsub
from actors.server.notifications import (
    InvalidNotificationError,
    LiveUpdate,
    Notification,
    Notifier,
    ServerStats,
    UpdateDispatcher,
    publish_update,
)
from actors.testing import Inbox


@message_type("test.notifications.redis.deploy")
@attrs.frozen(kw_only=True)
class RedisDeploy(LiveUpdate):
    version: str


@message_type("test.notifications.redis.orphan")
@attrs.frozen(kw_only=True)
class RedisOrphan(LiveUpdate):
    note: str


@pytest.fixture(scope="module")
def notifications_redis(module_redis_url: str) -> str:
    return module_redis_url


async def test_notifications_cross_connections(
    system: ActorSystem, notifications_redis: str
) -> None:
    async with (
        open_pubsub(system, notifications_redis) as sender,
        open_pubsub(system, notifications_redis) as listener,
    ):
        assert isinstance(sender.broker, RedisPubSub)
        publisher, receiver = Notifier(sender), Notifier(listener)
        ada, bob, everybody = Inbox(), Inbox(), Inbox()
        await receiver.subscribe_user("ada", ada)
        await receiver.subscribe_user("bob", bob)
        await receiver.subscribe_broadcast(everybody)

        with pytest.raises(InvalidIdentifierError):
            await publisher.notify("*", kind="mention", title="to everyone?")
        with pytest.raises(InvalidNotificationError):
            await publisher.notify("bob", kind="bad kind", title="t")

        for_bob = await publisher.notify(
            "bob", kind="mention", title="ada mentioned you", data={"room": "lobby"}
        )
        announcement = await publisher.broadcast(kind="announcement", title="v2 is out", body="b")
        for_ada = await publisher.notify("ada", kind="reply", title="bob replied")

        assert await bob.wait_for(1) == [for_bob]
        assert await everybody.wait_for(1) == [announcement]
        assert await ada.wait_for(1) == [for_ada]
        received = bob.items[0]
        assert isinstance(received, Notification)
        assert received.data == {"room": "lobby"}
        assert received.sent_at == for_bob.sent_at


async def test_live_updates_cross_connections(
    system: ActorSystem, notifications_redis: str
) -> None:
    letters: list[DeadLetter] = []

    async def dead_letter(letter: DeadLetter) -> None:
        letters.append(letter)

    settings = PubSubSettings(error_policy=ErrorPolicy(dead_letters=dead_letter))
    async with (
        open_pubsub(system, notifications_redis) as sender,
        open_pubsub(system, notifications_redis, settings=settings) as listener,
    ):
        typed = UpdateDispatcher(listener)
        deploys, stats = Inbox(), Inbox()
        typed.on(RedisDeploy, deploys)
        typed.on(ServerStats, stats)
        catch_all = UpdateDispatcher(listener)
        everything = Inbox()
        catch_all.on_any(everything)
        async with typed.open(), catch_all.open():
            figures = ServerStats(server="web-2", sessions=4, rooms=2, users=3, sent_at=9.5)
            # Both dispatchers share the listener's one PSUBSCRIBE: Redis counts one receiver.
            assert await publish_update(sender, RedisDeploy(version="1.2.3")) == 1
            await publish_update(sender, RedisOrphan(note="only the catch-all knows me"))
            await sender.broker.publish("events.garbage", b"\xff\xfe")
            assert await publish_update(sender, figures) == 1

            assert await deploys.wait_for(1) == [RedisDeploy(version="1.2.3")]
            assert await stats.wait_for(1) == [figures]
            assert await everything.wait_for(3) == [
                RedisDeploy(version="1.2.3"),
                RedisOrphan(note="only the catch-all knows me"),
                figures,
            ]
            counters = typed.statistics().counters
            assert (counters.received, counters.handled) == (4, 2)
            assert (counters.decode_errors, counters.skipped) == (2, 2)
            counters = catch_all.statistics().counters
            assert (counters.received, counters.handled, counters.skipped) == (4, 3, 1)
        assert sorted(letter.channel for letter in letters) == [
            b"events.garbage",
            b"events.garbage",
            b"events.test.notifications.redis.orphan",
        ]
