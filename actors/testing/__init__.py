"""Public test helpers, in the manner of ``trio.testing``; see ``docs/testing.md``.

``RedisServer`` and its variants run private ``redis-server`` processes that a test may kill and
restart on the same port; ``RedisServerFactory`` starts any number of them. ``RedisCluster`` runs
a private Redis Cluster (3 masters and 3 replicas by default) for failover and resharding tests.
``MemoryRedisServer`` is a Redis server in memory with scripted faults: give its ``connect`` to
the Redis client as its connector, and the Redis layer's timing runs in trio's virtual time.
``wait_until`` and ``Inbox`` wait for a condition with a deadline.

    async with open_memory_redis_server() as server:
        async with open_redis_connection(RedisSettings(), connector=server.connect) as redis:
            assert await redis.publish("news", b"hello") == 0

The fixtures are in ``actors.testing.pytest_plugin``, a pytest plugin that ``pip install
actors[testing]`` registers; this package itself does not import pytest.
"""

from __future__ import annotations

from actors.testing._memory_connection import CommandHook, MemoryRedisConnection
from actors.testing._memory_redis import (
    AttemptOutcome,
    ConnectionAttempt,
    MemoryRedisServer,
    open_memory_redis_server,
)
from actors.testing._redis_cluster import CLUSTER_READY_TIMEOUT, CLUSTER_SLOTS, RedisCluster
from actors.testing._redis_cluster_node import NODE_TIMEOUT, ClusterNodeEntry, RedisClusterNode
from actors.testing._redis_factory import RedisServerFactory
from actors.testing._redis_server import (
    AclRedisServer,
    RedisServer,
    RedisServerError,
    TlsRedisServer,
    UnixRedisServer,
    free_port,
    missing_tooling,
)
from actors.testing._tls import TlsFiles, generate_tls_files
from actors.testing._waiting import POLL_INTERVAL, WAIT_TIMEOUT, Inbox, wait_until

__all__ = [
    "CLUSTER_READY_TIMEOUT",
    "CLUSTER_SLOTS",
    "NODE_TIMEOUT",
    "POLL_INTERVAL",
    "WAIT_TIMEOUT",
    "AclRedisServer",
    "AttemptOutcome",
    "ClusterNodeEntry",
    "CommandHook",
    "ConnectionAttempt",
    "Inbox",
    "MemoryRedisConnection",
    "MemoryRedisServer",
    "RedisCluster",
    "RedisClusterNode",
    "RedisServer",
    "RedisServerError",
    "RedisServerFactory",
    "TlsFiles",
    "TlsRedisServer",
    "UnixRedisServer",
    "free_port",
    "generate_tls_files",
    "missing_tooling",
    "open_memory_redis_server",
    "wait_until",
]
