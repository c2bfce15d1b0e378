"""Testing actors and Pub/Sub code with the fixtures of ``actors.testing``'s pytest plugin.

The functions below are pytest tests; run as a script, this file runs pytest on itself. The plugin
comes with ``pip install actors[testing]`` and registers itself (no ``conftest.py`` needed); the
tests run in trio because the project's ``pyproject.toml`` sets ``trio_mode = true``. The tests
against a real server need ``redis-server`` on PATH: without it they are skipped, or fail under
``ACTORS_REQUIRE_REDIS=1``.
"""

from __future__ import annotations

import subprocess
import sys

import attrs
import pytest
import trio
import trio.testing

from actors import (
    Actor,
    ActorSystem,
    Backoff,
    Message,
    RedisAuthenticationError,
    message_type,
)
from actors.pubsub import ConnectionOptions, PubSubSettings, open_pubsub
from actors.redis import ConnectionLost, RedisSettings, Resubscribed, open_redis_connection
from actors.testing import (
    Inbox,
    MemoryRedisServer,
    RedisServer,
    RedisServerFactory,
    TlsRedisServer,
    wait_until,
)


# docs: start actor-test
class Greeter(Actor):
    def __init__(self, greetings: Inbox) -> None:
        self.greetings = greetings

    async def receive(self, message: object) -> object:
        match message:
            case str() as name:
                await self.greetings(f"hello, {name}")
        return None


async def test_the_greeter_greets_everybody(actor_system: ActorSystem) -> None:
    greetings = Inbox()
    greeter = await actor_system.spawn(Greeter, greetings)
    greeter.tell_nowait("ada")
    greeter.tell_nowait("bob")
    assert await greetings.wait_for(2) == ["hello, ada", "hello, bob"]


# docs: end actor-test


@message_type("testing-kit.event")
@attrs.frozen(kw_only=True)
class Event(Message):
    name: str


FAST_RECONNECT = PubSubSettings(
    connection=ConnectionOptions(reconnect=Backoff(initial=0.05, maximum=0.5, jitter=0.0))
)


# docs: start fault-test
async def test_subscribers_hear_again_after_redis_restarts(
    actor_system: ActorSystem, redis_server: RedisServer
) -> None:
    events, gaps = Inbox(), Inbox()
    async with open_pubsub(actor_system, redis_server.url, settings=FAST_RECONNECT) as pubsub:
        await pubsub.subscribe("events", events, message_type=Event, on_gap=gaps)
        await pubsub.publish("events", Event(name="before"))
        await events.wait_for(1)

        redis_server.kill()  # as a crash: the connection breaks
        await gaps.wait_for(1)
        await redis_server.restart_async()  # the same port, and nothing in it
        await gaps.wait_for(2)  # the subscription is back
        assert [type(gap) for gap in gaps.items] == [ConnectionLost, Resubscribed]

        await pubsub.publish("events", Event(name="after"))
        received = await events.wait_for(2)
        assert [event.name for event in received] == ["before", "after"]


# docs: end fault-test


# docs: start wait-until
async def test_leaving_the_block_unsubscribes(
    actor_system: ActorSystem, redis_server: RedisServer
) -> None:
    async with open_redis_connection(redis_server.url) as redis:

        async def unsubscribed() -> bool:
            counts = await redis.pubsub_numsub("news")
            return counts["news"] == 0

        async with open_pubsub(actor_system, redis_server.url) as pubsub:
            await pubsub.subscribe("news", Inbox(), message_type=str)
            assert not await unsubscribed()
        # The server notices the closed connection a moment later: poll, with a deadline.
        await wait_until(unsubscribed, timeout=5.0, what="no subscriber left on news")


# docs: end wait-until


# docs: start memory-redis-test
async def test_reconnects_follow_the_backoff(
    actor_system: ActorSystem,
    memory_redis: MemoryRedisServer,
    autojump_clock: trio.testing.MockClock,
) -> None:
    options = ConnectionOptions(
        connector=memory_redis.connect,  # instead of a TCP connection
        reconnect=Backoff(initial=0.125, maximum=4.0, jitter=0.0),
    )
    settings = PubSubSettings(connection=options)
    async with open_pubsub(actor_system, "redis://memory", settings=settings) as pubsub:
        gaps = Inbox()
        await pubsub.subscribe("news", Inbox(), message_type=str, on_gap=gaps)

        memory_redis.refuse_connections()  # the server goes away for two seconds
        memory_redis.restart()
        await trio.sleep(2)
        memory_redis.accept_connections()

        await gaps.wait_for(2)
        assert trio.current_time() == 3.875  # virtual time: no real second passed
        assert memory_redis.attempt_times() == [0.0, 0.125, 0.375, 0.875, 1.875, 3.875]


# docs: end memory-redis-test


# docs: start factory-test
async def test_a_wrong_password_is_refused(redis_server_factory: RedisServerFactory) -> None:
    server = redis_server_factory(["--requirepass", "right"])
    with pytest.raises(RedisAuthenticationError):
        async with open_redis_connection(f"redis://:wrong@127.0.0.1:{server.port}"):
            pass


async def test_tls_with_the_test_ca(tls_redis_server: TlsRedisServer) -> None:
    settings = RedisSettings(
        host="localhost",
        port=tls_redis_server.port,
        tls=True,
        tls_ca_file=str(tls_redis_server.ca_cert),
    )
    async with open_redis_connection(settings) as redis:
        assert await redis.ping() == b"PONG"


# docs: end factory-test


if __name__ == "__main__":
    # A pytest of its own: one started here would find actors imported already, too late for
    # pytest to rewrite the asserts of the plugin's package.
    command = [sys.executable, "-m", "pytest", __file__, "-p", "no:cacheprovider", "-v"]
    sys.exit(subprocess.run(command, check=False).returncode)
