"""Channel history: recovering 10,000 missed messages, and what history costs a publish.

Two figures from one private redis-server (issue 12, requirement 6). The JSON line's ``ours``,
``peer`` and ``ratio`` are the recovery figure, the one with a peer outside the framework; the
publish figure, ours against ours, is in extra keys.

**Recovery (``ours``/``peer``, seconds, lower is better).** 10,000 ``BenchNotification`` messages
(189-191 bytes, encoded with our ``CODEC``) are published once, through ``pubsub.publish``, on
``bench:{recovery}``, a channel with ``History(size=20_000, ttl=600)``: a stream holding offsets 1
to 10,000 of one epoch. Then, in alternation:

- Ours: ``open_pubsub(system, url, settings=...)`` and ``pubsub.subscribe(channel, handler,
  message_type=BenchNotification, recover=True, since=Position(epoch, 0), on_recovery=...)``. The
  figure runs from the call of ``subscribe`` to ``on_recovery`` having been told ``Recovered``
  (count 10,000), after the 10,000 handler calls: the subscription actor reads the stream in pages
  of 1,000 (one script, HGET + XRANGE, per round trip), decodes each payload and calls the
  handler, which counts.
- Peer: what one would write by hand with redis-py: a ``redis.asyncio.Redis`` client (defaults,
  connected before the clock starts) under ``asyncio.run`` in this process, ``XRANGE`` of the
  same stream in pages of 1,000 from ``1-0`` until a short page, each entry's ``data`` decoded
  with the same ``CODEC.decode(payload, BenchNotification)`` and handed to a counting handler.
  Same decoder on both sides: the ratio is the recovery machinery against a bare loop.

``ratio`` is peer / ours (a duration: above 1 means ours is faster); the goal is ours <= 0.5 s.

**Publish (extra keys ``publish_history_msgs``, ``publish_plain_msgs``, ``history_cost``).** 100
publisher actors (``system.spawn(Publisher, ...)``, class-based) share one ``open_pubsub``; each
is told a burst of pre-built ``BenchNotification`` messages (distinct ids) and ``await
pubsub.publish(channel, message)`` on its own channel, one after another. The figure is messages
per second from telling the first burst until the last actor is done. The same process, server,
settings and actor code publish once on channels with history (``bench:{p0}`` .. ``bench:{p99}``,
matched by ``bench:{*}`` with ``History(size=1_000, ttl=600)``: one EVALSHA per message, which
numbers it, XADDs it to the capped stream, sets its id's dedupe marker, refreshes the TTLs and
PUBLISHes the envelope) and once on channels without (``plain:{p0}`` .. ``plain:{p99}``: a plain
PUBLISH), alternating over the repeats. ``history_cost`` is plain / history, the factor history
costs; the goal is at most 2. Nobody subscribes to these channels.

``load_average`` is the 1-minute load average before and after the run: on a shared machine, a
figure taken under load is not comparable with one taken idle.

Run: ``python benchmarks/bench_history.py [--quick]``. The last line of output is the JSON result.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import time
from typing import Any

import redis
import redis.asyncio
import trio
from _common import environment, interleave, median, parse_args, progress, spread, summary
from _redis_common import redis_url, redis_version
from _typed_common import VERSIONS, BenchNotification, Burst, new_messages, publish_bursts

from actors import open_actor_system
from actors.messages import CODEC
from actors.pubsub import (
    History,
    Position,
    PubSubSettings,
    Recovered,
    Unrecoverable,
    open_pubsub,
)

PUBLISHERS = 100
RECOVERY_CHANNEL = "bench:{recovery}"
RECOVERY_STREAM = "bench:{recovery}:history:stream"  # actors.pubsub._history.history_keys
PAGE = 1000  # entries per XRANGE, as the subscription actor reads them
RECOVERY_GOAL_SECONDS = 0.5
HISTORY_COST_GOAL = 2.0  # plain / history
RECOVERY_HISTORY = History(size=20_000, ttl=600.0)
PUBLISH_HISTORY = History(size=1_000, ttl=600.0)
SETTINGS = PubSubSettings(
    histories={RECOVERY_CHANNEL: RECOVERY_HISTORY, "bench:{*}": PUBLISH_HISTORY}
)
TIMEOUT = 60.0
# -- publish: 100 publisher actors, with history and without ------------------------------------


def publish_channels(history: bool) -> list[str]:
    prefix = "bench" if history else "plain"
    return [f"{prefix}:{{p{index}}}" for index in range(PUBLISHERS)]


def history_offsets(url: str) -> int:
    """The sum of the publish channels' last offsets (their meta hashes), read outside timing."""
    client = redis.Redis.from_url(url)
    try:
        pipe = client.pipeline(transaction=False)
        for channel in publish_channels(True):
            pipe.hget(f"{channel}:history:meta", "offset")
        return sum(int(value) for value in pipe.execute() if value is not None)
    finally:
        client.close()


def ours_publish(url: str, *, history: bool) -> Any:
    channels = publish_channels(history)

    def run(count: int) -> float:
        per_actor = count // PUBLISHERS
        bursts = [Burst(new_messages(per_actor)) for _ in range(PUBLISHERS)]
        before = history_offsets(url) if history else 0

        async def main() -> float:
            async with (
                open_actor_system() as system,
                open_pubsub(system, url, settings=SETTINGS) as pubsub,
            ):
                await pubsub.broker.wait_connected()
                with trio.fail_after(TIMEOUT):
                    elapsed = await publish_bursts(system, pubsub, channels, bursts)
            return per_actor * PUBLISHERS / elapsed

        rate = trio.run(main)
        if history:
            appended = history_offsets(url) - before
            if appended != per_actor * PUBLISHERS:
                raise RuntimeError(f"{appended:,} appended to the histories, not {count:,}")
        return rate

    return run


# -- recovery: 10,000 missed messages --------------------------------------------------------


def fill_recovery_history(url: str, count: int) -> str:
    """Publish ``count`` messages on the recovery channel (a fresh history); its epoch."""

    async def main() -> str:
        async with (
            open_actor_system() as system,
            open_pubsub(system, url, settings=SETTINGS) as pubsub,
        ):
            store = pubsub.history_store
            found = await store.read(RECOVERY_CHANNEL, after=0, up_to=None, limit=0)
            if found is not None:
                raise RuntimeError(f"{RECOVERY_CHANNEL} has a history already: {found.window}")
            for message in new_messages(count):  # in order: offset n is the n-th message
                await pubsub.publish(RECOVERY_CHANNEL, message)
            found = await store.read(RECOVERY_CHANNEL, after=0, up_to=None, limit=0)
            assert found is not None
            window = found.window
            if (window.first, window.last) != (1, count):
                raise RuntimeError(f"the history holds {window.first} to {window.last}")
            return window.epoch

    return trio.run(main)


def ours_recovery(url: str, epoch: str, count: int) -> float:
    async def main() -> float:
        handled = 0
        events: list[Recovered | Unrecoverable] = []
        recovered = trio.Event()

        async def handle(message: BenchNotification) -> None:
            nonlocal handled
            handled += 1

        async def on_recovery(event: Recovered | Unrecoverable) -> None:
            events.append(event)
            recovered.set()

        async with (
            open_actor_system() as system,
            open_pubsub(system, url, settings=SETTINGS) as pubsub,
        ):
            await pubsub.broker.wait_connected()
            gc.collect()
            started = time.perf_counter()
            subscription = await pubsub.subscribe(
                RECOVERY_CHANNEL,
                handle,
                message_type=BenchNotification,
                recover=True,
                since=Position(epoch, 0),
                on_recovery=on_recovery,
            )
            with trio.fail_after(TIMEOUT):
                await recovered.wait()
            elapsed = time.perf_counter() - started
            await subscription.close()
        event = events[0]
        if not isinstance(event, Recovered) or event.count != count or handled != count:
            raise RuntimeError(f"recovered {handled:,} of {count:,}: {events}")
        return elapsed

    return trio.run(main)


def peer_recovery(url: str, count: int) -> float:
    async def main() -> float:
        handled = 0

        async def handle(message: BenchNotification) -> None:
            nonlocal handled
            handled += 1

        client = redis.asyncio.Redis.from_url(url)
        await client.ping()
        gc.collect()
        started = time.perf_counter()
        start = "1-0"
        while True:
            entries: Any = await client.xrange(RECOVERY_STREAM, min=start, max="+", count=PAGE)
            for _entry_id, fields in entries:
                await handle(CODEC.decode(fields[b"data"], BenchNotification))
            if len(entries) < PAGE:
                break
            start = "(" + entries[-1][0].decode()
        elapsed = time.perf_counter() - started
        await client.aclose()
        if handled != count:
            raise RuntimeError(f"the peer read {handled:,} of {count:,}")
        return elapsed

    return asyncio.run(main())


def recovery_samples(url: str, epoch: str, count: int, repeats: int) -> dict[str, list[float]]:
    """Ours and the peer, alternating (ours first on even repeats), each after a collection."""
    sides = {
        "ours (subscribe, recover=True)": lambda: ours_recovery(url, epoch, count),
        "peer (redis.asyncio XRANGE)": lambda: peer_recovery(url, count),
    }
    names = list(sides)
    for name in names:  # warm-up, unrecorded
        gc.collect()
        sides[name]()
    progress("recovery warm-up done")
    samples: dict[str, list[float]] = {name: [] for name in names}
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else names[::-1]:
            gc.collect()
            value = sides[name]()
            samples[name].append(value)
            progress(f"[{repeat + 1}/{repeats}] {name:<31} {value * 1000:>10.1f} ms")
    return samples


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0],
        full={"publishes": 100_000, "repeats": 7, "missed": 10_000, "recovery_repeats": 7},
        quick={"publishes": 20_000, "repeats": 3, "missed": 10_000, "recovery_repeats": 3},
    )
    progress(
        f"bench_history: publish {args.publishes:,} messages per run from {PUBLISHERS} actors, "
        f"{args.repeats} repeats; recover {args.missed:,} missed messages, "
        f"{args.recovery_repeats} repeats; {VERSIONS}"
    )
    load_before = os.getloadavg()[0]
    with redis_url() as url:
        publish = interleave(
            {
                "ours, history": ours_publish(url, history=True),
                "ours, plain publish": ours_publish(url, history=False),
            },
            size=args.publishes,
            repeats=args.repeats,
            unit="msg/s",
            warmup=min(args.publishes // 2, 20_000),
        )
        epoch = fill_recovery_history(url, args.missed)
        progress(f"published {args.missed:,} messages on {RECOVERY_CHANNEL} (epoch {epoch})")
        recovery = recovery_samples(url, epoch, args.missed, args.recovery_repeats)
    with_history = summary(publish["ours, history"])
    plain = summary(publish["ours, plain publish"])
    cost = plain["median"] / with_history["median"]
    ours = recovery["ours (subscribe, recover=True)"]
    peer = recovery["peer (redis.asyncio XRANGE)"]
    mine, theirs = median(ours), median(peer)
    progress(
        f"publish medians: history {with_history['median']:,.0f}, plain {plain['median']:,.0f}"
        f" msg/s; history costs {cost:.2f}x (goal <= {HISTORY_COST_GOAL}: "
        f"{'met' if cost <= HISTORY_COST_GOAL else 'NOT met'})"
    )
    progress(
        f"recovery medians: ours {mine:.4f} s, peer {theirs:.4f} s; ratio {theirs / mine:.3f} "
        f"(goal ours <= {RECOVERY_GOAL_SECONDS} s: "
        f"{'met' if mine <= RECOVERY_GOAL_SECONDS else 'NOT met'})"
    )
    record: dict[str, Any] = {
        "bench": "history",
        "ours": round(mine, 4),
        "peer": round(theirs, 4),
        "ratio": round(theirs / mine, 4),
        "unit": f"s (recover {args.missed:,} missed messages; lower is better)",
        "ratio_definition": "peer / ours (inverted: a duration, lower is better)",
        "goal": RECOVERY_GOAL_SECONDS,
        "goal_met": mine <= RECOVERY_GOAL_SECONDS,
        "ours_spread": round(spread(ours), 3),
        "peer_spread": round(spread(peer), 3),
        "ours_samples": [round(value, 4) for value in ours],
        "peer_samples": [round(value, 4) for value in peer],
        "publish_history_msgs": with_history["median"],
        "publish_plain_msgs": plain["median"],
        "history_cost": round(cost, 3),
        "history_cost_definition": "publish_plain_msgs / publish_history_msgs",
        "history_cost_goal": HISTORY_COST_GOAL,
        "history_cost_goal_met": cost <= HISTORY_COST_GOAL,
        "all_goals_met": mine <= RECOVERY_GOAL_SECONDS and cost <= HISTORY_COST_GOAL,
        "publish_history_spread": with_history["spread"],
        "publish_plain_spread": plain["spread"],
        "publish_history_samples": with_history["samples"],
        "publish_plain_samples": plain["samples"],
        "publishers": PUBLISHERS,
        "publishes": args.publishes,
        "repeats": args.repeats,
        "missed": args.missed,
        "recovery_repeats": args.recovery_repeats,
        "page": PAGE,
        "publish_history": {"size": PUBLISH_HISTORY.size, "ttl": PUBLISH_HISTORY.ttl},
        "recovery_history": {"size": RECOVERY_HISTORY.size, "ttl": RECOVERY_HISTORY.ttl},
        "message_type": "bench.notification",
        "peer_decoder": "CODEC.decode (the same as ours)",
        "decoders": VERSIONS,
        "redis_py": redis.__version__,
        "redis_server": redis_version(),
        "quick": args.quick,
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    record.update(environment())
    print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
