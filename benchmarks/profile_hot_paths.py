"""Profile where our time and memory go on the spawn and tell paths (see docs/performance.md).

Usage:
    python benchmarks/profile_hot_paths.py gc [--actors N]       # GC time during the spawn loop
    python benchmarks/profile_hot_paths.py spawn [--actors N]    # cProfile of supervisor.spawn
    python benchmarks/profile_hot_paths.py tell [--messages N]   # cProfile of tell + Actor.receive
    python benchmarks/profile_hot_paths.py memory [--actors N]   # tracemalloc by allocation site

cProfile adds a fixed cost to every Python call, so its absolute times are inflated; read the
shares and the call counts, and take rates from the benchmarks themselves.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import time
import tracemalloc
from collections.abc import Callable

import trio
import trio.testing
from bench_mailbox import ours_class
from bench_spawn import SPEC, ours_spawn_rate

from actors import ActorRef, open_actor_system, start_supervisor


def profile_gc(actors: int) -> None:
    """Time every collection that runs while ``actors`` children are spawned."""
    pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
    begun = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            begun[0] = time.perf_counter()
        else:
            pauses[info["generation"]].append(time.perf_counter() - begun[0])

    gc.callbacks.append(on_gc)
    try:
        started = time.perf_counter()
        rate = ours_spawn_rate(actors)
        total = time.perf_counter() - started
    finally:
        gc.callbacks.remove(on_gc)
    spawn_seconds = actors / rate
    print(f"{actors:,} spawns at {rate:,.0f}/s: {spawn_seconds:.2f} s (whole run {total:.2f} s)")
    for generation, times in pauses.items():
        print(
            f"  gen {generation}: {len(times):>6,} collections, {sum(times):7.3f} s, "
            f"longest {max(times, default=0) * 1000:7.1f} ms"
        )
    print(f"  every collection in the run: {sum(sum(t) for t in pauses.values()):.3f} s")


def run_profiled(label: str, call: Callable[[], float], rows: int) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    result = call()
    profiler.disable()
    print(f"{label}: {result:,.0f} per second under cProfile")
    stats = pstats.Stats(profiler).strip_dirs().sort_stats("tottime")
    stats.print_stats(rows)


async def _spawn_idle(actors: int) -> list[tracemalloc.StatisticDiff]:
    async with open_actor_system() as system:
        supervisor = await start_supervisor(system, SPEC)
        refs: list[ActorRef] = []
        gc.collect()
        before = tracemalloc.take_snapshot()
        for _ in range(actors):
            refs.append(await supervisor.spawn())
        await trio.testing.wait_all_tasks_blocked()
        gc.collect()
        after = tracemalloc.take_snapshot()
        await supervisor.stop()
    return after.compare_to(before, "lineno")


def profile_memory(actors: int, rows: int) -> None:
    tracemalloc.start(1)
    differences = trio.run(_spawn_idle, actors)
    tracemalloc.stop()
    total = sum(difference.size_diff for difference in differences)
    print(f"{total / actors:,.0f} bytes per idle actor, by allocation site:")
    for difference in differences[:rows]:
        frame = difference.traceback[0]
        print(
            f"  {difference.size_diff / actors:8,.1f} B  {difference.count_diff / actors:5.2f} "
            f"blocks  {frame.filename}:{frame.lineno}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["gc", "spawn", "tell", "memory"])
    parser.add_argument("--actors", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=30)
    args = parser.parse_args()
    if args.what == "gc":
        profile_gc(args.actors)
    elif args.what == "spawn":
        gc.disable()  # the gc report shows the collector's share; this one shows the code's
        run_profiled("spawn, GC off", lambda: ours_spawn_rate(args.actors), args.rows)
    elif args.what == "tell":
        run_profiled("tell", lambda: ours_class(args.messages), args.rows)
    else:
        profile_memory(args.actors, args.rows)


if __name__ == "__main__":
    main()
