"""Typed fan-out: one channel, 1,000 local typed subscriptions in one process; decode-once.

A separate process (``_raw_publisher.py flood`` with a payload file) floods one channel
(``ch.0``) with ``BenchNotification`` payloads (189-199 bytes, encoded with our ``CODEC``). One
process subscribes to it 1,000 times with ``pubsub.subscribe(...)``: 1,000 subscription actors,
each with its own handler and counter. Redis sends each message once; our hub hands the same
``RedisMessage`` to the 1,000 mailboxes. The figure is deliveries per second (handler calls,
summed over the 1,000 subscriptions, from the first to the last); messages per second is that
divided by 1,000.

Ours: ``message_type=BenchNotification``. Every subscription calls ``decode_cached``, so each
payload is decoded once and the 1,000 subscriptions share the frozen result.

Peer (the main comparison, ``peer``): the same process, the same ``open_pubsub``, the same 1,000
subscription actors and mailboxes, but ``message_type=bytes`` and each handler decoding the
payload itself with the same codec (``codec.decode(payload, BenchNotification)``): 1,000
separate decodes per message. Everything but the decoding is identical, so the ratio is what
decode-once buys.

Second peer (``peer_redis_asyncio``, an extra key): ``redis.asyncio`` ``PubSub`` (defaults)
subscribed once to the channel, calling 1,000 local handlers per message in a loop, each
decoding with ``orjson.loads`` and a plain cattrs converter (what one would write without a
shared decode); no actors, no mailboxes.

Decodes are counted (a ``Codec`` subclass counting ``decode`` calls, the same in ours and the
peer) and reported per message. Mailboxes hold every message of a run (capacity = messages +
16), so nothing is dropped and every delivery is measured; the server runs with
``client-output-buffer-limit pubsub 0 0 0``.

Run: ``python benchmarks/bench_fanout.py [--quick]``. The last line of output is the JSON result.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis
import redis.asyncio
import trio
from _common import emit, interleave, median, parse_args, progress, summary
from _redis_common import (
    Tally,
    finish_publisher,
    redis_url,
    redis_version,
    start_publisher,
    wait_for_tally,
)
from _typed_common import (
    VERSIONS,
    BenchNotification,
    CountingCodec,
    check_payloads,
    encoded_payloads,
    peer_decode,
    write_payloads,
)

from actors import open_actor_system
from actors.pubsub import PubSubSettings, open_pubsub
from actors.runtime import MailboxConfig, Overflow

SUBSCRIBERS = 1000
CHANNEL = "ch.0"
SERVER_ARGS = ("--client-output-buffer-limit", "pubsub 0 0 0")


class Subscriber:
    """One subscription's handler and its own counter."""

    def __init__(self, tally: Tally, codec: CountingCodec | None = None) -> None:
        self.tally = tally
        self.codec = codec
        self.count = 0

    async def typed(self, message: BenchNotification) -> None:
        self.count += 1
        self.tally.record()

    async def raw(self, payload: bytes) -> None:
        assert self.codec is not None
        self.codec.decode(payload, BenchNotification)
        self.count += 1
        self.tally.record()


def actors_case(
    url: str, payload_file: str, extra: dict[str, list[float]], *, decode_once: bool
) -> Any:
    key = "ours" if decode_once else "peer"

    def run(count: int) -> float:
        async def main() -> float:
            codec = CountingCodec()
            tally = Tally(count * SUBSCRIBERS)
            settings = PubSubSettings(codec=codec)
            mailbox = MailboxConfig(capacity=count + 16, overflow=Overflow.DROP_OLDEST)
            async with (
                open_actor_system() as system,
                open_pubsub(system, url, settings=settings) as pubsub,
            ):
                subscribers = [Subscriber(tally, codec) for _ in range(SUBSCRIBERS)]
                handles = []
                handler: Any
                expected: type
                for subscriber in subscribers:
                    if decode_once:
                        handler, expected = subscriber.typed, BenchNotification
                    else:
                        handler, expected = subscriber.raw, bytes
                    handles.append(
                        await pubsub.subscribe(
                            CHANNEL, handler, message_type=expected, mailbox=mailbox
                        )
                    )
                publisher = start_publisher(url, "flood", 1, count, payload_file)
                await wait_for_tally(tally, publisher)
                await trio.to_thread.run_sync(finish_publisher, publisher)
                stats = [handle.statistics() for handle in handles]
                dropped = sum(stat.mailbox.dropped for stat in stats)
                # Typed decodes only: the peer's decode_cached into bytes (one copy per
                # message) is not a decode into BenchNotification.
                typed = codec.decodes - (0 if decode_once else count)
                extra.setdefault(f"{key}_dropped", []).append(dropped)
                extra.setdefault(f"{key}_decodes_per_message", []).append(typed / count)
                extra.setdefault(f"{key}_min_per_subscriber", []).append(
                    min(subscriber.count for subscriber in subscribers)
                )
            return tally.rate()

        return trio.run(main)

    return run


def redis_asyncio_case(url: str, payload_file: str, extra: dict[str, list[float]]) -> Any:
    def run(count: int) -> float:
        async def main() -> float:
            client = redis.asyncio.Redis.from_url(url)
            pubsub = client.pubsub()
            counts = [0] * SUBSCRIBERS
            decodes = 0

            def make_handler(index: int) -> Any:
                def handler(payload: bytes) -> None:
                    nonlocal decodes
                    peer_decode(payload)
                    decodes += 1
                    counts[index] += 1

                return handler

            handlers = [make_handler(index) for index in range(SUBSCRIBERS)]
            await pubsub.subscribe(CHANNEL)
            messages = 0
            first = last = 0.0
            publisher = None
            async for message in pubsub.listen():
                kind = message["type"]
                if kind == "message":
                    data = message["data"]
                    if messages == 0:
                        first = time.perf_counter()
                    for handler in handlers:
                        handler(data)
                    messages += 1
                    if messages == count:
                        last = time.perf_counter()
                        break
                elif kind == "subscribe":
                    publisher = start_publisher(url, "flood", 1, count, payload_file)
            assert publisher is not None
            await asyncio.to_thread(finish_publisher, publisher)
            extra.setdefault("peer_redis_asyncio_decodes_per_message", []).append(
                decodes / messages
            )
            await pubsub.aclose()
            await client.aclose()
            # The clock starts just before the first message's 1,000 handler calls.
            return (messages * SUBSCRIBERS - 1) / (last - first)

        return asyncio.run(main())

    return run


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0],
        full={"messages": 2_000, "repeats": 5},
        quick={"messages": 500, "repeats": 3},
    )
    payloads = encoded_payloads()
    sizes = check_payloads(payloads)
    path = write_payloads(payloads)
    progress(
        f"bench_fanout: {args.messages:,} messages per run to {SUBSCRIBERS:,} subscriptions of "
        f"one channel, {args.repeats} repeats, {VERSIONS}"
    )
    extra: dict[str, list[float]] = {}
    names = {
        "ours (decode once)": "ours",
        "peer (1000 decodes/msg)": "peer",
        "peer redis.asyncio loop": "peer_redis_asyncio",
    }
    try:
        with redis_url(SERVER_ARGS) as url:
            samples = interleave(
                {
                    "ours (decode once)": actors_case(url, str(path), extra, decode_once=True),
                    "peer (1000 decodes/msg)": actors_case(
                        url, str(path), extra, decode_once=False
                    ),
                    "peer redis.asyncio loop": redis_asyncio_case(url, str(path), extra),
                },
                size=args.messages,
                repeats=args.repeats,
                unit="deliveries/s",
                warmup=min(args.messages, 200),
            )
    finally:
        path.unlink(missing_ok=True)
    results = {names[name]: summary(values) for name, values in samples.items()}
    mine, theirs, loop = results["ours"], results["peer"], results["peer_redis_asyncio"]
    recent = {key: values[-args.repeats :] for key, values in extra.items()}
    progress(
        f"medians (deliveries/s): ours {mine['median']:,.0f}, peer {theirs['median']:,.0f}, "
        f"redis.asyncio loop {loop['median']:,.0f}; ratio {mine['median'] / theirs['median']:.2f}"
    )
    emit(
        "typed_fanout",
        ours=mine["median"],
        peer=theirs["median"],
        unit="deliveries/s",
        ours_messages_per_s=round(mine["median"] / SUBSCRIBERS, 1),
        peer_messages_per_s=round(theirs["median"] / SUBSCRIBERS, 1),
        ours_decodes_per_message=median(recent["ours_decodes_per_message"]),
        peer_decodes_per_message=median(recent["peer_decodes_per_message"]),
        peer_redis_asyncio=loop["median"],
        peer_redis_asyncio_messages_per_s=round(loop["median"] / SUBSCRIBERS, 1),
        peer_redis_asyncio_decodes_per_message=median(
            recent["peer_redis_asyncio_decodes_per_message"]
        ),
        ratio_vs_redis_asyncio=round(mine["median"] / loop["median"], 4),
        ours_spread=mine["spread"],
        peer_spread=theirs["spread"],
        peer_redis_asyncio_spread=loop["spread"],
        ours_samples=mine["samples"],
        peer_samples=theirs["samples"],
        peer_redis_asyncio_samples=loop["samples"],
        ours_dropped=recent["ours_dropped"],
        peer_dropped=recent["peer_dropped"],
        ours_is="open_pubsub, 1,000 subscription actors, message_type=BenchNotification, "
        "decode_cached shares one decode per message",
        peer_is="same open_pubsub and 1,000 subscription actors, message_type=bytes, "
        "each handler calls codec.decode(payload, BenchNotification)",
        peer_redis_asyncio_is="redis.asyncio PubSub, one subscription, 1,000 handlers "
        "called in a loop, each orjson.loads + plain cattrs structure",
        messages=args.messages,
        subscribers=SUBSCRIBERS,
        repeats=args.repeats,
        decoders=VERSIONS,
        redis_py=redis.__version__,
        redis_server=redis_version(),
        quick=args.quick,
        **sizes,
    )


if __name__ == "__main__":
    main()
