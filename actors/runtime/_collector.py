"""``tune_garbage_collector``: Python's cyclic collector set for processes with many actors.

Every actor is a task with a mailbox, and every message in flight is a handful of short-lived
objects. With Python's default young-generation threshold (700 allocations) a busy process
collects the young generation thousands of times a second; whatever is in flight at that moment
survives, is promoted, and soon sets off a full collection, which walks every live object: every
actor, every task, every mailbox. With a thousand actors those full collections take most of the
time (docs/performance.md measures it). Reference counting frees almost everything at once
anyway; only reference cycles wait for the collector, so collecting less often costs little
memory. The library never calls this by itself: the process decides.
"""

from __future__ import annotations

import gc
from typing import Final

__all__ = ["DEFAULT_GC_THRESHOLD", "tune_garbage_collector"]

DEFAULT_GC_THRESHOLD: Final = 50_000


def tune_garbage_collector(
    young_threshold: int = DEFAULT_GC_THRESHOLD, *, freeze: bool = True
) -> None:
    """Collect the young generation every ``young_threshold`` allocations (instead of 700).

    Args:
        young_threshold: The generation-0 threshold; the older generations' stay as they are.
        freeze: Also collect once and ``gc.freeze()`` what exists now, so that later full
            collections skip it: call it once the process has started its long-lived actors.

    Raises:
        ValueError: ``young_threshold`` is below 1.
    """
    if young_threshold < 1:
        raise ValueError(f"young_threshold must be at least 1: {young_threshold}")
    if freeze:
        gc.collect()
        gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, old)
