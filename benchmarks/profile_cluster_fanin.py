"""cProfile of our side of ``bench_cluster.py``: one run after a warm-up, on the cluster or on
one server.

Run: ``python benchmarks/profile_cluster_fanin.py [cluster|single] [MESSAGES]``; prints the top
functions by internal time, then by cumulative time.
"""

from __future__ import annotations

import cProfile
import pstats
import subprocess
import sys

import bench_cluster
from _redis_common import RedisServer, channel_names, start_publisher
from _typed_common import encoded_payloads, write_payloads

from actors.testing import RedisCluster


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "cluster"
    messages = int(sys.argv[2]) if len(sys.argv) > 2 else 200_000
    path = write_payloads(encoded_payloads())
    assert len(channel_names(bench_cluster.CHANNELS)) == bench_cluster.CHANNELS
    try:
        if mode == "cluster":
            with RedisCluster(replicas_per_master=0, extra_args=bench_cluster.SERVER_ARGS) as c:
                routes = bench_cluster.write_routes(c)

                def publish(count: int) -> subprocess.Popen[str]:
                    return bench_cluster.backlog(
                        bench_cluster.start_cluster_publisher("flood", routes, count, path)
                    )

                run = bench_cluster.ours(bench_cluster.cluster_url(c), publish, True, c.pids, {})
                profile(run, messages)
                routes.unlink()
        else:
            server = RedisServer(bench_cluster.SERVER_ARGS).start()
            try:

                def publish(count: int) -> subprocess.Popen[str]:
                    return bench_cluster.backlog(
                        start_publisher(server.url, "flood", bench_cluster.CHANNELS, count, path)
                    )

                profile(bench_cluster.ours(server.url, publish, False, [], {}), messages)
            finally:
                server.stop()
    finally:
        path.unlink()


def profile(run: object, messages: int) -> None:
    assert callable(run)
    run(30_000)
    profiler = cProfile.Profile()
    profiler.enable()
    rate = run(messages)
    profiler.disable()
    print(f"{rate:,.0f} msg/s under the profiler")
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    main()
