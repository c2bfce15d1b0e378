"""Fixtures of the Redis tests beyond the kit's: a black-hole proxy, and fakeredis over TCP.

The private redis-servers (``redis_server``, ``redis_server_factory`` and the unix, TLS and ACL
variants), the ``redis`` marker and the skip-or-fail policy come from the pytest plugin of
``actors.testing``. ``fakeredis_server`` never skips.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trio
from _proxy import BlackHoleProxy
from _servers import FakeRedisTcpServer

from actors.testing import RedisServer, missing_tooling
from actors.testing.pytest_plugin import redis_required


@pytest.fixture
async def black_hole_proxy(redis_server: RedisServer, nursery: trio.Nursery) -> BlackHoleProxy:
    """A ``BlackHoleProxy`` to ``redis_server``, serving in the test's nursery (``.url``)."""
    proxy = BlackHoleProxy(redis_server.port)
    await nursery.start(proxy.serve)
    return proxy


@pytest.fixture
def fakeredis_server() -> Iterator[FakeRedisTcpServer]:
    """fakeredis's TCP server in a thread on a free port: use RESP2 mode with it."""
    server = FakeRedisTcpServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def any_redis_server(request: pytest.FixtureRequest) -> RedisServer | FakeRedisTcpServer:
    """A real private server when redis-server is installed, else fakeredis's TCP server.

    For functional tests that must run everywhere; with ``ACTORS_REQUIRE_REDIS=1`` and no
    redis-server, the test fails instead of falling back.
    """
    fall_back = missing_tooling() is not None and not redis_required()
    server: RedisServer | FakeRedisTcpServer
    server = request.getfixturevalue("fakeredis_server" if fall_back else "redis_server")
    return server
