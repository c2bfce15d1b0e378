"""Publish throughput: typed messages from 100 actors through ``PubSub.publish``, against
redis.asyncio with the same encoding work.

Ours (the headline): ``open_pubsub`` with default settings (one supervised RESP3 connection);
100 publisher actors (``system.spawn(Publisher, ...)``, class-based), each told a burst of
pre-built ``BenchNotification`` messages and ``await pubsub.publish(channel, message)`` on its own
channel, one after another: the codec encodes each message (tagged, 189 to 199 bytes), and the
publish is bounded and retried as the library documents. The figure is messages per second from
telling the first burst until the last actor is done.

Peer: one ``redis.asyncio.Redis`` client with default settings (its pool opens a connection per
concurrently busy task) shared by 100 asyncio tasks under ``asyncio.run`` in this process, each
publishing the same number of messages on its own channel: the twin of each message
(``PeerNotification``, the same field values) encoded by a plain ``cattrs`` converter and
``orjson.dumps``, then ``await client.publish(channel, payload)``. The same work a hand-written
typed publisher does, without actors.

Extra keys measure shortcuts under the framework, with pre-encoded payloads from 100 trio tasks:
``raw_connection`` (``open_redis_connection``, one connection with automatic pipelining) and
``redis_pubsub`` (``RedisPubSub.publish`` through the connection actor's hub). Nobody subscribes;
both sides run in this process, alternating, under the same collector setting
(``--gc-threshold``, recorded as ``gc_threshold``).

Run: ``python benchmarks/bench_publish.py [--quick] [--gc-threshold N]``. The last line of output is
the JSON result.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis
import redis.asyncio
import trio
from _common import emit_against_goal, interleave, parse_args, progress, summary
from _redis_common import redis_url, redis_version
from _typed_common import (
    VERSIONS,
    Burst,
    new_messages,
    peer_encode,
    peer_twin,
    publish_bursts,
)

from actors import open_actor_system
from actors.messages import CODEC
from actors.pubsub import open_pubsub, open_redis_pubsub
from actors.redis import open_redis_connection

PUBLISHERS = 100
GOAL = 5.0  # ours / peer
TIMEOUT = 120.0
CHANNELS = [f"bench.publish.{index}" for index in range(PUBLISHERS)]


def ours(url: str) -> Any:
    def run(count: int) -> float:
        per_actor = count // PUBLISHERS
        bursts = [Burst(new_messages(per_actor)) for _ in range(PUBLISHERS)]

        async def main() -> float:
            async with open_actor_system() as system, open_pubsub(system, url) as pubsub:
                await pubsub.broker.wait_connected()
                with trio.fail_after(TIMEOUT):
                    elapsed = await publish_bursts(system, pubsub, CHANNELS, bursts)
            return per_actor * PUBLISHERS / elapsed

        return trio.run(main)

    return run


def peer(url: str, connections: list[int]) -> Any:
    def run(count: int) -> float:
        per_task = count // PUBLISHERS
        bursts = [[peer_twin(m) for m in new_messages(per_task)] for _ in range(PUBLISHERS)]

        async def main() -> float:
            client = redis.asyncio.Redis.from_url(url)

            async def worker(channel: str, messages: list[Any]) -> None:
                for message in messages:
                    await client.publish(channel, peer_encode(message))

            await client.ping()
            started = time.perf_counter()
            await asyncio.gather(*map(worker, CHANNELS, bursts))
            elapsed = time.perf_counter() - started
            pool = client.connection_pool
            connections.append(len(pool._available_connections) + len(pool._in_use_connections))
            await client.aclose()
            return per_task * PUBLISHERS / elapsed

        return asyncio.run(main())

    return run


async def _trio_publishers(publish: Any, count: int) -> float:
    """100 trio tasks publishing one pre-encoded payload each time, on their own channels."""
    per_task = count // PUBLISHERS
    payload = CODEC.encode(new_messages(1)[0])

    async def worker(channel: str) -> None:
        for _ in range(per_task):
            await publish(channel, payload)

    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for channel in CHANNELS:
            nursery.start_soon(worker, channel)
    return per_task * PUBLISHERS / (time.perf_counter() - started)


def raw_connection(url: str) -> Any:
    def run(count: int) -> float:
        async def main() -> float:
            async with open_redis_connection(url) as connection:
                return await _trio_publishers(connection.publish, count)

        return trio.run(main)

    return run


def redis_pubsub(url: str) -> Any:
    def run(count: int) -> float:
        async def main() -> float:
            async with open_actor_system() as system, open_redis_pubsub(system, url) as hub:
                await hub.wait_connected()
                return await _trio_publishers(hub.publish, count)

        return trio.run(main)

    return run


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0],
        full={"publishes": 300_000, "repeats": 5},
        quick={"publishes": 60_000, "repeats": 3},
    )
    progress(
        f"bench_publish: {args.publishes:,} typed publishes per run from {PUBLISHERS} actors, "
        f"{args.repeats} repeats"
    )
    connections: list[int] = []
    with redis_url() as url:
        samples = interleave(
            {
                "ours (PubSub.publish, actors)": ours(url),
                "peer (redis.asyncio + cattrs)": peer(url, connections),
                "raw connection.publish": raw_connection(url),
                "RedisPubSub.publish": redis_pubsub(url),
            },
            size=args.publishes,
            repeats=args.repeats,
            unit="publishes/s",
            warmup=min(args.publishes, 20_000),
        )
    raw = summary(samples["raw connection.publish"])
    hub = summary(samples["RedisPubSub.publish"])
    emit_against_goal(
        "redis_publish",
        summary(samples["ours (PubSub.publish, actors)"]),
        summary(samples["peer (redis.asyncio + cattrs)"]),
        unit="typed publishes/s",
        goal=GOAL,
        note=f" (raw connection {raw['median']:,.0f}, RedisPubSub {hub['median']:,.0f})",
        raw_connection=raw["median"],
        raw_connection_samples=raw["samples"],
        redis_pubsub=hub["median"],
        redis_pubsub_samples=hub["samples"],
        peer_pool_connections=max(connections) if connections else None,
        publishes=args.publishes,
        publishers=PUBLISHERS,
        repeats=args.repeats,
        decoders=VERSIONS,
        redis_py=redis.__version__,
        redis_server=redis_version(),
        quick=args.quick,
    )


if __name__ == "__main__":
    main()
