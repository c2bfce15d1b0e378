"""Fan-in throughput: one Redis connection feeding 1,000 subscriptions, against redis.asyncio.

A separate process (``_raw_publisher.py flood``) writes pipelined ``PUBLISH`` commands as fast as
it can, round-robin over 1,000 channels, with 130-140 byte JSON payloads. The subscriber's event
loop is held (a blocking wait, on purpose) until the publisher has sent everything, so Redis holds
the whole flood and what is measured is the subscriber side draining it alone. The figure is
messages delivered and decoded per second, from the first message decoded to the last one.

Ours (the headline): the path users take, ``open_pubsub(system, url)`` with default settings and
``pubsub.subscribe(channel, handler, message_type=dict)`` for each of the 1,000 channels: one
supervised subscription actor per channel, our codec decoding each payload into a dict (orjson,
with the codec's size and depth checks), and a handler that counts.

Extra key ``raw_sinks``: the layer under it, ``open_redis_pubsub`` (the connection actor's hub)
feeding one class-based ``Actor`` per channel through a ``MailboxSink``; ``receive`` decodes the
``RedisMessage`` payload with ``orjson.loads`` and counts.

Peer: ``redis.asyncio`` (hiredis parser, RESP3 default) ``PubSub`` with default settings,
subscribed to the same 1,000 channels, ``async for message in pubsub.listen()`` and the same
decode (``orjson.loads``), under ``asyncio.run`` in this process. All run alternately in one
process under the same collector setting (``--gc-threshold``, recorded as ``gc_threshold``).

The server runs with ``client-output-buffer-limit pubsub 0 0 0`` so that neither subscriber is
disconnected while Redis queues the flood (both sides drain a backlog; see ``docs/performance.md``).

Run: ``python benchmarks/bench_fanin.py [--quick] [--gc-threshold N]``. The last line of output is
the JSON result.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio
import trio
from _common import emit_against_goal, interleave, parse_args, progress, summary
from _redis_common import (
    DECODER,
    Tally,
    channel_names,
    finish_publisher,
    flood_backlog,
    loads,
    pubsub_fanin,
    redis_asyncio_fanin,
    redis_url,
    redis_version,
    wait_for_tally,
)

from actors import Actor, open_actor_system
from actors.pubsub import MailboxSink, open_redis_pubsub
from actors.redis import RedisMessage

CHANNELS = 1000
GOAL = 3.0  # ours / peer
SERVER_ARGS = ("--client-output-buffer-limit", "pubsub 0 0 0")


class Subscriber(Actor):
    """One channel's subscriber: decodes every payload and counts it."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally

    async def receive(self, message: Any) -> None:
        if type(message) is RedisMessage:
            loads(message.payload)
            self.tally.record()


def ours(url: str, extra: dict[str, list[float]]) -> Any:
    def run(count: int) -> float:
        return pubsub_fanin(url, CHANNELS, count, dict, extra)

    return run


def raw_sinks(url: str, extra: dict[str, list[float]]) -> Any:
    def run(count: int) -> float:
        async def main() -> float:
            tally = Tally(count)
            async with open_actor_system() as system, open_redis_pubsub(system, url) as pubsub:
                for name in channel_names(CHANNELS):
                    ref = await system.spawn(Subscriber, tally)
                    await pubsub.subscribe(name, MailboxSink(ref))
                publisher = flood_backlog(url, CHANNELS, count)
                await wait_for_tally(tally, publisher)
                await trio.to_thread.run_sync(finish_publisher, publisher)
                hub = pubsub.statistics().hub
                dropped = sum(sub.dropped for sub in hub.subscriptions)
                extra.setdefault("raw_sinks_dropped", []).append(dropped)
            return tally.rate()

        return trio.run(main)

    return run


def peer(url: str, extra: dict[str, list[float]]) -> Any:
    def run(count: int) -> float:
        rate, decoded = redis_asyncio_fanin(url, CHANNELS, count, loads)
        extra.setdefault("peer_decoded", []).append(decoded)
        return rate

    return run


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0],
        full={"messages": 1_000_000, "repeats": 5},
        quick={"messages": 200_000, "repeats": 3},
    )
    progress(
        f"bench_fanin: {args.messages:,} messages per run over {CHANNELS:,} channels, "
        f"{args.repeats} repeats, decoder {DECODER}"
    )
    extra: dict[str, list[float]] = {}
    with redis_url(SERVER_ARGS) as url:
        samples = interleave(
            {
                "ours (open_pubsub, 1000 subscriptions)": ours(url, extra),
                "peer (redis.asyncio)": peer(url, extra),
                "raw sinks (1000 actors)": raw_sinks(url, extra),
            },
            size=args.messages,
            repeats=args.repeats,
            unit="msg/s",
            warmup=min(args.messages, 50_000),
        )
    raw = summary(samples["raw sinks (1000 actors)"])
    emit_against_goal(
        "redis_fanin",
        summary(samples["ours (open_pubsub, 1000 subscriptions)"]),
        summary(samples["peer (redis.asyncio)"]),
        unit="msg/s",
        goal=GOAL,
        note=f" (raw sinks {raw['median']:,.0f})",
        raw_sinks=raw["median"],
        raw_sinks_samples=raw["samples"],
        ours_dropped=extra.get("ours_dropped", [])[-args.repeats :],
        raw_sinks_dropped=extra.get("raw_sinks_dropped", [])[-args.repeats :],
        messages=args.messages,
        channels=CHANNELS,
        repeats=args.repeats,
        decoder=DECODER,
        redis_py=redis.__version__,
        redis_server=redis_version(),
        quick=args.quick,
    )


if __name__ == "__main__":
    main()
