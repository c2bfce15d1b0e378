"""The Redis layer against the in-memory server of ``actors.testing``, in virtual time.

No Redis server is needed: the connection actor speaks RESP3 to ``MemoryRedisServer`` over
memory streams, and trio's ``MockClock`` jumps over every wait, so the reconnect backoff below
takes no real time and its instants are exact.
"""

from __future__ import annotations

import trio
import trio.testing

from actors import Backoff, open_actor_system
from actors.pubsub import ChannelSink, ConnectionOptions, open_redis_pubsub
from actors.redis import RedisSettings, SubscriptionEvent
from actors.testing import open_memory_redis_server


async def main() -> None:
    # docs: start memory-redis
    async with open_memory_redis_server() as server, open_actor_system() as system:
        options = ConnectionOptions(
            connector=server.connect,  # instead of a TCP connection
            reconnect=Backoff(initial=0.125, maximum=4.0, jitter=0.0),
        )
        send, events = trio.open_memory_channel[SubscriptionEvent](100)
        async with open_redis_pubsub(system, RedisSettings(), options=options) as pubsub:
            await pubsub.subscribe("news", ChannelSink(send))
            print("receivers:", await pubsub.publish("news", "hello"))
            print(await events.receive())

            server.refuse_connections()  # the server goes away for two seconds
            server.restart()
            gap = await events.receive()
            print(f"{type(gap).__name__} at {trio.current_time()} s")
            await trio.sleep(2)
            server.accept_connections()
            gap = await events.receive()
            print(f"{type(gap).__name__} at {trio.current_time()} s")
            print("connection attempts at", server.attempt_times())
    # docs: end memory-redis


if __name__ == "__main__":
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
