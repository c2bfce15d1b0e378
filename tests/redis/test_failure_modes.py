"""Failures that cannot heal fail fast, against private real servers (issue 9, requirement 1).

Refused credentials, a refused ``SELECT``, a certificate or host name that does not verify and
a malformed URL are ``RedisConfigurationError``: the connection actor makes one attempt, stops,
and the error reaches whoever waits (``open_pubsub`` raises it, a pending ``subscribe`` or
``publish`` fails with it at once); ``health()`` is down with the cause. Connection refused is
transient: retried, and the block keeps running. Virtual-time bounds are in
``tests/redis/test_connection_timing.py``; here only outcomes are asserted.
"""

from __future__ import annotations

import pytest
import trio

from actors import RedisAuthenticationError, RedisConfigurationError, open_actor_system
from actors.pubsub import ChannelSink, PubSub, open_pubsub
from actors.redis import (
    ConnectionLost,
    RedisConnectionError,
    RedisConnectionLostError,
    RedisHandshakeError,
    RedisPermissionError,
    RedisReplyError,
    RedisTimeoutError,
    RedisTlsError,
    RedisUrlError,
    SubscriptionEvent,
    failure_cause,
    heals,
    open_redis_connection,
)
from actors.testing import RedisServer, RedisServerFactory

TIMEOUT = 20.0
PASSWORD = "right-password"


async def connections_received(server: RedisServer) -> int:
    """How many connections the server accepted so far (the INFO stats counter)."""
    async with open_redis_connection(server.url.replace("redis://", f"redis://:{PASSWORD}@")) as r:
        info = await r.info("stats")
    count = info["total_connections_received"]
    assert isinstance(count, int)
    return count - 1  # this one


@pytest.fixture
def password_server(redis_server_factory: RedisServerFactory) -> RedisServer:
    return redis_server_factory(["--requirepass", PASSWORD])


def with_password(server: RedisServer, password: str, path: str = "") -> str:
    return f"redis://:{password}@127.0.0.1:{server.port}{path}"


async def test_a_wrong_password_fails_open_pubsub_once_without_retrying(
    password_server: RedisServer,
) -> None:
    """One attempt, then the typed error with the server's message and never the password."""
    url = with_password(password_server, "not-the-password")
    kept: list[PubSub] = []
    with trio.fail_after(TIMEOUT):
        async with open_actor_system() as system:
            with pytest.raises(RedisAuthenticationError) as raised:
                async with open_pubsub(system, url) as pubsub:
                    kept.append(pubsub)
                    await trio.sleep_forever()
        assert "WRONGPASS" in str(raised.value)
        assert "not-the-password" not in str(raised.value)
        assert isinstance(raised.value, RedisConfigurationError)
        assert failure_cause(raised.value) == "authentication failed"
        assert await connections_received(password_server) == 1
        report = await kept[0].health()
    connection = report.checks["connection"]
    assert report.http_status == 503
    assert connection.detail["cause"] == "authentication failed"
    assert "WRONGPASS" in connection.detail["reason"]
    assert kept[0].broker.statistics().connection_restarts == 0  # type: ignore[attr-defined]


async def test_pending_calls_fail_at_once_when_the_password_stops_working(
    password_server: RedisServer,
) -> None:
    """A reconnect that meets a changed password ends the block with the error, and the
    subscribe and the wait that were pending during the reconnect fail with it at once."""
    url = with_password(password_server, PASSWORD)
    outcomes: list[str] = []
    with trio.fail_after(TIMEOUT):
        async with open_actor_system() as system:
            with pytest.raises(RedisAuthenticationError):
                async with open_pubsub(system, url) as pubsub:
                    gaps, events = trio.open_memory_channel[SubscriptionEvent](10)
                    await pubsub.broker.subscribe("watched", ChannelSink(gaps))
                    async with open_redis_connection(url) as admin:
                        await admin.execute("CONFIG", "SET", "requirepass", "rotated")
                        await admin.execute("CLIENT", "KILL", "TYPE", "pubsub")
                    assert isinstance(await events.receive(), ConnectionLost)

                    async def pending(call: str) -> None:
                        try:
                            if call == "subscribe":
                                send, _ = trio.open_memory_channel[SubscriptionEvent](1)
                                await pubsub.broker.subscribe("later", ChannelSink(send))
                            else:
                                await pubsub.broker.wait_connected()
                        except RedisAuthenticationError:
                            outcomes.append(f"{call}: failed")
                        except trio.Cancelled:
                            outcomes.append(f"{call}: cancelled")
                            raise

                    # Both start during the reconnect's backoff, before the refused attempt.
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(pending, "subscribe")
                        nursery.start_soon(pending, "wait")
    # Both got the error itself, not a timeout and not only the block's cancellation.
    assert sorted(outcomes) == ["subscribe: failed", "wait: failed"]


async def test_a_database_out_of_range_is_refused_for_good(redis_server: RedisServer) -> None:
    with trio.fail_after(TIMEOUT):
        async with open_actor_system() as system:
            with pytest.raises(RedisHandshakeError, match=r"SELECT .*out of range") as raised:
                async with open_pubsub(system, f"{redis_server.url}/99"):
                    await trio.sleep_forever()
    assert raised.value.command == "SELECT"
    assert raised.value.code == "ERR"
    assert failure_cause(raised.value) == "SELECT refused"


async def test_an_acl_user_without_select_is_refused_for_good(redis_server: RedisServer) -> None:
    async with open_redis_connection(redis_server.url) as admin:
        await admin.execute("ACL", "SETUSER", "noselect", "on", ">pw", "~*", "&*", "+@all")
        await admin.execute("ACL", "SETUSER", "noselect", "-select")
    url = f"redis://noselect:pw@127.0.0.1:{redis_server.port}/1"
    with trio.fail_after(TIMEOUT):
        async with open_actor_system() as system:
            with pytest.raises(RedisHandshakeError, match="NOPERM") as raised:
                async with open_pubsub(system, url):
                    await trio.sleep_forever()
    assert "pw" not in str(raised.value).split("NOPERM")[0]


async def test_a_certificate_from_an_unknown_authority_is_fatal(
    redis_server_factory: RedisServerFactory,
) -> None:
    server = redis_server_factory.tls()
    with trio.fail_after(TIMEOUT):
        async with open_actor_system() as system:
            with pytest.raises(RedisTlsError, match="did not verify"):
                async with open_pubsub(system, f"rediss://localhost:{server.port}"):
                    await trio.sleep_forever()


async def test_a_host_name_the_certificate_does_not_name_is_fatal(
    redis_server_factory: RedisServerFactory,
) -> None:
    """The server also listens on 127.0.0.2, which its certificate (127.0.0.1, localhost) does
    not name."""
    server = redis_server_factory.tls(["--bind", "127.0.0.1", "127.0.0.2"])
    url = f"rediss://127.0.0.2:{server.port}?tls_ca_file={server.ca_cert}"
    with trio.fail_after(TIMEOUT):
        async with open_actor_system() as system:
            with pytest.raises(RedisTlsError, match="mismatch"):
                async with open_pubsub(system, url):
                    await trio.sleep_forever()
        async with open_redis_connection(
            url.replace("127.0.0.2", "localhost") + "&tls_verify_hostname=false"
        ) as redis:
            assert await redis.ping() == b"PONG"


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost:99999",
        "redis://localhost/not-a-number",
        "redis://localhost?colour=blue",
        "ftp://user:secret@localhost",
        "localhost:6379",
    ],
)
async def test_a_bad_url_fails_at_once(url: str) -> None:
    async with open_actor_system() as system:
        with pytest.raises(RedisUrlError) as raised:
            async with open_pubsub(system, url):
                pass  # pragma: no cover
    assert isinstance(raised.value, ValueError)
    assert "secret" not in str(raised.value)


async def test_connection_refused_is_retried_and_the_block_goes_on(
    redis_server: RedisServer,
) -> None:
    """The transient side of the table: the server is down at first, then comes up."""
    redis_server.stop()
    with trio.fail_after(TIMEOUT):
        async with (
            open_actor_system() as system,
            open_pubsub(system, redis_server.url) as pubsub,
        ):
            with trio.move_on_after(0.5):
                await pubsub.broker.wait_connected()
            report = await pubsub.health()
            assert report.checks["connection"].detail["cause"] == "connection refused"
            await redis_server.start_async()
            await pubsub.broker.wait_connected()
            assert (await pubsub.health()).http_status == 200


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (RedisConnectionLostError("the connection was lost"), True),
        (RedisConnectionError("connection refused"), True),
        (RedisTimeoutError("no reply within 5 s"), True),
        (RedisReplyError("LOADING Redis is loading the dataset in memory"), True),
        (RedisReplyError("TRYAGAIN multiple keys request during rehashing of slot"), True),
        (RedisPermissionError("NOPERM no permissions to run the 'evalsha' command"), False),
        (RedisReplyError("ERR Error running script"), False),
        (RedisAuthenticationError("WRONGPASS invalid username-password pair"), False),
        (RedisTlsError("certificate verify failed"), False),
        (RedisUrlError("unsupported scheme"), False),
    ],
)
def test_what_heals_is_a_lost_connection_a_timeout_or_a_refusal_that_says_not_now(
    error: BaseException, expected: bool
) -> None:
    assert heals(error) is expected
