"""Monitors and links: ``context.watch`` and ``Down``, ``context.link``, ``ref.wait_stopped()``."""

from __future__ import annotations

import trio

from actors import Actor, ActorContext, ActorRef, Crashed, Down, open_actor_system
from actors.runtime import LinkedActorCrashedError


# docs: start watcher
class Watcher(Actor):
    def __init__(self, target: ActorRef) -> None:
        self.target = target

    async def started(self) -> None:
        self.context.watch(self.target)

    async def receive(self, message: object) -> object:
        match message:
            case Down(ref=ref, reason=reason):
                print(f"watcher: {ref.name} is down: {reason!r}")
                self.context.stop()  # ends with the normal exit reason
        return None


# docs: end watcher


async def idle(context: ActorContext) -> None:
    async for _ in context:
        pass


# docs: start link
async def fragile(context: ActorContext) -> None:
    async for message in context:
        if message == "bad input":
            raise RuntimeError("cannot parse 'bad input'")


async def partner(context: ActorContext, other: ActorRef) -> None:
    context.link(other)  # if either ends abnormally, the other crashes too
    async for _ in context:
        pass


# docs: end link


async def main() -> None:
    async with open_actor_system() as system:
        # docs: start watch
        worker = await system.spawn(idle, name="worker")
        watcher = await system.spawn(Watcher, worker, name="watcher")
        worker_reason = await worker.stop("no more work")
        watcher_reason = await watcher.wait_stopped()
        print(f"worker stopped: {worker_reason!r}; watcher stopped: {watcher_reason!r}")
        # docs: end watch

        # docs: start watch-dead
        async def late_watcher(context: ActorContext, target: ActorRef) -> None:
            context.watch(target)  # already dead: Down arrives at once
            down = await context.receive()
            assert isinstance(down, Down)
            print("late watcher:", down.ref.name, down.reason)

        late = await system.spawn(late_watcher, worker)
        await late.wait_stopped()
        # docs: end watch-dead

        # docs: start use-link
        first = await system.spawn(fragile, name="fragile")
        second = await system.spawn(partner, first, name="partner")
        first.tell_nowait("bad input")
        reason = await second.wait_stopped()
        assert isinstance(reason, Crashed)
        assert isinstance(reason.exception, LinkedActorCrashedError)
        print("partner:", reason.exception)
        print("because:", repr(reason.exception.__cause__))
        # docs: end use-link


if __name__ == "__main__":
    trio.run(main)
