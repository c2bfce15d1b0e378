"""Fixtures that start private Redis servers: real ``redis-server`` processes, or fakeredis.

Skip policy: a test that needs a real server (through one of the fixtures below, or marked
``@pytest.mark.redis``) is skipped with a reason when ``redis-server`` (or, for TLS, ``openssl``
or a TLS-enabled build) is missing, unless ``ACTORS_REQUIRE_REDIS=1`` is set: then it fails. CI
sets it, so nothing Redis-related is silently skipped there. ``fakeredis_server`` never skips.

Every process a fixture starts is stopped at its teardown, whether the test passed or not. The
fixtures are synchronous; trio tests use them as they are (see ``_servers`` for ``*_async``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from _proxy import BlackHoleProxy
from _servers import (
    AclRedisServer,
    FakeRedisTcpServer,
    RedisServer,
    RedisServerFactory,
    TlsFiles,
    TlsRedisServer,
    UnixRedisServer,
    redis_required,
    redis_server_path,
    require_redis_server,
)

REAL_SERVER_FIXTURES = frozenset(
    {
        "redis_server",
        "redis_server_factory",
        "unix_redis_server",
        "tls_files",
        "tls_redis_server",
        "tls_client_auth_redis_server",
        "acl_redis_server",
        "black_hole_proxy",
    }
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "redis: needs a real redis-server; skipped when it is not installed, "
        "a failure when ACTORS_REQUIRE_REDIS=1",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that use a real-server fixture, so that ``-m "not redis"`` leaves them out."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if REAL_SERVER_FIXTURES.intersection(fixtures):
            item.add_marker(pytest.mark.redis)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("redis") is not None:
        require_redis_server()


@pytest.fixture
def redis_server_factory(tmp_path: Path) -> Iterator[RedisServerFactory]:
    """Start any number of servers: ``factory(extra_args, port=)``, ``.unix()``, ``.tls()``, ...."""
    factory = RedisServerFactory(tmp_path / "redis-servers")
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture
def redis_server(redis_server_factory: RedisServerFactory) -> RedisServer:
    """A private redis-server on a free port of 127.0.0.1: ``.url``, ``.kill()``, ``.restart()``."""
    return redis_server_factory()


@pytest.fixture
def unix_redis_server(redis_server_factory: RedisServerFactory) -> UnixRedisServer:
    """A private redis-server listening only on a unix socket (``.socket_path``, ``unix://``)."""
    return redis_server_factory.unix()


@pytest.fixture
def tls_files(redis_server_factory: RedisServerFactory) -> TlsFiles:
    """A CA, a server and a client certificate generated with openssl in the test's directory."""
    return redis_server_factory.tls_files


@pytest.fixture
def tls_redis_server(redis_server_factory: RedisServerFactory) -> TlsRedisServer:
    """A TLS-only server (``rediss://``); client certificates are optional but checked."""
    return redis_server_factory.tls()


@pytest.fixture
def tls_client_auth_redis_server(redis_server_factory: RedisServerFactory) -> TlsRedisServer:
    """A TLS-only server that refuses clients without a certificate signed by the test CA."""
    return redis_server_factory.tls(require_client_cert=True)


@pytest.fixture
def acl_redis_server(redis_server_factory: RedisServerFactory) -> AclRedisServer:
    """A server with a ``default`` password and a ``limited`` user confined to ``allowed:*``."""
    return redis_server_factory.acl()


@pytest.fixture
async def black_hole_proxy(redis_server: RedisServer, nursery: trio.Nursery) -> BlackHoleProxy:
    """A ``BlackHoleProxy`` to ``redis_server``, serving in the test's nursery (``.url``)."""
    proxy = BlackHoleProxy(redis_server.port)
    await nursery.start(proxy.serve)
    return proxy


@pytest.fixture
def fakeredis_server() -> Iterator[FakeRedisTcpServer]:
    """fakeredis's TCP server in a thread on a free port: use RESP2 mode with it."""
    with FakeRedisTcpServer() as server:
        yield server


@pytest.fixture
def any_redis_server(tmp_path: Path) -> Iterator[RedisServer | FakeRedisTcpServer]:
    """A real private server when redis-server is installed, else fakeredis's TCP server.

    For functional tests that must run everywhere; with ``ACTORS_REQUIRE_REDIS=1`` and no
    redis-server, the test fails instead of falling back.
    """
    if redis_server_path() is None and not redis_required():
        with FakeRedisTcpServer() as fake:
            yield fake
        return
    factory = RedisServerFactory(tmp_path / "redis-servers")
    try:
        yield factory()
    finally:
        factory.stop_all()
