"""The low-level surface: WaitSlot, a ref's delivery function, and the cell behind a ref."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from actors import ActorContext, ActorStoppedError, ActorSystem, MailboxConfig, Overflow
from actors.runtime import ActorState
from actors.runtime.lowlevel import WaitSlot, cell_of


async def test_a_wait_slot_wakes_its_task() -> None:
    slot = WaitSlot()
    woken = trio.Event()

    async def waiter() -> None:
        await slot.wait()
        woken.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        assert slot.task is not None
        slot.wake()
    assert woken.is_set()


async def test_a_cancelled_wait_leaves_the_slot_empty() -> None:
    slot = WaitSlot()
    with trio.move_on_after(0.01):
        await slot.wait()
    assert slot.task is None
    slot.wake()  # nobody waits: nothing happens


async def idle(context: ActorContext) -> None:
    await trio.sleep_forever()


async def test_delivery_puts_now_and_applies_the_overflow_policy(system: ActorSystem) -> None:
    config = MailboxConfig(capacity=2, overflow=Overflow.DROP_OLDEST)
    ref = await system.spawn(idle, mailbox=config)
    deliver = ref.delivery()
    assert deliver("a") is True
    assert deliver("b") is True
    assert deliver("c") is False  # the oldest was dropped to make room
    statistics = ref.statistics().mailbox
    assert (statistics.size, statistics.dropped_oldest) == (2, 1)
    await ref.stop()
    with pytest.raises(ActorStoppedError):
        deliver("d")


async def test_the_cell_behind_a_ref_is_its_owner(system: ActorSystem) -> None:
    ref = await system.spawn(idle, name="owned")
    cell = cell_of(ref)
    assert cell.ref is ref
    assert cell.context.ref is ref
    assert (cell.actor_id, cell.name, cell.label) == (
        ref.actor_id,
        "owned",
        f"owned#{ref.actor_id}",
    )
    assert cell.state is ActorState.RUNNING
    assert cell.incarnation == 0  # top-level actors are not restarted: no begin_start
    await ref.stop("done")
    assert cell.exit_reason == ref.exit_reason
    assert ref.state is ActorState.STOPPED  # the ref reads the cell's state
