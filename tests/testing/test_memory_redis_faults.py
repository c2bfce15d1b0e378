"""The Redis layer meets the in-memory server's faults, and its timing is checked in virtual time.

Connect timeouts, black holes, drops, resets, restarts, reconnect backoff, a flapping server,
the publish retry budget and acknowledgement timeouts, each with exact ``trio.current_time()``
assertions under ``autojump_clock``. Delays are sums of powers of two, so the floating-point
sums are exact.
"""

from __future__ import annotations

import math

import attrs
import pytest
import trio
import trio.testing
from in_memory_redis import BACKOFF, SETTINGS, connection_options, events, outcomes, serving

from actors import ActorSystem, Message, RedisConnectionError, RedisTimeoutError, message_type
from actors.pubsub import (
    PubSubSettings,
    open_pubsub,
    open_redis_pubsub,
)
from actors.redis import (
    ConnectionLost,
    RedisConnection,
    RedisConnectionLostError,
    RedisMessage,
    RedisPermissionError,
    Resubscribed,
    failure_cause,
    open_redis_connection,
)
from actors.testing import AttemptOutcome, MemoryRedisConnection, MemoryRedisServer

ACCEPTED, REFUSED = AttemptOutcome.ACCEPTED, AttemptOutcome.REFUSED


# -- connecting ----------------------------------------------------------------------------------


async def test_a_refused_connect_fails_at_once_as_a_refused_tcp_connect_does(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with serving() as server:
        await trio.sleep(1)
        server.refuse_connections()
        with pytest.raises(RedisConnectionError) as refused:
            async with open_redis_connection(SETTINGS, connector=server.connect):
                pass  # pragma: no cover
        assert (
            str(refused.value) == "cannot connect to redis://localhost:6379/0: connection refused"
        )
        assert isinstance(refused.value.__cause__, ConnectionRefusedError)
        assert failure_cause(refused.value) == "connection refused"
        assert trio.current_time() == 1.0
        server.accept_connections()
        async with open_redis_connection(SETTINGS, connector=server.connect):
            pass
        assert [(attempt.at, attempt.outcome) for attempt in server.attempts] == [
            (1.0, REFUSED),
            (1.0, ACCEPTED),
        ]


async def test_a_hanging_connect_times_out_after_exactly_connect_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with serving() as server:
        server.hang_connections()
        with pytest.raises(
            RedisTimeoutError,
            match=r"^connecting to redis://localhost:6379/0 timed out after 2\.5 s$",
        ):
            async with open_redis_connection(SETTINGS, connector=server.connect):
                pass  # pragma: no cover
        assert trio.current_time() == 2.5
        assert outcomes(server) == [AttemptOutcome.ABANDONED]
        assert server.connections == []


async def test_a_hanging_connect_goes_through_when_connections_are_accepted_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def accept_after(server: MemoryRedisServer, delay: float) -> None:
        await trio.sleep(delay)
        server.accept_connections()

    async with serving() as server, trio.open_nursery() as nursery:
        server.hang_connections()
        nursery.start_soon(accept_after, server, 1.5)
        async with open_redis_connection(SETTINGS, connector=server.connect) as redis:
            assert trio.current_time() == 1.5
            assert await redis.ping() == b"PONG"
        assert outcomes(server) == [ACCEPTED]
        assert server.attempt_times() == [0.0]


async def test_a_stalled_handshake_times_out_after_exactly_connect_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with serving() as server:
        server.stall_handshakes()
        with pytest.raises(
            RedisTimeoutError,
            match=r"^the handshake with redis://localhost:6379/0 timed out after 2\.5 s$",
        ):
            async with open_redis_connection(SETTINGS, connector=server.connect):
                pass  # pragma: no cover
        assert trio.current_time() == 2.5
        (connection,) = server.connections  # accepted, never answered: the server is wedged
        assert (connection.stalled, connection.commands) == (True, [])
        # Once resumed, the server reads the HELLO that waited, then the client's close.
        server.resume()
        await connection.wait_closed()
        assert connection.command_names() == ["HELLO"]
        assert server.connections == []


# -- live connections ----------------------------------------------------------------------------


async def test_a_black_hole_holds_commands_and_pushes_until_it_lifts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    pushes: list[list[object]] = []
    answered_at: list[float] = []

    async def echo_after_the_black_hole(redis: RedisConnection) -> None:
        assert await redis.execute("ECHO", "after") == b"after"
        answered_at.append(trio.current_time())

    async with (
        serving() as server,
        open_redis_connection(
            SETTINGS, connector=server.connect, push_handler=pushes.append
        ) as redis,
    ):
        redis.send_subscription_command("SUBSCRIBE", "news")
        await server.wait_until(lambda: server.numsub("news") == 1)
        await trio.testing.wait_all_tasks_blocked()  # the acknowledgement reaches the client
        assert pushes == [[b"subscribe", b"news", 1]]
        server.stall()
        # The server still counts the subscriber: the message waits in the black hole.
        assert await server.publish("news", b"held") == 1
        with trio.move_on_after(4) as scope:
            await redis.ping()
        assert scope.cancelled_caught
        assert trio.current_time() == 4.0
        async with trio.open_nursery() as nursery:
            nursery.start_soon(echo_after_the_black_hole, redis)
            await trio.sleep(1)
            assert len(pushes) == 1
            server.resume()
        assert answered_at == [5.0]
        assert pushes[-1] == [b"message", b"news", b"held"]
        (connection,) = server.connections
        # What was held ran in order, the PING the client gave up on included.
        assert connection.command_names() == ["HELLO", "PING", "SUBSCRIBE", "ECHO", "PING", "ECHO"]
        assert redis.statistics().replies_discarded == 1


async def test_commands_with_deadlines_fail_at_exactly_their_deadlines(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The connection's deadline watch fails each command at its own deadline, in whatever
    order the deadlines were given, without a cancel scope per command; a command without one
    waits on, and the replies of those given up are discarded when the server answers."""
    failed_at: dict[str, float] = {}
    errors: list[str] = []
    answered: list[str] = []

    async def command(redis: RedisConnection, name: str, deadline: float) -> None:
        try:
            assert await redis.execute("ECHO", name, deadline=deadline) == name.encode()
            answered.append(name)
        except RedisTimeoutError as error:
            errors.append(str(error))
            failed_at[name] = trio.current_time()

    async with (
        serving() as server,
        open_redis_connection(SETTINGS, connector=server.connect) as redis,
    ):
        assert await redis.ping() == b"PONG"
        server.stall()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(command, redis, "late", 7.0)
            nursery.start_soon(command, redis, "early", 3.0)  # earlier than the watch knew
            nursery.start_soon(command, redis, "never", math.inf)
            nursery.start_soon(command, redis, "answered", 20.0)
            await trio.sleep(10)
            server.resume()
        assert failed_at == {"early": 3.0, "late": 7.0}
        assert all("may or may not have run" in error for error in errors)
        assert sorted(answered) == ["answered", "never"]
        assert redis.statistics().replies_discarded == 2
        passed = trio.current_time()
        with pytest.raises(RedisTimeoutError, match="may or may not have run"):
            await redis.execute("ECHO", "past", deadline=passed - 1)
        assert trio.current_time() == passed
        assert await redis.ping() == b"PONG"


async def test_a_dropped_connection_fails_the_pending_command_and_reads_eof(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def drop_on_echo(connection: MemoryRedisConnection, command: tuple[bytes, ...]) -> None:
        if command[0].upper() == b"ECHO":
            connection.drop()

    async with (
        serving() as server,
        open_redis_connection(SETTINGS, connector=server.connect) as redis,
    ):
        server.set_command_hook(drop_on_echo)
        with pytest.raises(RedisConnectionLostError, match="it may or may not have run"):
            await redis.execute("ECHO", "lost")
        cause = await redis.wait_closed()
        assert str(cause) == "the server closed the connection"
        assert trio.current_time() == 0.0
        assert server.connections == []


async def test_a_reset_connection_fails_the_client_s_next_read(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with (
        serving() as server,
        open_redis_connection(SETTINGS, connector=server.connect) as redis,
    ):
        server.reset_connections()
        cause = await redis.wait_closed()
        assert isinstance(cause, RedisConnectionLostError)
        assert str(cause).startswith("reading from the server failed: BrokenResourceError(")
        with pytest.raises(RedisConnectionError, match="was lost"):
            await redis.ping()


async def test_the_client_s_stream_fails_as_a_socket_does(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with serving() as server:
        dropped = (await server.connect(SETTINGS)).stream
        reset = (await server.connect(SETTINGS)).stream
        await dropped.send_all(b"*1\r\n$4\r\nPING\r\n")
        await server.wait_until(lambda: server.connections[0].commands != [])
        first, second = server.connections
        first.drop()
        second.reset()
        assert await dropped.receive_some() == b"+PONG\r\n"  # what was sent, then EOF
        assert await dropped.receive_some() == b""
        with pytest.raises(trio.BrokenResourceError):
            await dropped.send_all(b"*1\r\n$4\r\nPING\r\n")
        with pytest.raises(trio.BrokenResourceError):
            await reset.receive_some()
        with pytest.raises(trio.BrokenResourceError):
            await reset.send_all(b"*1\r\n$4\r\nPING\r\n")
        await reset.aclose()
        with pytest.raises(trio.ClosedResourceError):
            await reset.receive_some()


# -- the connection actor ------------------------------------------------------------------------


async def test_a_restart_tells_subscribers_of_the_gap_and_forgets_everything(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    sink, received = events()
    async with (
        serving() as server,
        open_redis_pubsub(system, SETTINGS, options=connection_options(server)) as pubsub,
    ):
        await pubsub.subscribe("news", sink)
        assert await pubsub.connection().execute("SET", "key", "value") == b"OK"
        await trio.sleep(1)
        server.restart()
        lost = await received.receive()
        assert isinstance(lost, ConnectionLost)
        assert lost.reason == "connection closed: the server closed the connection"
        assert trio.current_time() == 1.0
        assert isinstance(await received.receive(), Resubscribed)
        assert trio.current_time() == 1.125  # the reconnect backoff's first delay
        assert (server.restarts, server.numsub("news")) == (1, 1)
        assert await pubsub.connection().execute("GET", "key") is None
        assert await pubsub.publish("news", "after the restart") == 1
        message = await received.receive()
        assert isinstance(message, RedisMessage)
        assert message.payload == b"after the restart"
        assert server.attempt_times() == [0.0, 1.125]


async def test_reconnects_follow_the_backoff_while_connections_are_refused(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    sink, received = events()
    async with (
        serving() as server,
        open_redis_pubsub(system, SETTINGS, options=connection_options(server)) as pubsub,
    ):
        await pubsub.subscribe("news", sink)
        await trio.sleep(1)
        server.refuse_connections()
        server.drop_connections()
        assert isinstance(await received.receive(), ConnectionLost)
        await trio.sleep(20)
        server.accept_connections()
        assert isinstance(await received.receive(), Resubscribed)
        # 1/8 s, doubling, at most 4 s; the attempt at 20.875 is refused, the next one taken.
        assert server.attempt_times() == [
            0.0,
            1.125,
            1.375,
            1.875,
            2.875,
            4.875,
            8.875,
            12.875,
            16.875,
            20.875,
            24.875,
        ]
        assert trio.current_time() == 24.875
        assert outcomes(server) == [ACCEPTED, *[REFUSED] * 9, ACCEPTED]
        assert server.numsub("news") == 1


async def test_a_flapping_server_keeps_the_backoff_growing_until_a_connection_lasts(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    """The flap guard: each flapping connection handshakes and replays, then dies before its
    probe came back, so it is never healthy and the backoff keeps doubling. The first
    connection that answers its probe is healthy: its loss waits the first delay again."""
    sink, received = events()
    async with (
        serving() as server,
        open_redis_pubsub(system, SETTINGS, options=connection_options(server)) as pubsub,
    ):
        await pubsub.subscribe("news", sink)
        await trio.sleep(1)
        server.drop_after(4)  # HELLO and PING, the replayed SUBSCRIBE and its ECHO fence
        server.drop_connections()
        await trio.sleep(11)
        server.drop_after(None)  # the attempt at 12.875 lasts
        await trio.sleep(40)
        server.drop_connections()
        await trio.sleep(1)
        assert server.attempt_times() == [
            0.0,
            1.125,
            1.375,
            1.875,
            2.875,
            4.875,
            8.875,
            12.875,
            52.125,  # the connection of 12.875 was healthy: back to the first delay
        ]
        flapping = [attempt.connection for attempt in server.attempts[1:7]]
        assert all(
            connection is not None
            and connection.command_names() == ["HELLO", "PING", "SUBSCRIBE", "ECHO"]
            for connection in flapping
        )
        gaps: list[str] = []
        while True:
            try:
                gaps.append(type(received.receive_nowait()).__name__)
            except trio.WouldBlock:
                break
        # Every flap is a gap the subscriber is told about: lost, then resubscribed.
        assert gaps == ["ConnectionLost", "Resubscribed"] * 8


async def test_subscribing_into_a_black_hole_times_out_after_exactly_ack_timeout(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    sink, _ = events()
    async with serving() as server:
        options = connection_options(server, ack_timeout=2.5)
        async with open_redis_pubsub(system, SETTINGS, options=options) as pubsub:
            await pubsub.wait_connected()
            server.stall()
            with pytest.raises(
                RedisTimeoutError,
                match=r"^Redis did not acknowledge subscribing to b'news' within 2\.5 s$",
            ):
                await pubsub.subscribe("news", sink)
            assert trio.current_time() == 2.5
            assert pubsub.statistics().hub.subscriptions == ()  # nothing left behind


async def test_a_stalled_server_is_found_by_the_liveness_probe(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    """Silence for ``probe_interval`` starts a probe; ``probe_timeout`` later, the deaf
    connection is replaced: 5 + 3 s after the last frame that came through."""
    sink, received = events()
    async with serving() as server:
        options = connection_options(server, probe_interval=5.0, probe_timeout=3.0)
        async with open_redis_pubsub(system, SETTINGS, options=options) as pubsub:
            await pubsub.subscribe("news", sink)
            # The first probe proves the new connection healthy at once, in no virtual time.
            await trio.testing.wait_all_tasks_blocked()
            assert pubsub.hub.statistics().last_probe_age == 0.0
            last_frame = trio.current_time()
            server.stall()
            lost = await received.receive()
            assert isinstance(lost, ConnectionLost)
            assert lost.reason.startswith("liveness probe failed")
            assert trio.current_time() == last_frame + 5.0 + 3.0
            server.resume()
            assert isinstance(await received.receive(), Resubscribed)
            assert trio.current_time() == last_frame + 8.0 + BACKOFF.initial


NOPERM = "NOPERM this user has no permissions to access one of the channels used"


def forbid_secrets(connection: MemoryRedisConnection, command: tuple[bytes, ...]) -> str | None:
    """A command hook: an ACL that forbids subscribing to ``secret``."""
    if command[0].upper() == b"SUBSCRIBE" and b"secret" in command[1:]:
        return NOPERM
    return None


async def test_a_subscription_the_server_refuses_raises_its_error(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    sink, _ = events()
    async with (
        serving() as server,
        open_redis_pubsub(system, SETTINGS, options=connection_options(server)) as pubsub,
    ):
        await pubsub.wait_connected()
        server.set_command_hook(forbid_secrets)
        with pytest.raises(RedisPermissionError, match=f"^{NOPERM}$"):
            await pubsub.subscribe("secret", sink)
        await pubsub.subscribe("public", sink)
        assert (server.numsub("secret"), server.numsub("public")) == (0, 1)
        assert server.attempt_times() == [0.0]


async def test_a_subscription_refused_in_resp2_times_out_and_breaks_nothing(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    """In RESP2 a refusal is an error reply that cannot be told apart from the other pending
    subscription commands' answers: it is logged, the connection goes on, and the subscribe
    ends at exactly ``ack_timeout`` with nothing left behind (RESP3 raises the refusal)."""
    sink, _ = events()
    async with serving() as server:
        options = connection_options(server, ack_timeout=2.0)
        settings = attrs.evolve(SETTINGS, protocol=2)
        async with open_redis_pubsub(system, settings, options=options) as pubsub:
            await pubsub.wait_connected()
            server.set_command_hook(forbid_secrets)
            with pytest.raises(RedisTimeoutError, match=r"within 2\.0 s"):
                await pubsub.subscribe("secret", sink)
            assert trio.current_time() == 2.0
            assert server.attempt_times() == [0.0, 0.0]  # no reconnect: nothing broke
            assert pubsub.statistics().hub.subscriptions == ()


async def test_resp2_mode_subscribes_on_a_connection_of_its_own(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    sink, received = events()
    async with (
        serving() as server,
        open_redis_pubsub(
            system, attrs.evolve(SETTINGS, protocol=2), options=connection_options(server)
        ) as pubsub,
    ):
        await pubsub.subscribe("news", sink)
        commands, subscriber = server.connections
        assert (commands.protocol, subscriber.protocol) == (2, 2)
        assert commands.channels == ()
        assert b"news" in subscriber.channels
        assert await pubsub.publish("news", "in resp2") == 1
        message = await received.receive()
        assert isinstance(message, RedisMessage)
        assert message.payload == b"in resp2"
        server.restart()
        assert isinstance(await received.receive(), ConnectionLost)
        assert isinstance(await received.receive(), Resubscribed)
        assert server.numsub("news") == 1
        assert len(server.connections) == 2


@message_type("memory-redis-test-greeting")
@attrs.frozen(kw_only=True)
class Greeting(Message):
    text: str


async def test_typed_pubsub_round_trips_through_the_memory_server(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    greetings: list[Greeting] = []
    arrived = trio.Event()

    async def handler(message: Greeting) -> None:
        greetings.append(message)
        arrived.set()

    greeting = Greeting(text="hello")
    async with serving() as server:
        settings = PubSubSettings(connection=connection_options(server))
        async with open_pubsub(system, "redis://memory", settings=settings) as pubsub:
            await pubsub.subscribe("greetings", handler)
            assert await pubsub.publish("greetings", greeting) == 1
            await arrived.wait()
        assert greetings == [greeting]
        assert trio.current_time() == 0.0
