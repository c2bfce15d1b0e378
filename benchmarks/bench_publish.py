"""Publish throughput: 100 concurrent publisher tasks on one connection, against redis.asyncio.

Ours: ``open_redis_connection`` (one RESP3 connection with automatic pipelining); 100 trio tasks
each ``await connection.publish(channel, payload)`` in a loop. ``RedisPubSub.publish`` (through
the supervised connection actor's hub) is an extra key.

Peer: one ``redis.asyncio.Redis`` client with default settings (its connection pool opens a
connection per concurrently busy task) shared by 100 asyncio tasks, each ``await
client.publish(channel, payload)`` in a loop, under ``asyncio.run`` in this process.

The channel has no subscribers; payloads are 130-140 byte JSON. The figure is publishes per
second, from the start of the tasks until the last one has its reply.

Run: ``python benchmarks/bench_publish.py [--quick]``. The last line of output is the JSON result.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis
import redis.asyncio
import trio
from _common import emit_against_goal, interleave, parse_args, progress, summary
from _redis_common import payload, redis_url, redis_version

from actors import open_actor_system
from actors.pubsub import open_redis_pubsub
from actors.redis import open_redis_connection

TASKS = 100
CHANNEL = b"bench.publish"
GOAL = 5.0  # ours / peer
PAYLOAD = payload(1)


async def _trio_publishers(publish: Any, count: int) -> float:
    per_task = count // TASKS

    async def worker() -> None:
        for _ in range(per_task):
            await publish(CHANNEL, PAYLOAD)

    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(TASKS):
            nursery.start_soon(worker)
    return per_task * TASKS / (time.perf_counter() - started)


def ours_connection(url: str) -> Any:
    def run(count: int) -> float:
        async def main() -> float:
            async with open_redis_connection(url) as connection:
                return await _trio_publishers(connection.publish, count)

        return trio.run(main)

    return run


def ours_pubsub(url: str) -> Any:
    def run(count: int) -> float:
        async def main() -> float:
            async with open_actor_system() as system, open_redis_pubsub(system, url) as pubsub:
                await pubsub.wait_connected()
                return await _trio_publishers(pubsub.publish, count)

        return trio.run(main)

    return run


def peer(url: str, connections: list[int]) -> Any:
    def run(count: int) -> float:
        async def main() -> float:
            client = redis.asyncio.Redis.from_url(url)
            per_task = count // TASKS

            async def worker() -> None:
                for _ in range(per_task):
                    await client.publish(CHANNEL, PAYLOAD)

            await client.ping()
            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(TASKS)))
            elapsed = time.perf_counter() - started
            pool = client.connection_pool
            connections.append(len(pool._available_connections) + len(pool._in_use_connections))
            await client.aclose()
            return per_task * TASKS / elapsed

        return asyncio.run(main())

    return run


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0],
        full={"publishes": 300_000, "repeats": 5},
        quick={"publishes": 60_000, "repeats": 3},
    )
    progress(
        f"bench_publish: {args.publishes:,} publishes per run, {TASKS} tasks, "
        f"{args.repeats} repeats"
    )
    connections: list[int] = []
    with redis_url() as url:
        samples = interleave(
            {
                "ours (connection.publish)": ours_connection(url),
                "ours (RedisPubSub.publish)": ours_pubsub(url),
                "peer (redis.asyncio)": peer(url, connections),
            },
            size=args.publishes,
            repeats=args.repeats,
            unit="publishes/s",
            warmup=min(args.publishes, 20_000),
        )
    hub = summary(samples["ours (RedisPubSub.publish)"])
    emit_against_goal(
        "redis_publish",
        summary(samples["ours (connection.publish)"]),
        summary(samples["peer (redis.asyncio)"]),
        unit="publishes/s",
        goal=GOAL,
        note=f" (pubsub.publish {hub['median']:,.0f})",
        ours_pubsub_publish=hub["median"],
        ours_pubsub_samples=hub["samples"],
        peer_pool_connections=max(connections) if connections else None,
        publishes=args.publishes,
        tasks=TASKS,
        repeats=args.repeats,
        redis_py=redis.__version__,
        redis_server=redis_version(),
        quick=args.quick,
    )


if __name__ == "__main__":
    main()
