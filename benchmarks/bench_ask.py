"""Ask round trips: one asker task, one actor, against a raw trio request/reply channel pair.

Ours: the asker calls ``await ref.ask(message)`` in a loop (default 5 s deadline, as a user would)
and a class-based ``Actor`` replies with the value its ``receive`` returns (the message itself).
Peer: two ``trio.open_memory_channel`` of the same capacity as our mailbox; the asker sends the
bare message on the first and awaits the reply on the second, and an echo task sends back each
message it receives. Only one request is in flight at any time on both sides.

Run: ``python benchmarks/bench_ask.py [--quick]``. The last line of output is the JSON result.
"""

from __future__ import annotations

import math
import time
from functools import partial
from typing import Any

import trio
import trio.testing
from _common import emit, interleave, parse_args, progress, summary

from actors import Actor, MailboxConfig, open_actor_system

CAPACITY = 1000  # the mailbox size and the channel size


class Echo(Actor):
    """Replies to every ask with the message it was asked."""

    async def receive(self, message: Any) -> Any:
        return message


def ours_ask(count: int, *, timeout: float | None = None) -> float:
    async def main() -> float:
        async with open_actor_system() as system:
            ref = await system.spawn(Echo, mailbox=MailboxConfig(CAPACITY))
            await trio.testing.wait_all_tasks_blocked()
            ask = ref.ask
            started = time.perf_counter()
            if timeout is None:
                for message in range(count):
                    await ask(message)
            else:
                for message in range(count):
                    await ask(message, timeout=timeout)
            elapsed = time.perf_counter() - started
        return count / elapsed

    return trio.run(main)


def peer_channels(count: int) -> float:
    async def echo(
        requests: trio.MemoryReceiveChannel[int], replies: trio.MemorySendChannel[int]
    ) -> None:
        async for message in requests:
            await replies.send(message)

    async def main() -> float:
        request_send, request_receive = trio.open_memory_channel[int](CAPACITY)
        reply_send, reply_receive = trio.open_memory_channel[int](CAPACITY)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(echo, request_receive, reply_send)
            await trio.testing.wait_all_tasks_blocked()
            send = request_send.send
            receive = reply_receive.receive
            started = time.perf_counter()
            for message in range(count):
                await send(message)
                await receive()
            elapsed = time.perf_counter() - started
            nursery.cancel_scope.cancel()
        return count / elapsed

    return trio.run(main)


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0],
        full={"round_trips": 300_000, "repeats": 7},
        quick={"round_trips": 50_000, "repeats": 5},
    )
    progress(f"bench_ask: {args.round_trips:,} round trips per run, {args.repeats} repeats")
    samples = interleave(
        {
            "ours (ref.ask)": ours_ask,
            "ours (ref.ask, timeout=inf)": partial(ours_ask, timeout=math.inf),
            "peer (channel pair)": peer_channels,
        },
        size=args.round_trips,
        repeats=args.repeats,
        unit="round trips/s",
        warmup=min(args.round_trips, 20_000),
    )
    ours = summary(samples["ours (ref.ask)"])
    no_deadline = summary(samples["ours (ref.ask, timeout=inf)"])
    peer = summary(samples["peer (channel pair)"])
    progress(
        f"medians: ours {ours['median']:,.0f}, ours without a deadline "
        f"{no_deadline['median']:,.0f}, peer {peer['median']:,.0f} round trips/s; "
        f"ratio {ours['median'] / peer['median']:.3f}"
    )
    emit(
        "ask",
        ours=ours["median"],
        peer=peer["median"],
        unit="round trips/s",
        ours_timeout_inf=no_deadline["median"],
        ours_spread=ours["spread"],
        ours_timeout_inf_spread=no_deadline["spread"],
        peer_spread=peer["spread"],
        ours_samples=ours["samples"],
        ours_timeout_inf_samples=no_deadline["samples"],
        peer_samples=peer["samples"],
        round_trips=args.round_trips,
        capacity=CAPACITY,
        repeats=args.repeats,
        quick=args.quick,
    )


if __name__ == "__main__":
    main()
