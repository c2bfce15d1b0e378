"""Clients of a server that is loading its data set: after a restart, or a reload.

While Redis loads its data set it accepts connections and runs ``HELLO``, ``SUBSCRIBE`` and
``ECHO`` (commands flagged ``loading``), but refuses ``PING``, ``EVALSHA`` and most others with
``-LOADING``.

1. A subscription command is fenced with an ``ECHO``, which runs while the server loads: error
   replies before the echo are the subscription's refusal, and the fence's own reply never is
   (a ``PING`` fence answered ``-LOADING`` was taken for a refusal, and every later reply went to
   the command sent before its own).
2. A new connection is ready once a ``PING`` is answered: while the server loads, the attempt
   fails with the transient ``LOADING`` and the connection actor tries again with its backoff,
   so a publish issued meanwhile waits for the end of the loading within ``publish_bound()``.
"""

from __future__ import annotations

import attrs
import pytest
import trio
import trio.testing

from actors import ActorSystem, Message, RedisConnectionError, message_type
from actors.pubsub import ConnectionOptions, History, PubSubSettings, open_pubsub
from actors.redis import RedisConnection, RedisReplyError, RedisSettings, open_redis_connection
from actors.supervision import Backoff
from actors.testing import (
    MemoryRedisConnection,
    MemoryRedisServer,
    RedisServer,
    RedisServerFactory,
)

LOADING = "LOADING Redis is loading the dataset in memory"
SLOW_LOADING = (
    # Loading its dump takes a while (0.5 ms a key) and serves clients every 1 KiB read.
    "--key-load-delay", "500",
    "--loading-process-events-interval-bytes", "1024",
    "--enable-debug-command", "yes",
)  # fmt: skip


@message_type("server-loading.numbered")
@attrs.frozen(kw_only=True)
class Numbered(Message):
    n: int


async def save_keys(server: RedisServer, count: int) -> None:
    """Write ``count`` keys and ``SAVE`` them: the next start loads them (slowly)."""
    async with open_redis_connection(server.url) as admin:
        for batch in range(count // 200):
            await admin.execute("MSET", *(f"k{batch}:{n}" for n in range(200) for _ in "kv"))
        await admin.execute("SAVE")


async def wait_loading(server: RedisServer) -> None:
    """Wait until the restarting server accepts connections and refuses them as loading."""
    while True:
        try:
            async with open_redis_connection(server.url):
                raise AssertionError("the server was ready before it was seen loading")
        except RedisReplyError as error:
            if error.code == "LOADING":
                return
            raise
        except (OSError, RedisConnectionError):
            await trio.sleep(0.01)


async def echo_twice(redis: RedisConnection) -> dict[str, bytes]:
    """``ECHO first`` then ``ECHO second``, pipelined; the replies each got within 1 s."""
    replies: dict[str, bytes] = {}

    async def echo(word: str) -> None:
        replies[word] = await redis.execute("ECHO", word)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(echo, "first")
        await trio.testing.wait_all_tasks_blocked()
        with trio.move_on_after(1):
            await echo("second")
        nursery.cancel_scope.cancel()
    return replies


async def test_replies_stay_with_their_commands_when_the_fence_ping_answers_loading(
    memory_redis: MemoryRedisServer,
) -> None:
    loading = False

    def as_redis_while_loading(_: MemoryRedisConnection, command: tuple[bytes, ...]) -> str | None:
        # What Redis 7.0 does while it loads: SUBSCRIBE and ECHO run, PING answers -LOADING.
        return LOADING if loading and command[0].upper() == b"PING" else None

    memory_redis.set_command_hook(as_redis_while_loading)
    settings = RedisSettings.from_url("redis://memory")
    async with open_redis_connection(settings, connector=memory_redis.connect) as redis:
        loading = True
        redis.send_subscription_command("SUBSCRIBE", "ch")
        replies = await echo_twice(redis)
    assert replies == {"first": b"first", "second": b"second"}


@pytest.mark.redis
@pytest.mark.timeout(30)
async def test_the_same_on_a_real_server_reloading_its_data_set(
    redis_server_factory: RedisServerFactory,
) -> None:
    server = redis_server_factory(SLOW_LOADING)
    with trio.fail_after(20):
        await save_keys(server, 4000)
        async with (
            open_redis_connection(server.url) as admin,
            open_redis_connection(server.url) as redis,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(admin.execute, "DEBUG", "RELOAD")
            while True:  # until the reload is under way: PING is refused
                try:
                    await redis.execute("PING")
                except RedisReplyError as error:
                    if error.code != "LOADING":
                        raise
                    break
                await trio.sleep(0.01)
            redis.send_subscription_command("SUBSCRIBE", "ch")
            replies = await echo_twice(redis)
    assert replies == {"first": b"first", "second": b"second"}


@pytest.mark.redis
@pytest.mark.timeout(30)
async def test_a_connection_opened_while_the_server_loads_fails_for_now_then_works(
    redis_server_factory: RedisServerFactory,
) -> None:
    server = redis_server_factory(SLOW_LOADING)
    with trio.fail_after(20):
        await save_keys(server, 4000)
        server.kill()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.restart_async)
            await wait_loading(server)  # a transient refusal (LOADING), not a handshake error
        while True:
            try:
                async with open_redis_connection(server.url) as redis:
                    assert await redis.execute("DBSIZE") == 4000
                    return
            except RedisReplyError as error:
                if error.code != "LOADING":
                    raise
                await trio.sleep(0.05)


@pytest.mark.redis
@pytest.mark.timeout(30)
async def test_a_publish_with_history_while_the_server_loads_waits_for_it(
    redis_server_factory: RedisServerFactory, system: ActorSystem
) -> None:
    server = redis_server_factory(SLOW_LOADING)
    fast = Backoff(initial=0.01, multiplier=2.0, maximum=0.05, jitter=0.0, reset_after=0.0)
    settings = PubSubSettings(
        histories={"seq:{*}": History(size=1000, ttl=600.0)},
        connection=ConnectionOptions(reconnect=fast, max_restarts=100_000, within=1.0),
    )
    with trio.fail_after(20):
        await save_keys(server, 4000)
        async with open_pubsub(system, server.url, settings=settings) as pubsub:
            await pubsub.broker.wait_connected()
            server.kill()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(server.restart_async)
                await wait_loading(server)
                with trio.fail_after(pubsub.publish_bound() + 1):
                    await pubsub.publish("seq:{a}", Numbered(n=1))
            found = await pubsub.history_store.read("seq:{a}", after=0, up_to=None, limit=10)
    assert found is not None
    assert [offset for offset, _ in found.entries] == [1]
