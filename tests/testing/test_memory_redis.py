"""The in-memory Redis server speaks Redis 7's protocol: the bytes on the wire and the replies.

Exact frames are checked on a raw connection (``Wire``); the rest through the real client,
``open_redis_connection`` with the server's ``connect`` as its connector. Everything runs under
``autojump_clock``, with a deadline in virtual time, so a missing reply fails at once.
"""

from __future__ import annotations

import hiredis
import pytest
import trio
import trio.testing
from in_memory_redis import serving

from actors import RedisAuthenticationError, RedisConnectionError
from actors.redis import (
    RedisHandshakeError,
    RedisReplyError,
    RedisSettings,
    encode_command,
    open_redis_connection,
)
from actors.testing import AttemptOutcome, MemoryRedisServer

DEADLINE = 600.0  # seconds of virtual time; a deadlock fails at once under autojump_clock
SETTINGS = RedisSettings()
_INCOMPLETE = object()


class Wire:
    """A raw connection to the server: commands out, exact bytes expected back."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buffer = b""

    async def send(self, *args: str | bytes | int) -> None:
        await self.stream.send_all(encode_command(*args))

    async def expect(self, expected: bytes) -> None:
        """Read until ``len(expected)`` bytes came, and check them."""
        with trio.fail_after(DEADLINE):
            while len(self.buffer) < len(expected):
                data = await self.stream.receive_some()
                assert data, f"EOF after {self.buffer!r}; expected {expected!r}"
                self.buffer += data
        received, self.buffer = self.buffer[: len(expected)], self.buffer[len(expected) :]
        assert received == expected

    async def reply(self) -> object:
        """Read one whole frame, parsed (a test that only needs to get past a reply)."""
        reader = hiredis.Reader(notEnoughData=_INCOMPLETE)
        consumed = 0
        with trio.fail_after(DEADLINE):
            while True:
                # Byte by byte, to know where the frame ends: the rest stays in the buffer.
                while consumed < len(self.buffer):
                    reader.feed(self.buffer[consumed : consumed + 1])
                    consumed += 1
                    frame = reader.gets()
                    if frame is not _INCOMPLETE:
                        self.buffer = self.buffer[consumed:]
                        return frame
                data = await self.stream.receive_some()
                assert data, f"EOF after {self.buffer!r}"
                self.buffer += data

    async def expect_eof(self) -> None:
        assert self.buffer == b""
        with trio.fail_after(DEADLINE):
            assert await self.stream.receive_some() == b""

    async def expect_silence(self, seconds: float = 1.0) -> None:
        """Nothing arrives for ``seconds`` (of virtual time)."""
        with trio.move_on_after(seconds):
            data = await self.stream.receive_some()
            pytest.fail(f"unexpected bytes: {data!r}")


async def open_wire(server: MemoryRedisServer) -> Wire:
    transport = await server.connect(SETTINGS)
    return Wire(transport.stream)


def push(*items: bytes | int) -> bytes:
    """A RESP3 push frame of bulk strings and integers, written out by hand."""
    return b">%d\r\n" % len(items) + b"".join(_item(item) for item in items)


def array(*items: bytes | int) -> bytes:
    """The same frame as a RESP2 array."""
    return b"*%d\r\n" % len(items) + b"".join(_item(item) for item in items)


def _item(item: bytes | int) -> bytes:
    if isinstance(item, int):
        return b":%d\r\n" % item
    return b"$%d\r\n%s\r\n" % (len(item), item)


# -- the wire ------------------------------------------------------------------------------------


async def test_hello_3_answers_with_a_redis_7_map(autojump_clock: trio.testing.MockClock) -> None:
    async with serving() as server:
        wire = await open_wire(server)
        await wire.send("HELLO", "3")
        await wire.expect(
            b"%7\r\n"
            b"$6\r\nserver\r\n$5\r\nredis\r\n"
            b"$7\r\nversion\r\n$5\r\n7.2.4\r\n"
            b"$5\r\nproto\r\n:3\r\n"
            b"$2\r\nid\r\n:1\r\n"
            b"$4\r\nmode\r\n$10\r\nstandalone\r\n"
            b"$4\r\nrole\r\n$6\r\nmaster\r\n"
            b"$7\r\nmodules\r\n*0\r\n"
        )
        await wire.send("HELLO", "2")
        await wire.expect(b"*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n")


async def test_resp3_acknowledges_each_name_with_the_subscription_count(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with serving() as server:
        wire = await open_wire(server)
        await wire.send("HELLO", "3")
        await wire.reply()
        await wire.send("SUBSCRIBE", "a", "b", "a")
        await wire.send("PING")  # a plain PONG even while subscribed, in RESP3
        await wire.expect(
            push(b"subscribe", b"a", 1) + push(b"subscribe", b"b", 2) + push(b"subscribe", b"a", 2)
        )
        await wire.expect(b"+PONG\r\n")
        await wire.send("PSUBSCRIBE", "n*")
        await wire.expect(push(b"psubscribe", b"n*", 3))
        await wire.send("SSUBSCRIBE", "s")  # shard channels are counted apart
        await wire.expect(push(b"ssubscribe", b"s", 1))
        assert await server.publish("news", b"x") == 1
        await wire.expect(push(b"pmessage", b"n*", b"news", b"x"))
        assert await server.publish("a", b"y") == 1
        await wire.expect(push(b"message", b"a", b"y"))
        assert await server.spublish("s", b"z") == 1
        await wire.expect(push(b"smessage", b"s", b"z"))
        await wire.send("UNSUBSCRIBE")
        await wire.expect(push(b"unsubscribe", b"a", 2) + push(b"unsubscribe", b"b", 1))
        await wire.send("UNSUBSCRIBE")  # nothing left: one acknowledgement with a null name
        await wire.expect(b">3\r\n$11\r\nunsubscribe\r\n_\r\n:1\r\n")
        await wire.send("PUNSUBSCRIBE", "n*", "other")
        await wire.expect(push(b"punsubscribe", b"n*", 0) + push(b"punsubscribe", b"other", 0))


async def test_resp2_subscribed_connection_pings_with_an_array_and_refuses_commands(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with serving() as server:
        wire = await open_wire(server)
        await wire.send("SUBSCRIBE", "a")
        await wire.expect(array(b"subscribe", b"a", 1))
        await wire.send("PING")
        await wire.expect(array(b"pong", b""))
        await wire.send("PING", "hi")
        await wire.expect(array(b"pong", b"hi"))
        await wire.send("GET", "k")
        await wire.expect(
            b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / "
            b"RESET are allowed in this context\r\n"
        )
        await wire.send("PUBSUB", "NUMSUB", "a")
        refusal = await wire.reply()
        assert isinstance(refusal, hiredis.ReplyError)
        assert str(refusal).startswith("ERR Can't execute 'pubsub|numsub': only (P|S)SUBSCRIBE")
        assert await server.publish("a", b"m") == 1
        await wire.expect(array(b"message", b"a", b"m"))
        await wire.send("UNSUBSCRIBE", "a")
        await wire.expect(array(b"unsubscribe", b"a", 0))
        await wire.send("UNSUBSCRIBE")
        await wire.expect(b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n")
        await wire.send("PING")  # no longer subscribed
        await wire.expect(b"+PONG\r\n")
        await wire.send("GET", "k")
        await wire.expect(b"$-1\r\n")


async def test_pipelined_and_partial_commands_are_answered_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with serving() as server:
        wire = await open_wire(server)
        pipelined = (
            encode_command("PING") + encode_command("ECHO", "hello") + encode_command("PING")
        )
        await wire.stream.send_all(pipelined)
        await wire.expect(b"+PONG\r\n$5\r\nhello\r\n+PONG\r\n")
        command = encode_command("ECHO", "in pieces")
        for position in range(len(command) - 1):
            await wire.stream.send_all(command[position : position + 1])
        await wire.expect_silence()
        await wire.stream.send_all(command[-1:])
        await wire.expect(b"$9\r\nin pieces\r\n")


async def test_errors_read_as_redis_writes_them(autojump_clock: trio.testing.MockClock) -> None:
    async with serving() as server:
        wire = await open_wire(server)
        await wire.send("FOO", "a", "b")
        await wire.expect(b"-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n")
        await wire.send("nosuch")
        await wire.expect(b"-ERR unknown command 'nosuch', with args beginning with: \r\n")
        await wire.send("GET")
        await wire.expect(b"-ERR wrong number of arguments for 'get' command\r\n")
        await wire.send("CLIENT", "nope")
        await wire.expect(b"-ERR unknown subcommand 'nope'. Try CLIENT HELP.\r\n")
        await wire.send("CLIENT", "SETNAME")
        await wire.expect(b"-ERR wrong number of arguments for 'client|setname' command\r\n")
        await wire.send("CLIENT", "SETNAME", "has space")
        await wire.expect(
            b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
        )
        await wire.send("SELECT", "16")
        await wire.expect(b"-ERR DB index is out of range\r\n")
        await wire.send("SELECT", "01")
        await wire.expect(b"-ERR value is not an integer or out of range\r\n")
        await wire.send("HELLO", "4")
        await wire.expect(b"-NOPROTO unsupported protocol version\r\n")
        await wire.send("HELLO", "3", "FOO")
        await wire.expect(b"-ERR Syntax error in HELLO option 'FOO'\r\n")
        await wire.send("AUTH", "secret")
        await wire.expect(
            b"-ERR AUTH <password> called without any password configured for the default user. "
            b"Are you sure your configuration is correct?\r\n"
        )


async def test_info_is_redis_text_verbatim_in_resp3_and_bulk_in_resp2(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with serving() as server:
        wire = await open_wire(server)
        await wire.send("HELLO", "3")
        await wire.reply()
        await wire.send("SUBSCRIBE", "a")
        await wire.send("PSUBSCRIBE", "b*")
        await wire.expect(push(b"subscribe", b"a", 1) + push(b"psubscribe", b"b*", 2))
        await wire.send("INFO", "stats")  # RESP3 runs any command while subscribed
        stats = (
            b"# Stats\r\n"
            b"total_connections_received:1\r\n"
            b"total_commands_processed:3\r\n"
            b"pubsub_channels:1\r\n"
            b"pubsub_patterns:1\r\n"
            b"pubsubshard_channels:0\r\n"
        )
        await wire.expect(b"=%d\r\ntxt:%s\r\n" % (len(stats) + 4, stats))
        resp2 = await open_wire(server)
        await resp2.send("INFO", "STATS")
        stats = stats.replace(b"received:1", b"received:2").replace(b"processed:3", b"processed:4")
        await resp2.expect(b"$%d\r\n%s\r\n" % (len(stats), stats))
        await resp2.send("INFO", "nosuchsection")
        await resp2.expect(b"$0\r\n\r\n")
        await resp2.send("INFO")
        text = await resp2.reply()
        assert isinstance(text, bytes)
        sections = [line for line in text.split(b"\r\n") if line.startswith(b"#")]
        assert sections == [
            b"# Server",
            b"# Clients",
            b"# Stats",
            b"# Replication",
            b"# Cluster",
            b"# Keyspace",
        ]


async def test_quit_answers_then_closes(autojump_clock: trio.testing.MockClock) -> None:
    async with serving() as server:
        wire = await open_wire(server)
        await wire.send("QUIT")
        await wire.expect(b"+OK\r\n")
        await wire.expect_eof()
        with pytest.raises(trio.BrokenResourceError):
            await wire.send("PING")
        assert server.connections == []


@pytest.mark.parametrize(
    "garbage",
    [b"PING\r\n", b"#f\r\n", b"*1\r\n:1\r\n"],
    ids=["inline command (not supported)", "a boolean", "an integer argument"],
)
async def test_bytes_that_are_not_a_command_are_a_protocol_error(
    garbage: bytes, autojump_clock: trio.testing.MockClock
) -> None:
    async with serving() as server:
        wire = await open_wire(server)
        await wire.stream.send_all(garbage)
        error = await wire.reply()
        assert isinstance(error, hiredis.ReplyError)
        assert str(error).startswith("ERR Protocol error: ")
        await wire.expect_eof()
        assert server.connections == []


# -- through the client --------------------------------------------------------------------------


async def test_client_handshake_names_the_connection_and_selects_the_database(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with serving() as server:
        settings = RedisSettings(client_name="worker-1", db=3)
        async with open_redis_connection(settings, connector=server.connect) as redis:
            assert redis.protocol == 3
            assert redis.server_info == {
                "server": "redis",
                "version": "7.2.4",
                "proto": 3,
                "id": 1,
                "mode": "standalone",
                "role": "master",
                "modules": [],
            }
            assert await redis.client_id() == 1
            assert await redis.execute("CLIENT", "GETNAME") == b"worker-1"
            (connection,) = server.connections
            assert (connection.name, connection.db, connection.protocol) == (b"worker-1", 3, 3)
            assert connection.commands == [
                (b"HELLO", b"3", b"SETNAME", b"worker-1"),
                (b"SELECT", b"3"),
                (b"PING",),
                (b"CLIENT", b"ID"),
                (b"CLIENT", b"GETNAME"),
            ]


async def test_database_out_of_range_fails_the_handshake(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with serving(databases=4) as server:
        with pytest.raises(RedisHandshakeError, match=r"SELECT .*: ERR DB index is out of range$"):
            async with open_redis_connection(RedisSettings(db=4), connector=server.connect):
                pass  # pragma: no cover
        async with open_redis_connection(RedisSettings(db=3), connector=server.connect):
            pass


async def test_a_server_without_resp3_is_driven_in_resp2(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with (
        serving(resp3=False) as server,
        open_redis_connection(RedisSettings(client_name="old"), connector=server.connect) as redis,
    ):
        assert redis.protocol == 2
        assert await redis.ping() == b"PONG"
        (connection,) = server.connections
        assert connection.command_names() == ["HELLO", "CLIENT", "PING"]
        assert connection.name == b"old"
        with pytest.raises(RedisReplyError, match="unknown command 'HELLO'"):
            await redis.execute("HELLO", "3")


async def test_password_refusals_are_redis_s_own(autojump_clock: trio.testing.MockClock) -> None:
    async with serving(password="s3cret") as server:
        with pytest.raises(RedisAuthenticationError) as wrong:
            async with open_redis_connection(
                RedisSettings(password="nope"), connector=server.connect
            ):
                pass  # pragma: no cover
        assert wrong.value.message == (
            "WRONGPASS invalid username-password pair or user is disabled."
        )
        with pytest.raises(RedisAuthenticationError) as hello:
            async with open_redis_connection(RedisSettings(), connector=server.connect):
                pass  # pragma: no cover
        assert hello.value.code == "NOAUTH"
        assert "HELLO must be called with the client already authenticated" in hello.value.message
        # In RESP2 without credentials, the setup's PING meets NOAUTH: no half-open connection.
        with pytest.raises(RedisAuthenticationError, match=r"^NOAUTH Authentication required\.$"):
            async with open_redis_connection(RedisSettings(protocol=2), connector=server.connect):
                pass  # pragma: no cover
        async with open_redis_connection(
            RedisSettings(password="s3cret", protocol=2), connector=server.connect
        ) as redis:
            assert await redis.ping() == b"PONG"
            # CLIENT SETNAME: the default name, actors:<host>:<pid>.
            assert server.connections[-1].command_names() == ["AUTH", "CLIENT", "PING"]


async def test_an_acl_user_authenticates_with_its_name(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with serving(username="app", password="pw") as server:
        for protocol in (3, 2):
            settings = RedisSettings(username="app", password="pw", protocol=protocol)
            async with open_redis_connection(settings, connector=server.connect) as redis:
                assert await redis.ping() == b"PONG"
        with pytest.raises(RedisAuthenticationError, match="WRONGPASS"):
            async with open_redis_connection(
                RedisSettings(password="pw"), connector=server.connect
            ):
                pass  # pragma: no cover


async def test_a_rotated_password_refuses_new_connections_only(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with serving(password="old") as server:
        old = RedisSettings(password="old")
        async with open_redis_connection(old, connector=server.connect) as redis:
            server.set_password("new")
            assert await redis.ping() == b"PONG"  # already authenticated
            with pytest.raises(RedisAuthenticationError, match="WRONGPASS"):
                async with open_redis_connection(old, connector=server.connect):
                    pass  # pragma: no cover
            new = RedisSettings(password="new")
            async with open_redis_connection(new, connector=server.connect):
                pass
            server.refuse_authentication()
            with pytest.raises(RedisAuthenticationError, match="WRONGPASS"):
                async with open_redis_connection(new, connector=server.connect):
                    pass  # pragma: no cover
            server.accept_authentication()
            async with open_redis_connection(new, connector=server.connect):
                pass
            server.set_password(None)
            async with open_redis_connection(RedisSettings(), connector=server.connect):
                pass


async def test_publish_counts_channel_and_pattern_subscriptions_by_redis_glob_rules(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with serving() as server:
        pushes: list[list[object]] = []
        async with (
            open_redis_connection(
                SETTINGS, connector=server.connect, push_handler=pushes.append
            ) as subscriber,
            open_redis_connection(SETTINGS, connector=server.connect) as publisher,
        ):
            subscriber.send_subscription_command("SUBSCRIBE", "hello")
            subscriber.send_subscription_command("PSUBSCRIBE", "h?llo", "h[^e]llo", r"a\*b", "*")
            await server.wait_until(lambda: server.numpat() == 4)
            assert await publisher.publish("hello", b"1") == 3  # the channel, h?llo and *
            assert await publisher.publish("hallo", b"2") == 3  # h?llo, h[^e]llo and *
            assert await publisher.publish("a*b", b"3") == 2  # the escaped star, and *
            assert await publisher.publish("axb", b"4") == 1
            await trio.testing.wait_all_tasks_blocked()
            messages = [frame for frame in pushes if frame[0] in (b"message", b"pmessage")]
            assert messages == [
                [b"message", b"hello", b"1"],
                [b"pmessage", b"h?llo", b"hello", b"1"],
                [b"pmessage", b"*", b"hello", b"1"],
                [b"pmessage", b"h?llo", b"hallo", b"2"],
                [b"pmessage", b"h[^e]llo", b"hallo", b"2"],
                [b"pmessage", b"*", b"hallo", b"2"],
                [b"pmessage", b"a\\*b", b"a*b", b"3"],
                [b"pmessage", b"*", b"a*b", b"3"],
                [b"pmessage", b"*", b"axb", b"4"],
            ]


async def test_pubsub_introspection_agrees_with_the_server_s_view(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with serving() as server:
        async with (
            open_redis_connection(SETTINGS, connector=server.connect) as first,
            open_redis_connection(SETTINGS, connector=server.connect) as second,
            open_redis_connection(SETTINGS, connector=server.connect) as observer,
        ):
            first.send_subscription_command("SUBSCRIBE", "news", "news.eu")
            first.send_subscription_command("PSUBSCRIBE", "news.*")
            second.send_subscription_command("SUBSCRIBE", "news")
            second.send_subscription_command("PSUBSCRIBE", "news.*")
            second.send_subscription_command("SSUBSCRIBE", "shard")
            # Each connection's commands run in order, the connections' in any order.
            await server.wait_until(
                lambda: (
                    server.connections[0].patterns == (b"news.*",)
                    and server.shard_numsub("shard") == 1
                )
            )
            assert await observer.pubsub_numsub("news", "news.eu", "none") == {
                "news": 2,
                "news.eu": 1,
                "none": 0,
            }
            assert await observer.pubsub_numpat() == 1  # distinct patterns
            assert await observer.pubsub_channels() == ["news", "news.eu"]
            assert await observer.pubsub_channels("*.eu") == ["news.eu"]
            assert await observer.execute("PUBSUB", "SHARDNUMSUB", "shard") == [b"shard", 1]
            assert await observer.execute("PUBSUB", "SHARDCHANNELS") == [b"shard"]
            info = await observer.info("stats")
            assert (info["pubsub_channels"], info["pubsub_patterns"]) == (2, 1)
            assert (server.numsub("news"), server.numsub(b"news.eu"), server.numpat()) == (2, 1, 1)
            assert server.channels("news*") == [b"news", b"news.eu"]
            assert server.connections[1].channels == (b"news",)
            assert server.connections[1].patterns == (b"news.*",)
            assert server.connections[1].shard_channels == (b"shard",)
        # Closed connections leave nothing behind.
        assert (server.numsub("news"), server.numpat(), server.shard_numsub("shard")) == (0, 0, 0)


async def test_keys_expire_on_trio_s_clock(autojump_clock: trio.testing.MockClock) -> None:
    async with (
        serving() as server,
        open_redis_connection(SETTINGS, connector=server.connect) as redis,
    ):
        assert await redis.execute("SET", "k", "v", "PX", 1500) == b"OK"
        assert await redis.execute("SET", "k", "w", "NX") is None
        assert await redis.execute("SET", "other", "x", "XX") is None
        assert await redis.execute("SET", "other", "x", "EX", 10) == b"OK"
        await trio.sleep(1.5)
        assert await redis.execute("GET", "k") == b"v"  # Redis expires a key after its time
        await trio.sleep(0.001)
        assert await redis.execute("GET", "k") is None
        assert await redis.execute("EXISTS", "other", "other", "k") == 2
        info = await redis.info("keyspace")
        assert info["db0"] == {"keys": 1, "expires": 1, "avg_ttl": 0}
        assert await redis.execute("DEL", "other", "k") == 1
        with pytest.raises(RedisReplyError, match=r"^ERR syntax error$"):
            await redis.execute("SET", "k", "v", "NX", "XX")
        with pytest.raises(RedisReplyError, match="invalid expire time in 'set' command"):
            await redis.execute("SET", "k", "v", "EX", 0)


async def test_connections_are_refused_unless_the_server_serves(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = MemoryRedisServer()
    with pytest.raises(RedisConnectionError, match=r": connection refused$"):
        await server.connect(SETTINGS)
    async with serving() as server:
        transport = await server.connect(SETTINGS)
        serving_inside = server.serving
    assert (serving_inside, server.serving) == (True, False)
    assert await transport.stream.receive_some() == b""  # dropped with the server
    with pytest.raises(RedisConnectionError, match="connection refused"):
        await server.connect(SETTINGS)
    assert [attempt.outcome for attempt in server.attempts] == [
        AttemptOutcome.ACCEPTED,
        AttemptOutcome.REFUSED,
    ]


async def test_when_serving_ends_the_client_reads_eof(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = MemoryRedisServer()
    scope = trio.CancelScope()

    async def serve(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with scope:
            await server.serve(task_status=task_status)

    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            await nursery.start(serve)
            async with open_redis_connection(SETTINGS, connector=server.connect) as redis:
                scope.cancel()
                cause = await redis.wait_closed()
                assert str(cause) == "the server closed the connection"


async def test_a_server_serves_once_at_a_time(autojump_clock: trio.testing.MockClock) -> None:
    async with serving() as server:
        with pytest.raises(RuntimeError, match="already serving"):
            await server.serve()
