"""``Actor.receive_many``: a class-based actor that takes each batch in one call."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import trio
import trio.testing

from actors import (
    Actor,
    ActorSystem,
    ChildSpec,
    MailboxConfig,
    Strategy,
    SupervisorSpec,
    start_supervisor,
)


class Batches(Actor):
    """Takes the ints of each batch itself, in one call; hands anything else to receive_one."""

    def __init__(self, batches: list[list[object]], fail_on: int | None = None) -> None:
        self.batches = batches
        self.fail_on = fail_on

    async def receive_many(self, messages: Iterator[Any]) -> None:
        batch: list[object] = []
        self.batches.append(batch)
        for message in messages:
            if type(message) is not int:
                await self.receive_one(message)
                continue
            if message == self.fail_on:
                raise ValueError(f"failing on {message}")
            batch.append(message)

    async def receive(self, message: Any) -> Any:
        return f"receive got {message!r}"


class FirstOnly(Actor):
    """Takes one message per call and leaves the rest of the batch in the iterator."""

    def __init__(self, seen: list[object]) -> None:
        self.seen = seen

    async def receive_many(self, messages: Iterator[Any]) -> None:
        self.seen.append(next(messages))


async def test_each_batch_comes_in_one_call_in_order(system: ActorSystem) -> None:
    batches: list[list[object]] = []
    ref = await system.spawn(Batches, batches, mailbox=MailboxConfig(batch_size=4))
    for number in range(10):
        ref.tell_nowait(number)
    await trio.testing.wait_all_tasks_blocked()
    assert batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert ref.statistics().mailbox.taken == 10


async def test_an_ask_handed_to_receive_one_is_answered(system: ActorSystem) -> None:
    batches: list[list[object]] = []
    ref = await system.spawn(Batches, batches)
    ref.tell_nowait(1)
    assert await ref.ask("status") == "receive got 'status'"
    assert batches[0] == [1]


async def test_a_crash_loses_only_the_message_being_handled(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    batches: list[list[object]] = []
    supervisor = await start_supervisor(
        system,
        SupervisorSpec(
            strategy=Strategy.ONE_FOR_ONE,
            children=[ChildSpec(id="batches", start=Batches, args=(batches, 3))],
        ),
    )
    ref = supervisor.child("batches")
    for number in range(8):
        ref.tell_nowait(number)
    await trio.sleep(1)  # the restart's backoff
    # 0-2 handled, 3 raised and is lost, 4-7 went back to the mailbox for the new incarnation.
    assert batches == [[0, 1, 2], [4, 5, 6, 7]]
    assert ref.statistics().restarts == 1


async def test_what_an_actor_leaves_in_the_iterator_comes_back_in_order(
    system: ActorSystem,
) -> None:
    seen: list[object] = []
    ref = await system.spawn(FirstOnly, seen)
    for number in range(5):
        ref.tell_nowait(number)
    await trio.testing.wait_all_tasks_blocked()
    assert seen == [0, 1, 2, 3, 4]
    assert ref.statistics().mailbox.taken == 5
