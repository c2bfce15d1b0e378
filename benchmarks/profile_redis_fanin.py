"""cProfile of our side of ``bench_fanin.py``: one 300,000-message run after a warm-up.

Run: ``python benchmarks/profile_redis_fanin.py [MESSAGES]``; prints the top functions by
internal time.
"""

from __future__ import annotations

import cProfile
import pstats
import sys

import bench_fanin
from _redis_common import redis_url


def main() -> None:
    messages = int(sys.argv[1]) if len(sys.argv) > 1 else 300_000
    with redis_url(bench_fanin.SERVER_ARGS) as url:
        run = bench_fanin.ours(url, {})
        run(50_000)
        profile = cProfile.Profile()
        profile.enable()
        rate = run(messages)
        profile.disable()
    print(f"{rate:,.0f} msg/s under the profiler")
    pstats.Stats(profile).sort_stats("tottime").print_stats(28)


if __name__ == "__main__":
    main()
