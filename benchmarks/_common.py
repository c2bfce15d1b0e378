"""Helpers shared by the benchmarks: arguments, interleaved repeats, medians and the JSON line.

Every benchmark measures our code and a pure-trio peer in the same process, alternating between
them over several repeats (ours first on even repeats, the peer first on odd ones), and reports
the medians. Each measurement runs in a fresh ``trio.run`` after a ``gc.collect()``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import trio


def _positive_int(text: str) -> int:
    value = int(text.replace("_", ""))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text}")
    return value


def parse_args(
    description: str,
    *,
    full: Mapping[str, int],
    quick: Mapping[str, int],
    extend: Callable[[argparse.ArgumentParser], None] | None = None,
    argv: Sequence[str] | None = None,
) -> argparse.Namespace:
    """Parse ``--quick`` plus one integer option per size in ``full``.

    Each size defaults to its value in ``full``, or in ``quick`` with ``--quick``; an explicit
    option wins over both. ``extend`` may add benchmark-specific options.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick", action="store_true", help="a smaller run that finishes in under a minute"
    )
    for key, default in full.items():
        parser.add_argument(
            f"--{key.replace('_', '-')}",
            type=_positive_int,
            default=None,
            help=f"default {default:,} ({quick[key]:,} with --quick)",
        )
    parser.add_argument(
        "--gc-threshold",
        type=_positive_int,
        default=None,
        metavar="N",
        help="collect the young generation every N allocations, for ours and the peer alike "
        "(tune_garbage_collector(N, freeze=False); default: Python's 700)",
    )
    if extend is not None:
        extend(parser)
    args = parser.parse_args(argv)
    if args.gc_threshold is not None:
        from actors.runtime import tune_garbage_collector

        tune_garbage_collector(args.gc_threshold, freeze=False)
    sizes = quick if args.quick else full
    for key, default in sizes.items():
        if getattr(args, key) is None:
            setattr(args, key, default)
    return args


def progress(text: str) -> None:
    """Print one human-readable progress line (never the last line of a run)."""
    print(text, flush=True)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def spread(values: Sequence[float]) -> float:
    """(max - min) / median: the relative width of the samples."""
    middle = median(values)
    return (max(values) - min(values)) / middle if middle else 0.0


def summary(values: Sequence[float]) -> dict[str, Any]:
    """Median, spread and the raw samples, rounded for the JSON line."""
    return {
        "median": round(median(values), 1),
        "spread": round(spread(values), 3),
        "samples": [round(value, 1) for value in values],
    }


def interleave(
    cases: Mapping[str, Callable[[int], float]],
    *,
    size: int,
    repeats: int,
    unit: str,
    warmup: int = 0,
) -> dict[str, list[float]]:
    """Run every case ``repeats`` times, alternating the order, and return the samples.

    Each case takes the workload size and returns a figure in ``unit``. A warm-up round with
    ``warmup`` as the size runs first (unrecorded) when ``warmup`` is positive.
    """
    names = list(cases)
    if warmup:
        for name in names:
            gc.collect()
            cases[name](warmup)
        progress(f"warm-up done ({warmup:,} each)")
    samples: dict[str, list[float]] = {name: [] for name in names}
    for repeat in range(repeats):
        order = names if repeat % 2 == 0 else names[::-1]
        for name in order:
            gc.collect()
            value = cases[name](size)
            samples[name].append(value)
            progress(f"[{repeat + 1}/{repeats}] {name:<28} {value:>14,.0f} {unit}")
    return samples


def rss_bytes() -> int:
    """The resident set size of this process now (Linux ``/proc``; else the peak RSS)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def environment() -> dict[str, Any]:
    """The versions and machine facts that belong next to every figure."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    import actors

    return {
        "actors_path": os.path.dirname(os.path.abspath(actors.__file__)),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "trio": trio.__version__,
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable,
        "machine": platform.machine(),
        "system": platform.system(),
        "gc_threshold": gc.get_threshold()[0],
    }


def emit(bench: str, *, ours: float, peer: float, unit: str, **extra: Any) -> None:
    """Print the result as exactly one JSON line, the last line of the run.

    ``ratio`` is ``ours / peer``; every benchmark reports a rate, so higher is better.
    """
    record: dict[str, Any] = {
        "bench": bench,
        "ours": round(ours, 1),
        "peer": round(peer, 1),
        "ratio": round(ours / peer, 4) if peer else None,
        "unit": unit,
    }
    record.update(extra)
    record.update(environment())
    sys.stdout.flush()
    print(json.dumps(record), flush=True)


def emit_against_goal(
    bench: str,
    mine: Mapping[str, Any],
    theirs: Mapping[str, Any],
    *,
    unit: str,
    goal: float,
    note: str = "",
    **extra: Any,
) -> None:
    """Print the medians against a ratio goal, then emit the JSON line with spreads and samples.

    ``mine`` and ``theirs`` are ``summary`` results; ``note`` follows our median in the
    progress line.
    """
    ratio = mine["median"] / theirs["median"]
    progress(
        f"medians: ours {mine['median']:,.0f}{note}, peer {theirs['median']:,.0f} {unit}; "
        f"ratio {ratio:.3f} (goal >= {goal}: {'met' if ratio >= goal else 'NOT met'})"
    )
    emit(
        bench,
        ours=mine["median"],
        peer=theirs["median"],
        unit=unit,
        goal=goal,
        goal_met=ratio >= goal,
        ours_spread=mine["spread"],
        peer_spread=theirs["spread"],
        ours_samples=mine["samples"],
        peer_samples=theirs["samples"],
        **extra,
    )
