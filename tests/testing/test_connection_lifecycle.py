"""The connection's life at its edges, in virtual time (issue 9, requirements 1 to 4).

Every bound is asserted exactly with ``autojump_clock`` against ``MemoryRedisServer``:
failures that cannot heal end everything at the refused attempt; a connection proved healthy
reconnects after the initial delay, outage after outage; one that is not keeps the backoff
growing; a publish issued during an outage completes as soon as the connection is back or fails
at its bound; ``ready_connection`` waits at most ``reconnect_wait``. The same promises on real
servers are in ``tests/redis/test_failure_modes.py`` and ``tests/redis/test_recovery.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import orjson
import pytest
import trio
import trio.testing
from in_memory_redis import (
    BACKOFF,
    SETTINGS,
    connection_options,
    events,
    outcomes,
    serving,
)

from actors import (
    ActorSystem,
    Backoff,
    Message,
    RedisAuthenticationError,
    RedisConnectionError,
    RedisTimeoutError,
    RestartIntensityError,
    message_type,
)
from actors.pubsub import (
    ConnectionOptions,
    PubSub,
    PubSubSettings,
    RetryPolicy,
    open_pubsub,
    open_redis_pubsub,
)
from actors.redis import ConnectionLost, RedisHandshakeError, RedisMessage, Resubscribed
from actors.testing import AttemptOutcome, MemoryRedisConnection, MemoryRedisServer

ACCEPTED, REFUSED = AttemptOutcome.ACCEPTED, AttemptOutcome.REFUSED
PASSWORD = "right"
# Powers of two throughout, so that the virtual times below are exact floats.
RETRY = RetryPolicy(max_attempts=3, backoff=Backoff(initial=0.125, jitter=0.0, reset_after=0.0))
RECONNECT_WAIT = 4.0
BOUND = RECONNECT_WAIT + 0.125 + 0.25  # the wait, then the delays before attempts 2 and 3


@message_type("lifecycle-test.note")
@attrs.frozen(kw_only=True)
class Note(Message):
    text: str


def settings_for(server: MemoryRedisServer) -> PubSubSettings:
    return PubSubSettings(
        publish_retry=RETRY,
        connection=connection_options(server, reconnect_wait=RECONNECT_WAIT),
    )


@asynccontextmanager
async def pubsub_on(system: ActorSystem, server: MemoryRedisServer) -> AsyncIterator[PubSub]:
    async with open_pubsub(system, "redis://memory", settings=settings_for(server)) as pubsub:
        yield pubsub


async def outage(server: MemoryRedisServer, seconds: float) -> None:
    """The server goes away (every connection dropped, new ones refused) for ``seconds``."""
    server.refuse_connections()
    server.restart()
    await trio.sleep(seconds)
    server.accept_connections()


# -- requirement 1: what cannot heal fails at once, once -----------------------------------------


async def test_refused_credentials_fail_open_pubsub_at_once_and_are_never_retried(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    async with serving(password=PASSWORD) as server:
        url = "redis://:wrong@memory"
        with pytest.raises(RedisAuthenticationError, match=r"^WRONGPASS"):
            async with open_pubsub(system, url, settings=settings_for(server)):
                await trio.sleep_forever()
        assert trio.current_time() == 0.0
        await trio.sleep(60)
        assert outcomes(server) == [ACCEPTED]  # one attempt, no retry loop


async def test_an_acl_that_refuses_hello_fails_open_pubsub_at_once(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    def refuse_hello(connection: MemoryRedisConnection, command: tuple[bytes, ...]) -> str | None:
        if command[0].upper() == b"HELLO":
            return "NOPERM this user has no permissions to run the 'hello' command"
        return None

    async with serving() as server:
        server.set_command_hook(refuse_hello)
        with pytest.raises(RedisHandshakeError, match=r"refused HELLO .*: NOPERM") as raised:
            async with open_pubsub(system, "redis://memory", settings=settings_for(server)):
                await trio.sleep_forever()
        assert (raised.value.command, raised.value.code) == ("HELLO", "NOPERM")
        assert trio.current_time() == 0.0
        await trio.sleep(60)
        assert outcomes(server) == [ACCEPTED]


async def test_a_reconnect_that_meets_refused_credentials_fails_the_pending_publish_at_once(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    failed_at: list[float] = []
    async with serving(password=PASSWORD) as server:
        url = f"redis://:{PASSWORD}@memory"
        with pytest.raises(RedisAuthenticationError):
            async with open_pubsub(system, url, settings=settings_for(server)) as pubsub:
                await pubsub.broker.wait_connected()
                await trio.sleep(1)
                server.refuse_authentication()  # the password was rotated on the server
                server.drop_connections()
                try:
                    await pubsub.publish("news", Note(text="pending"))
                except RedisAuthenticationError:
                    failed_at.append(trio.current_time())
                    raise
        # The publish waited for the reconnect 1/8 s later, which was refused: not 4 s more.
        assert failed_at == [1.0 + BACKOFF.initial]
        assert server.attempt_times() == [0.0, 1.0 + BACKOFF.initial]


# -- requirement 3: a healthy connection starts from the initial delay ---------------------------


async def test_every_outage_after_a_healthy_connection_starts_from_the_initial_delay(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    """Six outages of 0.3 s, 3 s apart: each time the first attempt (1/8 s) is refused and the
    second (3/8 s) is taken, 0.075 s after the server accepts again. Without the reset after
    a healthy connection the delays would keep doubling across the outages."""
    sink, received = events()
    async with (
        serving() as server,
        open_redis_pubsub(system, SETTINGS, options=connection_options(server)) as pubsub,
    ):
        await pubsub.subscribe("news", sink)
        starts = [1.0 + 3.0 * number for number in range(6)]
        for start in starts:
            await trio.sleep_until(start)
            await outage(server, 0.3)
            assert isinstance(await received.receive(), ConnectionLost)
            back = await received.receive()
            assert isinstance(back, Resubscribed)
            assert trio.current_time() == start + 0.375
            assert (back.gap_start, back.gap_end) == (start, start + 0.375)
        expected = [0.0]
        for start in starts:
            expected += [start + 0.125, start + 0.375]
        assert server.attempt_times() == expected
        assert outcomes(server) == [ACCEPTED, *[REFUSED, ACCEPTED] * 6]


# -- requirement 2: bounded waits ----------------------------------------------------------------


async def test_a_publish_during_a_short_outage_completes_once_the_connection_is_back(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    async with serving() as server, pubsub_on(system, server) as pubsub:
        subscriber, received = events()
        await pubsub.broker.subscribe("news", subscriber)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(outage, server, 3.0)
            await trio.testing.wait_all_tasks_blocked()
            assert isinstance(await received.receive(), ConnectionLost)
            assert await pubsub.publish("news", Note(text="in the gap")) == 1
        # Attempts at 1/8, 3/8, 7/8 and 15/8 s are refused; the one at 31/8 s is taken, and the
        # publish, waiting since 0, goes out on that connection at once.
        assert trio.current_time() == 3.875
        assert server.attempt_times() == [0.0, 0.125, 0.375, 0.875, 1.875, 3.875]
        assert isinstance(await received.receive(), Resubscribed)
        message = await received.receive()
        assert isinstance(message, RedisMessage)
        assert orjson.loads(message.payload)["text"] == "in the gap"


async def test_a_publish_during_a_long_outage_fails_at_its_bound(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    async with serving() as server, pubsub_on(system, server) as pubsub:
        assert pubsub.publish_bound() == BOUND
        await pubsub.broker.wait_connected()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(outage, server, 60.0)
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(RedisConnectionError, match=r"not back within 4\.38 s"):
                await pubsub.publish("news", Note(text="lost"))
            assert trio.current_time() == BOUND
            nursery.cancel_scope.cancel()


async def test_a_publish_into_a_black_hole_times_out_at_its_bound(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    """The connection looks open but nothing comes back: the publish gives up at its bound
    (before the liveness probe replaces the connection), saying it may have gone out."""
    async with serving() as server, pubsub_on(system, server) as pubsub:
        await pubsub.broker.wait_connected()
        await trio.testing.wait_all_tasks_blocked()
        server.stall()
        with pytest.raises(RedisTimeoutError, match="may or may not have been published"):
            await pubsub.publish("news", Note(text="unanswered"))
        assert trio.current_time() == BOUND


async def test_a_retried_publish_sends_the_same_payload_and_so_the_same_id(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    """The connection breaks with the publish on the wire: the retry sends the very same bytes,
    so a receiver that got both can drop the second by the message's id."""
    sent: list[bytes] = []

    def break_the_first_publish(connection: MemoryRedisConnection, command: tuple[bytes, ...]):  # type: ignore[no-untyped-def]
        if command[0].upper() == b"PUBLISH" and command[1] == b"news":
            sent.append(command[2])
            if len(sent) == 1:
                connection.reset()
        return None

    async with serving() as server, pubsub_on(system, server) as pubsub:
        await pubsub.broker.wait_connected()
        server.set_command_hook(break_the_first_publish)
        note = Note(text="twice on the wire")
        assert await pubsub.publish("news", note) == 0
        assert trio.current_time() == BACKOFF.initial  # the retry went out on the reconnect
        assert len(sent) == 2
        assert sent[0] == sent[1]
        assert orjson.loads(sent[1])["id"] == note.id


async def test_ready_connection_waits_at_most_reconnect_wait(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    async with serving() as server, pubsub_on(system, server) as pubsub:
        await pubsub.broker.wait_connected()
        server.refuse_connections()
        server.drop_connections()
        await trio.testing.wait_all_tasks_blocked()
        started = trio.current_time()
        with pytest.raises(RedisConnectionError, match="connection refused"):
            await pubsub.broker.ready_connection()  # type: ignore[attr-defined]
        assert trio.current_time() - started == RECONNECT_WAIT


async def test_the_default_publish_bound_is_the_guides_retries_and_five_seconds(
    system: ActorSystem,
) -> None:
    async with open_pubsub(system) as pubsub:
        assert isinstance(pubsub, PubSub)
        assert pubsub.publish_bound() == pytest.approx(5.0 + 0.1 + 0.2)


# -- requirement 4: statistics read the same clock -----------------------------------------------


async def test_statistics_ages_are_virtual_time(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    async with (
        serving() as server,
        open_redis_pubsub(system, SETTINGS, options=connection_options(server)) as pubsub,
    ):
        await pubsub.wait_connected()
        await trio.sleep(2)
        hub = pubsub.statistics().hub
        assert (hub.last_message_age, hub.last_probe_age, hub.gap_age) == (2.0, 2.0, None)
        server.refuse_connections()
        server.drop_connections()
        await trio.sleep(3)
        hub = pubsub.statistics().hub
        assert (hub.gap_started, hub.gap_age) == (2.0, 3.0)
        assert hub.last_error is not None
        assert "connection refused" in hub.last_error


# -- the spin guard: the connection's restart intensity ------------------------------------------


async def test_outages_longer_than_the_first_delay_never_exhaust_the_default_intensity(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    """Twenty outages of 0.2 s, 0.5 s apart, with the default options (jitter included): each
    costs two attempts, and every one is recovered; the supervisor never gives up."""
    sink, received = events()
    async with serving() as server:
        options = ConnectionOptions(connector=server.connect)
        async with open_redis_pubsub(system, SETTINGS, options=options) as pubsub:
            await pubsub.subscribe("news", sink)
            for _ in range(20):
                await outage(server, 0.2)
                assert isinstance(await received.receive(), ConnectionLost)
                assert isinstance(await received.receive(), Resubscribed)
                await trio.sleep(0.5)
            assert pubsub.statistics().connection_restarts == 40


async def test_a_server_that_drops_every_healthy_connection_at_once_is_given_up_on(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    """Accepted, replayed, probed, dropped, again and again: each loss waits the first delay
    only, so the connection would spin; past 10 restarts within 1 s its supervisor gives up and
    the error leaves the block."""
    async with serving() as server:
        options = ConnectionOptions(
            connector=server.connect, reconnect=attrs.evolve(BACKOFF, initial=0.0625)
        )
        with pytest.raises(RestartIntensityError, match=r"more than 10 restarts within 1\.0 s"):
            async with open_redis_pubsub(system, SETTINGS, options=options) as pubsub:
                await pubsub.wait_connected()
                # HELLO and PING, the replay (SUBSCRIBE and its ECHO fence), the probe (PING,
                # PUBLISH): then it is dropped.
                server.drop_after(6)
                server.drop_connections()
                await trio.sleep_forever()
        # The first restart at the first drop, at 0; the eleventh, ten first delays later.
        assert trio.current_time() == 10 * 0.0625
