"""A hub whose attached connection has just closed, before the connection actor detaches it.

The reader closes the connection the moment it reads the end of the stream; the connection
actor notices in its own task and detaches it a moment later. In between, the hub must not say
it is open for commands nor hand the closed connection out: a caller waiting for a connection
(``ready_connection``, a publish's retry) waits for the next one instead of failing at once.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing
from in_memory_redis import SETTINGS, serving

from actors.redis import PubSubHub, RedisConnectionError, open_redis_connection


async def test_a_closed_connection_is_not_handed_out_before_it_is_detached(
    autojump_clock: trio.testing.MockClock,
) -> None:
    hub = PubSubHub()
    waited: list[float] = []

    def open_now() -> bool:  # a call: mypy would narrow the property after the first assert
        return hub.open_for_commands

    async def wait_for_a_connection() -> None:
        await hub.wait_connected()
        waited.append(trio.current_time())

    async with (
        serving() as server,
        open_redis_connection(
            SETTINGS, push_batch_handler=hub.push_many, connector=server.connect
        ) as first,
    ):
        await hub.attach(first)
        assert open_now()
        assert hub.connection() is first
        await first.aclose()  # closed, and nobody has detached it yet
        assert not open_now()
        assert hub.statistics().connected  # what operators see changes with the detach
        with pytest.raises(RedisConnectionError, match="reconnecting"):
            hub.connection()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait_for_a_connection)
            await trio.sleep(1)
            assert waited == []  # still waiting: the closed connection does not count
            hub.detach("the connection closed")
            async with open_redis_connection(
                SETTINGS, push_batch_handler=hub.push_many, connector=server.connect
            ) as second:
                await hub.attach(second)
                await trio.testing.wait_all_tasks_blocked()
                assert waited == [1.0]
                assert hub.connection() is second
                hub.detach("done", notify=False)
