"""The actor system: orderly shutdown, exceptions from the block, top-level crashes."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing

from actors import Actor, ActorContext, ActorRef, Crashed, ExitReason, Shutdown, open_actor_system
from actors.runtime import Instrument


class Named(Actor):
    def __init__(self, label: str, events: list[str]) -> None:
        self.label = label
        self.events = events

    async def started(self) -> None:
        self.events.append(f"start {self.label}")

    async def receive(self, message: object) -> object:
        if message == "crash":
            raise RuntimeError(self.label)
        return None

    async def stopping(self, reason: ExitReason) -> None:
        self.events.append(f"stop {self.label}")


async def test_closing_the_system_stops_actors_in_reverse_start_order() -> None:
    events: list[str] = []
    async with open_actor_system() as system:
        for label in "abc":
            await system.spawn(Named, label, events)
        assert system.statistics().top_level_actors == 3
    assert events == ["start a", "start b", "start c", "stop c", "stop b", "stop a"]


async def test_exception_in_the_block_propagates_unwrapped_after_shutdown() -> None:
    events: list[str] = []
    with pytest.raises(KeyError, match="from the block"):
        async with open_actor_system() as system:
            await system.spawn(Named, "a", events)
            raise KeyError("from the block")
    assert events == ["start a", "stop a"]


async def test_keyboard_interrupt_in_the_block_still_shuts_down_in_order() -> None:
    events: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        async with open_actor_system() as system:
            await system.spawn(Named, "a", events)
            await system.spawn(Named, "b", events)
            raise KeyboardInterrupt
    assert events == ["start a", "start b", "stop b", "stop a"]


async def test_cancelled_block_cancels_every_actor_at_once() -> None:
    events: list[str] = []
    refs: list[ActorRef] = []
    with trio.move_on_after(1) as scope:
        async with open_actor_system() as system:
            refs.append(await system.spawn(Named, "a", events))
            scope.cancel()
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert events == ["start a"]
    assert isinstance(refs[0].exit_reason, Shutdown)


async def test_top_level_crash_is_logged_and_does_not_stop_the_system(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: list[str] = []
    async with open_actor_system() as system:
        fragile = await system.spawn(Named, "fragile", events, name="fragile")
        sturdy = await system.spawn(Named, "sturdy", events)
        with caplog.at_level(logging.ERROR, logger="actors"):
            await fragile.tell("crash")
            reason = await fragile.wait_stopped()
        assert isinstance(reason, Crashed)
        assert sturdy.alive
        assert system.statistics().top_level_actors == 1
    assert "fragile" in caplog.text
    assert "crashed" in caplog.text
    assert "stays stopped" in caplog.text


async def test_the_system_counts_top_level_actors_that_failed_and_says_when_it_closes() -> None:
    """What a liveness probe reads: a top-level actor that stopped in order is no failure."""
    events: list[str] = []
    async with open_actor_system() as system:
        assert system.statistics().failed_top_level_actors == 0
        calm = await system.spawn(Named, "calm", events)
        await calm.stop()
        assert system.statistics().failed_top_level_actors == 0
        fragile = await system.spawn(Named, "fragile", events)
        await fragile.tell("crash")
        await fragile.wait_stopped()
        statistics = system.statistics()
        assert (statistics.failed_top_level_actors, statistics.closing) == (1, False)
    assert system.statistics().closing is True


async def test_instrument_sees_the_life_cycle() -> None:
    seen: list[tuple[str, object]] = []

    class Recorder(Instrument):
        def actor_started(self, ref: ActorRef) -> None:
            seen.append(("started", ref.name))

        def actor_crashed(self, ref: ActorRef, error: BaseException) -> None:
            seen.append(("crashed", ref.name))

        def actor_stopped(self, ref: ActorRef, reason: ExitReason) -> None:
            seen.append(("stopped", type(reason).__name__))

    async with open_actor_system(instruments=[Recorder()]) as system:
        ref = await system.spawn(Named, "x", [], name="x")
        await ref.tell("crash")
        await ref.wait_stopped()
    assert seen == [("started", "x"), ("crashed", "x"), ("stopped", "Crashed")]


async def test_top_level_actor_cancelled_from_outside_reports_shutdown() -> None:
    refs: list[ActorRef] = []

    async def forever(context: ActorContext) -> None:
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:

        async def run_system() -> None:
            async with open_actor_system() as system:
                refs.append(await system.spawn(forever))
                await trio.sleep_forever()

        nursery.start_soon(run_system)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert isinstance(refs[0].exit_reason, Shutdown)


async def test_top_level_actors_are_the_live_ones_in_start_order() -> None:
    events: list[str] = []
    async with open_actor_system() as system:
        refs = [await system.spawn(Named, label, events) for label in "abc"]
        assert system.top_level_actors() == refs
        await refs[1].stop()
        assert system.top_level_actors() == [refs[0], refs[2]]
