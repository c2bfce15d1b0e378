"""A supervision tree: one_for_one over a nested rest_for_one, with backoff and intensity."""

from __future__ import annotations

import trio

from actors import (
    Actor,
    ActorCrashedError,
    ActorRef,
    Backoff,
    ChildSpec,
    ExitReason,
    Restart,
    RestartIntensityError,
    Strategy,
    Supervisor,
    SupervisorSpec,
    open_actor_system,
    open_supervisor,
)
from actors.runtime import Instrument


class Stage(Actor):
    """A pipeline stage: answers ``"ping"``, crashes on ``"crash"``."""

    def __init__(self, label: str) -> None:
        self.label = label

    async def receive(self, message: object) -> object:
        match message:
            case "ping":
                return f"{self.label} ok"
            case "crash":
                raise RuntimeError(f"{self.label} crashed on purpose")
        return None


# docs: start instrument
class RestartLog(Instrument):
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.waiting: dict[str, trio.Event] = {}

    def actor_restarted(self, ref: ActorRef, reason: ExitReason, delay: float) -> None:
        self.lines.append(f"restart of {ref.name} in {delay:.2f} s")

    def actor_started(self, ref: ActorRef) -> None:
        if ref.name in self.waiting:
            self.waiting.pop(ref.name).set()

    def next_start(self, name: str) -> trio.Event:
        """An event set when the actor called ``name`` next finishes starting."""
        event = self.waiting[name] = trio.Event()
        return event


# docs: end instrument

# docs: start spec
FAST = Backoff(initial=0.01, multiplier=2.0, maximum=0.1, jitter=0.0)


def stage(label: str) -> ChildSpec:
    return ChildSpec(id=label, start=Stage, args=(label,), name=label, backoff=FAST)


pipeline = SupervisorSpec(
    strategy=Strategy.REST_FOR_ONE,
    children=[stage("source"), stage("parser"), stage("sink")],
    max_restarts=2,
    within=1.0,
)
root = SupervisorSpec(
    strategy=Strategy.ONE_FOR_ONE,
    children=[
        stage("cache"),
        ChildSpec(id="pipeline", start=pipeline, name="pipeline", backoff=FAST),
        ChildSpec(id="report", start=Stage, args=("report",), restart=Restart.TEMPORARY),
    ],
)
# docs: end spec


async def crash(ref: ActorRef) -> None:
    try:
        await ref.ask("crash")
    except ActorCrashedError as error:
        print("  the asker hears:", repr(error.__cause__))


async def main() -> None:
    log = RestartLog()
    async with open_actor_system(instruments=[log]) as system:
        # docs: start rest-for-one
        async with open_supervisor(system, root) as supervisor:
            nested = Supervisor(supervisor.child("pipeline"))
            source, parser, sink = (nested.child(i) for i in ("source", "parser", "sink"))
            print("crash the parser: rest_for_one restarts parser and sink, not source")
            await crash(parser)
            # Messages sent while a child restarts wait in its mailbox (the ref stays the same).
            print(" ", await parser.ask("ping"), "/", await sink.ask("ping"))
            restarts = [ref.statistics().restarts for ref in (source, parser, sink)]
            print("  restarts (source, parser, sink):", restarts)
            # docs: end rest-for-one

            # docs: start escalate
            print("crash it twice more: the pipeline exceeds max_restarts=2 within 1 s")
            await crash(parser)
            print(" ", await parser.ask("ping"))
            pipeline_started = log.next_start("pipeline")
            await crash(parser)
            # The pipeline stopped its children and crashed with RestartIntensityError; the
            # root restarts it behind the same ref, and it starts fresh children.
            await pipeline_started.wait()
            print("  old parser:", parser.exit_reason)
            print("  new parser:", await nested.child("parser").ask("ping"))
            print("  restart decisions:", log.lines)
            # docs: end escalate

            # docs: start handle
            for info in supervisor.which_children():
                print(f"  {info.id}: {info.status.value}, {info.restart.value}")
            await supervisor.terminate_child("cache")  # a permanent child's spec is kept
            print("  after terminate_child:", supervisor.count_children())
            cache = await supervisor.restart_child("cache")
            print("  restarted cache:", await cache.ask("ping"))
            # docs: end handle

        # docs: start give-up
        fragile = SupervisorSpec(children=[stage("lonely")], max_restarts=0, within=1.0)
        try:
            async with open_supervisor(system, fragile, name="fragile") as supervisor:
                supervisor.child("lonely").tell_nowait("crash")
                await trio.sleep(1.0)  # cancelled when the supervisor gives up
        except RestartIntensityError as error:
            print("gave up:", error)
        # docs: end give-up


if __name__ == "__main__":
    trio.run(main)
