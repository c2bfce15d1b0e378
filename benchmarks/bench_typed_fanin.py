"""Typed fan-in: ``open_pubsub`` with 1,000 typed subscriptions, against redis.asyncio + cattrs.

The fan-in of ``bench_fanin.py`` through the typed API. A separate process
(``_raw_publisher.py flood`` with a payload file) writes pipelined ``PUBLISH`` commands as fast as
it can, round-robin over 1,000 channels; every payload is a ``BenchNotification`` (a registered
``Message``: id, timestamp, user id, category, a small data dict; 189-199 bytes) encoded with our
``CODEC``. The subscriber's event loop is held (a blocking wait, on purpose) until the publisher
has sent everything, so Redis holds the whole flood and what is measured is the subscriber side
draining it alone, as in ``bench_cluster.py``. The figure is typed messages handled per second,
from the first handler call to the last.

Ours: ``open_pubsub(system, url)`` (default ``PubSubSettings``: one RESP3 connection, mailbox of
1,000 per subscription) and ``pubsub.subscribe(channel, handler, message_type=BenchNotification)``
for each of the 1,000 channels: one supervised subscription actor per channel, decoding with
``decode_cached`` (our codec: strict scalar hooks, size and depth limits, tag check) and calling
a handler that counts.

Peer: ``redis.asyncio`` (hiredis parser, RESP3 default) ``PubSub`` with default settings,
subscribed to the same 1,000 channels, ``async for message in pubsub.listen()``, decoding each
payload with ``orjson.loads`` and a plain ``cattrs.preconf.orjson.make_converter()`` converter
into an equivalent attrs class, under ``asyncio.run`` in this process.

The server runs with ``client-output-buffer-limit pubsub 0 0 0`` so that neither subscriber is
disconnected while Redis queues the flood.

The headline keeps Python's default collector on both sides (unless ``--gc-threshold`` sets
another for the whole run). Then both sides run again, fewer times, with the young-generation
threshold set to ``TUNED_THRESHOLD`` for the process (``tune_garbage_collector``'s setting,
without the freeze, for ours and the peer alike); those figures are the extra keys
``ours_tuned``, ``peer_tuned`` and ``ratio_tuned``.

Run: ``python benchmarks/bench_typed_fanin.py [--quick]``. The last line of output is the JSON
result.
"""

from __future__ import annotations

import gc
from typing import Any

import redis
import redis.asyncio
from _common import emit_against_goal, interleave, parse_args, progress, summary
from _redis_common import (
    pubsub_fanin,
    redis_asyncio_fanin,
    redis_url,
    redis_version,
)
from _typed_common import (
    VERSIONS,
    BenchNotification,
    check_payloads,
    encoded_payloads,
    peer_decode,
    write_payloads,
)

CHANNELS = 1000
GOAL = 3.0  # ours / peer
SERVER_ARGS = ("--client-output-buffer-limit", "pubsub 0 0 0")
TUNED_THRESHOLD = 50_000  # the young generation's threshold of the extra tuned-collector runs


def ours(url: str, payload_file: str, extra: dict[str, list[float]]) -> Any:
    def run(count: int) -> float:
        return pubsub_fanin(url, CHANNELS, count, BenchNotification, extra, payload_file)

    return run


def peer(url: str, payload_file: str, extra: dict[str, list[float]]) -> Any:
    def run(count: int) -> float:
        rate, handled = redis_asyncio_fanin(url, CHANNELS, count, peer_decode, payload_file)
        extra.setdefault("peer_handled", []).append(handled)
        return rate

    return run


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0],
        full={"messages": 1_000_000, "repeats": 5},
        quick={"messages": 200_000, "repeats": 3},
    )
    payloads = encoded_payloads()
    sizes = check_payloads(payloads)
    path = write_payloads(payloads)
    progress(
        f"bench_typed_fanin: {args.messages:,} messages per run over {CHANNELS:,} channels, "
        f"{args.repeats} repeats, payloads {sizes['payload_bytes_min']}-"
        f"{sizes['payload_bytes_max']} bytes, {VERSIONS}"
    )
    extra: dict[str, list[float]] = {}
    try:
        with redis_url(SERVER_ARGS) as url:
            cases = {
                "ours (open_pubsub, 1000 subs)": ours(url, str(path), extra),
                "peer (redis.asyncio+cattrs)": peer(url, str(path), extra),
            }
            samples = interleave(
                cases,
                size=args.messages,
                repeats=args.repeats,
                unit="msg/s",
                warmup=min(args.messages, 50_000),
            )
            headline_extra = {key: values[-args.repeats :] for key, values in extra.items()}
            thresholds = gc.get_threshold()
            gc.set_threshold(TUNED_THRESHOLD, *thresholds[1:])
            try:
                progress(f"both sides again, young-generation threshold {TUNED_THRESHOLD:,}")
                tuned = interleave(
                    cases,
                    size=args.messages,
                    repeats=max(1, args.repeats // 2),
                    unit="msg/s",
                )
            finally:
                gc.set_threshold(*thresholds)
    finally:
        path.unlink(missing_ok=True)
    ours_tuned = summary(tuned["ours (open_pubsub, 1000 subs)"])["median"]
    peer_tuned = summary(tuned["peer (redis.asyncio+cattrs)"])["median"]
    emit_against_goal(
        "typed_fanin",
        summary(samples["ours (open_pubsub, 1000 subs)"]),
        summary(samples["peer (redis.asyncio+cattrs)"]),
        unit="typed msg/s",
        goal=GOAL,
        ours_dropped=headline_extra.get("ours_dropped", []),
        ours_decode_errors=headline_extra.get("ours_decode_errors", []),
        messages=args.messages,
        channels=CHANNELS,
        repeats=args.repeats,
        message_type="bench.notification",
        peer_decoder="orjson.loads + cattrs.preconf.orjson.make_converter().structure",
        decoders=VERSIONS,
        redis_py=redis.__version__,
        redis_server=redis_version(),
        quick=args.quick,
        ours_tuned=round(ours_tuned, 1),
        peer_tuned=round(peer_tuned, 1),
        ratio_tuned=round(ours_tuned / peer_tuned, 4),
        tuned_gc_threshold=TUNED_THRESHOLD,
        **sizes,
    )


if __name__ == "__main__":
    main()
