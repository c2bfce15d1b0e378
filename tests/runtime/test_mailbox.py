"""Mailboxes: bounds, overflow policies, the control lane, batching and counters."""

from __future__ import annotations

import collections
import math
import sys

import attrs
import pytest
import trio
import trio.testing

from actors import (
    Actor,
    ActorContext,
    ActorRef,
    ActorStoppedError,
    ActorSystem,
    Ask,
    Crashed,
    MailboxConfig,
    MailboxFullError,
    Overflow,
    open_actor_system,
)
from actors.runtime import Instrument, MailboxOverflowError
from actors.runtime._mailbox import Mailbox
from actors.runtime.lowlevel import cell_of


@attrs.frozen
class Hold:
    """Blocks the receiving actor until the event is set."""

    release: trio.Event


class Recorder(Actor):
    """Records every message; a Hold message parks it until released."""

    def __init__(self, seen: list[object]) -> None:
        self.seen = seen

    async def receive(self, message: object) -> object:
        match message:
            case Hold(release=release):
                await release.wait()
            case _:
                self.seen.append(message)
        return None


async def _blocked_recorder(
    system: ActorSystem, config: MailboxConfig, seen: list[object]
) -> tuple[trio.Event, ActorRef]:
    """Spawn a Recorder and park it inside a Hold message, so its mailbox only fills up."""
    release = trio.Event()
    ref = await system.spawn(Recorder, seen, mailbox=config)
    await ref.tell(Hold(release))
    await trio.testing.wait_all_tasks_blocked()
    return release, ref


def test_default_mailbox_is_bounded() -> None:
    config = MailboxConfig()
    assert config.capacity == 1000
    assert config.overflow is Overflow.BLOCK


@pytest.mark.parametrize("capacity", [0, -1, 1.5])
def test_invalid_capacity_is_refused(capacity: float) -> None:
    with pytest.raises(ValueError, match="capacity"):
        MailboxConfig(capacity=capacity)


def test_unbounded_mailbox_is_an_explicit_opt_in() -> None:
    mailbox = Mailbox(MailboxConfig(capacity=math.inf))
    for number in range(10_000):
        mailbox.put_nowait(number)
    assert len(mailbox) == 10_000


def test_zero_batch_size_is_refused() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        MailboxConfig(batch_size=0)


async def test_block_policy_makes_tell_nowait_raise_and_tell_wait(system: ActorSystem) -> None:
    seen: list[object] = []
    release, ref = await _blocked_recorder(system, MailboxConfig(capacity=2), seen)
    ref.tell_nowait(1)
    ref.tell_nowait(2)
    with pytest.raises(trio.WouldBlock):
        ref.tell_nowait(3)
    sent = trio.Event()

    async def blocked_sender() -> None:
        await ref.tell(3)
        sent.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(blocked_sender)
        await trio.testing.wait_all_tasks_blocked()
        assert not sent.is_set()
        assert ref.statistics().mailbox.blocked_senders == 1
        release.set()
    assert sent.is_set()
    await trio.testing.wait_all_tasks_blocked()  # a stop request would skip what is queued
    await ref.stop()
    assert seen == [1, 2, 3]
    assert ref.statistics().mailbox.dropped == 0


async def test_drop_oldest_evicts_from_the_front_and_counts(system: ActorSystem) -> None:
    seen: list[object] = []
    release, ref = await _blocked_recorder(
        system, MailboxConfig(capacity=3, overflow=Overflow.DROP_OLDEST), seen
    )
    for number in range(10):
        ref.tell_nowait(number)
    stats = ref.statistics().mailbox
    assert (stats.size, stats.dropped_oldest, stats.dropped) == (3, 7, 7)
    assert stats.high_water == 3
    release.set()
    await trio.testing.wait_all_tasks_blocked()  # a stop request would skip what is queued
    await ref.stop()
    assert seen == [7, 8, 9]


async def test_drop_newest_discards_arrivals_and_counts(system: ActorSystem) -> None:
    seen: list[object] = []
    release, ref = await _blocked_recorder(
        system, MailboxConfig(capacity=3, overflow=Overflow.DROP_NEWEST), seen
    )
    for number in range(10):
        await ref.tell(number)
    assert ref.statistics().mailbox.dropped_newest == 7
    release.set()
    await trio.testing.wait_all_tasks_blocked()  # a stop request would skip what is queued
    await ref.stop()
    assert seen == [0, 1, 2]


async def test_dropped_ask_fails_at_once_instead_of_timing_out(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    seen: list[object] = []
    release, ref = await _blocked_recorder(
        system, MailboxConfig(capacity=1, overflow=Overflow.DROP_NEWEST), seen
    )
    ref.tell_nowait("filler")
    start = trio.current_time()
    with pytest.raises(MailboxFullError):
        await ref.ask("dropped")
    assert trio.current_time() == start
    release.set()


async def test_evicted_ask_fails_with_mailbox_full(system: ActorSystem) -> None:
    seen: list[object] = []
    release, ref = await _blocked_recorder(
        system, MailboxConfig(capacity=1, overflow=Overflow.DROP_OLDEST), seen
    )
    async with trio.open_nursery() as nursery:
        outcome: list[BaseException] = []

        async def ask() -> None:
            try:
                await ref.ask("evicted")
            except MailboxFullError as error:
                outcome.append(error)

        nursery.start_soon(ask)
        await trio.testing.wait_all_tasks_blocked()
        ref.tell_nowait("newer")
    assert len(outcome) == 1
    release.set()


async def test_fail_policy_raises_in_the_sender(system: ActorSystem) -> None:
    seen: list[object] = []
    release, ref = await _blocked_recorder(
        system, MailboxConfig(capacity=2, overflow=Overflow.FAIL), seen
    )
    await ref.tell(1)
    await ref.tell(2)
    with pytest.raises(MailboxFullError, match="full"):
        await ref.tell(3)
    with pytest.raises(MailboxFullError):
        ref.tell_nowait(4)
    assert ref.statistics().mailbox.rejected == 2
    release.set()
    await trio.testing.wait_all_tasks_blocked()  # a stop request would skip what is queued
    await ref.stop()
    assert seen == [1, 2]


async def test_stop_policy_crashes_the_receiver(system: ActorSystem) -> None:
    seen: list[object] = []
    release, ref = await _blocked_recorder(
        system, MailboxConfig(capacity=2, overflow=Overflow.STOP), seen
    )
    ref.tell_nowait(1)
    ref.tell_nowait(2)
    ref.tell_nowait(3)  # overflows: the receiver is crashed, the message dropped
    reason = await ref.wait_stopped()
    assert isinstance(reason, Crashed)
    assert isinstance(reason.exception, MailboxOverflowError)
    stats = ref.statistics().mailbox
    assert (stats.overflow_stops, stats.dropped_newest, stats.closed) == (1, 1, True)
    with pytest.raises(ActorStoppedError):
        ref.tell_nowait(4)
    assert not release.is_set()


async def test_stop_request_passes_a_full_mailbox(system: ActorSystem) -> None:
    """A stop request is taken ahead of the user messages queued in a full mailbox."""
    seen: list[object] = []
    release, ref = await _blocked_recorder(system, MailboxConfig(capacity=2), seen)
    ref.tell_nowait("queued 1")
    ref.tell_nowait("queued 2")
    with pytest.raises(trio.WouldBlock):
        ref.tell_nowait("no room")
    ref.request_stop()
    assert ref.statistics().mailbox.control_size == 1
    release.set()
    reason = await ref.wait_stopped()
    assert type(reason).__name__ == "Shutdown"
    assert seen == []


async def test_function_actor_drains_a_batch_per_wake_up(system: ActorSystem) -> None:
    batches: list[list[object]] = []
    done = trio.Event()

    async def batcher(context: ActorContext) -> None:
        while True:
            batch = await context.receive_batch(max_messages=4)
            batches.append(batch)
            if sum(len(b) for b in batches) == 10:
                done.set()

    ref = await system.spawn(batcher)
    for number in range(10):
        ref.tell_nowait(number)
    await done.wait()
    assert batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


async def test_class_actor_handles_a_batch_with_one_checkpoint(system: ActorSystem) -> None:
    """Ten ready messages are handled without other tasks running in between."""
    seen: list[object] = []
    ref = await system.spawn(Recorder, seen)
    for number in range(10):
        ref.tell_nowait(number)
    await trio.testing.wait_all_tasks_blocked()
    assert seen == list(range(10))
    assert ref.statistics().mailbox.taken == 10


class StepCounter(trio.abc.Instrument):
    """Counts the steps trio runs of each task, by task name."""

    def __init__(self) -> None:
        self.steps: collections.Counter[str] = collections.Counter()

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.steps[task.name] += 1


async def test_an_actor_woken_for_one_message_runs_one_step(system: ActorSystem) -> None:
    """A message that empties the mailbox costs the actor one task step: it is handled and the
    actor parks again, without a second trip through the scheduler for a checkpoint that
    parking makes anyway. With more waiting, the batch still ends in a checkpoint."""
    seen: list[object] = []
    ref = await system.spawn(Recorder, seen, name="stepper")
    await trio.testing.wait_all_tasks_blocked()
    label = f"stepper#{ref.actor_id}"
    counter = StepCounter()
    trio.lowlevel.add_instrument(counter)
    try:
        for number in range(5):
            ref.tell_nowait(number)
            await trio.testing.wait_all_tasks_blocked()
        assert seen == list(range(5))
        assert counter.steps[label] == 5
    finally:
        trio.lowlevel.remove_instrument(counter)


async def test_tell_is_a_checkpoint_even_when_there_is_room(system: ActorSystem) -> None:
    ref = await system.spawn(Recorder, [])
    with trio.testing.assert_checkpoints():
        await ref.tell("message")


async def test_receive_is_a_checkpoint_when_a_message_is_ready() -> None:
    mailbox_ready = trio.Event()
    checked: list[bool] = []

    async def reader(context: ActorContext) -> None:
        await mailbox_ready.wait()
        with trio.testing.assert_checkpoints():
            await context.receive()
        checked.append(True)
        await context.receive()

    async with open_actor_system() as system:
        ref = await system.spawn(reader)
        ref.tell_nowait("ready")
        mailbox_ready.set()
        await trio.testing.wait_all_tasks_blocked()
        assert checked == [True]


async def test_instrument_hears_of_every_drop() -> None:
    drops: list[tuple[object, Overflow]] = []

    class Drops(Instrument):
        def message_dropped(self, ref: object, message: object, policy: Overflow) -> None:
            drops.append((message, policy))

    async with open_actor_system(instruments=[Drops()]) as system:
        seen: list[object] = []
        release, ref = await _blocked_recorder(
            system, MailboxConfig(capacity=1, overflow=Overflow.DROP_OLDEST), seen
        )
        ref.tell_nowait("a")
        ref.tell_nowait("b")
        release.set()
    assert drops == [("a", Overflow.DROP_OLDEST)]


async def test_ask_left_in_mailbox_fails_when_the_actor_stops(system: ActorSystem) -> None:
    seen: list[object] = []
    release, ref = await _blocked_recorder(system, MailboxConfig(), seen)
    errors: list[BaseException] = []

    async def ask() -> None:
        try:
            await ref.ask("never handled")
        except ActorStoppedError as error:
            errors.append(error)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask)
        await trio.testing.wait_all_tasks_blocked()
        cell_of(ref).crash(RuntimeError("gone"))
    assert len(errors) == 1
    assert not release.is_set()


def test_mailbox_leftovers_are_returned_on_close() -> None:
    mailbox = Mailbox(MailboxConfig(capacity=4))
    mailbox.put_nowait("a")
    request = Ask("b")
    mailbox.put_nowait(request)
    assert mailbox.close() == ["a", request]
    with pytest.raises(ActorStoppedError):
        mailbox.put_nowait("c")


def test_an_idle_mailbox_holds_no_deque_until_its_first_message() -> None:
    """An empty deque is about 600 bytes: an actor that never gets a message never makes one,
    and everything a mailbox answers is the same before and after."""
    mailbox = Mailbox(MailboxConfig(capacity=2, overflow=Overflow.DROP_OLDEST))
    empty = sys.getsizeof(collections.deque())
    assert not any(isinstance(value, collections.deque) for value in slot_values(mailbox))
    assert (len(mailbox), mailbox.take_batch(10), mailbox.mailbox_statistics().size) == (0, [], 0)
    mailbox.return_unhandled([])
    assert mailbox.put_nowait("a")
    assert mailbox.put_nowait("b")
    assert not mailbox.put_nowait("c")  # full: the oldest goes
    assert mailbox.take_batch(10) == ["b", "c"]
    mailbox.return_unhandled(["b", "c"])
    statistics = mailbox.mailbox_statistics()
    assert (statistics.size, statistics.enqueued, statistics.dropped_oldest) == (2, 3, 1)
    assert mailbox.close() == ["b", "c"]
    assert empty > 500


def test_messages_returned_to_an_idle_mailbox_come_back_first() -> None:
    mailbox = Mailbox(MailboxConfig(capacity=4))
    mailbox.return_unhandled(["x", "y"])
    mailbox.put_nowait("z")
    assert mailbox.take_batch(10) == ["x", "y", "z"]


def slot_values(mailbox: Mailbox) -> list[object]:
    return [getattr(mailbox, name, None) for name in type(mailbox).__slots__]
