"""Publish-to-subscriber latency at a paced rate, 1,000 subscriber actors, against redis.asyncio.

A separate process (``_raw_publisher.py paced``) publishes round-robin over 1,000 channels at a
fixed rate (5,000, 20,000 and 50,000 msg/s), stamping each 130-140 byte JSON payload with
``time.monotonic_ns()`` just before writing its batch. The subscriber decodes the payload and
records ``time.monotonic_ns() - t`` (``CLOCK_MONOTONIC`` is shared by every process of the
machine). The first 10% of each run is warm-up and not counted. The cyclic garbage collector
stays on with its default thresholds on both sides, and its pauses are part of the tail; each
side collects once after subscribing, as the publisher starts (``start_publisher``), so that
neither side's run pays for a full collection of what it set up.

Ours: ``open_redis_pubsub``, one class-based ``Actor`` per channel with a ``MailboxSink``.
Peer: ``redis.asyncio`` ``PubSub`` (defaults) on the same channels, ``listen()`` plus the same
decode, under ``asyncio.run`` in this process.

The JSON line's ``ours`` and ``peer`` are p99 latencies at 50,000 msg/s in milliseconds, so LOWER
is better, and ``ratio`` is ``peer / ours`` (inverted, so that above 1 still means we are better;
``ratio_definition`` says so). The goal, at 50,000 msg/s: our p99 no higher than the peer's and
our p50 within twice the peer's (medians over the repeats, each repeat running both sides
back to back). p50, p99 and max at every rate are extra keys.

Run: ``python benchmarks/bench_latency.py [--quick]``. The last line of output is the JSON result.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import time
from typing import Any

import redis
import redis.asyncio
import trio
from _common import environment, median, parse_args, progress, spread
from _redis_common import (
    DECODER,
    channel_names,
    finish_publisher,
    loads,
    redis_url,
    redis_version,
    start_publisher,
)

from actors import Actor, open_actor_system
from actors.pubsub import MailboxSink, open_redis_pubsub
from actors.redis import RedisMessage

CHANNELS = 1000
RATES = (5_000, 20_000, 50_000)
GOAL_RATE = 50_000
P50_GOAL_FACTOR = 2.0  # our p50 at most this times the peer's
COLLECTOR = "default thresholds on both sides; gc.collect() as the publisher starts"
WARMUP_FRACTION = 0.1


class Recorder:
    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.latencies: list[int] = []
        self.done = trio.Event()


class Subscriber(Actor):
    """Decodes each payload and records its latency in nanoseconds."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    async def receive(self, message: Any) -> None:
        if type(message) is RedisMessage:
            now = time.monotonic_ns()
            latencies = self.recorder.latencies
            latencies.append(now - loads(message.payload)["t"])
            if len(latencies) == self.recorder.expected:
                self.recorder.done.set()


def percentiles(latencies: list[int], sent: int) -> dict[str, float]:
    kept = sorted(latencies[int(len(latencies) * WARMUP_FRACTION) :])
    if not kept:
        return {"p50": float("nan"), "p99": float("nan"), "max": float("nan"), "received": 0}
    return {
        "p50": kept[len(kept) // 2] / 1e6,
        "p99": kept[min(len(kept) - 1, int(len(kept) * 0.99))] / 1e6,
        "max": kept[-1] / 1e6,
        "received": len(latencies),
        "sent": sent,
    }


def ours(url: str, rate: int, seconds: float) -> dict[str, float]:
    async def main() -> dict[str, float]:
        expected = int(rate * seconds)
        recorder = Recorder(expected)
        async with open_actor_system() as system, open_redis_pubsub(system, url) as pubsub:
            for name in channel_names(CHANNELS):
                ref = await system.spawn(Subscriber, recorder)
                await pubsub.subscribe(name, MailboxSink(ref))
            publisher = start_publisher(url, "paced", CHANNELS, rate, seconds)
            with trio.move_on_after(seconds + 10):
                await recorder.done.wait()
            sent = await trio.to_thread.run_sync(finish_publisher, publisher)
        return percentiles(recorder.latencies, int(sent["sent"]))

    return trio.run(main)


def peer(url: str, rate: int, seconds: float) -> dict[str, float]:
    async def main() -> dict[str, float]:
        expected = int(rate * seconds)
        client = redis.asyncio.Redis.from_url(url)
        pubsub = client.pubsub()
        await pubsub.subscribe(*channel_names(CHANNELS))
        latencies: list[int] = []
        acks = 0
        publisher = None

        async def consume() -> None:
            nonlocal acks, publisher
            async for message in pubsub.listen():
                kind = message["type"]
                if kind == "message":
                    now = time.monotonic_ns()
                    latencies.append(now - loads(message["data"])["t"])
                    if len(latencies) == expected:
                        return
                elif kind == "subscribe":
                    acks += 1
                    if acks == CHANNELS:
                        publisher = start_publisher(url, "paced", CHANNELS, rate, seconds)

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(consume(), seconds + 12)
        assert publisher is not None
        sent = await asyncio.to_thread(finish_publisher, publisher)
        await pubsub.aclose()
        await client.aclose()
        return percentiles(latencies, int(sent["sent"]))

    return asyncio.run(main())


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0],
        full={"seconds": 5, "repeats": 3},
        quick={"seconds": 2, "repeats": 2},
    )
    progress(
        f"bench_latency: {CHANNELS:,} channels, rates {RATES}, {args.seconds} s per run, "
        f"{args.repeats} repeats, decoder {DECODER}"
    )
    runs: dict[tuple[str, int], list[dict[str, float]]] = {}
    sides = {"ours": ours, "peer": peer}
    with redis_url() as url:
        for repeat in range(args.repeats):
            order = list(sides) if repeat % 2 == 0 else list(sides)[::-1]
            for rate in RATES:
                for side in order:
                    gc.collect()
                    result = sides[side](url, rate, args.seconds)
                    runs.setdefault((side, rate), []).append(result)
                    progress(
                        f"[{repeat + 1}/{args.repeats}] {side} @ {rate:>6,}/s: "
                        f"p50 {result['p50']:.3f} ms, p99 {result['p99']:.3f} ms, "
                        f"max {result['max']:.3f} ms, received {result['received']:,}"
                    )

    def figure(side: str, rate: int, key: str) -> float:
        return round(median([run[key] for run in runs[(side, rate)]]), 3)

    record: dict[str, Any] = {
        "bench": "redis_latency",
        "ours": figure("ours", GOAL_RATE, "p99"),
        "peer": figure("peer", GOAL_RATE, "p99"),
        "ratio": round(figure("peer", GOAL_RATE, "p99") / figure("ours", GOAL_RATE, "p99"), 4),
        "unit": "ms (p99 at 50,000 msg/s; lower is better)",
        "ratio_definition": "peer / ours (inverted: lower latency is better; > 1: ours lower)",
    }
    for rate in RATES:
        label = f"{rate // 1000}k"
        for side in sides:
            for key in ("p50", "p99", "max"):
                record[f"{side}_{key}_{label}_ms"] = figure(side, rate, key)
            record[f"{side}_p99_{label}_samples_ms"] = [
                round(run["p99"], 3) for run in runs[(side, rate)]
            ]
            record[f"{side}_p99_{label}_spread"] = round(
                spread([run["p99"] for run in runs[(side, rate)]]), 3
            )
    goals = {
        "p99_50k_le_peer": record["ours_p99_50k_ms"] <= record["peer_p99_50k_ms"],
        "p50_50k_le_2x_peer": (
            record["ours_p50_50k_ms"] <= P50_GOAL_FACTOR * record["peer_p50_50k_ms"]
        ),
    }
    record.update(
        goals=goals,
        goal_met=all(goals.values()),
        channels=CHANNELS,
        seconds=args.seconds,
        repeats=args.repeats,
        warmup_fraction=WARMUP_FRACTION,
        collector=COLLECTOR,
        decoder=DECODER,
        redis_py=redis.__version__,
        redis_server=redis_version(),
        quick=args.quick,
    )
    record.update(environment())
    for rate in RATES:
        label = f"{rate // 1000}k"
        progress(
            f"@{rate:>6,}/s p50/p99/max ms: ours "
            f"{record[f'ours_p50_{label}_ms']}/{record[f'ours_p99_{label}_ms']}/"
            f"{record[f'ours_max_{label}_ms']}, peer {record[f'peer_p50_{label}_ms']}/"
            f"{record[f'peer_p99_{label}_ms']}/{record[f'peer_max_{label}_ms']}"
        )
    progress(f"goals {goals}")
    print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
