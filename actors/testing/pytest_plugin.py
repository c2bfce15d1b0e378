"""The pytest plugin of ``actors.testing``: fixtures for private Redis servers and actor systems.

Installed with ``pip install actors[testing]``, it is registered through the ``pytest11`` entry
point (``_actors_pytest_plugin``, which registers this module once pytest is configured), so its
fixtures are there in every test without a ``conftest.py`` line. The async fixtures need
pytest-trio (``trio_mode = true``, or ``@pytest.mark.trio`` on each test).

Skip policy: a test that uses a real-server fixture (or is marked ``@pytest.mark.redis``) is marked
``redis`` and skipped with the reason when ``redis-server`` (or, for TLS, ``openssl`` or a
TLS-enabled build, or for a cluster, ``redis-cli``) is missing, unless ``ACTORS_REQUIRE_REDIS=1``
is set: then it fails, so that a CI job that has to test against Redis cannot pass by skipping.
``-m "not redis"`` leaves those tests out. Every server a fixture starts is stopped at its
teardown, whether the test passed or not.

This is the one module of ``actors`` that imports pytest, and it is public (not ``_plugin``)
because users name it: in ``-p`` and in ``pytest_plugins``.
"""

from __future__ import annotations

import os
import random
from typing import TYPE_CHECKING, Final, NoReturn

import pytest

from actors.runtime import open_actor_system
from actors.testing._memory_redis import open_memory_redis_server
from actors.testing._redis_cluster import RedisCluster
from actors.testing._redis_factory import RedisServerFactory
from actors.testing._redis_server import RedisServer, missing_tooling

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from actors.runtime import ActorSystem
    from actors.testing._memory_redis import MemoryRedisServer
    from actors.testing._redis_server import AclRedisServer, TlsRedisServer, UnixRedisServer
    from actors.testing._tls import TlsFiles

__all__ = [
    "ACTOR_SYSTEM_SEED",
    "REAL_SERVER_FIXTURES",
    "REQUIRE_REDIS_ENV",
    "redis_required",
    "require_redis_server",
    "skip_or_fail",
]

REQUIRE_REDIS_ENV: Final = "ACTORS_REQUIRE_REDIS"
"""The environment variable that, set to ``1``, turns a missing redis-server into a failure."""

ACTOR_SYSTEM_SEED: Final = 1234
"""The seed of the ``actor_system`` fixture's random source (backoff jitter repeats exactly)."""

REAL_SERVER_FIXTURES: Final = frozenset(
    {
        "redis_server_factory",
        "redis_server",
        "module_redis_server",
        "unix_redis_server",
        "tls_files",
        "tls_redis_server",
        "tls_client_auth_redis_server",
        "acl_redis_server",
        "session_redis_cluster",
        "redis_cluster",
    }
)
"""A test that uses one of these (directly or through another fixture) is marked ``redis``."""


# --- the skip-or-fail policy ------------------------------------------------------------------


def redis_required() -> bool:
    """Whether ``ACTORS_REQUIRE_REDIS=1``: missing server tooling is a failure, not a skip."""
    return os.environ.get(REQUIRE_REDIS_ENV, "") == "1"


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the current test with ``reason``, or fail it when ``ACTORS_REQUIRE_REDIS=1``."""
    if redis_required():
        pytest.fail(
            f"{reason} ({REQUIRE_REDIS_ENV}=1 turns this skip into a failure)", pytrace=False
        )
    pytest.skip(f"{reason} (set {REQUIRE_REDIS_ENV}=1 to make this a failure)")


def require_redis_server(*, tls: bool = False, cluster: bool = False) -> None:
    """Skip (or fail) the current test unless a private redis-server can run here.

    Args:
        tls: Also require ``openssl`` and a TLS-enabled ``redis-server``.
        cluster: Also require ``redis-cli``, which a ``RedisCluster`` needs.
    """
    reason = missing_tooling(tls=tls, cluster=cluster)
    if reason is not None:
        skip_or_fail(reason)


# --- hooks ------------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``redis`` marker."""
    config.addinivalue_line(
        "markers",
        "redis: needs a real redis-server; skipped when it is not installed, "
        f"a failure when {REQUIRE_REDIS_ENV}=1",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that use a real-server fixture, so that ``-m "not redis"`` leaves them out."""
    for item in items:
        if REAL_SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.redis)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip (or fail) a test marked ``redis`` where no redis-server can run."""
    if item.get_closest_marker("redis") is not None:
        require_redis_server()


# --- private redis-server processes -----------------------------------------------------------


@pytest.fixture
def redis_server_factory(tmp_path: Path) -> Iterator[RedisServerFactory]:
    """Start any number of servers: ``factory(extra_args, port=)``, ``.unix()``, ``.tls()``, ....

    Each works in the test's ``tmp_path``; all are stopped at the test's teardown.
    """
    factory = RedisServerFactory(tmp_path / "redis-servers", on_missing=skip_or_fail)
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture
def redis_server(redis_server_factory: RedisServerFactory) -> RedisServer:
    """A private redis-server on a free port of 127.0.0.1, for this test alone.

    ``.url`` for clients; ``.kill()`` to crash it and ``await .restart_async()`` to bring it back,
    empty, on the same port.
    """
    return redis_server_factory()


@pytest.fixture(scope="module")
def module_redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private redis-server shared by the tests of one module: quicker, but never kill it."""
    require_redis_server()
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="module")
def module_redis_url(module_redis_server: RedisServer) -> str:
    """The URL of ``module_redis_server``."""
    return module_redis_server.url


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


# --- a private Redis Cluster ------------------------------------------------------------------


@pytest.fixture(scope="session")
def session_redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """One private Redis Cluster (3 masters, 3 replicas) for the whole session, as it is.

    Formed once (about 2.5 s) and stopped at the session's end; tests get it through
    ``redis_cluster``, which makes it fit for each test first.
    """
    require_redis_server(cluster=True)
    with RedisCluster(tmp_path_factory.mktemp("redis-cluster")) as cluster:
        yield cluster


@pytest.fixture
def redis_cluster(session_redis_cluster: RedisCluster) -> RedisCluster:
    """The session's Redis Cluster, reset for this test: every node up, the cluster ok, no keys.

    A test may kill, restart, fail over and migrate slots: the next test gets the cluster healed
    (or formed anew). Roles and the slot map carry over, so read them from the cluster:
    ``masters()``, ``replicas()``, ``master_of_slot()``.
    """
    session_redis_cluster.reset()
    return session_redis_cluster


# --- in trio: an actor system, the in-memory Redis --------------------------------------------


@pytest.fixture
async def actor_system() -> AsyncIterator[ActorSystem]:
    """An actor system with a seeded random source, stopped in order after the test."""
    async with open_actor_system(random=random.Random(ACTOR_SYSTEM_SEED)) as system:
        yield system


@pytest.fixture
async def memory_redis() -> AsyncIterator[MemoryRedisServer]:
    """A serving ``MemoryRedisServer``: pass ``memory_redis.connect`` as the client's connector.

    No socket is involved, so it runs under ``autojump_clock`` (which the test asks for itself).
    """
    async with open_memory_redis_server() as server:
        yield server
