"""Tell throughput: one producer task, one actor, against a raw trio memory channel.

Ours: the producer calls ``ref.tell_nowait(message)`` and awaits ``ref.tell(message)`` only when
that raises ``trio.WouldBlock`` (the mailbox is full). The actor is a class-based ``Actor`` whose
``receive`` counts messages (the headline figure); a function actor that takes messages with
``context.receive_batch()`` and counts them is reported as an extra key.

Peer: the same batching on ``trio.open_memory_channel`` of the same capacity. The producer calls
``send_nowait`` and awaits ``send`` only on ``trio.WouldBlock``; the consumer awaits
``receive()`` and then drains what is ready with ``receive_nowait()``.

Run: ``python benchmarks/bench_mailbox.py [--quick]``. The last line of output is the JSON result.
"""

from __future__ import annotations

import time
from typing import Any

import trio
import trio.testing
from _common import emit, interleave, parse_args, progress, summary

from actors import Actor, ActorContext, MailboxConfig, open_actor_system

CAPACITY = 1000  # the mailbox size and the channel size
GOAL = 0.6  # ours / peer


class Counter(Actor):
    """Counts messages and sets ``done`` when it has seen ``expected`` of them."""

    def __init__(self, expected: int, done: trio.Event) -> None:
        self.count = 0
        self.expected = expected
        self.done = done

    async def receive(self, message: Any) -> None:
        self.count += 1
        if self.count == self.expected:
            self.done.set()


async def count_in_batches(context: ActorContext, expected: int, done: trio.Event) -> None:
    """A function actor: takes messages with ``receive_batch`` and counts them one by one."""
    count = 0
    while count < expected:
        for _message in await context.receive_batch():
            count += 1
    done.set()


async def _produce_with_tells(target: Any, count: int, done: trio.Event) -> float:
    """Send ``count`` messages the nowait-first way; return seconds until all are handled."""
    await trio.testing.wait_all_tasks_blocked()
    tell_nowait = target.tell_nowait
    started = time.perf_counter()
    for message in range(count):
        try:
            tell_nowait(message)
        except trio.WouldBlock:
            await target.tell(message)
    await done.wait()
    return time.perf_counter() - started


def ours_class(count: int) -> float:
    async def main() -> float:
        done = trio.Event()
        async with open_actor_system() as system:
            ref = await system.spawn(Counter, count, done, mailbox=MailboxConfig(CAPACITY))
            elapsed = await _produce_with_tells(ref, count, done)
        return count / elapsed

    return trio.run(main)


def ours_function(count: int) -> float:
    async def main() -> float:
        done = trio.Event()
        async with open_actor_system() as system:
            ref = await system.spawn(count_in_batches, count, done, mailbox=MailboxConfig(CAPACITY))
            elapsed = await _produce_with_tells(ref, count, done)
        return count / elapsed

    return trio.run(main)


def peer_channel(count: int) -> float:
    async def consume(receiver: trio.MemoryReceiveChannel[int], done: trio.Event) -> None:
        seen = 0
        while seen < count:
            await receiver.receive()
            seen += 1
            while True:
                try:
                    receiver.receive_nowait()
                except trio.WouldBlock:
                    break
                seen += 1
        done.set()

    async def main() -> float:
        done = trio.Event()
        sender, receiver = trio.open_memory_channel[int](CAPACITY)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume, receiver, done)
            await trio.testing.wait_all_tasks_blocked()
            send_nowait = sender.send_nowait
            started = time.perf_counter()
            for message in range(count):
                try:
                    send_nowait(message)
                except trio.WouldBlock:
                    await sender.send(message)
            await done.wait()
            elapsed = time.perf_counter() - started
        return count / elapsed

    return trio.run(main)


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0],
        full={"messages": 5_000_000, "repeats": 9},
        quick={"messages": 1_000_000, "repeats": 5},
    )
    progress(
        f"bench_mailbox: {args.messages:,} messages per run, {args.repeats} repeats, "
        f"capacity {CAPACITY}"
    )
    samples = interleave(
        {
            "ours (Actor.receive)": ours_class,
            "ours (fn + receive_batch)": ours_function,
            "peer (memory channel)": peer_channel,
        },
        size=args.messages,
        repeats=args.repeats,
        unit="msg/s",
        warmup=min(args.messages, 200_000),
    )
    ours = summary(samples["ours (Actor.receive)"])
    function = summary(samples["ours (fn + receive_batch)"])
    peer = summary(samples["peer (memory channel)"])
    progress(
        f"medians: ours {ours['median']:,.0f}, function actor {function['median']:,.0f}, "
        f"peer {peer['median']:,.0f} msg/s; ratio {ours['median'] / peer['median']:.3f} "
        f"(goal >= {GOAL})"
    )
    emit(
        "mailbox",
        ours=ours["median"],
        peer=peer["median"],
        unit="msg/s",
        goal_ratio=GOAL,
        goal_met=ours["median"] / peer["median"] >= GOAL,
        ours_function_receive_batch=function["median"],
        ratio_function=round(function["median"] / peer["median"], 4),
        ours_spread=ours["spread"],
        ours_function_spread=function["spread"],
        peer_spread=peer["spread"],
        ours_samples=ours["samples"],
        ours_function_samples=function["samples"],
        peer_samples=peer["samples"],
        messages=args.messages,
        capacity=CAPACITY,
        repeats=args.repeats,
        quick=args.quick,
    )


if __name__ == "__main__":
    main()
