"""Exponential backoff between restarts, under the autojump clock with exact virtual times.

Delays are powers of two so that sums of them are exact floats; only the jitter test, whose delays
are random floats, compares with ``pytest.approx``.
"""

from __future__ import annotations

import itertools
import math
import random

import pytest
import trio
from supervision_helpers import EventLog, crash_loop, settle, worker

from actors import (
    ActorContext,
    ActorSystem,
    Backoff,
    ChildSpec,
    Crashed,
    RestartIntensityError,
    Shutdown,
    Strategy,
    SupervisorSpec,
    open_actor_system,
    start_supervisor,
)
from actors.supervision import NO_BACKOFF, ChildAlreadyExistsError, ChildStatus


def crash_loop_spec(log: EventLog, runs: list[float], backoff: Backoff) -> ChildSpec:
    return ChildSpec(id="c", start=crash_loop, args=(log, "c", runs), backoff=backoff)


def offsets(log: EventLog, key: str, t0: float) -> list[float]:
    return [t - t0 for t in log.start_times[key]]


async def test_restarts_wait_exponentially_growing_delays_up_to_the_maximum(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    log = EventLog()
    backoff = Backoff(initial=0.25, multiplier=2.0, maximum=1.0, jitter=0)
    spec = SupervisorSpec(
        children=[crash_loop_spec(log, [0] * 5, backoff)], max_restarts=100, within=100
    )
    t0 = trio.current_time()
    await start_supervisor(system, spec)
    await trio.sleep(10)
    # delays 0.25, 0.5, 1.0, then capped at 1.0
    assert offsets(log, "c", t0) == [0, 0.25, 0.75, 1.75, 2.75, 3.75]


async def test_jitter_draws_from_the_system_random_source(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    log = EventLog()
    backoff = Backoff(initial=1.0, multiplier=2.0, maximum=60.0, jitter=0.5)
    spec = SupervisorSpec(
        children=[crash_loop_spec(log, [0] * 3, backoff)], max_restarts=100, within=100
    )
    replay = random.Random(1234)  # the seed of the `system` fixture
    delays = [backoff.delay(attempt, replay) for attempt in range(3)]
    assert delays != [1.0, 2.0, 4.0]
    expected = [0.0]
    for delay in delays:
        expected.append(expected[-1] + delay)
    t0 = trio.current_time()
    await start_supervisor(system, spec)
    await trio.sleep(30)
    # Random float delays summed: float arithmetic demands approx here.
    assert offsets(log, "c", t0) == pytest.approx(expected, abs=1e-9)


async def test_jitter_never_pushes_a_delay_past_the_maximum(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    log = EventLog()
    backoff = Backoff(initial=2.0, multiplier=1.0, maximum=2.0, jitter=1.0)
    spec = SupervisorSpec(
        children=[crash_loop_spec(log, [0] * 20, backoff)], max_restarts=100, within=100
    )
    t0 = trio.current_time()
    await start_supervisor(system, spec)
    await trio.sleep(100)
    starts = offsets(log, "c", t0)
    assert len(starts) == 21
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert all(0 <= gap <= 2.0 + 1e-9 for gap in gaps)
    assert min(gaps) < 1.5  # the jitter really spreads the delays downwards


@pytest.mark.parametrize(
    ("third_run", "expected"),
    [
        (4.0, [0, 0.25, 0.75, 5.0, 5.5]),  # ran reset_after seconds: back to the initial delay
        (3.75, [0, 0.25, 0.75, 5.5, 7.5]),  # just short of it: the delays keep growing
    ],
    ids=["stable-resets", "unstable-keeps-growing"],
)
async def test_backoff_resets_after_a_child_ran_stably(
    system: ActorSystem,
    autojump_clock: trio.testing.MockClock,
    third_run: float,
    expected: list[float],
) -> None:
    log = EventLog()
    backoff = Backoff(initial=0.25, multiplier=2.0, maximum=60.0, jitter=0, reset_after=4.0)
    spec = SupervisorSpec(
        children=[crash_loop_spec(log, [0, 0, third_run, 0], backoff)],
        max_restarts=100,
        within=100,
    )
    t0 = trio.current_time()
    await start_supervisor(system, spec)
    await trio.sleep(20)
    assert offsets(log, "c", t0) == expected


async def test_restarts_delayed_by_backoff_still_count_against_the_intensity(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    log = EventLog()
    backoff = Backoff(initial=0.25, multiplier=2.0, jitter=0)
    spec = SupervisorSpec(
        children=[crash_loop_spec(log, [0] * 10, backoff)], max_restarts=2, within=10
    )
    t0 = trio.current_time()
    supervisor = await start_supervisor(system, spec)
    reason = await supervisor.wait_stopped()
    assert isinstance(reason, Crashed)
    assert isinstance(reason.exception, RestartIntensityError)
    # restarts decided at 0 and 0.25; the third decision, at 0.75, is one too many
    assert trio.current_time() - t0 == 0.75
    assert offsets(log, "c", t0) == [0, 0.25, 0.75]


async def test_supervisor_waiting_out_a_backoff_serves_other_children_and_stops_at_once(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    log = EventLog()
    slow = Backoff(initial=8.0, jitter=0)
    spec = SupervisorSpec(children=[worker(log, "a", backoff=slow), worker(log, "b")])
    supervisor = await start_supervisor(system, spec)
    a, b = supervisor.child("a"), supervisor.child("b")
    t0 = trio.current_time()
    a.tell_nowait("crash")
    await settle()
    assert {row.id: row.status for row in supervisor.which_children()} == {
        "a": ChildStatus.RESTARTING,
        "b": ChildStatus.RUNNING,
    }
    counts = supervisor.count_children()
    assert (counts.specs, counts.active) == (2, 1)
    assert supervisor.statistics().restarting == 1
    assert a.alive  # the ref outlives the incarnation, waiting for the next one
    b.tell_nowait("crash")
    await settle()
    assert b.statistics().restarts == 1
    await supervisor.start_child(worker(log, "c"))
    with pytest.raises(ChildAlreadyExistsError, match="restarting"):
        await supervisor.restart_child("a")
    assert trio.current_time() - t0 == 0  # nothing above waited for a's backoff
    log.take()
    await supervisor.stop()
    assert trio.current_time() - t0 == 0
    assert log.take() == [("stop", "c"), ("stop", "b")]
    assert a.exit_reason is not None
    assert log.of("start").count("a") == 0


async def test_child_restarts_when_its_backoff_is_over(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    log = EventLog()
    spec = SupervisorSpec(children=[worker(log, "a", backoff=Backoff(initial=8.0, jitter=0))])
    supervisor = await start_supervisor(system, spec)
    t0 = trio.current_time()
    supervisor.child("a").tell_nowait("crash")
    supervisor.child("a").tell_nowait("ping")  # waits in the mailbox for the next incarnation
    assert await supervisor.child("a").ask("extra", timeout=math.inf) == ()
    assert trio.current_time() - t0 == 8.0
    assert offsets(log, "a", t0)[-1] == 8.0


@pytest.mark.parametrize("how", ["terminate_child", "stop_ref"])
async def test_child_stopped_while_waiting_out_its_backoff_is_never_restarted(
    system: ActorSystem, autojump_clock: trio.testing.MockClock, how: str
) -> None:
    log = EventLog()
    spec = SupervisorSpec(children=[worker(log, "a", backoff=Backoff(initial=8.0, jitter=0))])
    supervisor = await start_supervisor(system, spec)
    a = supervisor.child("a")
    t0 = trio.current_time()
    a.tell_nowait("crash")
    await settle()
    if how == "terminate_child":
        await supervisor.terminate_child("a")
    else:
        await a.stop()
    assert trio.current_time() - t0 == 0
    assert not a.alive
    await trio.sleep(20)
    assert log.of("start") == ["a"]
    assert [row.status for row in supervisor.which_children()] == [ChildStatus.STOPPED]


async def test_one_for_all_group_waits_out_the_crashed_childs_backoff(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    log = EventLog()
    spec = SupervisorSpec(
        strategy=Strategy.ONE_FOR_ALL,
        children=[worker(log, "a", backoff=Backoff(initial=0.5, jitter=0)), worker(log, "b")],
    )
    supervisor = await start_supervisor(system, spec)
    t0 = trio.current_time()
    supervisor.child("a").tell_nowait("crash")
    await settle()
    assert log.of("stop") == ["a", "b"]
    assert trio.current_time() - t0 == 0
    await trio.sleep(1)
    assert offsets(log, "a", t0)[-1] == 0.5
    assert offsets(log, "b", t0)[-1] == 0.5


def test_backoff_delay_without_jitter_is_exact() -> None:
    backoff = Backoff(initial=0.5, multiplier=3.0, maximum=10.0, jitter=0)
    rng = random.Random(0)
    assert [backoff.delay(n, rng) for n in range(5)] == [0.5, 1.5, 4.5, 10.0, 10.0]
    assert backoff.delay(10_000, rng) == 10.0  # overflow is capped, not an error
    assert NO_BACKOFF.delay(3, rng) == 0.0


def test_backoff_rejects_invalid_settings() -> None:
    from actors.supervision import InvalidSpecError

    for bad in (
        {"initial": -1.0},
        {"maximum": -1.0},
        {"reset_after": -1.0},
        {"multiplier": 0.5},
        {"jitter": 1.5},
        {"jitter": -0.1},
    ):
        with pytest.raises(InvalidSpecError):
            Backoff(**bad)
    assert Backoff(maximum=math.inf).delay(3, random.Random(0)) > 0


async def test_child_waiting_out_its_backoff_ends_with_shutdown_when_its_supervisor_stops(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Its crash was already handled; what ends it is the stop, so watchers see a shutdown."""

    async def crashes(context: ActorContext) -> None:
        await context.receive()
        raise RuntimeError("crash")

    async with open_actor_system() as system:
        spec = SupervisorSpec(
            children=[ChildSpec(id="c", start=crashes, backoff=Backoff(initial=10.0, jitter=0))]
        )
        supervisor = await start_supervisor(system, spec)
        child = supervisor.child("c")
        await child.tell("crash")
        await trio.testing.wait_all_tasks_blocked()
        assert supervisor.statistics().restarting == 1
        await supervisor.stop()
        assert child.exit_reason == Shutdown("supervisor shutdown")
