"""RedisConnection against real servers: private ``redis-server`` processes and fakeredis.

The servers come from ``conftest.py`` (never the shared instance on 6379): each test gets its own.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any, Literal

import pytest
import trio
import trio.testing
from _servers import FakeRedisTcpServer
from push_collector import PushCollector

from actors._errors import (
    RedisAuthenticationError,
    RedisConnectionError,
    RedisConnectionLostError,
    RedisError,
    RedisPermissionError,
    RedisReplyError,
    RedisTimeoutError,
    RedisTlsError,
)
from actors.redis import (
    RedisConnection,
    RedisConnectionState,
    RedisSettings,
    Script,
    open_redis_connection,
)
from actors.redis._connection import RECEIVE_SIZE
from actors.testing import AclRedisServer, RedisServer, TlsRedisServer, UnixRedisServer, free_port

TIMEOUT = 10.0  # seconds: guard against hangs in every test


async def test_execute_returns_replies_and_helpers_normalise_them(
    redis_server: RedisServer,
) -> None:
    with trio.fail_after(TIMEOUT):
        async with open_redis_connection(redis_server.url) as redis:
            assert redis.protocol == 3
            assert redis.server_info["server"] == "redis"
            assert redis.statistics().state is RedisConnectionState.OPEN
            assert await redis.execute("SET", "k", b"v") == b"OK"
            assert await redis.execute("GET", "k") == b"v"
            assert await redis.execute("GET", "missing") is None
            assert await redis.ping() == b"PONG"
            assert await redis.ping("hi") == b"hi"
            assert await redis.publish("nobody", b"x") == 0
            assert await redis.hset("h", {"a": 1, b"b": "two"}) == 2
            assert await redis.hget("h", "a") == b"1"
            assert await redis.hget("h", "zz") is None
            assert await redis.hgetall("h") == {b"a": b"1", b"b": b"two"}
            assert await redis.hgetall("none") == {}
            assert await redis.hdel("h", "a", "zz") == 1
            assert await redis.zadd("z", {"m1": 1, "m2": 2.5, "m3": 10}) == 3
            assert await redis.zrangebyscore("z", 0, 5) == [b"m1", b"m2"]
            assert await redis.zrangebyscore("z", "-inf", "+inf", offset=1, count=1) == [b"m2"]
            assert await redis.zrangebyscore_with_scores("z", "(1", "+inf") == [
                (b"m2", 2.5),
                (b"m3", 10.0),
            ]
            assert await redis.zrem("z", "m3") == 1
            assert await redis.zremrangebyscore("z", "-inf", 1) == 1
            assert await redis.expire("z", 100) is True
            assert await redis.expire("none", 100) is False
            first = await redis.xadd("s", {"f": "v"}, max_length=100)
            await redis.xadd("s", {"g": "w"}, max_length=1, approximate=False)
            entries = await redis.xrange("s")
            assert len(entries) == 1
            assert entries[0][1] == {b"g": b"w"}
            assert first < entries[0][0]
            assert await redis.xrange("s", count=0) == []
            assert await redis.eval("return {KEYS[1], ARGV[1]}", ["k1"], ["a1"]) == [b"k1", b"a1"]
            await redis.client_setname("renamed")
            assert await redis.execute("CLIENT", "GETNAME") == b"renamed"
            assert await redis.client_id() == redis.server_info["id"]
            server = await redis.info("server")
            assert server["redis_version"] == redis.server_info["version"]
            assert isinstance(server["tcp_port"], int)
            keyspace = await redis.info("keyspace")
            assert keyspace["db0"] == {"keys": 4, "expires": 1, "avg_ttl": 0}
        assert redis.closed
        assert redis.close_cause is None
        assert await redis.wait_closed() is None


async def test_script_falls_back_to_eval_when_the_server_lacks_it(
    redis_server: RedisServer,
) -> None:
    script = Script("return tonumber(ARGV[1]) * 2")
    with trio.fail_after(TIMEOUT):
        async with open_redis_connection(redis_server.url) as redis:
            with pytest.raises(RedisReplyError) as info:
                await redis.evalsha(script.sha1, [], [1])
            assert info.value.code == "NOSCRIPT"
            assert await script.run(redis, args=[21]) == 42
            assert await redis.evalsha(script.sha1, [], [4]) == 8
            await redis.execute("SCRIPT", "FLUSH")
            assert await script.run(redis, args=[5]) == 10
            with pytest.raises(RedisReplyError, match="attempt to perform arithmetic"):
                await script.run(redis, args=["x"])


async def test_a_batch_handler_gets_each_reads_pushes_in_order_before_later_replies(
    redis_server: RedisServer,
) -> None:
    batches: list[list[list[Any]]] = []
    with trio.fail_after(TIMEOUT):
        async with (
            open_redis_connection(
                redis_server.url, push_batch_handler=batches.append
            ) as subscriber,
            open_redis_connection(redis_server.url) as publisher,
        ):
            subscriber.send_subscription_command("SUBSCRIBE", "news")
            # The acknowledgement push comes before PING's reply: it is routed before the
            # reply wakes this task.
            assert await subscriber.ping() == b"PONG"
            assert [frame for batch in batches for frame in batch] == [[b"subscribe", b"news", 1]]
            # One script publishes all 100, so they arrive together.
            await publisher.eval(
                "for n = 0, 99 do redis.call('PUBLISH', KEYS[1], tostring(n)) end", ["news"]
            )
            assert await subscriber.ping() == b"PONG"
            frames = [frame for batch in batches for frame in batch]
            assert frames[1:] == [[b"message", b"news", str(n).encode()] for n in range(100)]
            assert all(batch for batch in batches)
            assert len(batches) < len(frames)  # several frames per call
            assert subscriber.statistics().pushes_received == 101


class ReaderSteps(trio.abc.Instrument):
    """Counts the steps trio has run of the connection's reader task."""

    def __init__(self) -> None:
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task.name.startswith("redis reader"):
            self.steps += 1


def publish_command(payload: bytes) -> bytes:
    """``PUBLISH news <payload>`` as RESP."""
    return b"*3\r\n$7\r\nPUBLISH\r\n$4\r\nnews\r\n$%d\r\n%s\r\n" % (len(payload), payload)


def publish_blocking(port: int, payload: bytes) -> None:
    """Publish to ``news`` from a socket of its own, blocking until Redis has answered."""
    with socket.create_connection(("127.0.0.1", port)) as plain:
        plain.sendall(publish_command(payload))
        assert plain.recv(64).startswith(b":")


def wait_until_delivered(port: int) -> None:
    """Block until Redis has written everything it holds for our connections (named
    ``actors:...``) to their sockets: what was published waits there to be read."""
    deadline = time.monotonic() + TIMEOUT
    with socket.create_connection(("127.0.0.1", port)) as plain:
        while True:
            plain.sendall(b"CLIENT LIST\r\n")
            reply = b""
            while not reply.endswith(b"\r\n") or reply.count(b"\r\n") < 2:
                reply += plain.recv(65536)
            ours = [line for line in reply.split(b"\n") if b" name=actors:" in line]
            if ours and all(b" obl=0 " in line and b" oll=0 " in line for line in ours):
                return
            assert time.monotonic() < deadline, "Redis kept our messages in its buffers"


async def publish_first_and_route(
    redis_server: RedisServer,
    on_push: Callable[[list[Any]], None],
    steps: ReaderSteps,
    done: trio.Event,
) -> None:
    """Subscribe to ``news`` with ``on_push``, then publish ``first`` and count the reader's
    steps until ``done``."""
    with trio.fail_after(TIMEOUT):
        async with open_redis_connection(redis_server.url, push_handler=on_push) as subscriber:
            subscriber.send_subscription_command("SUBSCRIBE", "news")
            assert await subscriber.ping() == b"PONG"
            trio.lowlevel.add_instrument(steps)
            try:
                await trio.to_thread.run_sync(publish_blocking, redis_server.port, b"first")
                await done.wait()
            finally:
                trio.lowlevel.remove_instrument(steps)


async def test_the_reader_yields_after_reading_what_was_waiting(
    redis_server: RedisServer,
) -> None:
    """A read that takes all that was waiting ends the reader's turn: what arrived while it
    routed that read is read in a later step, after the tasks it woke could run (a reader that
    read on would route both in one step, keeping them waiting for as long as messages keep
    coming)."""
    routed: list[tuple[bytes, int]] = []
    steps = ReaderSteps()
    second_routed = trio.Event()

    def on_push(frame: list[Any]) -> None:
        if frame[0] != b"message":
            return
        routed.append((frame[2], steps.steps))
        if frame[2] == b"first":
            # The second message reaches the socket while this one is being routed.
            publish_blocking(redis_server.port, b"second")
            wait_until_delivered(redis_server.port)
        else:
            second_routed.set()

    await publish_first_and_route(redis_server, on_push, steps, second_routed)
    [(first, first_step), (second, second_step)] = routed
    assert (first, second) == (b"first", b"second")
    assert second_step > first_step


async def test_the_reader_reads_a_backlog_on_in_one_step(redis_server: RedisServer) -> None:
    """A read that fills the buffer found a backlog: the reader reads on, past a short read,
    while the server keeps sending, so that a flood wakes each actor once for many messages.
    Here the backlog is one full read and a short one, and more arrives while the short one is
    routed: a reader that stopped at the short read would route that in a later step."""
    routed: list[int] = []
    steps = ReaderSteps()
    everything = trio.Event()
    payload = b"x" * 1000
    backlog = RECEIVE_SIZE // len(payload) + 8  # a full read and a short one
    more = 5

    def flood(count: int) -> None:
        with socket.create_connection(("127.0.0.1", redis_server.port)) as plain:
            plain.sendall(publish_command(payload) * count)
            received = b""
            while received.count(b"\r\n") < count:
                received += plain.recv(65536)
        wait_until_delivered(redis_server.port)

    def on_push(frame: list[Any]) -> None:
        if frame[0] != b"message":
            return
        routed.append(steps.steps)
        if len(routed) == 1:
            flood(backlog)  # the loop is held: the whole backlog waits in the socket
        elif len(routed) == 1 + backlog:
            flood(more)  # the backlog's last message, from the short read
        elif len(routed) == 1 + backlog + more:
            everything.set()

    await publish_first_and_route(redis_server, on_push, steps, everything)
    # The first message came alone, in a short read: a step of its own, then all the rest.
    assert len(set(routed[1:])) == 1
    assert routed[1] > routed[0]


async def test_pubsub_helpers_see_subscriptions_and_pushes_reach_the_handler(
    redis_server: RedisServer,
) -> None:
    pushes: list[list[Any]] = []
    with trio.fail_after(TIMEOUT):
        async with (
            open_redis_connection(redis_server.url, push_handler=pushes.append) as subscriber,
            open_redis_connection(redis_server.url) as publisher,
        ):
            subscriber.send_subscription_command("SUBSCRIBE", "news", "sports")
            subscriber.send_subscription_command("PSUBSCRIBE", "room.*")
            # Commands after the subscriptions still get their replies in order.
            assert await subscriber.ping() == b"PONG"
            assert await publisher.pubsub_numsub("news", "sports", "other") == {
                "news": 1,
                "sports": 1,
                "other": 0,
            }
            assert await publisher.pubsub_channels() == ["news", "sports"]
            assert await publisher.pubsub_channels("n*") == ["news"]
            assert await publisher.pubsub_numpat() == 1
            assert await publisher.publish("news", b"hello") == 1
            assert await subscriber.publish("room.1", b"hi") == 1
            assert await subscriber.ping() == b"PONG"
            assert pushes == [
                [b"subscribe", b"news", 1],
                [b"subscribe", b"sports", 2],
                [b"psubscribe", b"room.*", 3],
                [b"message", b"news", b"hello"],
                [b"pmessage", b"room.*", b"room.1", b"hi"],
            ]
            assert subscriber.statistics().pushes_received == 5


async def test_db_and_client_name_are_applied(redis_server: RedisServer) -> None:
    url = f"{redis_server.url}/3?client_name=worker-7"
    with trio.fail_after(TIMEOUT):
        async with open_redis_connection(url) as redis:
            info = (await redis.execute("CLIENT", "INFO")).decode()
            assert " db=3 " in info
            assert " name=worker-7 " in info


async def test_unix_socket(unix_redis_server: UnixRedisServer) -> None:
    with trio.fail_after(TIMEOUT):
        async with open_redis_connection(f"{unix_redis_server.url}?db=1") as redis:
            assert redis.settings.unix_path == str(unix_redis_server.socket_path)
            assert await redis.ping() == b"PONG"
            assert " db=1 " in (await redis.execute("CLIENT", "INFO")).decode()


async def test_protocol_2_normalises_replies_like_protocol_3(
    redis_server: RedisServer,
) -> None:
    settings = RedisSettings(port=redis_server.port, host="127.0.0.1", protocol=2, client_name="p2")
    with trio.fail_after(TIMEOUT):
        async with open_redis_connection(settings) as redis:
            assert redis.protocol == 2
            assert redis.server_info == {}
            await redis.hset("h", {"a": "1"})
            assert await redis.hgetall("h") == {b"a": b"1"}
            await redis.zadd("z", {"m": 1.5})
            assert await redis.zrangebyscore_with_scores("z", 0, 2) == [(b"m", 1.5)]
            assert await redis.execute("CLIENT", "GETNAME") == b"p2"


async def test_protocol_2_subscriber_connection_hands_every_frame_to_the_handler(
    redis_server: RedisServer,
) -> None:
    pushes = PushCollector()
    settings = RedisSettings(port=redis_server.port, host="127.0.0.1", protocol=2)
    with trio.fail_after(TIMEOUT):
        async with (
            open_redis_connection(settings, push_handler=pushes) as subscriber,
            open_redis_connection(settings) as publisher,
        ):
            subscriber.send_subscription_command("SUBSCRIBE", "c")
            with pytest.raises(RedisError, match="subscriber mode"):
                await subscriber.execute("GET", "k")
            await pushes.wait_for(1)
            assert await publisher.publish("c", b"m") == 1
            subscriber.send_subscription_command("PING")
            assert await pushes.wait_for(3) == [
                [b"subscribe", b"c", 1],
                [b"message", b"c", b"m"],
                [b"pong", b""],
            ]


# -- pipelining -----------------------------------------------------------------------------------


async def test_100_concurrent_tasks_are_pipelined_into_fewer_writes(
    redis_server: RedisServer,
) -> None:
    results: dict[int, list[object]] = {}

    async def worker(redis: RedisConnection, index: int) -> None:
        replies: list[object] = []
        for round_ in range(10):
            replies.append(await redis.execute("SET", f"key:{index}", f"{index}:{round_}"))
            replies.append(await redis.execute("GET", f"key:{index}"))
        results[index] = replies

    with trio.fail_after(TIMEOUT):
        async with open_redis_connection(redis_server.url) as redis:
            before = redis.statistics()
            async with trio.open_nursery() as nursery:
                for index in range(100):
                    nursery.start_soon(worker, redis, index)
            after = redis.statistics()
    for index in range(100):
        expected: list[object] = []
        for round_ in range(10):
            expected += [b"OK", f"{index}:{round_}".encode()]
        assert results[index] == expected
    commands = after.commands_sent - before.commands_sent
    writes = after.writes - before.writes
    assert commands == 2000
    assert writes < commands / 10
    assert after.writes_coalesced > 0
    assert after.pending_commands == 0


async def test_error_replies_inside_a_pipeline_reach_their_own_callers(
    redis_server: RedisServer,
) -> None:
    outcomes: dict[int, object] = {}

    async def call(redis: RedisConnection, index: int) -> None:
        try:
            if index % 3 == 0:
                outcomes[index] = await redis.execute("INCR", "text")  # ERR not an integer
            elif index % 3 == 1:
                outcomes[index] = await redis.execute("HGET", "text", "f")  # WRONGTYPE
            else:
                outcomes[index] = await redis.execute("ECHO", str(index))
        except RedisReplyError as exc:
            outcomes[index] = exc

    with trio.fail_after(TIMEOUT):
        async with open_redis_connection(redis_server.url) as redis:
            await redis.execute("SET", "text", "not a number")
            async with trio.open_nursery() as nursery:
                for index in range(60):
                    nursery.start_soon(call, redis, index)
            assert redis.statistics().writes_coalesced > 0
    for index in range(60):
        outcome = outcomes[index]
        if index % 3 == 0:
            assert isinstance(outcome, RedisReplyError)
            assert outcome.code == "ERR"
            assert "not an integer" in outcome.message
        elif index % 3 == 1:
            assert isinstance(outcome, RedisReplyError)
            assert outcome.code == "WRONGTYPE"
        else:
            assert outcome == str(index).encode()


# -- cancellation and failure ---------------------------------------------------------------------


async def test_a_cancelled_caller_does_not_desynchronise_the_replies(
    redis_server: RedisServer,
) -> None:
    with trio.fail_after(TIMEOUT):
        async with (
            open_redis_connection(redis_server.url) as redis,
            open_redis_connection(redis_server.url) as other,
        ):
            sent_before = redis.statistics().commands_sent
            with trio.move_on_after(0) as scope:
                scope.cancel()
                await redis.execute("ECHO", "cancelled before sending")
            assert scope.cancelled_caught
            assert redis.statistics().commands_sent == sent_before

            async def blocked_pop(task_status: trio.TaskStatus[trio.CancelScope]) -> None:
                with trio.CancelScope() as pop_scope:
                    task_status.started(pop_scope)
                    await redis.execute("BLPOP", "queue", 0)
                    raise AssertionError("the BLPOP reply reached a cancelled caller")

            async with trio.open_nursery() as nursery:
                pop_scope = await nursery.start(blocked_pop)
                while (await other.execute("CLIENT", "LIST", "TYPE", "normal")).count(
                    b"cmd=blpop"
                ) == 0:
                    await trio.testing.wait_all_tasks_blocked()
                pop_scope.cancel()
            assert redis.statistics().pending_commands == 1
            assert await other.execute("RPUSH", "queue", "item") == 1
            # The BLPOP reply comes first on the wire; it must be discarded, not given to ECHO.
            assert await redis.execute("ECHO", "after") == b"after"
            stats = redis.statistics()
            assert stats.replies_discarded == 1
            assert stats.pending_commands == 0
            assert await redis.execute("LLEN", "queue") == 0


async def test_connection_loss_fails_every_pending_command_at_once(
    redis_server: RedisServer,
) -> None:
    failures: list[BaseException] = []

    async def pending(redis: RedisConnection, index: int) -> None:
        try:
            await redis.execute("BLPOP", f"never:{index}", 0)
        except RedisConnectionLostError as exc:
            failures.append(exc)

    with trio.fail_after(TIMEOUT):
        async with open_redis_connection(redis_server.url) as redis:
            async with trio.open_nursery() as nursery:
                for index in range(20):
                    nursery.start_soon(pending, redis, index)
                while redis.statistics().writes == 0 or redis.statistics().pending_commands < 20:
                    await trio.testing.wait_all_tasks_blocked()
                redis_server.kill()
                cause = await redis.wait_closed()
            assert redis.closed
            assert isinstance(cause, RedisConnectionLostError)
            assert redis.close_cause is cause
            assert redis.statistics().state is RedisConnectionState.CLOSED
            assert redis.statistics().pending_commands == 0
            with pytest.raises(RedisConnectionError, match="was lost") as info:
                await redis.execute("PING")
            assert not isinstance(info.value, RedisConnectionLostError)
            assert info.value.__cause__ is cause
            with pytest.raises(RedisConnectionError):
                redis.send_subscription_command("SUBSCRIBE", "x")
    assert len(failures) == 20
    assert all("may or may not have run" in str(failure) for failure in failures)


async def test_commands_pending_when_the_owner_closes_fail_with_connection_lost(
    redis_server: RedisServer,
) -> None:
    with trio.fail_after(TIMEOUT):
        async with (
            open_redis_connection(redis_server.url) as redis,
            trio.open_nursery() as nursery,
        ):

            async def pending() -> None:
                with pytest.raises(RedisConnectionLostError, match="was closed"):
                    await redis.execute("BLPOP", "never", 0)

            nursery.start_soon(pending)
            await trio.testing.wait_all_tasks_blocked()
            await redis.aclose()
            await redis.aclose()
        assert redis.close_cause is None


async def test_a_failing_push_handler_closes_the_connection_with_its_error(
    redis_server: RedisServer,
) -> None:
    def handler(frame: list[Any]) -> None:
        raise ValueError("consumer bug")

    with trio.fail_after(TIMEOUT):
        async with open_redis_connection(redis_server.url, push_handler=handler) as redis:
            redis.send_subscription_command("SUBSCRIBE", "c")
            cause = await redis.wait_closed()
            assert isinstance(cause, ValueError)


async def test_an_error_in_the_body_propagates_unwrapped(redis_server: RedisServer) -> None:
    with trio.fail_after(TIMEOUT), pytest.raises(KeyError, match="from the body"):
        async with open_redis_connection(redis_server.url):
            raise KeyError("from the body")


# -- connecting -----------------------------------------------------------------------------------


async def test_connection_refused_is_a_connection_error() -> None:
    port = free_port()
    with trio.fail_after(TIMEOUT), pytest.raises(RedisConnectionError, match="cannot connect"):
        async with open_redis_connection(f"redis://127.0.0.1:{port}"):
            pass  # pragma: no cover


async def test_a_silent_server_hits_the_connect_timeout() -> None:
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    try:
        with trio.fail_after(TIMEOUT), pytest.raises(RedisTimeoutError, match="handshake"):
            async with open_redis_connection(f"redis://127.0.0.1:{port}?connect_timeout=0.2"):
                pass  # pragma: no cover
    finally:
        listener.close()


@pytest.mark.parametrize("protocol", [3, 2])
async def test_acl_users_passwords_and_permission_errors(
    acl_redis_server: AclRedisServer, protocol: Literal[2, 3]
) -> None:
    host, port = acl_redis_server.host, acl_redis_server.port
    with trio.fail_after(TIMEOUT):
        async with open_redis_connection(
            f"{acl_redis_server.limited_url}?protocol={protocol}"
        ) as limited:
            assert limited.protocol == protocol
            assert await limited.execute("ACL", "WHOAMI") == b"limited"
            assert await limited.publish("allowed:1", b"x") == 0
            with pytest.raises(RedisPermissionError, match="NOPERM") as info:
                await limited.publish("secret", b"x")
            assert info.value.code == "NOPERM"
            # The connection goes on after an error reply.
            assert await limited.ping() == b"PONG"
        async with open_redis_connection(
            f"{acl_redis_server.default_url}?protocol={protocol}"
        ) as default_user:
            assert await default_user.execute("ACL", "WHOAMI") == b"default"
        for username in (None, "limited"):
            wrong = RedisSettings(
                host=host, port=port, username=username, password="wrong", protocol=protocol
            )
            with pytest.raises(RedisAuthenticationError, match="WRONGPASS") as failure:
                async with open_redis_connection(wrong):
                    pass  # pragma: no cover
            assert "wrong" not in str(failure.value)
        # Without credentials the setup itself meets NOAUTH: HELLO in RESP3, a PING in RESP2.
        anonymous = RedisSettings(host=host, port=port, protocol=protocol)
        with pytest.raises(RedisAuthenticationError, match="NOAUTH"):
            async with open_redis_connection(anonymous):
                pass  # pragma: no cover


@pytest.mark.parametrize("client_cert", [False, True])
async def test_tls(tls_redis_server: TlsRedisServer, client_cert: bool) -> None:
    settings = RedisSettings(
        host="localhost",
        port=tls_redis_server.port,
        tls=True,
        tls_ca_file=str(tls_redis_server.ca_cert),
        tls_cert_file=str(tls_redis_server.client_cert) if client_cert else None,
        tls_key_file=str(tls_redis_server.client_key) if client_cert else None,
    )
    pushes = PushCollector()
    with trio.fail_after(TIMEOUT):
        async with open_redis_connection(settings, push_handler=pushes) as redis:
            assert await redis.ping() == b"PONG"
            redis.send_subscription_command("SUBSCRIBE", "c")
            assert await redis.publish("c", b"x" * 200_000) == 1
            frames = await pushes.wait_for(2)
            assert frames[1] == [b"message", b"c", b"x" * 200_000]
            assert redis.statistics().bytes_read > 200_000


async def test_tls_client_certificate_required(
    tls_client_auth_redis_server: TlsRedisServer,
) -> None:
    server = tls_client_auth_redis_server
    url = f"rediss://localhost:{server.port}?tls_ca_file={server.ca_cert}"
    with trio.fail_after(TIMEOUT):
        # Configuration, not chance: a retry would meet the same refusal.
        with pytest.raises(RedisTlsError, match="certificate required"):
            async with open_redis_connection(url) as redis:
                await redis.ping()
        async with open_redis_connection(
            f"{url}&tls_cert_file={server.client_cert}&tls_key_file={server.client_key}"
        ) as redis:
            assert await redis.ping() == b"PONG"


async def test_tls_rejects_an_untrusted_server(tls_redis_server: TlsRedisServer) -> None:
    url = f"rediss://localhost:{tls_redis_server.port}?connect_timeout=5"
    with (
        trio.fail_after(TIMEOUT),
        pytest.raises(RedisTlsError, match=r"certificate of .* did not verify: .*certificate"),
    ):
        async with open_redis_connection(url):
            pass  # pragma: no cover


# -- fakeredis ------------------------------------------------------------------------------------


async def test_fakeredis_is_detected_and_driven_in_resp2(
    fakeredis_server: FakeRedisTcpServer,
) -> None:
    pushes = PushCollector()
    url = fakeredis_server.url
    with trio.fail_after(TIMEOUT):
        async with (
            open_redis_connection(url, push_handler=pushes) as subscriber,
            open_redis_connection(url) as publisher,
        ):
            assert subscriber.protocol == 2
            assert subscriber.server_info["server"] == "fakeredis"
            await publisher.hset("h", {"a": "1"})
            assert await publisher.hgetall("h") == {b"a": b"1"}
            subscriber.send_subscription_command("SUBSCRIBE", "c")
            assert await pushes.wait_for(1) == [[b"subscribe", b"c", 1]]
            assert await publisher.publish("c", b"m") == 1
            assert await pushes.wait_for(2) == [[b"subscribe", b"c", 1], [b"message", b"c", b"m"]]
