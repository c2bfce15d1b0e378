"""Mailbox overflow policies: what a full mailbox does with one message too many."""

from __future__ import annotations

import trio
import trio.testing

from actors import (
    ActorContext,
    MailboxConfig,
    MailboxFullError,
    Overflow,
    open_actor_system,
)


# docs: start gated
async def gated(context: ActorContext, gate: trio.Event, seen: list[object]) -> None:
    """Reads nothing until the gate opens, so its mailbox fills up."""
    await gate.wait()
    async for message in context:
        seen.append(message)


# docs: end gated


async def main() -> None:
    async with open_actor_system() as system:
        for policy in (Overflow.DROP_OLDEST, Overflow.DROP_NEWEST, Overflow.FAIL):
            gate, seen = trio.Event(), list[object]()
            # docs: start config
            ref = await system.spawn(
                gated, gate, seen, mailbox=MailboxConfig(capacity=3, overflow=policy)
            )
            for number in range(6):
                try:
                    ref.tell_nowait(number)
                except MailboxFullError:
                    print(f"{policy.value}: message {number} refused")
            statistics = ref.statistics().mailbox
            print(
                f"{policy.value}: size={statistics.size} dropped_oldest={statistics.dropped_oldest}"
                f" dropped_newest={statistics.dropped_newest} rejected={statistics.rejected}"
                f" dropped={statistics.dropped}"
            )
            # docs: end config
            gate.set()
            await trio.testing.wait_all_tasks_blocked()
            print(f"{policy.value}: the actor received {seen}")

        # docs: start block
        gate, seen = trio.Event(), list[object]()
        ref = await system.spawn(gated, gate, seen, mailbox=MailboxConfig(capacity=3))
        for number in range(3):
            ref.tell_nowait(number)
        try:
            ref.tell_nowait(3)
        except trio.WouldBlock:
            print("block: tell_nowait raised WouldBlock")
        with trio.move_on_after(0.05):
            await ref.tell(3)  # backpressure: waits for room
        print("block: tell gave up after 50 ms")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ref.tell, 3)
            await trio.testing.wait_all_tasks_blocked()
            print("block: blocked senders:", ref.statistics().mailbox.blocked_senders)
            gate.set()  # the actor drains its mailbox, which lets the sender in
        await trio.testing.wait_all_tasks_blocked()
        print(f"block: the actor received {seen}, dropped={ref.statistics().mailbox.dropped}")
        # docs: end block

        # docs: start stop
        gate = trio.Event()
        ref = await system.spawn(
            gated, gate, [], mailbox=MailboxConfig(capacity=3, overflow=Overflow.STOP)
        )
        for number in range(4):
            ref.tell_nowait(number)
        reason = await ref.wait_stopped()
        print(f"stop: {reason!r}, overflow_stops={ref.statistics().mailbox.overflow_stops}")
        # docs: end stop


if __name__ == "__main__":
    trio.run(main)
