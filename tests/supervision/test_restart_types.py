"""Restart type x exit reason: OTP's {permanent,transient,temporary}_{normal,shutdown,abnormal}.

Exit reasons: normal is ``context.stop()`` (class actor) or returning (function actor), shutdown
is raising ``ActorShutdown`` (OTP's ``{shutdown, Term}``), abnormal is raising any other exception.
"""

from __future__ import annotations

import gc
import warnings

import pytest
from supervision_helpers import Boom, EventLog, Worker, scripted, settle, worker

from actors import (
    ActorContext,
    ActorSystem,
    ChildSpec,
    Crashed,
    ExitReason,
    Normal,
    Restart,
    Shutdown,
    Strategy,
    SupervisorSpec,
    start_supervisor,
)
from actors.supervision import NO_BACKOFF, ChildStatus

HOW = ["normal", "shutdown", "crash"]
MATRIX = [
    # restart type, how the child ends, whether it is restarted
    (Restart.PERMANENT, "normal", True),
    (Restart.PERMANENT, "shutdown", True),
    (Restart.PERMANENT, "crash", True),
    (Restart.TRANSIENT, "normal", False),
    (Restart.TRANSIENT, "shutdown", False),
    (Restart.TRANSIENT, "crash", True),
    (Restart.TEMPORARY, "normal", False),
    (Restart.TEMPORARY, "shutdown", False),
    (Restart.TEMPORARY, "crash", False),
]
MATRIX_IDS = [f"{restart.value}-{how}" for restart, how, _ in MATRIX]


def expected_reason(how: str, reason: ExitReason | None) -> bool:
    if how == "normal":
        return reason == Normal()
    if how == "shutdown":
        return reason == Shutdown("own")
    return isinstance(reason, Crashed) and isinstance(reason.exception, Boom)


def child_spec(log: EventLog, kind: str, restart: Restart) -> ChildSpec:
    start = Worker if kind == "class" else scripted
    return ChildSpec(id="w", start=start, args=(log, "w"), restart=restart, backoff=NO_BACKOFF)


@pytest.mark.parametrize("kind", ["class", "function"])
@pytest.mark.parametrize(("restart", "how", "restarted"), MATRIX, ids=MATRIX_IDS)
async def test_static_child_restart_decision(
    system: ActorSystem, kind: str, restart: Restart, how: str, restarted: bool
) -> None:
    log = EventLog()
    spec = SupervisorSpec(children=[child_spec(log, kind, restart), worker(log, "sibling")])
    supervisor = await start_supervisor(system, spec)
    ref = supervisor.child("w")
    log.take()
    ref.tell_nowait(how)
    await settle()
    sibling = supervisor.child("sibling")
    assert sibling.statistics().restarts == 0
    if restarted:
        assert log.take() == [("stop", "w"), ("start", "w")]
        assert ref.alive
        assert ref.statistics().restarts == 1
        assert supervisor.child("w") is ref
        assert supervisor.count_children().active == 2
    else:
        assert log.take() == [("stop", "w")]
        assert not ref.alive
        assert expected_reason(how, ref.exit_reason)
        rows = {row.id: row for row in supervisor.which_children()}
        if restart is Restart.TEMPORARY:
            assert list(rows) == ["sibling"]  # the spec of a temporary child is forgotten
        else:
            assert list(rows) == ["w", "sibling"]  # transient: the spec is kept, not running
            assert rows["w"].status is ChildStatus.STOPPED
        counts = supervisor.count_children()
        assert (counts.specs, counts.active) == (len(rows), 1)
    assert supervisor.statistics().restarts == int(restarted)


@pytest.mark.parametrize(("restart", "how", "restarted"), MATRIX, ids=MATRIX_IDS)
async def test_dynamic_child_restart_decision(
    system: ActorSystem, restart: Restart, how: str, restarted: bool
) -> None:
    log = EventLog()
    template = ChildSpec(id="w", start=Worker, args=(log, "w"), restart=restart, backoff=NO_BACKOFF)
    supervisor = await start_supervisor(
        system, SupervisorSpec(strategy=Strategy.SIMPLE_ONE_FOR_ONE, children=[template])
    )
    ref, other = await supervisor.spawn(), await supervisor.spawn()
    log.take()
    ref.tell_nowait(how)
    await settle()
    assert ref.alive is restarted
    if restarted:
        assert log.take() == [("stop", "w"), ("start", "w")]
        assert [row.ref for row in supervisor.which_children()] == [ref, other]
    else:
        assert log.take() == [("stop", "w")]
        assert expected_reason(how, ref.exit_reason)
        # A dynamic child that will not run again is forgotten, whatever its restart type.
        assert [row.ref for row in supervisor.which_children()] == [other]
    assert other.alive


@pytest.mark.parametrize(
    "strategy", [Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE], ids=lambda s: s.value
)
async def test_temporary_bystander_is_not_restarted_and_does_not_count(
    system: ActorSystem, strategy: Strategy
) -> None:
    """OTP temporary_bystander: a temporary child stopped because a sibling crashed stays stopped,
    its spec is dropped, and only the sibling's restart counts against the intensity."""
    log = EventLog()
    spec = SupervisorSpec(
        strategy=strategy,
        children=[worker(log, "a"), worker(log, "temp", restart=Restart.TEMPORARY)],
        max_restarts=1,
    )
    supervisor = await start_supervisor(system, spec)
    bystander = supervisor.child("temp")
    log.take()
    supervisor.child("a").tell_nowait("crash")
    await settle()
    assert log.take() == [("stop", "a"), ("stop", "temp"), ("start", "a")]
    assert bystander.exit_reason == Shutdown(f"restart: {strategy.value}")
    assert [row.id for row in supervisor.which_children()] == ["a"]
    assert supervisor.statistics().recent_restarts == 1
    assert supervisor.ref.alive


@pytest.mark.parametrize(
    "strategy", [Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE], ids=lambda s: s.value
)
async def test_transient_sibling_that_ended_normally_is_not_restarted_with_the_group(
    system: ActorSystem, strategy: Strategy
) -> None:
    log = EventLog()
    spec = SupervisorSpec(
        strategy=strategy,
        children=[worker(log, "a"), worker(log, "t", restart=Restart.TRANSIENT)],
    )
    supervisor = await start_supervisor(system, spec)
    supervisor.child("t").tell_nowait("normal")
    await settle()
    log.take()
    supervisor.child("a").tell_nowait("crash")
    await settle()
    assert log.take() == [("stop", "a"), ("start", "a")]
    rows = {row.id: row.status for row in supervisor.which_children()}
    assert rows == {"a": ChildStatus.RUNNING, "t": ChildStatus.STOPPED}


async def test_child_stopped_through_its_ref_is_never_restarted(system: ActorSystem) -> None:
    log = EventLog()
    supervisor = await start_supervisor(system, SupervisorSpec(children=[worker(log, "w")]))
    ref = supervisor.child("w")
    assert await ref.stop() == Shutdown()
    await settle()
    assert log.of("start") == ["w"]
    assert [row.status for row in supervisor.which_children()] == [ChildStatus.STOPPED]


async def leave_async_for_loop(context: ActorContext, log: EventLog, key: str) -> None:
    log.record("start", key)
    async for message in context:
        if message == "normal":
            return


async def test_function_child_leaving_its_async_for_loop_ends_normally_without_warnings(
    system: ActorSystem,
) -> None:
    """Ending by ``return`` inside ``async for message in context`` leaves nothing unfinalized."""
    log = EventLog()
    spec = SupervisorSpec(
        children=[
            ChildSpec(
                id="w",
                start=leave_async_for_loop,
                args=(log, "w"),
                restart=Restart.TRANSIENT,
            )
        ]
    )
    supervisor = await start_supervisor(system, spec)
    ref = supervisor.child("w")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ref.tell_nowait("normal")
        await settle()
        gc.collect()
    assert ref.exit_reason == Normal()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
