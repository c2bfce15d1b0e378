"""Actors: class-based and function actors, lifecycle hooks, exit reasons and asks."""

from __future__ import annotations

import math

import attrs
import pytest
import trio
import trio.testing

from actors import (
    Actor,
    ActorContext,
    ActorCrashedError,
    ActorShutdown,
    ActorStartError,
    ActorStoppedError,
    ActorSystem,
    Ask,
    AskTimeoutError,
    Crashed,
    ExitReason,
    Killed,
    MailboxConfig,
    Normal,
    Shutdown,
)
from actors.runtime import ActorState, SelfAskError
from actors.runtime.lowlevel import cell_of


@attrs.frozen
class Increment:
    by: int = 1


@attrs.frozen
class Get:
    pass


@attrs.frozen
class Fail:
    pass


@attrs.frozen
class StopYourself:
    pass


@attrs.frozen
class ExitWithShutdown:
    pass


class Counter(Actor):
    def __init__(self, start: int = 0, events: list[str] | None = None) -> None:
        self.count = start
        self.events = events if events is not None else []

    async def started(self) -> None:
        self.events.append("started")

    async def receive(self, message: object) -> object:
        match message:
            case Increment(by=amount):
                self.count += amount
            case Get():
                return self.count
            case Fail():
                raise RuntimeError("told to fail")
            case StopYourself():
                self.context.stop()
            case ExitWithShutdown():
                raise ActorShutdown("done")
        return None

    async def stopping(self, reason: ExitReason) -> None:
        self.events.append(f"stopping {type(reason).__name__}")


async def test_class_actor_handles_tells_and_answers_asks(system: ActorSystem) -> None:
    ref = await system.spawn(Counter, 10)
    for _ in range(5):
        ref.tell_nowait(Increment())
    await ref.tell(Increment(by=5))
    assert await ref.ask(Get()) == 20


async def test_hooks_run_in_order(system: ActorSystem) -> None:
    events: list[str] = []
    ref = await system.spawn(Counter, 0, events)
    assert events == ["started"]
    assert ref.state is ActorState.RUNNING
    assert isinstance(await ref.stop(), Shutdown)
    assert events == ["started", "stopping Shutdown"]


@pytest.mark.parametrize(
    ("message", "expected"),
    [(StopYourself(), Normal), (ExitWithShutdown(), Shutdown), (Fail(), Crashed)],
)
async def test_exit_reason_follows_how_the_actor_ended(
    system: ActorSystem, message: object, expected: type
) -> None:
    events: list[str] = []
    ref = await system.spawn(Counter, 0, events)
    await ref.tell(message)
    reason = await ref.wait_stopped()
    assert isinstance(reason, expected)
    assert events[-1] == f"stopping {expected.__name__}"
    assert not ref.alive
    assert ref.state is ActorState.STOPPED


async def test_crash_keeps_the_exception(system: ActorSystem) -> None:
    ref = await system.spawn(Counter)
    await ref.tell(Fail())
    reason = await ref.wait_stopped()
    assert isinstance(reason, Crashed)
    assert isinstance(reason.exception, RuntimeError)
    assert ref.exit_reason == reason


async def test_crash_during_ask_is_reported_to_the_asker(system: ActorSystem) -> None:
    ref = await system.spawn(Counter)
    with pytest.raises(ActorCrashedError, match="crashed handling Fail") as caught:
        await ref.ask(Fail())
    assert isinstance(caught.value.__cause__, RuntimeError)


async def test_ask_times_out_after_exactly_the_default_deadline(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    async def silent(context: ActorContext) -> None:
        async for _ in context:
            pass  # never replies

    ref = await system.spawn(silent, name="silent")
    start = trio.current_time()
    with pytest.raises(AskTimeoutError, match=r"silent#\d+ with Get got no reply within 5.0 s"):
        await ref.ask(Get())
    assert trio.current_time() - start == 5.0


async def test_ask_timeout_is_a_trio_too_slow_error(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    async def silent(context: ActorContext) -> None:
        await trio.sleep_forever()

    ref = await system.spawn(silent)
    start = trio.current_time()
    with pytest.raises(trio.TooSlowError):
        await ref.ask("anything", timeout=0.25)
    assert trio.current_time() - start == 0.25


async def test_asking_yourself_is_refused(system: ActorSystem) -> None:
    outcome: list[BaseException] = []

    class Narcissus(Actor):
        async def receive(self, message: object) -> object:
            try:
                await self.context.ref.ask("me?")
            except SelfAskError as error:
                outcome.append(error)
            return "done"

    ref = await system.spawn(Narcissus)
    assert await ref.ask("go") == "done"
    assert len(outcome) == 1


async def test_ask_to_a_stopped_actor_fails(system: ActorSystem) -> None:
    ref = await system.spawn(Counter)
    await ref.stop()
    with pytest.raises(ActorStoppedError):
        await ref.ask(Get())
    with pytest.raises(ActorStoppedError):
        ref.tell_nowait(Get())


async def test_ask_is_a_checkpoint(system: ActorSystem) -> None:
    ref = await system.spawn(Counter)
    with trio.testing.assert_checkpoints():
        await ref.ask(Get())


async def test_wait_stopped_after_the_end_returns_at_once(system: ActorSystem) -> None:
    ref = await system.spawn(Counter)
    first = await ref.stop()
    with trio.testing.assert_checkpoints():
        assert await ref.wait_stopped() is first
    assert await ref.stop() is first  # stopping twice is harmless


async def test_function_actor_receives_and_replies(system: ActorSystem) -> None:
    async def doubler(context: ActorContext, factor: int) -> None:
        async for message in context:
            if isinstance(message, Ask):
                assert isinstance(message.message, int)
                message.reply(message.message * factor)

    ref = await system.spawn(doubler, 2)
    assert await ref.ask(21) == 42


async def test_function_actor_return_is_a_normal_exit(system: ActorSystem) -> None:
    async def one_shot(context: ActorContext) -> None:
        await context.receive()

    ref = await system.spawn(one_shot)
    ref.tell_nowait("go")
    assert isinstance(await ref.wait_stopped(), Normal)


async def test_function_actor_is_stopped_by_cancellation(system: ActorSystem) -> None:
    cleaned_up: list[bool] = []

    async def sleeper(context: ActorContext) -> None:
        try:
            await trio.sleep_forever()
        finally:
            cleaned_up.append(True)

    ref = await system.spawn(sleeper)
    assert isinstance(await ref.stop("enough"), Shutdown)
    assert ref.exit_reason == Shutdown("enough")
    assert cleaned_up == [True]


async def test_class_actor_busy_past_its_grace_period_is_killed(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    class Stubborn(Actor):
        async def receive(self, message: object) -> object:
            await trio.sleep_forever()

    ref = await system.spawn(Stubborn, shutdown=2.5)
    await ref.tell("block")
    await trio.testing.wait_all_tasks_blocked()
    start = trio.current_time()
    assert isinstance(await ref.stop(), Killed)
    assert trio.current_time() - start == 2.5


async def test_class_actor_stops_at_the_batch_boundary_within_grace(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    class Busy(Actor):
        async def receive(self, message: object) -> object:
            await trio.sleep(1.0)
            return None

    ref = await system.spawn(Busy, shutdown=5.0)
    await ref.tell("work")
    await trio.testing.wait_all_tasks_blocked()
    start = trio.current_time()
    assert isinstance(await ref.stop(), Shutdown)
    assert trio.current_time() - start == 1.0


async def test_start_failure_raises_and_releases_the_name(system: ActorSystem) -> None:
    class Broken(Actor):
        async def started(self) -> None:
            raise ValueError("cannot start")

    with pytest.raises(ActorStartError) as caught:
        await system.spawn(Broken, name="broken")
    assert isinstance(caught.value.__cause__, ValueError)
    assert system.lookup("broken") is None


async def test_constructor_failure_is_a_start_failure(system: ActorSystem) -> None:
    class NeedsArgument(Actor):
        def __init__(self, value: int) -> None:
            self.value = value

    with pytest.raises(ActorStartError) as caught:
        await system.spawn(NeedsArgument)
    assert isinstance(caught.value.__cause__, TypeError)


async def test_spawning_something_that_is_not_an_actor_is_a_type_error(
    system: ActorSystem,
) -> None:
    def not_async(context: ActorContext) -> None:
        pass

    with pytest.raises(TypeError, match="cannot run"):
        await system.spawn(not_async)
    with pytest.raises(TypeError, match="cannot run"):
        await system.spawn(42)


async def test_callable_object_with_async_call_is_an_actor(system: ActorSystem) -> None:
    class Handler:
        def __init__(self) -> None:
            self.seen: list[object] = []

        async def __call__(self, context: ActorContext) -> None:
            self.seen.append(await context.receive())

    handler = Handler()
    ref = await system.spawn(handler)
    await ref.tell("hi")
    await ref.wait_stopped()
    assert handler.seen == ["hi"]


async def test_actor_statistics_describe_the_actor(system: ActorSystem) -> None:
    ref = await system.spawn(Counter, name="counted")
    for _ in range(3):
        await ref.tell(Increment())
    await ref.ask(Get())
    stats = ref.statistics()
    assert stats.name == "counted"
    assert stats.state is ActorState.RUNNING
    assert stats.restarts == 0
    assert stats.mailbox.enqueued == 4
    assert stats.mailbox.taken == 4
    assert repr(ref).startswith("<ActorRef counted#")


async def test_unbounded_grace_waits_for_the_actor(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    class Slow(Actor):
        async def receive(self, message: object) -> object:
            await trio.sleep(100)
            return None

    ref = await system.spawn(Slow, shutdown=math.inf)
    await ref.tell("work")
    await trio.testing.wait_all_tasks_blocked()
    start = trio.current_time()
    assert isinstance(await ref.stop(), Shutdown)
    assert trio.current_time() - start == 100


async def test_negative_grace_is_refused(system: ActorSystem) -> None:
    with pytest.raises(ValueError, match="grace"):
        await system.spawn(Counter, shutdown=-1)


async def test_function_actor_can_stop_itself_normally(system: ActorSystem) -> None:
    async def quits(context: ActorContext) -> None:
        await context.receive()
        context.stop()
        await trio.sleep_forever()

    ref = await system.spawn(quits)
    await ref.tell("quit")
    assert isinstance(await ref.wait_stopped(), Normal)


async def test_ask_held_by_an_actor_that_is_killed_fails_at_once(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    class Stuck(Actor):
        async def receive(self, message: object) -> object:
            await trio.sleep_forever()

    ref = await system.spawn(Stuck, shutdown=1.0)
    start = trio.current_time()
    async with trio.open_nursery() as nursery:

        async def ask() -> None:
            with pytest.raises(ActorStoppedError, match="cancelled while handling"):
                await ref.ask("never answered", timeout=60)

        nursery.start_soon(ask)
        await trio.testing.wait_all_tasks_blocked()
        ref.request_stop()
    assert trio.current_time() - start == 1.0
    assert isinstance(ref.exit_reason, Killed)


async def test_ask_held_by_an_actor_crashed_from_outside_reports_the_crash(
    system: ActorSystem,
) -> None:
    class Stuck(Actor):
        async def receive(self, message: object) -> object:
            await trio.sleep_forever()

    ref = await system.spawn(Stuck)
    async with trio.open_nursery() as nursery:

        async def ask() -> None:
            with pytest.raises(ActorCrashedError) as caught:
                await ref.ask("never answered")
            assert isinstance(caught.value.__cause__, KeyError)

        nursery.start_soon(ask)
        await trio.testing.wait_all_tasks_blocked()
        cell_of(ref).crash(KeyError("from outside"))


async def test_spawn_is_refused_while_the_system_shuts_down() -> None:
    from actors import open_actor_system

    refused: list[BaseException] = []

    class SpawnsWhileStopping(Actor):
        async def receive(self, message: object) -> object:
            return None

        async def stopping(self, reason: ExitReason) -> None:
            try:
                await self.context.system.spawn(Counter)
            except ActorStoppedError as error:
                refused.append(error)

    async with open_actor_system() as system:
        await system.spawn(SpawnsWhileStopping)
    assert len(refused) == 1


async def test_messages_left_at_the_final_stop_are_counted_as_discarded(
    system: ActorSystem,
) -> None:
    release = trio.Event()

    class Parked(Actor):
        async def receive(self, message: object) -> object:
            await release.wait()
            return None

    ref = await system.spawn(Parked, mailbox=MailboxConfig(batch_size=1))
    for number in range(4):
        ref.tell_nowait(number)
    await trio.testing.wait_all_tasks_blocked()
    ref.request_stop()
    release.set()
    await ref.wait_stopped()
    stats = ref.statistics().mailbox
    assert (stats.taken, stats.discarded, stats.enqueued) == (1, 3, 4)
