"""Spawn rate and memory per idle actor, against bare trio tasks parked on their own channel.

Ours: a ``simple_one_for_one`` supervisor whose template is a class-based ``Actor``;
``await supervisor.spawn()`` is called N times in a row (it returns once the child has started),
and the refs are kept in a list. Peer: N bare trio tasks, each parked in ``await receive()`` on
its own ``trio.open_memory_channel(1000)``; the spawner creates the channel, keeps the send side
in a list and starts the task with ``nursery.start_soon``, then waits until every task is parked
(``trio.testing.wait_all_tasks_blocked``). As an extra, the peer is also timed with
``await nursery.start(...)``, which like ``supervisor.spawn`` returns only once the task has
started.

The cyclic garbage collector dominates both spawn rates once many objects are alive (every
actor adds dozens of GC-tracked objects, and each full collection walks all of them), so the
extras ``ours_gc_off`` and ``peer_gc_off`` repeat the timed loops with ``gc.disable()`` to show
what is left without it. The headline figures keep the GC on, as applications run.

Memory: each figure comes from a fresh subprocess, so that memory freed by earlier runs cannot
hide growth. The process sets everything up, takes a baseline, spawns the actors (or tasks),
waits until all are parked, and reports the growth divided by the count: once measured by
``tracemalloc`` (Python allocations only) and once, in another process without tracemalloc, as
the RSS delta (what the OS sees, allocator overhead included).

Run: ``python benchmarks/bench_spawn.py [--quick]``. The last line of output is the JSON result.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import trio
import trio.testing
from _common import emit, interleave, median, parse_args, progress, rss_bytes, spread

from actors import (
    Actor,
    ActorRef,
    ChildSpec,
    Strategy,
    SupervisorSpec,
    open_actor_system,
    start_supervisor,
)

CHANNEL_CAPACITY = 1000  # the peer's channel size, the same as our default mailbox
GOAL_SPAWNS_PER_S = 50_000
GOAL_BYTES_PER_ACTOR = 6 * 1024


class Idle(Actor):
    """A class-based actor that does nothing until a message comes."""

    async def receive(self, message: Any) -> None:
        return None


SPEC = SupervisorSpec(
    strategy=Strategy.SIMPLE_ONE_FOR_ONE, children=[ChildSpec(id="idle", start=Idle)]
)


async def _park(receiver: trio.MemoryReceiveChannel[object]) -> None:
    await receiver.receive()


async def _park_started(
    receiver: trio.MemoryReceiveChannel[object],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    task_status.started()
    await receiver.receive()


# -- spawn rate ------------------------------------------------------------------------------------


@contextmanager
def _collector(enabled: bool) -> Iterator[None]:
    """Leave the cyclic GC as it is, or turn it off for the timed section only."""
    if enabled:
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def ours_spawn_rate(count: int, *, collect: bool = True) -> float:
    async def main() -> float:
        async with open_actor_system() as system:
            supervisor = await start_supervisor(system, SPEC)
            spawn = supervisor.spawn
            refs: list[ActorRef] = []
            with _collector(collect):
                started = time.perf_counter()
                for _ in range(count):
                    refs.append(await spawn())
                elapsed = time.perf_counter() - started
            await supervisor.stop()
        return count / elapsed

    return trio.run(main)


def peer_start_soon_rate(count: int, *, collect: bool = True) -> float:
    async def main() -> float:
        senders: list[trio.MemorySendChannel[object]] = []
        async with trio.open_nursery() as nursery:
            with _collector(collect):
                started = time.perf_counter()
                for _ in range(count):
                    sender, receiver = trio.open_memory_channel[object](CHANNEL_CAPACITY)
                    senders.append(sender)
                    nursery.start_soon(_park, receiver)
                await trio.testing.wait_all_tasks_blocked()
                elapsed = time.perf_counter() - started
            nursery.cancel_scope.cancel()
        return count / elapsed

    return trio.run(main)


def peer_start_rate(count: int) -> float:
    async def main() -> float:
        senders: list[trio.MemorySendChannel[object]] = []
        async with trio.open_nursery() as nursery:
            started = time.perf_counter()
            for _ in range(count):
                sender, receiver = trio.open_memory_channel[object](CHANNEL_CAPACITY)
                senders.append(sender)
                await nursery.start(_park_started, receiver)
            elapsed = time.perf_counter() - started
            nursery.cancel_scope.cancel()
        return count / elapsed

    return trio.run(main)


# -- memory per idle actor (run in a subprocess) ---------------------------------------------------


def _measure(before: int, count: int, mode: str) -> float:
    gc.collect()
    after = tracemalloc.get_traced_memory()[0] if mode == "tracemalloc" else rss_bytes()
    return (after - before) / count


def _baseline(mode: str) -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0] if mode == "tracemalloc" else rss_bytes()


async def _probe_ours(count: int, mode: str) -> float:
    async with open_actor_system() as system:
        supervisor = await start_supervisor(system, SPEC)
        refs: list[ActorRef] = []
        before = _baseline(mode)
        for _ in range(count):
            refs.append(await supervisor.spawn())
        await trio.testing.wait_all_tasks_blocked()
        per_actor = _measure(before, count, mode)
        await supervisor.stop()
    return per_actor


async def _probe_peer(count: int, mode: str) -> float:
    senders: list[trio.MemorySendChannel[object]] = []
    async with trio.open_nursery() as nursery:
        await trio.testing.wait_all_tasks_blocked()
        before = _baseline(mode)
        for _ in range(count):
            sender, receiver = trio.open_memory_channel[object](CHANNEL_CAPACITY)
            senders.append(sender)
            nursery.start_soon(_park, receiver)
        await trio.testing.wait_all_tasks_blocked()
        per_task = _measure(before, count, mode)
        nursery.cancel_scope.cancel()
    return per_task


def run_probe(kind: str, mode: str, count: int) -> None:
    """The subprocess side: measure one figure and print it as JSON."""
    if mode == "tracemalloc":
        tracemalloc.start()
    probe = _probe_ours if kind == "ours" else _probe_peer
    per_item = trio.run(probe, count, mode)
    print(json.dumps({"kind": kind, "mode": mode, "count": count, "bytes_per": per_item}))


def probe_in_subprocess(kind: str, mode: str, count: int) -> float:
    command = [sys.executable, __file__, "--probe", kind, "--probe-mode", mode]
    command += ["--actors", str(count)]
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    return float(json.loads(result.stdout.splitlines()[-1])["bytes_per"])


def measure_memory(count: int, repeats: int) -> dict[str, list[float]]:
    cases = [
        ("ours", "tracemalloc"),
        ("peer", "tracemalloc"),
        ("ours", "rss"),
        ("peer", "rss"),
    ]
    samples: dict[str, list[float]] = {f"{kind}_{mode}": [] for kind, mode in cases}
    for repeat in range(repeats):
        order = cases if repeat % 2 == 0 else cases[::-1]
        for kind, mode in order:
            value = probe_in_subprocess(kind, mode, count)
            samples[f"{kind}_{mode}"].append(value)
            progress(
                f"[{repeat + 1}/{repeats}] memory {kind:<4} {mode:<11} "
                f"{value:>10,.0f} bytes per {'actor' if kind == 'ours' else 'task'}"
            )
    return samples


def _probe_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--probe", choices=["ours", "peer"], help=argparse.SUPPRESS)
    parser.add_argument("--probe-mode", choices=["tracemalloc", "rss"], help=argparse.SUPPRESS)


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0],
        full={"actors": 100_000, "repeats": 5, "memory_actors": 100_000, "memory_repeats": 3},
        quick={"actors": 20_000, "repeats": 3, "memory_actors": 20_000, "memory_repeats": 1},
        extend=_probe_options,
    )
    if args.probe:
        run_probe(args.probe, args.probe_mode, args.actors)
        return
    progress(
        f"bench_spawn: {args.actors:,} spawns per run, {args.repeats} repeats; memory with "
        f"{args.memory_actors:,} idle actors, {args.memory_repeats} repeat(s)"
    )
    rates = interleave(
        {
            "ours (supervisor.spawn)": ours_spawn_rate,
            "peer (start_soon)": peer_start_soon_rate,
            "peer (await nursery.start)": peer_start_rate,
            "ours, gc off while timed": partial(ours_spawn_rate, collect=False),
            "peer start_soon, gc off": partial(peer_start_soon_rate, collect=False),
        },
        size=args.actors,
        repeats=args.repeats,
        unit="spawns/s",
        warmup=min(args.actors, 10_000),
    )
    memory = measure_memory(args.memory_actors, args.memory_repeats)
    ours = median(rates["ours (supervisor.spawn)"])
    peer = median(rates["peer (start_soon)"])
    peer_start = median(rates["peer (await nursery.start)"])
    ours_gc_off = median(rates["ours, gc off while timed"])
    peer_gc_off = median(rates["peer start_soon, gc off"])
    bytes_per_actor = median(memory["ours_tracemalloc"])
    rss_per_actor = median(memory["ours_rss"])
    progress(
        f"medians: ours {ours:,.0f} spawns/s (goal >= {GOAL_SPAWNS_PER_S:,}), peer start_soon "
        f"{peer:,.0f}, peer nursery.start {peer_start:,.0f}; with the GC off while timed: ours "
        f"{ours_gc_off:,.0f}, peer {peer_gc_off:,.0f}; ours {bytes_per_actor:,.0f} B per "
        f"idle actor by tracemalloc (goal <= {GOAL_BYTES_PER_ACTOR:,}), {rss_per_actor:,.0f} by RSS"
    )
    emit(
        "spawn",
        ours=ours,
        peer=peer,
        unit="spawns/s",
        goal_spawns_per_s=GOAL_SPAWNS_PER_S,
        bytes_per_actor=round(bytes_per_actor),
        goal_bytes_per_actor=GOAL_BYTES_PER_ACTOR,
        goal_met=ours >= GOAL_SPAWNS_PER_S and bytes_per_actor <= GOAL_BYTES_PER_ACTOR,
        rss_bytes_per_actor=round(rss_per_actor),
        peer_bytes_per_task=round(median(memory["peer_tracemalloc"])),
        peer_rss_bytes_per_task=round(median(memory["peer_rss"])),
        peer_nursery_start=round(peer_start, 1),
        ratio_vs_nursery_start=round(ours / peer_start, 4),
        ours_gc_off=round(ours_gc_off, 1),
        peer_gc_off=round(peer_gc_off, 1),
        ratio_gc_off=round(ours_gc_off / peer_gc_off, 4),
        ours_spread=round(spread(rates["ours (supervisor.spawn)"]), 3),
        peer_spread=round(spread(rates["peer (start_soon)"]), 3),
        peer_nursery_start_spread=round(spread(rates["peer (await nursery.start)"]), 3),
        ours_samples=[round(value, 1) for value in rates["ours (supervisor.spawn)"]],
        peer_samples=[round(value, 1) for value in rates["peer (start_soon)"]],
        memory_samples={key: [round(value) for value in values] for key, values in memory.items()},
        actors=args.actors,
        memory_actors=args.memory_actors,
        repeats=args.repeats,
        memory_repeats=args.memory_repeats,
        channel_capacity=CHANNEL_CAPACITY,
        quick=args.quick,
    )


if __name__ == "__main__":
    main()
