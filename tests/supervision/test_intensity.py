"""Restart intensity: more than ``max_restarts`` restarts within ``within`` seconds is too many.

A supervisor that gives up stops its children in reverse start order and fails with
``RestartIntensityError``, which its own supervisor sees as a crash (escalation).
"""

from __future__ import annotations

import pytest
import trio
from supervision_helpers import EventLog, Worker, count_tasks, settle, worker

from actors import (
    ActorSystem,
    ChildSpec,
    Crashed,
    ExitReason,
    RestartIntensityError,
    Strategy,
    Supervisor,
    SupervisorSpec,
    open_supervisor,
    start_supervisor,
)
from actors.supervision import NO_BACKOFF


def gave_up(reason: ExitReason | None) -> bool:
    return isinstance(reason, Crashed) and isinstance(reason.exception, RestartIntensityError)


async def test_one_for_one_gives_up_on_the_crash_after_max_restarts(system: ActorSystem) -> None:
    """OTP one_for_one: with {one_for_one, 2, 3600} the third crash stops the supervisor."""
    log = EventLog()
    spec = SupervisorSpec(children=[worker(log, k) for k in "abc"], max_restarts=2, within=3600)
    supervisor = await start_supervisor(system, spec)
    refs = [row.ref for row in supervisor.which_children()]
    for _ in range(2):
        refs[1].tell_nowait("crash")
        await settle()
        assert supervisor.ref.alive
    log.take()
    refs[1].tell_nowait("crash")
    with trio.fail_after(1):
        reason = await supervisor.wait_stopped()
    assert gave_up(reason)
    # The crashed child is not restarted; the others stop in reverse start order.
    assert log.take() == [("stop", "b"), ("stop", "c"), ("stop", "a")]
    assert not any(ref.alive for ref in refs)
    assert system.statistics().top_level_actors == 0


async def test_max_restarts_zero_gives_up_on_the_first_crash(system: ActorSystem) -> None:
    log = EventLog()
    spec = SupervisorSpec(children=[worker(log, "a")], max_restarts=0)
    supervisor = await start_supervisor(system, spec)
    supervisor.child("a").tell_nowait("crash")
    assert gave_up(await supervisor.wait_stopped())
    assert log.of("start") == ["a"]


async def test_restart_intensity_error_names_the_limit_and_the_child(system: ActorSystem) -> None:
    log = EventLog()
    spec = SupervisorSpec(children=[worker(log, "a")], max_restarts=1, within=2.5)
    supervisor = await start_supervisor(system, spec)
    for _ in range(2):
        supervisor.child("a").tell_nowait("crash")
        await settle()
    reason = await supervisor.wait_stopped()
    assert isinstance(reason, Crashed)
    assert isinstance(reason.exception, RestartIntensityError)
    message = str(reason.exception)
    assert "more than 1 restarts within 2.5 s" in message
    assert "'a'" in message


async def test_crashes_spaced_out_beyond_the_window_never_exhaust_the_intensity(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    """OTP multiple_restarts: intensity 1 per 1 s, a crash every 1.5 s: the window slides."""
    log = EventLog()
    spec = SupervisorSpec(children=[worker(log, "a")], max_restarts=1, within=1.0)
    supervisor = await start_supervisor(system, spec)
    for _ in range(4):
        await trio.sleep(1.5)
        supervisor.child("a").tell_nowait("crash")
        await settle()
        assert supervisor.ref.alive
        assert supervisor.statistics().recent_restarts == 1
    assert supervisor.statistics().restarts == 4


async def test_two_crashes_within_the_window_exhaust_an_intensity_of_one(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    log = EventLog()
    spec = SupervisorSpec(children=[worker(log, "a")], max_restarts=1, within=1.0)
    supervisor = await start_supervisor(system, spec)
    t0 = trio.current_time()
    supervisor.child("a").tell_nowait("crash")
    await trio.sleep(0.75)
    supervisor.child("a").tell_nowait("crash")
    assert gave_up(await supervisor.wait_stopped())
    assert trio.current_time() - t0 == 0.75


async def test_a_restart_exactly_one_window_later_falls_outside_it(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    log = EventLog()
    spec = SupervisorSpec(children=[worker(log, "a")], max_restarts=1, within=1.0)
    supervisor = await start_supervisor(system, spec)
    supervisor.child("a").tell_nowait("crash")
    await trio.sleep(1.0)
    supervisor.child("a").tell_nowait("crash")
    await settle()
    assert supervisor.ref.alive
    assert supervisor.statistics().recent_restarts == 1


@pytest.mark.parametrize(
    "strategy",
    [Strategy.ONE_FOR_ONE, Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE],
    ids=lambda s: s.value,
)
async def test_child_that_cannot_restart_makes_the_supervisor_give_up(
    system: ActorSystem, strategy: Strategy
) -> None:
    """OTP *_escalation: every restart of b fails, so the supervisor exhausts its intensity and
    stops its other children in reverse order."""
    log = EventLog()
    spec = SupervisorSpec(
        strategy=strategy, children=[worker(log, k) for k in "abc"], max_restarts=3
    )
    supervisor = await start_supervisor(system, spec)
    refs = [row.ref for row in supervisor.which_children()]
    log.start_failures["b"] = -1
    refs[1].tell_nowait("crash")
    with trio.fail_after(1):
        assert gave_up(await supervisor.wait_stopped())
    assert log.of("start-failed").count("b") == 3  # 3 restarts allowed, all failed
    assert not any(ref.alive for ref in refs)
    assert log.events[-1] == ("stop", "a")  # the first child is always the last to stop


async def test_simple_one_for_one_child_that_cannot_restart_makes_the_supervisor_give_up(
    system: ActorSystem,
) -> None:
    log = EventLog()
    template = ChildSpec(id="w", start=Worker, args=(log, "w"), backoff=NO_BACKOFF)
    spec = SupervisorSpec(strategy=Strategy.SIMPLE_ONE_FOR_ONE, children=[template], max_restarts=2)
    supervisor = await start_supervisor(system, spec)
    refs = [await supervisor.spawn() for _ in range(3)]
    log.start_failures["w"] = -1
    refs[0].tell_nowait("crash")
    with trio.fail_after(1):
        assert gave_up(await supervisor.wait_stopped())
    assert not any(ref.alive for ref in refs)


async def test_one_for_all_group_restart_counts_once(system: ActorSystem) -> None:
    log = EventLog()
    spec = SupervisorSpec(
        strategy=Strategy.ONE_FOR_ALL, children=[worker(log, k) for k in "abc"], max_restarts=1
    )
    supervisor = await start_supervisor(system, spec)
    supervisor.child("a").tell_nowait("crash")
    await settle()
    assert supervisor.ref.alive
    assert supervisor.statistics().recent_restarts == 1
    supervisor.child("c").tell_nowait("crash")
    assert gave_up(await supervisor.wait_stopped())


async def test_escalation_climbs_the_tree_and_stops_every_level_in_reverse_order(
    system: ActorSystem,
) -> None:
    """Nested trees: the inner supervisor gives up, the outer one (max_restarts=0) gives up in
    turn, and everything stops, innermost last-started first."""
    log = EventLog()
    inner = SupervisorSpec(children=[worker(log, "x"), worker(log, "y")], max_restarts=1)
    outer = SupervisorSpec(
        children=[worker(log, "a"), ChildSpec(id="inner", start=inner), worker(log, "z")],
        max_restarts=0,
    )
    baseline = count_tasks()
    root = await start_supervisor(system, outer)
    inner_sup = Supervisor(root.child("inner"))
    x, y = inner_sup.child("x"), inner_sup.child("y")
    log.take()
    x.tell_nowait("crash")
    await settle()
    x.tell_nowait("crash")
    with trio.fail_after(1):
        reason = await root.wait_stopped()
    assert gave_up(reason)
    assert isinstance(reason, Crashed)
    assert "inner" in str(reason.exception)  # the outer supervisor names the failed child
    assert log.take() == [
        ("stop", "x"),
        ("start", "x"),
        ("stop", "x"),  # second crash: the inner supervisor gives up ...
        ("stop", "y"),  # ... and stops its remaining child,
        ("stop", "z"),  # then the outer one stops its others in reverse order
        ("stop", "a"),
    ]
    assert gave_up(inner_sup.ref.exit_reason)
    assert not x.alive
    assert not y.alive
    assert count_tasks() == baseline


async def test_open_supervisor_raises_restart_intensity_error_from_the_block(
    system: ActorSystem,
) -> None:
    log = EventLog()
    spec = SupervisorSpec(children=[worker(log, "a")], max_restarts=0)
    with pytest.raises(RestartIntensityError):
        async with open_supervisor(system, spec) as supervisor:
            supervisor.child("a").tell_nowait("crash")
            with trio.fail_after(1):
                await trio.sleep_forever()
