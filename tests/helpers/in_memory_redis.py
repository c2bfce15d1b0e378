"""Shared pieces of the tests that run the Redis layer against ``MemoryRedisServer`` in virtual
time: a serving server under a deadline, connection options that reach it, a subscriber sink
whose events the test reads, and the outcomes of the server's connection attempts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

import attrs
import trio

from actors import Backoff
from actors.pubsub import ChannelSink, ConnectionOptions
from actors.redis import RedisSettings, SubscriptionEvent
from actors.testing import AttemptOutcome, MemoryRedisServer, open_memory_redis_server

DEADLINE: Final = 600.0  # seconds of virtual time; a deadlock fails at once under autojump_clock
SETTINGS: Final = RedisSettings(connect_timeout=2.5)
BACKOFF: Final = Backoff(initial=0.125, multiplier=2.0, maximum=4.0, jitter=0.0, reset_after=30.0)
"""Delays that are sums of powers of two, so that sums of them are exact floats."""
OPTIONS: Final = ConnectionOptions(
    reconnect=BACKOFF,
    max_restarts=1000,
    within=1.0,
    # The tests that are not about liveness keep the probe out of the way.
    probe_interval=3600.0,
)


@asynccontextmanager
async def serving(**options: Any) -> AsyncIterator[MemoryRedisServer]:
    """A serving server, with a deadline on the block: under ``autojump_clock`` (which each test
    asks for itself: pytest-trio takes the clock from the test's own arguments) a test that
    would hang fails at once."""
    with trio.fail_after(DEADLINE):
        async with open_memory_redis_server(**options) as server:
            yield server


def connection_options(server: MemoryRedisServer, **changes: Any) -> ConnectionOptions:
    """``OPTIONS`` connecting to ``server``, with ``changes``."""
    return attrs.evolve(OPTIONS, connector=server.connect, **changes)


def events() -> tuple[ChannelSink, trio.MemoryReceiveChannel[SubscriptionEvent]]:
    """A sink for a subscription, and the channel its events arrive on."""
    send, receive = trio.open_memory_channel[SubscriptionEvent](1000)
    return ChannelSink(send), receive


def outcomes(server: MemoryRedisServer) -> list[AttemptOutcome]:
    """What became of each connection attempt, in order."""
    return [attempt.outcome for attempt in server.attempts]
