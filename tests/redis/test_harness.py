"""The Redis test harness itself: private servers, their variants, the proxy, fakeredis over TCP.

Everything here talks raw RESP over trio streams, so the harness is checked without any Redis
client. Real sockets and processes: no autojump_clock; every wait has a ``fail_after`` deadline.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from typing import TypeAlias

import attrs
import pytest
import trio
from _proxy import BlackHoleProxy
from _servers import FakeRedisTcpServer, encode_command

from actors.testing import (
    AclRedisServer,
    RedisServer,
    RedisServerError,
    RedisServerFactory,
    TlsRedisServer,
    UnixRedisServer,
    missing_tooling,
)
from actors.testing.pytest_plugin import REQUIRE_REDIS_ENV, skip_or_fail

PING = b"*1\r\n$4\r\nPING\r\n"
PONG = b"+PONG\r\n"
DEADLINE = 10.0
"""Generous guard against hangs; every test here takes a few milliseconds."""
SILENCE = 0.2
"""How long a black-holed read waits to show that nothing arrives."""


@attrs.frozen
class Error:
    """A RESP error reply, e.g. ``Error(b"NOPERM ...")``."""

    message: bytes

    @property
    def code(self) -> bytes:
        return self.message.split(b" ", 1)[0]


Reply: TypeAlias = "bytes | int | Error | list[Reply] | None"


@attrs.define
class RawRedis:
    """Hand-written RESP2 over any trio stream: just enough to check the servers."""

    stream: trio.abc.Stream
    buffer: bytearray = attrs.Factory(bytearray)

    async def send(self, *args: str | bytes | int) -> None:
        await self.stream.send_all(encode_command(*args))

    async def call(self, *args: str | bytes | int) -> Reply:
        await self.send(*args)
        return await self.reply()

    async def _fill(self) -> None:
        data = await self.stream.receive_some(65536)
        if not data:
            raise EOFError("the server closed the connection")
        self.buffer += data

    async def _line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            await self._fill()
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 2]
        return line

    async def reply(self) -> Reply:
        line = await self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            return Error(rest)
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            while len(self.buffer) < size + 2:
                await self._fill()
            data = bytes(self.buffer[:size])
            del self.buffer[: size + 2]
            return data
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [await self.reply() for _ in range(count)]
        raise AssertionError(f"unexpected RESP line {line!r}")


async def ping_raw(stream: trio.abc.Stream) -> bytes:
    """Send a hand-written PING and return the bytes of the answer."""
    await stream.send_all(PING)
    answer = b""
    while not answer.endswith(b"\r\n"):
        data = await stream.receive_some(4096)
        if not data:
            break
        answer += data
    return answer


async def connection_is_closed(stream: trio.abc.Stream) -> bool:
    """True when the peer has closed or reset the connection (after any data still pending)."""
    try:
        while await stream.receive_some(4096):
            pass
    except trio.BrokenResourceError:
        pass
    return True


async def open_tls(
    server: TlsRedisServer, *, with_client_cert: bool
) -> trio.SSLStream[trio.SocketStream]:
    tcp = await trio.open_tcp_stream(server.host, server.port)
    context = server.client_context(with_client_cert=with_client_cert)
    stream = trio.SSLStream(tcp, context, server_hostname=server.host)
    await stream.do_handshake()
    return stream


# --- plain servers ------------------------------------------------------------------------------


async def test_private_server_answers_ping_without_persistence(redis_server: RedisServer) -> None:
    assert redis_server.port != 6379
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}"
    with trio.fail_after(DEADLINE):
        async with await trio.open_tcp_stream("127.0.0.1", redis_server.port) as stream:
            assert await ping_raw(stream) == PONG
            redis = RawRedis(stream)
            assert await redis.call("CONFIG", "GET", "save") == [b"save", b""]
            assert await redis.call("CONFIG", "GET", "appendonly") == [b"appendonly", b"no"]
            assert await redis.call("CONFIG", "GET", "port") == [b"port", b"%d" % redis_server.port]


async def test_killed_server_restarts_on_the_same_port(redis_server: RedisServer) -> None:
    """SIGKILL resets the clients and refuses new ones; restart() serves the same port again."""
    port, pid = redis_server.port, redis_server.pid
    with trio.fail_after(DEADLINE):
        streams = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(3)]
        for stream in streams:
            assert await ping_raw(stream) == PONG

        redis_server.kill()
        assert not redis_server.running
        for stream in streams:
            assert await connection_is_closed(stream)
            await stream.aclose()
        with pytest.raises(OSError, match=r"refused|connect"):
            await trio.open_tcp_stream("127.0.0.1", port)

        await redis_server.restart_async()
        assert (redis_server.port, redis_server.starts) == (port, 2)
        assert redis_server.pid not in (None, pid)
        async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
            assert await ping_raw(stream) == PONG


@pytest.mark.redis
def test_server_is_usable_from_synchronous_code(tmp_path: Path) -> None:
    """A plain ``with`` block starts and stops a server; restart() works without trio."""
    with RedisServer(tmp_path / "sync") as server:
        for _ in range(2):
            with socket.create_connection((server.host, server.port), timeout=5) as sock:
                sock.sendall(PING)
                assert sock.recv(100) == PONG
            server.kill()
            server.restart()
    assert not server.running


@pytest.mark.redis
async def test_factory_starts_servers_with_extra_args_and_stops_them_all(tmp_path: Path) -> None:
    factory = RedisServerFactory(tmp_path)
    limit = ("--client-output-buffer-limit", "pubsub 1mb 512kb 0")
    first, second = factory(extra_args=limit), factory()
    assert first.port != second.port
    assert first.extra_args == limit
    with trio.fail_after(DEADLINE):
        async with await trio.open_tcp_stream("127.0.0.1", first.port) as stream:
            reply = await RawRedis(stream).call("CONFIG", "GET", "client-output-buffer-limit")
    assert isinstance(reply, list)
    assert isinstance(reply[1], bytes)
    assert b"pubsub 1048576 524288 0" in reply[1]
    factory.stop_all()
    assert not first.running
    assert not second.running


def test_private_server_refuses_the_shared_port(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="6379"):
        RedisServer(tmp_path, port=6379)


# --- unix socket --------------------------------------------------------------------------------


async def test_unix_socket_server_answers_ping(unix_redis_server: UnixRedisServer) -> None:
    assert unix_redis_server.url == f"unix://{unix_redis_server.socket_path}"
    with trio.fail_after(DEADLINE):
        async with await trio.open_unix_socket(str(unix_redis_server.socket_path)) as stream:
            assert await ping_raw(stream) == PONG
        unix_redis_server.kill()
        await unix_redis_server.restart_async()
        async with await trio.open_unix_socket(str(unix_redis_server.socket_path)) as stream:
            assert await ping_raw(stream) == PONG


# --- TLS ----------------------------------------------------------------------------------------


async def test_tls_server_accepts_clients_with_and_without_a_certificate(
    tls_redis_server: TlsRedisServer,
) -> None:
    assert tls_redis_server.url == f"rediss://127.0.0.1:{tls_redis_server.port}"
    assert tls_redis_server.ca_cert.is_file()
    with trio.fail_after(DEADLINE):
        for with_client_cert in (False, True):
            stream = await open_tls(tls_redis_server, with_client_cert=with_client_cert)
            async with stream:
                assert await ping_raw(stream) == PONG


async def test_tls_server_rejects_a_client_it_cannot_verify(
    tls_redis_server: TlsRedisServer,
) -> None:
    """A client that trusts the system CAs only does not accept the test CA's certificate."""
    with trio.fail_after(DEADLINE):
        tcp = await trio.open_tcp_stream(tls_redis_server.host, tls_redis_server.port)
        stream = trio.SSLStream(tcp, ssl.create_default_context(), server_hostname="127.0.0.1")
        with pytest.raises(trio.BrokenResourceError) as caught:
            await stream.do_handshake()
        assert isinstance(caught.value.__cause__, ssl.SSLCertVerificationError)
        await trio.aclose_forcefully(stream)


async def test_tls_server_requiring_client_certs_refuses_clients_without_one(
    tls_client_auth_redis_server: TlsRedisServer,
) -> None:
    with trio.fail_after(DEADLINE):
        stream = await open_tls(tls_client_auth_redis_server, with_client_cert=True)
        async with stream:
            assert await ping_raw(stream) == PONG

        # With TLS 1.3 the client's handshake may finish before the server rejects it; the
        # refusal then shows on the first read.
        with pytest.raises(trio.BrokenResourceError):
            stream = await open_tls(tls_client_auth_redis_server, with_client_cert=False)
            async with stream:
                await ping_raw(stream)


# --- ACL ----------------------------------------------------------------------------------------


async def test_acl_user_gets_noperm_outside_its_channels(acl_redis_server: AclRedisServer) -> None:
    with trio.fail_after(DEADLINE):
        async with await trio.open_tcp_stream("127.0.0.1", acl_redis_server.port) as stream:
            redis = RawRedis(stream)
            unauthenticated = await redis.call("PING")
            assert isinstance(unauthenticated, Error)
            assert unauthenticated.code == b"NOAUTH"
            assert await redis.call("AUTH", "limited", "secret") == b"OK"
            denied = await redis.call("PUBLISH", "notallowed", "x")
            assert isinstance(denied, Error)
            assert denied.code == b"NOPERM"
            assert b"channel" in denied.message
            assert await redis.call("PUBLISH", "allowed:x", "x") == 0
            assert await redis.call("SET", "some-key", "v") == b"OK"


async def test_acl_server_answers_wrongpass(acl_redis_server: AclRedisServer) -> None:
    with trio.fail_after(DEADLINE):
        async with await trio.open_tcp_stream("127.0.0.1", acl_redis_server.port) as stream:
            redis = RawRedis(stream)
            for credentials in (("limited", "wrong"), ("wrong",)):
                reply = await redis.call("AUTH", *credentials)
                assert isinstance(reply, Error)
                assert reply.code == b"WRONGPASS"
            assert await redis.call("AUTH", acl_redis_server.default_password) == b"OK"
            assert await redis.call("PUBLISH", "notallowed", "x") == 0


# --- the black-hole proxy -----------------------------------------------------------------------


async def test_black_hole_proxy_holds_traffic_until_restored(redis_server: RedisServer) -> None:
    proxy = BlackHoleProxy(redis_server.port)
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(proxy.serve)
            async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
                assert await ping_raw(stream) == PONG
                assert proxy.connections == 1

                await proxy.black_hole()
                await stream.send_all(PING)  # the write succeeds: the connection looks alive
                with trio.move_on_after(SILENCE) as silence:
                    data = await stream.receive_some(4096)
                    pytest.fail(f"received {data!r} through a black hole")
                assert silence.cancelled_caught
                assert proxy.connections == 1

                proxy.restore()
                assert await stream.receive_some(4096) == PONG  # the held PING, answered
                assert await ping_raw(stream) == PONG
            nursery.cancel_scope.cancel()


async def test_black_hole_proxy_silences_pubsub_deliveries(redis_server: RedisServer) -> None:
    """Redis still counts the black-holed subscriber and publishes to it; nothing arrives."""
    proxy = BlackHoleProxy(redis_server.port)
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(proxy.serve)
            async with (
                await trio.open_tcp_stream("127.0.0.1", port) as sub_stream,
                await trio.open_tcp_stream("127.0.0.1", redis_server.port) as pub_stream,
            ):
                subscriber, publisher = RawRedis(sub_stream), RawRedis(pub_stream)
                assert await subscriber.call("SUBSCRIBE", "news") == [b"subscribe", b"news", 1]
                await proxy.black_hole()
                assert await publisher.call("PUBLISH", "news", "hello") == 1
                with trio.move_on_after(SILENCE):
                    await subscriber.reply()
                    pytest.fail("a message went through the black hole")
                proxy.restore()
                assert await subscriber.reply() == [b"message", b"news", b"hello"]
            nursery.cancel_scope.cancel()


async def test_black_hole_proxy_close_all_drops_every_connection(
    black_hole_proxy: BlackHoleProxy,
) -> None:
    port = black_hole_proxy.port
    assert port is not None
    assert black_hole_proxy.url == f"redis://127.0.0.1:{port}"
    with trio.fail_after(DEADLINE):
        streams = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(2)]
        for stream in streams:
            assert await ping_raw(stream) == PONG
        assert black_hole_proxy.connections == 2

        black_hole_proxy.close_all(reset=True)
        for stream in streams:
            assert await connection_is_closed(stream)
            await stream.aclose()
        assert black_hole_proxy.connections == 0

        async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
            assert await ping_raw(stream) == PONG
        assert black_hole_proxy.accepted == 3


# --- fakeredis and the skip policy --------------------------------------------------------------


async def test_fakeredis_tcp_server_answers_ping(fakeredis_server: FakeRedisTcpServer) -> None:
    assert fakeredis_server.protocol == 2
    with trio.fail_after(DEADLINE):
        async with await trio.open_tcp_stream("127.0.0.1", fakeredis_server.port) as stream:
            assert await ping_raw(stream) == PONG
            assert await RawRedis(stream).call("PUBLISH", "news", "x") == 0


async def test_any_redis_server_answers_ping(
    any_redis_server: RedisServer | FakeRedisTcpServer,
) -> None:
    with trio.fail_after(DEADLINE):
        async with await trio.open_tcp_stream("127.0.0.1", any_redis_server.port) as stream:
            assert await ping_raw(stream) == PONG


def test_missing_redis_skips_unless_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUIRE_REDIS_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="no redis-server"):
        skip_or_fail("no redis-server")
    monkeypatch.setenv(REQUIRE_REDIS_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="no redis-server"):
        skip_or_fail("no redis-server")


@pytest.mark.redis
def test_graceful_stop_and_restart_of_a_running_server(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()
    try:
        server.restart()  # SIGTERM, then the same port again
        assert server.starts == 2
        with socket.create_connection((server.host, server.port), timeout=5) as sock:
            sock.sendall(PING)
            assert sock.recv(100) == PONG
    finally:
        server.stop(graceful=True)
    assert not server.running
    assert "ready to exit" in server.log()


def test_without_redis_server_a_start_raises_and_the_factory_asks_its_hook_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside pytest a missing redis-server is an error; the plugin's hook makes it a skip."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    assert "redis-server is not on PATH" in (missing_tooling() or "")
    with pytest.raises(RedisServerError, match="redis-server is not on PATH"):
        RedisServer(tmp_path / "alone").start()
    with pytest.raises(RedisServerError, match="redis-server is not on PATH"):
        RedisServerFactory(tmp_path / "plain")()
    reasons: list[str] = []
    factory = RedisServerFactory(tmp_path / "hooked", on_missing=reasons.append)
    with pytest.raises(RedisServerError):
        factory.tls_files  # noqa: B018 - the property generates them
    assert len(reasons) == 1
    assert "redis-server is not on PATH" in reasons[0]
    assert factory.servers == []
