"""Cluster fan-in: 3,000 sharded typed subscriptions on a 3-master Redis Cluster, against redis-py.

The fan-in of ``bench_typed_fanin.py`` on a private Redis Cluster (``actors.testing.RedisCluster``:
3 masters on free ports of 127.0.0.1, no replicas unless ``--replicas``; every node runs with
``client-output-buffer-limit pubsub 0 0 0`` so that no subscriber is disconnected while a flood is
queued). A separate process (``_cluster_publisher.py flood``) writes pipelined ``SPUBLISH``
commands as fast as it can, round-robin over 3,000 shard channels, each to the master that owns
its slot; the payloads are the ``BenchNotification`` payloads of ``bench_typed_fanin.py`` (189-199
bytes). The subscriber's event loop is held (a blocking wait, on purpose) until the publisher has
sent everything, so the servers hold the whole flood and what is measured is the subscriber side
alone; a publisher running beside a subscriber that keeps up would measure its own pace (with
both running at once, our per-CPU-second figure varied by 2x between runs). The figure is typed
messages handled per second, from the first handler call to the last, for a fixed number of
messages per run.

Ours: ``open_pubsub(system, "redis+cluster://...")`` with default settings (one RESP3 connection
per master) and ``pubsub.subscribe(channel, handler, message_type=BenchNotification,
sharded=True)`` for each channel: one subscription actor per channel, decoding with our codec,
calling a handler that counts.

Peer: redis-py's ``redis.asyncio.cluster.RedisCluster`` (redis-py 8 has ``ssubscribe`` on its
async cluster ``pubsub()``), ``ssubscribe`` of the same channels, ``get_sharded_message`` in a
loop, decoding each payload with ``orjson.loads`` and a plain cattrs converter (the peer decode of
``bench_typed_fanin.py``), under ``asyncio.run`` in this process.

Beside them, in the same run: ours on one private ``redis-server`` with the same 3,000 channels
(plain ``subscribe``, ``_raw_publisher.py flood``): ``single_server_ours``. The three cases
alternate in order over the repeats.

Recovery: with every channel subscribed (ours) and a steady publisher sending each message to
every master (so that the owner, whichever it is, delivers it), ``RedisCluster.migrate_slot``
moves the slot of a subscribed channel to another master; ``recovery_s`` is the time from the
start of the move to the first message on that channel that the new owner delivered (the payload
names the node that sent it). The move itself (``migrate_slot``: ``SETSLOT`` on every master, then
waiting until every node agrees) is included; ``recovery_after_move_s`` counts from its return.

Run: ``python benchmarks/bench_cluster.py [--quick]``. The last line of output is the JSON result.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
import trio
from _common import emit_against_goal, interleave, parse_args, progress, summary
from _redis_common import (
    HOST,
    RedisServer,
    Tally,
    backlog,
    channel_names,
    finish_publisher,
    flood_backlog,
    redis_version,
    wait_for_tally,
)
from _typed_common import (
    VERSIONS,
    BenchNotification,
    check_payloads,
    encoded_payloads,
    peer_decode,
    write_payloads,
)

from actors import open_actor_system
from actors.messages import CODEC
from actors.pubsub import open_pubsub
from actors.redis import key_slot
from actors.testing import RedisCluster

CHANNELS = 3000
MASTERS = 3
GOAL = 3.0  # ours / peer
RECOVERY_GOAL = 1.0  # seconds
SERVER_ARGS = ("--client-output-buffer-limit", "pubsub 0 0 0")
PUBLISHER = Path(__file__).with_name("_cluster_publisher.py")
STEADY_RATE = 3000  # background messages per second during the recovery runs
OURS = "ours (cluster, 3000 ssubs)"
PEER = "peer (redis-py cluster async)"
SINGLE = "ours (one server, 3000 subs)"


def cluster_url(cluster: RedisCluster) -> str:
    return "redis+cluster://" + ",".join(f"{HOST}:{node.port}" for node in cluster.masters())


def write_routes(cluster: RedisCluster) -> Path:
    """The routes file of ``_cluster_publisher.py``: every channel's owner as the run starts."""
    masters = cluster.masters()
    view = masters[0].cluster_nodes()
    ranges = [
        (first, last, entry.port)
        for entry in view.values()
        if entry.is_master
        for first, last in entry.slots
    ]

    def owner(name: str) -> int:
        slot = key_slot(name)
        return next(port for first, last, port in ranges if first <= slot <= last)

    routes = {
        "host": HOST,
        "masters": [node.port for node in masters],
        "owners": [owner(name) for name in channel_names(CHANNELS)],
    }
    with tempfile.NamedTemporaryFile(
        "w", prefix="actors-bench-routes-", suffix=".json", delete=False
    ) as f:
        json.dump(routes, f)
    return Path(f.name)


def start_cluster_publisher(*args: str | int | Path) -> subprocess.Popen[str]:
    command = [sys.executable, str(PUBLISHER), *map(str, args)]
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU seconds of these processes so far (Linux ``/proc``; else 0)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


class CpuWatch:
    """CPU seconds of this process and of the Redis servers between ``start()`` and ``stop()``."""

    def __init__(self, servers: list[int]) -> None:
        self.servers = servers
        self.begin = (0.0, 0.0, 0.0)
        self.shares = (0.0, 0.0)

    def start(self) -> None:
        self.begin = (time.perf_counter(), time.process_time(), cpu_seconds(self.servers))

    def stop(self) -> None:
        wall = time.perf_counter() - self.begin[0]
        own = time.process_time() - self.begin[1]
        servers = cpu_seconds(self.servers) - self.begin[2]
        self.shares = (own / wall, servers / wall) if wall > 0 else (0.0, 0.0)

    def record(self, extra: dict[str, Any], key: str) -> None:
        extra.setdefault(f"{key}_cpu_share", []).append(round(self.shares[0], 2))
        extra.setdefault(f"{key}_redis_cpu_share", []).append(round(self.shares[1], 2))


class WatchedTally(Tally):
    """A ``Tally`` that watches the CPU from its first message to its last."""

    def __init__(self, expected: int, watch: CpuWatch) -> None:
        super().__init__(expected)
        self.watch = watch

    def record(self) -> None:
        super().record()
        if self.count == 1:
            self.watch.start()
        elif self.count == self.expected:
            self.watch.stop()


def handler(tally: Tally) -> Callable[[BenchNotification], Awaitable[None]]:
    async def handle(message: BenchNotification) -> None:
        tally.record()

    return handle


def ours(
    url: str,
    publish: Callable[[int], subprocess.Popen[str]],
    sharded: bool,
    servers: list[int],
    extra: dict[str, Any],
) -> Callable[[int], float]:
    key = "ours" if sharded else "single"

    def run(count: int) -> float:
        async def main() -> float:
            watch = CpuWatch(servers)
            tally = WatchedTally(count, watch)
            async with open_actor_system() as system, open_pubsub(system, url) as pubsub:
                started = time.perf_counter()
                handles = [
                    await pubsub.subscribe(
                        name, handler(tally), message_type=BenchNotification, sharded=sharded
                    )
                    for name in channel_names(CHANNELS)
                ]
                extra.setdefault(f"{key}_subscribe_s", []).append(
                    round(time.perf_counter() - started, 2)
                )
                publisher = publish(count)
                await wait_for_tally(tally, publisher)
                await trio.to_thread.run_sync(finish_publisher, publisher)
                stats = [handle.statistics() for handle in handles]
                extra.setdefault(f"{key}_dropped", []).append(
                    sum(stat.mailbox.dropped for stat in stats)
                )
                extra.setdefault(f"{key}_handled", []).append(tally.count)
                watch.record(extra, key)
            return tally.rate()

        return trio.run(main)

    return run


def peer(
    seed: str,
    publish: Callable[[int], subprocess.Popen[str]],
    servers: list[int],
    extra: dict[str, Any],
) -> Callable[[int], float]:
    """redis.asyncio.cluster: ``ssubscribe`` every channel, ``get_sharded_message`` in a loop."""
    import asyncio

    import redis.asyncio.cluster

    def run(count: int) -> float:
        async def main() -> float:
            client = redis.asyncio.cluster.RedisCluster.from_url(seed)
            await client.initialize()
            pubsub = client.pubsub()
            started = time.perf_counter()
            await pubsub.ssubscribe(*channel_names(CHANNELS))
            acks = 0
            while acks < CHANNELS:
                message = await pubsub.get_sharded_message(timeout=1.0)
                if message is not None and message["type"] == "ssubscribe":
                    acks += 1
            extra.setdefault("peer_subscribe_s", []).append(round(time.perf_counter() - started, 2))
            publisher = publish(count)
            watch = CpuWatch(servers)
            handled = 0
            first = last = time.perf_counter()
            idle_since: float | None = None
            while handled < count:
                message = await pubsub.get_sharded_message(
                    ignore_subscribe_messages=True, timeout=1.0
                )
                if message is None:
                    now = time.perf_counter()
                    idle_since = idle_since or now
                    if now - idle_since > 3.0 and publisher.poll() is not None:
                        progress(f"  peer stalled at {handled:,} of {count:,} (dropped?)")
                        break
                    continue
                idle_since = None
                peer_decode(message["data"])
                handled += 1
                if handled == 1:
                    first = time.perf_counter()
                    watch.start()
                last = time.perf_counter()
            watch.stop()
            watch.record(extra, "peer")
            await asyncio.to_thread(finish_publisher, publisher)
            await pubsub.aclose()
            await client.aclose()
            extra.setdefault("peer_handled", []).append(handled)
            return (handled - 1) / (last - first)

        return asyncio.run(main())

    return run


def write_template() -> Path:
    """An encoded ``BenchNotification`` with ``%032x`` (sequence) and ``%d`` (the node's port)."""
    sample = BenchNotification(
        id="f" * 32,
        timestamp=datetime(2026, 11, 25, 12, tzinfo=UTC),
        user_id="u-1",
        category="chat.message",
        data={"node": "123456789", "room": "room-1"},
    )
    template = (
        CODEC.encode(sample)
        .replace(b'"' + b"f" * 32 + b'"', b'"%032x"')
        .replace(b"123456789", b"%d")
    )
    assert template.count(b"%") == 2, template
    decoded = CODEC.decode(template % (7, 6380), BenchNotification)
    assert decoded.data["node"] == "6380", decoded
    with tempfile.NamedTemporaryFile("wb", prefix="actors-bench-", delete=False) as f:
        f.write(template)
    return Path(f.name)


def recovery(cluster: RedisCluster, routes: Path, moves: int) -> dict[str, Any]:
    """Move the slot of ``ch.0``, ``ch.1``, ... under traffic; seconds to the new owner's first
    message on that channel."""
    template = write_template()
    probes = list(range(moves))
    url = cluster_url(cluster)
    samples: list[float] = []
    after_move: list[float] = []
    migrate: list[float] = []

    async def main() -> None:
        watched: dict[str, Any] = {"channel": None, "port": "", "at": 0.0, "event": trio.Event()}
        handled = 0

        def make(name: str) -> Callable[[BenchNotification], Awaitable[None]]:
            async def handle(message: BenchNotification) -> None:
                nonlocal handled
                handled += 1
                if (
                    name == watched["channel"]
                    and message.data["node"] == watched["port"]
                    and not watched["event"].is_set()
                ):
                    watched["at"] = time.perf_counter()
                    watched["event"].set()

            return handle

        async with open_actor_system() as system, open_pubsub(system, url) as pubsub:
            for name in channel_names(CHANNELS):
                await pubsub.subscribe(
                    name, make(name), message_type=BenchNotification, sharded=True
                )
            publisher = start_cluster_publisher(
                "steady", routes, STEADY_RATE, template, ",".join(map(str, probes))
            )
            try:
                await trio.sleep(1.0)
                for index in probes:
                    name = f"ch.{index}"
                    slot = key_slot(name)
                    source = cluster.master_of_slot(slot)
                    target = next(node for node in cluster.masters() if node is not source)
                    watched.update(channel=name, port=str(target.port), event=trio.Event())
                    before = handled
                    started = time.perf_counter()
                    await cluster.migrate_slot_async(slot, source, target)
                    returned = time.perf_counter()
                    with trio.move_on_after(10.0):
                        await watched["event"].wait()
                    if not watched["event"].is_set():
                        progress(f"  move {index + 1}: nothing from the new owner within 10 s")
                        continue
                    samples.append(watched["at"] - started)
                    after_move.append(watched["at"] - returned)
                    migrate.append(returned - started)
                    progress(
                        f"  move {index + 1}: slot {slot} of {name}, {source.port} -> "
                        f"{target.port}: migrate_slot {returned - started:.3f} s, first message "
                        f"from the new owner {samples[-1]:.3f} s after the move began "
                        f"({handled - before:,} handled meanwhile)"
                    )
                    await trio.sleep(1.0)
            finally:
                assert publisher.stdin is not None
                publisher.stdin.close()
                await trio.to_thread.run_sync(publisher.wait)
                template.unlink(missing_ok=True)

    trio.run(main)
    result: dict[str, Any] = {
        "recovery_s": round(statistics.median(samples), 3) if samples else None,
        "recovery_samples": [round(value, 3) for value in samples],
        "recovery_after_move_s": [round(value, 3) for value in after_move],
        "recovery_migrate_slot_s": [round(value, 3) for value in migrate],
        "recovery_moves": moves,
        "recovery_background_rate": STEADY_RATE,
    }
    return result


def per_cpu_second(samples: dict[str, list[float]], extra: dict[str, Any]) -> dict[str, float]:
    """Median messages handled per CPU second of this process: the rate with contention for the
    two cores divided out (each run's rate over its CPU share)."""
    result = {}
    for key, name in (("ours", OURS), ("peer", PEER), ("single", SINGLE)):
        shares = extra.get(f"{key}_cpu_share", [])[-len(samples[name]) :]
        rates = [rate / share for rate, share in zip(samples[name], shares, strict=True) if share]
        result[key] = round(statistics.median(rates), 1) if rates else 0.0
    return result


def main() -> None:
    def extend(parser: Any) -> None:
        parser.add_argument(
            "--replicas", type=int, default=0, help="replicas per master (default 0)"
        )

    args = parse_args(
        __doc__.splitlines()[0],
        full={"messages": 600_000, "repeats": 5, "moves": 5},
        quick={"messages": 120_000, "repeats": 3, "moves": 3},
        extend=extend,
    )
    payloads = encoded_payloads()
    sizes = check_payloads(payloads)
    path = write_payloads(payloads)
    progress(
        f"bench_cluster: {args.messages:,} messages per run over {CHANNELS:,} shard channels on "
        f"{MASTERS} masters ({args.replicas} replicas each), {args.repeats} repeats, payloads "
        f"{sizes['payload_bytes_min']}-{sizes['payload_bytes_max']} bytes, {VERSIONS}, "
        f"redis-py {redis.__version__}"
    )
    extra: dict[str, Any] = {}
    cluster = RedisCluster(
        masters=MASTERS, replicas_per_master=args.replicas, extra_args=SERVER_ARGS
    )
    server = RedisServer(SERVER_ARGS)
    routes: Path | None = None
    try:
        cluster.start()
        server.start()
        routes = write_routes(cluster)
        owners = json.loads(routes.read_text())["owners"]
        per_master = {port: owners.count(port) for port in sorted(set(owners))}
        progress(f"cluster up: channels per master {per_master}; single server on {server.port}")
        seed = cluster.masters()[0].url
        assert server.process is not None
        server_pids = [server.process.pid]

        def cluster_flood(count: int) -> subprocess.Popen[str]:
            return backlog(start_cluster_publisher("flood", routes, count, path))

        def single_flood(count: int) -> subprocess.Popen[str]:
            return flood_backlog(server.url, CHANNELS, count, path)

        samples = interleave(
            {
                OURS: ours(cluster_url(cluster), cluster_flood, True, cluster.pids, extra),
                PEER: peer(seed, cluster_flood, cluster.pids, extra),
                SINGLE: ours(server.url, single_flood, False, server_pids, extra),
            },
            size=args.messages,
            repeats=args.repeats,
            unit="msg/s",
            warmup=min(args.messages, 30_000),
        )
        progress("recovery: slot moves under traffic")
        moved = recovery(cluster, routes, args.moves)
    finally:
        path.unlink(missing_ok=True)
        if routes is not None:
            routes.unlink(missing_ok=True)
        server.stop()
        cluster.stop()
    single = summary(samples[SINGLE])
    recovery_s = moved["recovery_s"]
    progress(
        f"single server (ours, same run): {single['median']:,.0f} msg/s; recovery after a slot "
        f"move: {recovery_s} s (goal <= {RECOVERY_GOAL} s: "
        f"{'met' if recovery_s is not None and recovery_s <= RECOVERY_GOAL else 'NOT met'})"
    )
    warm = args.repeats
    emit_against_goal(
        "cluster_fanin",
        summary(samples[OURS]),
        summary(samples[PEER]),
        unit="msg/s",
        goal=GOAL,
        single_server_ours=single["median"],
        single_server_spread=single["spread"],
        single_server_samples=single["samples"],
        recovery_goal_s=RECOVERY_GOAL,
        recovery_goal_met=recovery_s is not None and recovery_s <= RECOVERY_GOAL,
        **moved,
        peer_client="async",
        peer_api="redis.asyncio.cluster.RedisCluster.pubsub(): ssubscribe, get_sharded_message",
        peer_decoder="orjson.loads + cattrs.preconf.orjson.make_converter().structure",
        ours_dropped=extra.get("ours_dropped", [])[-warm:],
        single_dropped=extra.get("single_dropped", [])[-warm:],
        ours_handled=extra.get("ours_handled", [])[-warm:],
        peer_handled=extra.get("peer_handled", [])[-warm:],
        handled_per_cpu_second=per_cpu_second(samples, extra),
        cpu_share={
            key: {
                "own": extra.get(f"{key}_cpu_share", [])[-warm:],
                "redis": extra.get(f"{key}_redis_cpu_share", [])[-warm:],
            }
            for key in ("ours", "peer", "single")
        },
        subscribe_seconds={
            "ours": extra.get("ours_subscribe_s", [])[-warm:],
            "peer": extra.get("peer_subscribe_s", [])[-warm:],
            "single": extra.get("single_subscribe_s", [])[-warm:],
        },
        channels_per_master=list(per_master.values()),
        messages=args.messages,
        channels=CHANNELS,
        masters=MASTERS,
        replicas_per_master=args.replicas,
        repeats=args.repeats,
        message_type="bench.notification",
        decoders=VERSIONS,
        redis_py=redis.__version__,
        redis_server=redis_version(),
        quick=args.quick,
        **sizes,
    )


if __name__ == "__main__":
    main()
