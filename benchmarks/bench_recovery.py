"""Recovery after a Redis crash: 1,000 subscriptions, SIGKILL redis-server, restart it on its port.

The figure is the seconds from the restarted server process being spawned to every one of the
1,000 subscribers having received a message published after the restart (so every subscription
is restored on the server). Lower is better. It includes the server's own start-up (a few ms),
so it bounds the "from accepting again" figure from above: the time of the first PING answered
is also recorded (``*_from_first_pong``), but this process's GIL can delay that timestamp while
the subscriber is busy, so it can even come out negative. A thread in this process publishes one
message to every channel every 5 ms throughout (reconnecting on its own): resolution about 5 ms.
The server is restarted as soon as the old process is reaped (a sub-second outage).

Ours: ``open_redis_pubsub`` with ``ConnectionOptions(reconnect=Backoff(initial=0.05, ...))`` and a
generous restart intensity, one class-based ``Actor`` per channel with a ``MailboxSink``. The
supervised connection actor reconnects with backoff and replays the subscription table.

Peer: ``redis.asyncio`` ``PubSub`` on the same 1,000 channels, a client created with
``retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 1000)``; its ``get_message`` loop
reconnects and re-subscribes by itself (``PubSub.on_connect``); the loop also catches
``ConnectionError`` and calls ``get_message`` again after 50 ms, should the retries run out.

This benchmark always starts its own server (it kills it), whatever ``REDIS_URL`` says.

Run: ``python benchmarks/bench_recovery.py [--quick]``. The last line of output is the JSON result.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import redis
import redis.asyncio
import trio
from _common import environment, median, parse_args, progress, spread
from _redis_common import RedisServer, RoundPublisher, channel_names, loads, redis_version
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from actors import Actor, open_actor_system
from actors.pubsub import ConnectionOptions, MailboxSink, open_redis_pubsub
from actors.redis import RedisMessage
from actors.supervision import Backoff

CHANNELS = 1000
GOAL_SECONDS = 1.0
OPTIONS = ConnectionOptions(
    reconnect=Backoff(initial=0.05, multiplier=2.0, maximum=0.5, jitter=0.2),
    max_restarts=1000,
    within=10.0,
)
TIMEOUT = 30.0
NEVER = 2**63


class Watch:
    """Which channels got a message stamped after ``since`` (monotonic ns); when the last did."""

    def __init__(self) -> None:
        self.since = 0
        self.seen: set[int] = set()
        self.last = 0.0
        self.all_seen = trio.Event()

    def arrived(self, index: int, stamp: int) -> bool:
        """Record a message; True once every channel has had one since ``since``."""
        if stamp >= self.since and index not in self.seen:
            self.seen.add(index)
            if len(self.seen) == CHANNELS:
                self.last = time.monotonic()
                return True
        return False


class Subscriber(Actor):
    def __init__(self, watch: Watch, index: int) -> None:
        self.watch = watch
        self.index = index

    async def receive(self, message: Any) -> None:
        if type(message) is RedisMessage:
            data = loads(message.payload)
            if self.watch.arrived(self.index, data["t"]):
                self.watch.all_seen.set()


def _restart(server: RedisServer, watch: Watch) -> None:
    """SIGKILL the server, then start it again on its port; arm ``watch`` for new messages."""
    server.kill()
    watch.since = time.monotonic_ns()
    server.start()


def ours(server: RedisServer, pongs: list[float]) -> float:
    async def main() -> float:
        watch = Watch()
        names = channel_names(CHANNELS)
        async with (
            open_actor_system() as system,
            open_redis_pubsub(system, server.url, options=OPTIONS) as pubsub,
        ):
            for index, name in enumerate(names):
                ref = await system.spawn(Subscriber, watch, index)
                await pubsub.subscribe(name, MailboxSink(ref))
            with RoundPublisher(server.url, names):
                with trio.fail_after(TIMEOUT):
                    await watch.all_seen.wait()  # every subscription works before the crash
                watch.since = NEVER  # ignore everything until the kill re-arms it
                watch.seen.clear()
                watch.all_seen = trio.Event()
                await trio.to_thread.run_sync(_restart, server, watch)
                with trio.fail_after(TIMEOUT):
                    await watch.all_seen.wait()
            reconnects = pubsub.statistics().hub.reconnects
            progress(f"  ours: {reconnects} reconnect(s)")
        pongs.append(watch.last - server.accepting_at)
        return watch.last - server.started_at

    return trio.run(main)


def peer(server: RedisServer, pongs: list[float]) -> float:
    async def main() -> float:
        watch = Watch()
        watch.all_seen = None  # type: ignore[assignment]  # not a trio program
        done = asyncio.Event()
        names = channel_names(CHANNELS)
        index_of = {name.encode(): index for index, name in enumerate(names)}
        client = redis.asyncio.Redis.from_url(
            server.url, retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 1000)
        )
        pubsub = client.pubsub()
        await pubsub.subscribe(*names)
        errors = 0

        async def consume() -> None:
            nonlocal errors
            while True:
                try:
                    message = await pubsub.get_message(timeout=1.0)
                except (redis.ConnectionError, OSError):
                    errors += 1
                    await asyncio.sleep(0.05)
                    continue
                if message is not None and message["type"] == "message":
                    data = loads(message["data"])
                    if watch.arrived(index_of[message["channel"]], data["t"]):
                        done.set()

        consumer = asyncio.create_task(consume())
        with RoundPublisher(server.url, names):
            await asyncio.wait_for(done.wait(), TIMEOUT)
            watch.since = NEVER  # ignore everything until the kill re-arms it
            watch.seen.clear()
            done.clear()
            await asyncio.to_thread(_restart, server, watch)
            await asyncio.wait_for(done.wait(), TIMEOUT)
        consumer.cancel()
        progress(f"  peer: {errors} ConnectionError(s) surfaced to the loop")
        await pubsub.aclose()
        await client.aclose()
        pongs.append(watch.last - server.accepting_at)
        return watch.last - server.started_at

    return asyncio.run(main())


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], full={"repeats": 7}, quick={"repeats": 3})
    progress(f"bench_recovery: {CHANNELS:,} subscriptions, {args.repeats} kill/restart cycles each")
    samples: dict[str, list[float]] = {"ours": [], "peer": []}
    failures: dict[str, list[str]] = {"ours": [], "peer": []}
    pongs: dict[str, list[float]] = {"ours": [], "peer": []}
    sides = {"ours": ours, "peer": peer}
    server = RedisServer().start()
    try:
        for repeat in range(args.repeats):
            order = list(sides) if repeat % 2 == 0 else list(sides)[::-1]
            for side in order:
                try:
                    value = sides[side](server, pongs[side])
                except Exception as error:  # a timeout: recorded, not fatal
                    failures[side].append(repr(error))
                    progress(f"[{repeat + 1}/{args.repeats}] {side}: FAILED {error!r}")
                    if server.process is None or server.process.poll() is not None:
                        server.start()
                    continue
                samples[side].append(value)
                progress(f"[{repeat + 1}/{args.repeats}] {side}: {value:.3f} s")
    finally:
        server.stop()
    mine = median(samples["ours"]) if samples["ours"] else None
    theirs = median(samples["peer"]) if samples["peer"] else None
    record: dict[str, Any] = {
        "bench": "redis_recovery",
        "ours": round(mine, 4) if mine is not None else None,
        "peer": round(theirs, 4) if theirs is not None else None,
        "ratio": round(theirs / mine, 4) if mine and theirs else None,
        "unit": "s (restarted server spawned -> every subscriber got a message; lower is better)",
        "ratio_definition": "peer / ours (inverted: a duration, lower is better)",
        "goal_seconds": GOAL_SECONDS,
        "goal_met": mine is not None and mine <= GOAL_SECONDS and not failures["ours"],
        "ours_samples": [round(value, 4) for value in samples["ours"]],
        "peer_samples": [round(value, 4) for value in samples["peer"]],
        "ours_spread": round(spread(samples["ours"]), 3) if samples["ours"] else None,
        "peer_spread": round(spread(samples["peer"]), 3) if samples["peer"] else None,
        "ours_from_first_pong": round(median(pongs["ours"]), 4) if pongs["ours"] else None,
        "peer_from_first_pong": round(median(pongs["peer"]), 4) if pongs["peer"] else None,
        "ours_failures": failures["ours"],
        "peer_failures": failures["peer"],
        "channels": CHANNELS,
        "repeats": args.repeats,
        "reconnect_backoff": {"initial": 0.05, "multiplier": 2.0, "maximum": 0.5, "jitter": 0.2},
        "peer_retry": "Retry(ExponentialBackoff(cap=0.5, base=0.05), 1000)",
        "redis_py": redis.__version__,
        "redis_server": redis_version(),
        "quick": args.quick,
    }
    record.update(environment())
    progress(f"medians: ours {mine} s, peer {theirs} s (goal <= {GOAL_SECONDS} s)")
    print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
