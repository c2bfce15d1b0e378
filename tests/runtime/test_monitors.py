"""Monitors, links and the name registry."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from actors import Actor, ActorContext, ActorRef, ActorSystem, Crashed, Down, Normal, Shutdown
from actors.runtime import LinkedActorCrashedError, NameTakenError
from actors.runtime.lowlevel import cell_of


async def crash_on_message(context: ActorContext) -> None:
    message = await context.receive()
    raise RuntimeError(f"crashed on {message!r}")


async def end_on_message(context: ActorContext) -> None:
    await context.receive()


async def idle(context: ActorContext) -> None:
    await trio.sleep_forever()


class Watcher(Actor):
    """Watches the refs it is told about and records every Down it receives."""

    def __init__(self, downs: list[Down]) -> None:
        self.downs = downs

    async def receive(self, message: object) -> object:
        match message:
            case Down() as down:
                self.downs.append(down)
            case ("watch", ActorRef() as target):
                self.context.watch(target)
            case ("unwatch", ActorRef() as target):
                self.context.unwatch(target)
            case ("link", ActorRef() as target):
                self.context.link(target)
            case ("unlink", ActorRef() as target):
                self.context.unlink(target)
        return None


@pytest.mark.parametrize(
    ("behavior", "expected"),
    [(end_on_message, Normal), (crash_on_message, Crashed)],
)
async def test_watcher_gets_down_with_the_exit_reason(
    system: ActorSystem, behavior: object, expected: type
) -> None:
    downs: list[Down] = []
    watcher = await system.spawn(Watcher, downs)
    target = await system.spawn(behavior)
    await watcher.ask(("watch", target))
    await target.tell("go")
    await target.wait_stopped()
    await watcher.ask("sync")
    assert [down.ref for down in downs] == [target]
    assert isinstance(downs[0].reason, expected)


async def test_watching_a_dead_actor_delivers_down_at_once(system: ActorSystem) -> None:
    downs: list[Down] = []
    target = await system.spawn(idle)
    await target.stop("early")
    watcher = await system.spawn(Watcher, downs)
    await watcher.ask(("watch", target))
    await watcher.ask("sync")
    assert downs == [Down(target, Shutdown("early"))]


async def test_unwatch_stops_notifications(system: ActorSystem) -> None:
    downs: list[Down] = []
    watcher = await system.spawn(Watcher, downs)
    target = await system.spawn(idle)
    await watcher.ask(("watch", target))
    await watcher.ask(("unwatch", target))
    await target.stop()
    await watcher.ask("sync")
    assert downs == []


@pytest.mark.parametrize("watchers", [1, 2, 3])
async def test_each_watcher_but_the_one_that_unwatched_gets_down(
    system: ActorSystem, watchers: int
) -> None:
    """Whether a target has one watcher, kept as it is, or a list of them."""
    target = await system.spawn(idle)
    downs: list[list[Down]] = [[] for _ in range(watchers)]
    refs = [await system.spawn(Watcher, each) for each in downs]
    for ref in refs:
        await ref.ask(("watch", target))
    await refs[0].ask(("unwatch", target))
    await target.stop("done")
    for ref in refs:
        await ref.ask("sync")
    assert downs == [[], *[[Down(target, Shutdown("done"))]] * (watchers - 1)]


async def test_function_actor_receives_down_ahead_of_user_messages(system: ActorSystem) -> None:
    received: list[object] = []
    target = await system.spawn(idle)

    async def watching(context: ActorContext) -> None:
        context.watch(target)
        while True:
            received.extend(await context.receive_batch())

    watcher = await system.spawn(watching)
    await trio.testing.wait_all_tasks_blocked()
    await target.stop()
    watcher.tell_nowait("after")
    await trio.testing.wait_all_tasks_blocked()
    assert received == [Down(target, Shutdown(None)), "after"]


async def test_link_crashes_the_partner_when_one_crashes(system: ActorSystem) -> None:
    downs: list[Down] = []
    linked = await system.spawn(Watcher, [])
    target = await system.spawn(crash_on_message)
    observer = await system.spawn(Watcher, downs)
    await observer.ask(("watch", linked))
    await linked.ask(("link", target))
    await target.tell("boom")
    reason = await linked.wait_stopped()
    assert isinstance(reason, Crashed)
    assert isinstance(reason.exception, LinkedActorCrashedError)
    assert isinstance(reason.exception.__cause__, RuntimeError)


async def test_link_works_both_ways(system: ActorSystem) -> None:
    linker = await system.spawn(Watcher, [])
    partner = await system.spawn(Watcher, [])
    await linker.ask(("link", partner))
    cell_of(linker).crash(RuntimeError("from outside"))
    reason = await partner.wait_stopped()
    assert isinstance(reason, Crashed)
    assert isinstance(reason.exception, LinkedActorCrashedError)


async def test_normal_exit_does_not_travel_along_a_link(system: ActorSystem) -> None:
    linker = await system.spawn(Watcher, [])
    target = await system.spawn(end_on_message)
    await linker.ask(("link", target))
    await target.tell("bye")
    await target.wait_stopped()
    await linker.ask("still alive")
    assert linker.alive


async def test_unlink_breaks_the_link(system: ActorSystem) -> None:
    linker = await system.spawn(Watcher, [])
    target = await system.spawn(crash_on_message)
    await linker.ask(("link", target))
    await linker.ask(("unlink", target))
    await target.tell("boom")
    await target.wait_stopped()
    await linker.ask("still alive")
    assert linker.alive


async def test_linking_to_a_crashed_actor_crashes_at_once(system: ActorSystem) -> None:
    target = await system.spawn(crash_on_message)
    await target.tell("boom")
    await target.wait_stopped()
    linker = await system.spawn(Watcher, [])
    linker.tell_nowait(("link", target))
    reason = await linker.wait_stopped()
    assert isinstance(reason, Crashed)
    assert isinstance(reason.exception, LinkedActorCrashedError)


async def test_names_are_unique_and_looked_up(system: ActorSystem) -> None:
    ref = await system.spawn(idle, name="unique")
    assert system.lookup("unique") is ref
    with pytest.raises(NameTakenError, match="unique"):
        await system.spawn(idle, name="unique")
    assert system.statistics().registered_names == 1


async def test_name_is_released_on_stop_and_can_be_reused(system: ActorSystem) -> None:
    ref = await system.spawn(idle, name="reused")
    await ref.stop()
    assert system.lookup("reused") is None
    again = await system.spawn(idle, name="reused")
    assert system.lookup("reused") is again


async def test_name_is_released_when_the_actor_crashes(system: ActorSystem) -> None:
    ref = await system.spawn(crash_on_message, name="fragile")
    await ref.tell("boom")
    await ref.wait_stopped()
    assert system.lookup("fragile") is None


async def test_empty_name_is_refused(system: ActorSystem) -> None:
    with pytest.raises(ValueError, match="empty"):
        await system.spawn(idle, name="")


@pytest.mark.parametrize("targets", [1, 4])
async def test_a_stopped_watcher_leaves_nothing_behind(system: ActorSystem, targets: int) -> None:
    watched = [await system.spawn(idle) for _ in range(targets)]
    watcher = await system.spawn(Watcher, [])
    for target in watched:
        await watcher.ask(("watch", target))
    extras = [cell_of(target)._extras for target in watched]
    # One watcher is kept as it is, with no list around it.
    assert all(each is not None and each.watchers is cell_of(watcher) for each in extras)
    await watcher.stop()
    assert all(each is not None and each.watchers is None for each in extras)
