"""Public test helpers, in the manner of ``trio.testing``.

``MemoryRedisServer`` is a Redis server in memory with scripted faults: give its ``connect`` to
the Redis client as its connector, and the Redis layer's timing runs in trio's virtual time.

    async with open_memory_redis_server() as server:
        async with open_redis_connection(RedisSettings(), connector=server.connect) as redis:
            assert await redis.publish("news", b"hello") == 0
"""

from __future__ import annotations

from actors.testing._memory_connection import CommandHook, MemoryRedisConnection
from actors.testing._memory_redis import (
    AttemptOutcome,
    ConnectionAttempt,
    MemoryRedisServer,
    open_memory_redis_server,
)

__all__ = [
    "AttemptOutcome",
    "CommandHook",
    "ConnectionAttempt",
    "MemoryRedisConnection",
    "MemoryRedisServer",
    "open_memory_redis_server",
]
