"""Outages under load: every subscription delivers again within 1 s of a restarted redis-server.

The issue's target, measured on a real server: every subscription delivers again no more than
1 s after a restarted redis-server accepts connections, for each of 6 outages 3 s apart, and for
10 kill -9 / restart cycles under 5,000 msg/s.

One private redis-server (never the shared one on 6379) is SIGKILLed and started again on its
port at once (an outage of a few ms to tens of ms), under a steady load: a separate process
(``_raw_publisher.py steady``) publishes 5,000 stamped messages per second in all, round-robin
over the channels (100: each channel gets one every 20 ms), and reconnects by itself after each
kill. Scenario A: 6 outages 3 s apart (a kill every 3 s). Scenario B: 10 kill -9 / restart
cycles, each started 0.5 s after the previous one has recovered (so that the connection is
healthy again).

For each outage the figure is the time every subscription has received a message published
after the restart, minus the time the restarted server first answered PING
(``RedisServer.accepting_at``). That timestamp is taken by a thread of this process, so the GIL
can delay it by a few ms (which makes the figure a little smaller); the time from the kill to
the first PONG is reported per outage too. Resolution: the 20 ms between two messages of a
channel.

Ours: the path users take, ``open_pubsub(system, url)`` with the default settings (reconnect
backoff 100 ms, x2, at most 5 s, +-20 % jitter, starting over from 100 ms once a connection is
healthy; restart intensity 10 within 1 s), typed messages (``Stamped``, a registered
``Message`` carrying the publisher's ``time.monotonic_ns()``) and one
``pubsub.subscribe(channel, handler)`` per channel (one subscription actor each). Per outage,
the connection actor's restarts (``RedisPubSub.statistics().connection_restarts`` through
``pubsub.broker``) and, from an ``Instrument``, each reconnect attempt: the backoff delay
before it and when it started, relative to the server accepting.

Peer: ``redis.asyncio`` ``PubSub`` on the same channels, its client created with
``retry=Retry(ExponentialBackoff(cap=5.0, base=0.1), 1000)``, in a ``get_message`` loop that
decodes the same JSON with ``orjson.loads``, under ``asyncio.run`` in this process. On a lost
connection redis-py reconnects once at once, then retries after ``min(5, 0.1 * 2 ** n)`` s for
the n-th failure counted from 1 (0.2, 0.4, ... s); its waits per outage are counted. Both sides
run with the same garbage collector setting (``--gc-threshold``, default Python's).

The top-level ``ours`` and ``peer`` are the worst recovery over all outages of both scenarios
(seconds, lower is better); ``ratio`` is peer / ours. ``ours_*_peak_restarts`` is the most
connection restarts that fell within one restart-intensity window (``within``, 1 s by default): the
connection's supervisor gives up for good above ``max_restarts`` (10).

``--restart-after MS`` waits MS milliseconds between the kill and the restart (default 0: at
once, as in the target), for outages longer than the first reconnect attempt's delay.

Run: ``python benchmarks/bench_outages.py [--quick]``. The last line of output is the JSON result.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import redis
import redis.asyncio
import trio
from _common import environment, parse_args, progress
from _redis_common import (
    DECODER,
    RedisServer,
    SteadyPublisher,
    channel_names,
    loads,
    redis_version,
)
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from actors import open_actor_system
from actors.messages import CODEC, Message, message_type
from actors.pubsub import ConnectionOptions, RedisPubSub, open_pubsub
from actors.runtime import ActorRef, ExitReason, Instrument

GOAL_SECONDS = 1.0
INTERVAL = 3.0  # seconds between the kills of scenario A
PAUSE = 0.5  # seconds from a recovery to scenario B's next kill
SETTLE = 0.5  # seconds between every subscription delivering and the first kill
TIMEOUT = 20.0  # seconds an outage may last before it counts as not recovered
PEER_RETRIES = 1000
NEVER = 2**63
SCENARIOS = ("a", "b")


@message_type("bench.stamped")
@attrs.frozen(kw_only=True)
class Stamped(Message):
    """A message of the load: its channel's index and the publisher's ``time.monotonic_ns()``."""

    channel: int
    stamp: int


def write_template() -> Path:
    """An encoded ``Stamped`` with ``%032x``, ``%d``, ``%d`` for (sequence, channel, stamp)."""
    sample = Stamped(
        id="f" * 32,
        timestamp=datetime(2026, 12, 1, tzinfo=UTC),
        channel=123_456_789,
        stamp=987_654_321,
    )
    template = (
        CODEC.encode(sample)
        .replace(b'"' + b"f" * 32 + b'"', b'"%032x"')
        .replace(b"123456789", b"%d")
        .replace(b"987654321", b"%d")
    )
    assert template.count(b"%") == 3, template
    decoded = CODEC.decode(template % (7, 3, 42), Stamped)
    assert (decoded.id, decoded.channel, decoded.stamp) == (f"{7:032x}", 3, 42), decoded
    with tempfile.NamedTemporaryFile("wb", prefix="actors-bench-", delete=False) as f:
        f.write(template)
    return Path(f.name)


class Watch:
    """Which channels got a message stamped after ``since`` (monotonic ns); when the last did."""

    def __init__(self, channels: int) -> None:
        self.channels = channels
        self.since = 0
        self.seen: set[int] = set()
        self.last = 0.0
        self.complete = False

    def arm(self) -> None:
        """Forget what came; ignore everything until ``since`` is set (after the kill)."""
        self.since = NEVER
        self.seen.clear()
        self.complete = False

    def arrived(self, index: int, stamp: int) -> bool:
        """Record a message; True once every channel has had one since ``since``."""
        if stamp >= self.since and index not in self.seen:
            self.seen.add(index)
            if len(self.seen) == self.channels:
                self.last = time.monotonic()
                self.complete = True
                return True
        return False


@attrs.define
class Outage:
    """One kill and restart, seen by one side."""

    killed_at: float
    accepting_at: float
    recovered_at: float | None = None
    restarts: int | None = None
    """Ours: connection actor restarts. Peer: waits of its retry backoff."""
    attempts: list[tuple[float, float]] = attrs.Factory(list)
    """Ours: (backoff delay, start of the attempt relative to the server accepting), each
    reconnect attempt. Peer: (delay, end of the wait relative to the server accepting)."""

    @property
    def recovery(self) -> float | None:
        """Seconds from the server accepting to every subscription delivering again."""
        return None if self.recovered_at is None else self.recovered_at - self.accepting_at

    @property
    def down(self) -> float:
        """Seconds from the kill to the restarted server's first PONG."""
        return self.accepting_at - self.killed_at


@attrs.define
class Run:
    """One side's run of one scenario."""

    outages: list[Outage] = attrs.Factory(list)
    error: str | None = None
    peak_restarts: int | None = None
    """Ours: the most connection restarts within one restart-intensity window."""


def restart_server(server: RedisServer, watch: Watch, after: float) -> float:
    """SIGKILL the server, arm ``watch`` for messages stamped from now, start the server again
    ``after`` seconds later."""
    killed_at = time.monotonic()
    server.kill()
    watch.since = time.monotonic_ns()
    if after:
        time.sleep(after)
    server.start()
    return killed_at


async def drive(
    scenario: str,
    count: int,
    outage: Callable[[int], Awaitable[None]],
    sleep: Callable[[float], Awaitable[object]],
) -> None:
    """Scenario A: a kill every ``INTERVAL`` s. B: a kill ``PAUSE`` s after each recovery."""
    await sleep(SETTLE)
    first = time.monotonic()
    for number in range(count):
        if scenario == "a":
            await sleep(max(0.0, first + number * INTERVAL - time.monotonic()))
        elif number:
            await sleep(PAUSE)
        await outage(number)


def describe(side: str, scenario: str, number: int, count: int, outage: Outage) -> None:
    recovery = "NOT recovered" if outage.recovery is None else f"{outage.recovery:.3f} s"
    attempts = ", ".join(f"{delay:.3f} s -> {at:+.3f}" for delay, at in outage.attempts)
    progress(
        f"  {side} {scenario.upper()} {number + 1}/{count}: {recovery} (down {outage.down:.3f} s; "
        f"{outage.restarts} {'restart(s)' if side == 'ours' else 'retry wait(s)'}: {attempts})"
    )


class ConnectionLog(Instrument):
    """When the connection actor's incarnations start, and the backoff before each."""

    def __init__(self) -> None:
        self.ref: ActorRef | None = None
        self.events: list[tuple[float, str, float]] = []

    def actor_started(self, ref: ActorRef) -> None:
        if ref is self.ref:
            self.events.append((time.monotonic(), "attempt", 0.0))

    def actor_restarted(self, ref: ActorRef, reason: ExitReason, delay: float) -> None:
        if ref is self.ref:
            self.events.append((time.monotonic(), "backoff", delay))

    def peak(self, within: float) -> int:
        """The most restarts that fell within ``within`` seconds of each other, as the
        supervisor's restart intensity counts them."""
        times = [at for at, kind, _ in self.events if kind == "backoff"]
        counts = [
            sum(1 for earlier in times[: index + 1] if at - earlier < within)
            for index, at in enumerate(times)
        ]
        return max(counts, default=0)

    def attempts(self, outage: Outage) -> list[tuple[float, float]]:
        """(delay, start relative to the server accepting) of each attempt in the outage."""
        end = outage.recovered_at if outage.recovered_at is not None else time.monotonic()
        result = []
        delay = None
        for at, kind, value in self.events:
            if not outage.killed_at <= at <= end:
                continue
            if kind == "backoff":
                delay = value
            elif delay is not None:
                result.append((round(delay, 3), round(at - outage.accepting_at, 3)))
                delay = None
        return result


def handler(
    watch: Watch, index: int, done: Callable[[], None]
) -> Callable[[Stamped], Awaitable[None]]:
    """The typed handler of channel ``index``."""

    async def handle(message: Stamped) -> None:
        if watch.arrived(index, message.stamp):
            done()

    return handle


def ours(server: RedisServer, channels: int, scenario: str, count: int, after: float) -> Run:
    run = Run()
    log = ConnectionLog()

    async def main() -> None:
        watch = Watch(channels)
        all_seen = trio.Event()

        def done() -> None:
            all_seen.set()

        async with (
            open_actor_system(instruments=[log]) as system,
            open_pubsub(system, server.url) as pubsub,
        ):
            broker = pubsub.broker
            assert isinstance(broker, RedisPubSub)
            log.ref = broker.connection_ref
            for index, name in enumerate(channel_names(channels)):
                await pubsub.subscribe(name, handler(watch, index, done))
            with trio.fail_after(TIMEOUT):
                await all_seen.wait()  # every subscription works before the first kill

            async def outage(number: int) -> None:
                nonlocal all_seen
                watch.arm()
                all_seen = trio.Event()
                restarts = broker.statistics().connection_restarts
                killed_at = await trio.to_thread.run_sync(restart_server, server, watch, after)
                record = Outage(killed_at, server.accepting_at)
                run.outages.append(record)
                with trio.move_on_after(TIMEOUT):
                    await all_seen.wait()
                if watch.complete:
                    record.recovered_at = watch.last
                record.restarts = broker.statistics().connection_restarts - restarts
                record.attempts = log.attempts(record)
                describe("ours", scenario, number, count, record)

            await drive(scenario, count, outage, trio.sleep)

    try:
        trio.run(main)
    except Exception as error:  # a side that fails is recorded, not fatal
        run.error = repr(error)
        progress(f"  ours {scenario.upper()}: FAILED {error!r}")
    run.peak_restarts = log.peak(ConnectionOptions().within)
    return run


class CountingBackoff(ExponentialBackoff):
    """redis-py's exponential backoff, recording each wait (when it began, how long)."""

    def __init__(self) -> None:
        super().__init__(cap=5.0, base=0.1)
        self.waits: list[tuple[float, float]] = []

    def __deepcopy__(self, memo: dict[int, object]) -> CountingBackoff:
        return self  # redis-py copies the client's Retry into every connection: count them all

    def compute(self, failures: int) -> float:
        delay: float = super().compute(failures)
        self.waits.append((time.monotonic(), delay))
        return delay


def peer(server: RedisServer, channels: int, scenario: str, count: int, after: float) -> Run:
    run = Run()

    async def main() -> None:
        watch = Watch(channels)
        all_seen = asyncio.Event()
        names = channel_names(channels)
        index_of = {name.encode(): index for index, name in enumerate(names)}
        backoff = CountingBackoff()
        client = redis.asyncio.Redis.from_url(server.url, retry=Retry(backoff, PEER_RETRIES))
        pubsub = client.pubsub()
        await pubsub.subscribe(*names)
        errors = 0

        async def consume() -> None:
            nonlocal errors
            while True:
                try:
                    message = await pubsub.get_message(timeout=1.0)
                except (redis.ConnectionError, OSError):
                    errors += 1  # the retries ran out: start again, as ours does, after 100 ms
                    await asyncio.sleep(0.1)
                    continue
                if message is not None and message["type"] == "message":
                    data = loads(message["data"])
                    if watch.arrived(index_of[message["channel"]], data["stamp"]):
                        all_seen.set()

        consumer = asyncio.create_task(consume())
        try:
            await asyncio.wait_for(all_seen.wait(), TIMEOUT)

            async def outage(number: int) -> None:
                watch.arm()
                all_seen.clear()
                waits = len(backoff.waits)
                killed_at = await asyncio.to_thread(restart_server, server, watch, after)
                record = Outage(killed_at, server.accepting_at)
                run.outages.append(record)
                with contextlib.suppress(TimeoutError):  # recorded as not recovered
                    await asyncio.wait_for(all_seen.wait(), TIMEOUT)
                if watch.complete:
                    record.recovered_at = watch.last
                record.restarts = len(backoff.waits) - waits
                record.attempts = [
                    (round(delay, 3), round(at + delay - record.accepting_at, 3))
                    for at, delay in backoff.waits[waits:]
                ]
                describe("peer", scenario, number, count, record)

            await drive(scenario, count, outage, asyncio.sleep)
        finally:
            consumer.cancel()
            await pubsub.aclose()
            await client.aclose()
        if errors:
            progress(f"  peer {scenario.upper()}: {errors} ConnectionError(s) surfaced to the loop")

    try:
        asyncio.run(main())
    except Exception as error:
        run.error = repr(error)
        progress(f"  peer {scenario.upper()}: FAILED {error!r}")
    return run


def worst(runs: list[Run], expected: int) -> float | None:
    """The longest recovery of the runs; None if any outage did not recover or is missing."""
    outages = [outage for run in runs for outage in run.outages]
    if len(outages) < expected or any(outage.recovery is None for outage in outages):
        return None
    return max(outage.recovery for outage in outages if outage.recovery is not None)


def rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--restart-after",
        type=int,
        default=0,
        metavar="MS",
        help="milliseconds between the kill and the restart (default 0: at once)",
    )


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0],
        full={"channels": 100, "outages": 6, "cycles": 10, "rate": 5000},
        quick={"channels": 20, "outages": 3, "cycles": 3, "rate": 5000},
        extend=_options,
    )
    after = args.restart_after / 1000
    counts = {"a": args.outages, "b": args.cycles}
    progress(
        f"bench_outages: {args.channels} typed subscriptions, {args.rate:,} msg/s; "
        f"A: {args.outages} outages {INTERVAL:g} s apart; B: {args.cycles} kill -9 / restart "
        f"cycles {PAUSE:g} s after each recovery"
    )
    sides: dict[str, Callable[[RedisServer, int, str, int, float], Run]] = {
        "ours": ours,
        "peer": peer,
    }
    runs: dict[tuple[str, str], Run] = {}
    template = write_template()
    server = RedisServer().start()
    publisher = SteadyPublisher(server.url, args.channels, args.rate, template)
    try:
        with publisher:
            for position, scenario in enumerate(SCENARIOS):
                order = list(sides) if position % 2 == 0 else list(sides)[::-1]
                for side in order:
                    if server.process is None or server.process.poll() is not None:
                        server.start()
                    progress(f"{side}, scenario {scenario.upper()}:")
                    gc.collect()
                    runs[side, scenario] = sides[side](
                        server, args.channels, scenario, counts[scenario], after
                    )
    finally:
        server.stop()
        template.unlink()
    expected = sum(counts.values())
    mine = worst([runs["ours", s] for s in SCENARIOS], expected)
    theirs = worst([runs["peer", s] for s in SCENARIOS], expected)
    record: dict[str, Any] = {
        "bench": "redis_outages",
        "ours": rounded(mine),
        "peer": rounded(theirs),
        "ratio": round(theirs / mine, 4) if mine and theirs else None,
        "unit": "s (restarted server accepting -> every subscription got a message published "
        "after the restart; worst outage of both scenarios; lower is better)",
        "ratio_definition": "peer / ours (inverted: a duration, lower is better)",
        "goal_seconds": GOAL_SECONDS,
        "goal_met": mine is not None and mine <= GOAL_SECONDS,
    }
    for side in sides:
        for scenario in SCENARIOS:
            run = runs[side, scenario]
            recoveries = [rounded(outage.recovery) for outage in run.outages]
            key = f"{side}_{scenario}"
            record[key] = recoveries
            record[f"{key}_max"] = rounded(worst([run], counts[scenario]))
            record[f"{key}_restarts" if side == "ours" else f"{key}_retry_waits"] = [
                outage.restarts for outage in run.outages
            ]
            record[f"{key}_attempts"] = [outage.attempts for outage in run.outages]
            record[f"{key}_down"] = [round(outage.down, 4) for outage in run.outages]
            record[f"{key}_error"] = run.error
            if side == "ours":
                record[f"{key}_peak_restarts"] = run.peak_restarts
    backoff = ConnectionOptions().reconnect  # the default, which ours runs with
    record.update(
        {
            "channels": args.channels,
            "rate": args.rate,
            "outages_a": args.outages,
            "interval_a": INTERVAL,
            "cycles_b": args.cycles,
            "pause_b": PAUSE,
            "restart_after_ms": args.restart_after,
            "message_type": "bench.stamped",
            "reconnect_backoff": {
                "initial": backoff.initial,
                "multiplier": backoff.multiplier,
                "maximum": backoff.maximum,
                "jitter": backoff.jitter,
            },
            "restart_intensity": {
                "max_restarts": ConnectionOptions().max_restarts,
                "within": ConnectionOptions().within,
            },
            "peer_retry": f"Retry(ExponentialBackoff(cap=5.0, base=0.1), {PEER_RETRIES})",
            "publisher": {
                key: round(value, 1) if isinstance(value, float) else value
                for key, value in publisher.summary.items()
            },
            "decoder": DECODER,
            "redis_py": redis.__version__,
            "redis_server": redis_version(),
            "quick": args.quick,
        }
    )
    record.update(environment())
    for side in sides:
        progress(
            f"{side}: worst A {record[f'{side}_a_max']} s, worst B {record[f'{side}_b_max']} s"
        )
    progress(
        f"worst: ours {mine} s, peer {theirs} s "
        f"(goal <= {GOAL_SECONDS} s: {'met' if record['goal_met'] else 'NOT met'})"
    )
    print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
