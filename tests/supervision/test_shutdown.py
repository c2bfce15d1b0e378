"""Stopping children: grace periods, brutal kill (``shutdown=0``), ``math.inf``, and races.

A class actor that does not stop within its ``shutdown`` seconds is cancelled and its exit reason
is ``Killed``. Children that end on their own while their supervisor shuts down keep their own
exit reason.
"""

from __future__ import annotations

import math

import pytest
import trio
import trio.testing
from supervision_helpers import Boom, EventLog, Gate, SlowStopper, Worker, settle, worker

from actors import (
    ActorSystem,
    ChildSpec,
    Crashed,
    ExitReason,
    Killed,
    Normal,
    Restart,
    Shutdown,
    Strategy,
    Supervisor,
    SupervisorSpec,
    start_supervisor,
)


@pytest.mark.parametrize("how", ["stop_supervisor", "terminate_child"])
async def test_child_that_ignores_shutdown_is_killed_after_exactly_its_grace_period(
    system: ActorSystem, autojump_clock: trio.testing.MockClock, how: str
) -> None:
    """OTP sup_stop_timeout / child_unlink: a child that never stops cannot hang its supervisor."""
    log = EventLog()
    supervisor = await start_supervisor(
        system, SupervisorSpec(children=[worker(log, "a", shutdown=0.75)])
    )
    a = supervisor.child("a")
    a.tell_nowait("block")
    await settle()
    t0 = trio.current_time()
    with trio.fail_after(10):
        if how == "stop_supervisor":
            assert await supervisor.stop() == Shutdown()
        else:
            await supervisor.terminate_child("a")
    assert trio.current_time() - t0 == 0.75
    assert a.exit_reason == Killed()
    assert log.of("stop") == []  # a cancelled actor does not run its stopping hook


async def test_child_that_stops_within_its_grace_period_ends_with_shutdown(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    log = EventLog()
    spec = worker(log, "a", shutdown=1.0, start=SlowStopper, extra=(0.5,))
    supervisor = await start_supervisor(system, SupervisorSpec(children=[spec]))
    a = supervisor.child("a")
    t0 = trio.current_time()
    await supervisor.stop()
    assert trio.current_time() - t0 == 0.5
    assert a.exit_reason == Shutdown("supervisor shutdown")
    assert log.take() == [("start", "a"), ("stopping", "a"), ("stop", "a")]


async def test_children_stop_one_after_another_in_reverse_order_each_within_its_grace(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    log = EventLog()
    spec = SupervisorSpec(
        children=[worker(log, "a", shutdown=0.25), worker(log, "b", shutdown=0.5)]
    )
    supervisor = await start_supervisor(system, spec)
    a, b = supervisor.child("a"), supervisor.child("b")
    for ref in (a, b):
        ref.tell_nowait("block")
    await settle()
    t0 = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(supervisor.stop)
        await b.wait_stopped()
        assert trio.current_time() - t0 == 0.5
        assert a.alive
        await a.wait_stopped()
        assert trio.current_time() - t0 == 0.75
    assert a.exit_reason == b.exit_reason == Killed()


async def test_shutdown_zero_kills_the_child_at_once(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    """OTP sup_stop_brutal_kill: even a child that would stop gracefully is cancelled."""
    log = EventLog()
    spec = worker(log, "a", shutdown=0, start=SlowStopper, extra=(0.5,))
    supervisor = await start_supervisor(system, SupervisorSpec(children=[spec]))
    a = supervisor.child("a")
    t0 = trio.current_time()
    await supervisor.stop()
    assert trio.current_time() - t0 == 0
    assert a.exit_reason == Killed()
    assert log.of("stopping") == []


async def test_shutdown_zero_kills_every_dynamic_child_at_once(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    """OTP sup_stop_brutal_kill_dynamic, with 10 children."""
    log = EventLog()
    template = ChildSpec(id="w", start=Worker, args=(log, "w"), shutdown=0)
    supervisor = await start_supervisor(
        system, SupervisorSpec(strategy=Strategy.SIMPLE_ONE_FOR_ONE, children=[template])
    )
    refs = [await supervisor.spawn() for _ in range(10)]
    t0 = trio.current_time()
    await supervisor.stop()
    assert trio.current_time() - t0 == 0
    assert [ref.exit_reason for ref in refs] == [Killed()] * 10


async def test_dynamic_children_stop_in_parallel_and_laggards_are_killed_at_their_timeout(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    """OTP simple_one_for_one_shutdown and sup_stop_timeout_dynamic."""
    log = EventLog()
    template = ChildSpec(id="w", start=SlowStopper, args=(log, "w"), shutdown=1.0)
    supervisor = await start_supervisor(
        system, SupervisorSpec(strategy=Strategy.SIMPLE_ONE_FOR_ONE, children=[template])
    )
    refs = [await supervisor.spawn(delay) for delay in (0.25, 0.5, 0.75, math.inf)]
    t0 = trio.current_time()
    await supervisor.stop()
    assert trio.current_time() - t0 == 1.0  # not 0.25 + 0.5 + 0.75 + 1.0
    assert [ref.exit_reason for ref in refs] == [Shutdown("supervisor shutdown")] * 3 + [Killed()]


async def test_infinite_grace_waits_for_a_slow_child_however_long_it_takes(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    """OTP sup_stop_infinity, for a worker."""
    log = EventLog()
    spec = worker(log, "a", shutdown=math.inf, start=SlowStopper, extra=(1000.0,))
    supervisor = await start_supervisor(system, SupervisorSpec(children=[spec]))
    a = supervisor.child("a")
    t0 = trio.current_time()
    await supervisor.stop()
    assert trio.current_time() - t0 == 1000.0
    assert a.exit_reason == Shutdown("supervisor shutdown")


@pytest.mark.parametrize("shutdown", [None, math.inf], ids=["default", "explicit-inf"])
async def test_child_supervisor_gets_all_the_time_its_own_children_need(
    system: ActorSystem, autojump_clock: trio.testing.MockClock, shutdown: float | None
) -> None:
    """OTP sup_stop_infinity, for a supervisor: a child supervisor's grace defaults to math.inf,
    so its own children's grace periods are never cut short by its parent."""
    log = EventLog()
    inner = SupervisorSpec(children=[worker(log, "x", shutdown=30.0)])
    outer = SupervisorSpec(children=[ChildSpec(id="inner", start=inner, shutdown=shutdown)])
    root = await start_supervisor(system, outer)
    inner_ref = root.child("inner")
    x = Supervisor(inner_ref).child("x")
    x.tell_nowait("block")
    await settle()
    t0 = trio.current_time()
    await root.stop()
    assert trio.current_time() - t0 == 30.0
    assert x.exit_reason == Killed()
    assert inner_ref.exit_reason == Shutdown("supervisor shutdown")


async def test_stop_cancelled_by_its_caller_still_completes_in_the_supervisor(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    """OTP sup_stop_manual_timeout: the caller giving up does not abort the children's shutdown."""
    log = EventLog()
    supervisor = await start_supervisor(
        system, SupervisorSpec(children=[worker(log, "a", shutdown=2.0)])
    )
    a = supervisor.child("a")
    a.tell_nowait("block")
    await settle()
    t0 = trio.current_time()
    with trio.move_on_after(0.5):
        await supervisor.stop()
    assert trio.current_time() - t0 == 0.5
    assert supervisor.ref.alive
    assert a.alive
    await supervisor.wait_stopped()
    assert trio.current_time() - t0 == 2.0
    assert a.exit_reason == Killed()


HOW_REASON: dict[str, ExitReason] = {
    "normal": Normal(),
    "shutdown": Shutdown("own"),
}


def reason_matches(how: str, reason: ExitReason | None) -> bool:
    if how == "crash":
        return isinstance(reason, Crashed) and isinstance(reason.exception, Boom)
    return reason == HOW_REASON[how]


async def test_children_exiting_on_their_own_during_shutdown_keep_their_own_reason(
    system: ActorSystem,
) -> None:
    """OTP sup_stop_race: nine children (every restart type x normal/shutdown/crash) end on their
    own while the supervisor is busy stopping the last child; none is restarted, the shutdown
    completes, and each keeps its own exit reason."""
    log = EventLog()
    entered, release = trio.Event(), trio.Event()
    racers = {
        f"{restart.value}-{how}": (restart, how)
        for restart in Restart
        for how in ("normal", "shutdown", "crash")
    }
    spec = SupervisorSpec(
        children=[
            *(worker(log, key, restart=restart) for key, (restart, _) in racers.items()),
            worker(log, "gate", start=Gate, extra=(entered, release)),
        ],
        max_restarts=0,  # a restart would make the supervisor give up: none may happen
    )
    supervisor = await start_supervisor(system, spec)
    refs = {row.id: row.ref for row in supervisor.which_children()}
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(supervisor.stop)
            await entered.wait()
            for key, (_, how) in racers.items():
                refs[key].tell_nowait(how)
            await trio.testing.wait_all_tasks_blocked()
            assert supervisor.count_children().active == 1  # the racers ended; the gate holds
            release.set()
    assert supervisor.ref.exit_reason == Shutdown()
    for key, (_, how) in racers.items():
        assert reason_matches(how, refs[key].exit_reason), (key, refs[key].exit_reason)
    assert refs["gate"].exit_reason == Shutdown("supervisor shutdown")
    assert sorted(log.of("start")) == sorted(refs)  # nobody started twice


async def test_child_crashing_after_it_was_asked_to_stop_keeps_its_crash(
    system: ActorSystem,
) -> None:
    log = EventLog()
    supervisor = await start_supervisor(system, SupervisorSpec(children=[worker(log, "a")]))
    a = supervisor.child("a")
    go = trio.Event()
    a.tell_nowait(("crash-after", go))
    await settle()
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(supervisor.stop)
            await trio.testing.wait_all_tasks_blocked()
            assert a.alive  # asked to stop, but busy with its message
            go.set()
    assert isinstance(a.exit_reason, Crashed)
    assert supervisor.ref.exit_reason == Shutdown()


async def test_dynamic_children_exiting_on_their_own_during_shutdown_keep_their_reason(
    system: ActorSystem,
) -> None:
    """OTP sup_stop_non_shutdown_exit_dynamic."""
    log = EventLog()
    template = ChildSpec(id="w", start=Worker, args=(log, "w"))
    supervisor = await start_supervisor(
        system, SupervisorSpec(strategy=Strategy.SIMPLE_ONE_FOR_ONE, children=[template])
    )
    busy = [await supervisor.spawn() for _ in range(3)]
    idle = [await supervisor.spawn() for _ in range(3)]
    go = trio.Event()
    for ref in busy:
        ref.tell_nowait(("crash-after", go))
    await settle()
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(supervisor.stop)
            await trio.testing.wait_all_tasks_blocked()
            go.set()
    assert all(isinstance(ref.exit_reason, Crashed) for ref in busy)
    assert all(ref.exit_reason == Shutdown("supervisor shutdown") for ref in idle)
    assert supervisor.ref.exit_reason == Shutdown()
