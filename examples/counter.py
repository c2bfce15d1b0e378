"""A class-based counter: ``tell``, ``tell_nowait`` and ``ask``, with ``match`` dispatch."""

from __future__ import annotations

import attrs
import trio

from actors import Actor, AskTimeoutError, ExitReason, open_actor_system


# docs: start messages
@attrs.frozen
class Increment:
    by: int = 1


@attrs.frozen
class Get:
    pass


@attrs.frozen
class Sleep:
    seconds: float


# docs: end messages


# docs: start counter
class Counter(Actor):
    def __init__(self, start: int = 0) -> None:
        self.count = start

    async def started(self) -> None:
        print(f"counter started at {self.count}")

    async def receive(self, message: object) -> object:
        match message:
            case Increment(by=amount):
                self.count += amount
            case Get():
                return self.count
            case Sleep(seconds=seconds):
                await trio.sleep(seconds)
        return None

    async def stopping(self, reason: ExitReason) -> None:
        print(f"counter stopping at {self.count}: {reason}")


# docs: end counter


async def main() -> None:
    async with open_actor_system() as system:
        # docs: start use
        counter = await system.spawn(Counter, 10, name="counter")
        await counter.tell(Increment())  # waits only while the mailbox is full
        counter.tell_nowait(Increment(by=5))  # never waits
        print("count:", await counter.ask(Get()))  # the value receive() returned

        try:
            await counter.ask(Sleep(0.2), timeout=0.05)
        except AskTimeoutError:
            print("no reply within 50 ms")
        # The actor still works through the Sleep; this ask waits behind it.
        print("count:", await counter.ask(Get()))
        # docs: end use

        # docs: start lookup
        assert system.lookup("counter") is counter
        statistics = counter.statistics()
        print(f"state={statistics.state.value} taken={statistics.mailbox.taken}")
        print("exit reason:", await counter.stop("demo over"))
        print("alive:", counter.alive, "lookup:", system.lookup("counter"))
        # docs: end lookup


if __name__ == "__main__":
    trio.run(main)
