"""Controllable test actors and probes shared by the supervision tests.

The OTP suite drives its children with messages (``supervisor_1``: ``stop`` ends normally, ``die``
crashes); these actors do the same, and record their life in an ``EventLog`` the test shares with
them, so that start order and stop order can be checked exactly.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs
import trio

from actors import (
    Actor,
    ActorContext,
    ActorRef,
    ActorShutdown,
    ActorSystem,
    Ask,
    Backoff,
    ChildSpec,
    ExitReason,
    Restart,
    Supervisor,
)
from actors.supervision import NO_BACKOFF, ChildStatus


class Boom(Exception):
    """The crash the test actors raise on ``"crash"``."""


@attrs.define
class EventLog:
    """What the test actors did, in order: ``("start", key)`` and ``("stop", key)``."""

    events: list[tuple[str, str]] = attrs.Factory(list)
    start_times: dict[str, list[float]] = attrs.Factory(dict)
    start_failures: dict[str, int] = attrs.Factory(dict)
    """Per key: how many more starts should fail in ``started`` (``-1``: all of them)."""

    def record(self, kind: str, key: str) -> None:
        self.events.append((kind, key))
        if kind == "start":
            self.start_times.setdefault(key, []).append(trio.current_time())

    def of(self, kind: str) -> list[str]:
        """The keys of every event of one kind, in order."""
        return [key for event, key in self.events if event == kind]

    def take(self) -> list[tuple[str, str]]:
        """Return the events so far and forget them."""
        events, self.events = self.events, []
        return events


class Worker(Actor):
    """A child driven by messages: ``"crash"``, ``"normal"``, ``"shutdown"``, ``"block"``, ...

    ``started`` fails (before the actor is ready) while ``log.start_failures[key]`` says so.
    """

    def __init__(self, log: EventLog, key: str, *extra: object) -> None:
        self.log = log
        self.key = key
        self.extra = extra

    async def started(self) -> None:
        remaining = self.log.start_failures.get(self.key, 0)
        if remaining:
            self.log.start_failures[self.key] = remaining - 1 if remaining > 0 else remaining
            self.log.record("start-failed", self.key)
            raise Boom(f"{self.key} failed to start")
        self.log.record("start", self.key)

    async def receive(self, message: object) -> object:
        match message:
            case "crash":
                raise Boom(self.key)
            case "normal":
                self.context.stop()
            case "shutdown":
                raise ActorShutdown("own")
            case "block":
                await trio.sleep_forever()
            case ("crash-after", trio.Event() as event):
                await event.wait()
                raise Boom(self.key)
            case "extra":
                return self.extra
        return None

    async def stopping(self, reason: ExitReason) -> None:
        self.log.record("stop", self.key)


class SlowStopper(Worker):
    """A worker whose ``stopping`` hook takes ``delay`` seconds (``math.inf``: waits for ever)."""

    def __init__(self, log: EventLog, key: str, delay: float) -> None:
        super().__init__(log, key)
        self.delay = delay

    async def stopping(self, reason: ExitReason) -> None:
        self.log.record("stopping", self.key)
        await trio.sleep(self.delay)
        self.log.record("stop", self.key)


class Gate(Worker):
    """A worker whose ``stopping`` hook sets ``entered`` and then waits for ``release``."""

    def __init__(self, log: EventLog, key: str, entered: trio.Event, release: trio.Event) -> None:
        super().__init__(log, key)
        self.entered = entered
        self.gate = release

    async def stopping(self, reason: ExitReason) -> None:
        self.entered.set()
        await self.gate.wait()
        self.log.record("stop", self.key)


async def scripted(context: ActorContext, log: EventLog, key: str) -> None:
    """A function actor driven by messages: ``"normal"`` returns, ``"shutdown"``, ``"crash"``."""
    log.record("start", key)
    try:
        while True:
            message = await context.receive()
            match message:
                case "normal":
                    return
                case "shutdown":
                    raise ActorShutdown("own")
                case "crash":
                    raise Boom(key)
                case Ask():
                    message.reply("pong")
    finally:
        log.record("stop", key)


async def crash_loop(context: ActorContext, log: EventLog, key: str, runs: list[float]) -> None:
    """Each incarnation runs for the next duration in ``runs`` then crashes; then it stays up."""
    log.record("start", key)
    if not runs:
        await trio.sleep_forever()
    await trio.sleep(runs.pop(0))
    raise Boom(key)


async def idle(context: ActorContext, *args: object) -> None:
    """A function actor that does nothing until it is cancelled."""
    await trio.sleep_forever()


def worker(
    log: EventLog,
    key: str,
    *,
    restart: Restart = Restart.PERMANENT,
    backoff: Backoff = NO_BACKOFF,
    shutdown: float | None = None,
    name: str | None = None,
    start: type[Worker] = Worker,
    extra: tuple[object, ...] = (),
) -> ChildSpec:
    """The spec of a ``Worker`` (or subclass) child whose id is ``key``."""
    return ChildSpec(
        id=key,
        start=start,
        args=(log, key, *extra),
        restart=restart,
        backoff=backoff,
        shutdown=shutdown,
        name=name,
    )


def count_tasks() -> int:
    """Every task in this trio run, counted by walking the task tree from the root."""
    total = 0
    root = trio.lowlevel.current_root_task()
    assert root is not None
    pending = [root]
    while pending:
        task = pending.pop()
        total += 1
        for nursery in task.child_nurseries:
            pending.extend(nursery.child_tasks)
    return total


async def settle() -> None:
    """Let every task run until the whole run is blocked (restarts done, exits handled)."""
    await trio.testing.wait_all_tasks_blocked()


def assert_consistent(supervisor: Supervisor, system: ActorSystem) -> None:
    """The supervisor's views agree with each other and with the refs they hold."""
    rows = supervisor.which_children()
    counts = supervisor.count_children()
    assert counts.specs == len(rows)
    assert counts.supervisors + counts.workers == counts.specs
    assert counts.supervisors == sum(1 for row in rows if row.is_supervisor)
    assert counts.active == sum(1 for row in rows if row.status is ChildStatus.RUNNING)
    assert len({row.ref for row in rows}) == len(rows)
    for row in rows:
        if row.status is ChildStatus.STOPPED:
            assert not row.ref.alive, row
        else:
            assert row.status in (ChildStatus.RUNNING, ChildStatus.RESTARTING), row
            assert row.ref.alive, row
        if row.ref.name is not None:
            holder = system.lookup(row.ref.name)
            assert (holder is row.ref) == row.ref.alive, row


def alive_names(refs: Iterable[ActorRef]) -> int:
    """How many of ``refs`` are alive and hold a name."""
    return sum(1 for ref in refs if ref.alive and ref.name is not None)
