"""The administration API (OTP child_adm, child_adm_simple), spec validation, start failures and
the hanging restart loop."""

from __future__ import annotations

import math

import pytest
import trio
from supervision_helpers import (
    Boom,
    EventLog,
    Gate,
    SlowStopper,
    Worker,
    count_tasks,
    idle,
    settle,
    worker,
)

from actors import (
    Actor,
    ActorStartError,
    ActorStoppedError,
    ActorSystem,
    Backoff,
    ChildSpec,
    Crashed,
    Restart,
    Shutdown,
    Strategy,
    Supervisor,
    SupervisorError,
    SupervisorSpec,
    start_supervisor,
)
from actors.runtime import NameTakenError
from actors.supervision import (
    NO_BACKOFF,
    ChildAlreadyExistsError,
    ChildCounts,
    ChildNotFoundError,
    ChildStatus,
    InvalidSpecError,
)


async def test_child_adm_start_terminate_restart_delete(system: ActorSystem) -> None:
    """OTP child_adm, step by step."""
    log = EventLog()
    supervisor = await start_supervisor(system, SupervisorSpec(children=[worker(log, "a")]))
    # start_child: a new child runs; the same id again is refused while running ...
    b = await supervisor.start_child(worker(log, "b"))
    assert b.alive
    assert supervisor.child("b") is b
    with pytest.raises(ChildAlreadyExistsError, match="running"):
        await supervisor.start_child(worker(log, "b"))
    # ... restart_child and delete_child refuse a running child
    with pytest.raises(ChildAlreadyExistsError):
        await supervisor.restart_child("b")
    with pytest.raises(ChildAlreadyExistsError):
        await supervisor.delete_child("b")
    # terminate_child stops it and keeps the spec; doing it again does nothing
    await supervisor.terminate_child("b")
    assert b.exit_reason == Shutdown("terminate_child")
    await supervisor.terminate_child("b")
    assert {row.id: row.status for row in supervisor.which_children()} == {
        "a": ChildStatus.RUNNING,
        "b": ChildStatus.STOPPED,
    }
    assert supervisor.count_children() == ChildCounts(specs=2, active=1, supervisors=0, workers=2)
    # ... and start_child of a kept spec is refused as already present
    with pytest.raises(ChildAlreadyExistsError, match="already present"):
        await supervisor.start_child(worker(log, "b"))
    # restart_child starts the kept spec again, behind a new ref
    b2 = await supervisor.restart_child("b")
    assert b2 is not b
    assert b2.alive
    assert supervisor.child("b") is b2
    # delete_child forgets a stopped child's spec
    await supervisor.terminate_child("b")
    await supervisor.delete_child("b")
    assert [row.id for row in supervisor.which_children()] == ["a"]
    # unknown ids
    for operation in (
        supervisor.terminate_child,
        supervisor.restart_child,
        supervisor.delete_child,
    ):
        with pytest.raises(ChildNotFoundError):
            await operation("nope")
    with pytest.raises(ChildNotFoundError):
        supervisor.child("nope")
    assert log.of("start") == ["a", "b", "b"]


class _First(Actor):
    async def receive(self, message: object) -> str:
        return "first"


class _Second(Actor):
    async def receive(self, message: object) -> str:
        return "second"


async def test_a_deleted_childs_id_started_again_runs_the_new_spec(system: ActorSystem) -> None:
    supervisor = await start_supervisor(system, SupervisorSpec())
    first = await supervisor.start_child(ChildSpec(id="w", start=_First))
    assert await first.ask("which") == "first"
    await supervisor.terminate_child("w")
    await supervisor.delete_child("w")
    second = await supervisor.start_child(ChildSpec(id="w", start=_Second))
    assert await second.ask("which") == "second"


async def test_terminate_child_of_a_temporary_child_forgets_it(system: ActorSystem) -> None:
    log = EventLog()
    supervisor = await start_supervisor(system, SupervisorSpec())
    ref = await supervisor.start_child(worker(log, "t", restart=Restart.TEMPORARY))
    await supervisor.terminate_child("t")
    assert not ref.alive
    assert supervisor.which_children() == []
    await supervisor.start_child(worker(log, "t", restart=Restart.TEMPORARY))  # id free again


async def test_restart_child_keeps_the_childs_place_in_the_start_order(
    system: ActorSystem,
) -> None:
    log = EventLog()
    spec = SupervisorSpec(strategy=Strategy.REST_FOR_ONE, children=[worker(log, k) for k in "abc"])
    supervisor = await start_supervisor(system, spec)
    await supervisor.terminate_child("a")
    await supervisor.restart_child("a")
    assert [row.id for row in supervisor.which_children()] == ["a", "b", "c"]
    log.take()
    supervisor.child("a").tell_nowait("crash")  # rest_for_one: a is still first
    await settle()
    assert log.of("start") == ["a", "b", "c"]
    log.take()
    await supervisor.stop()
    assert log.take() == [("stop", "c"), ("stop", "b"), ("stop", "a")]


async def test_child_adm_simple_works_by_ref_only(system: ActorSystem) -> None:
    """OTP child_adm_simple."""
    log = EventLog()
    template = ChildSpec(id="w", start=Worker, args=(log, "w"))
    supervisor = await start_supervisor(
        system, SupervisorSpec(strategy=Strategy.SIMPLE_ONE_FOR_ONE, children=[template])
    )
    ref = await supervisor.spawn()
    stranger = await system.spawn(idle)
    with pytest.raises(ChildNotFoundError):
        await supervisor.terminate_child("w")  # dynamic children have no id of their own
    with pytest.raises(ChildNotFoundError):
        await supervisor.terminate_child(stranger)
    with pytest.raises(SupervisorError, match="simple_one_for_one"):
        await supervisor.restart_child("w")
    with pytest.raises(SupervisorError, match="simple_one_for_one"):
        await supervisor.delete_child("w")
    await supervisor.terminate_child(ref)
    assert not ref.alive
    assert supervisor.which_children() == []
    with pytest.raises(ChildNotFoundError):
        await supervisor.terminate_child(ref)  # a terminated dynamic child is gone
    assert stranger.alive


async def test_which_children_and_count_children_describe_every_child(
    system: ActorSystem,
) -> None:
    log = EventLog()
    nested = SupervisorSpec(children=[worker(log, "x")])
    spec = SupervisorSpec(
        children=[
            worker(log, "a"),
            ChildSpec(id="sup", start=nested),
            worker(log, "t", restart=Restart.TRANSIENT),
        ]
    )
    supervisor = await start_supervisor(system, spec)
    rows = supervisor.which_children()
    assert [(row.id, row.restart, row.is_supervisor, row.status) for row in rows] == [
        ("a", Restart.PERMANENT, False, ChildStatus.RUNNING),
        ("sup", Restart.PERMANENT, True, ChildStatus.RUNNING),
        ("t", Restart.TRANSIENT, False, ChildStatus.RUNNING),
    ]
    assert supervisor.count_children() == ChildCounts(specs=3, active=3, supervisors=1, workers=2)
    supervisor.child("t").tell_nowait("normal")
    await settle()
    assert supervisor.count_children() == ChildCounts(specs=3, active=2, supervisors=1, workers=2)
    stats = supervisor.statistics()
    assert (stats.strategy, stats.restarts, stats.restarting) == (Strategy.ONE_FOR_ONE, 0, 0)
    assert Supervisor(supervisor.child("sup")).count_children().active == 1


async def test_admin_calls_on_a_stopped_supervisor_raise_actor_stopped(
    system: ActorSystem,
) -> None:
    log = EventLog()
    supervisor = await start_supervisor(system, SupervisorSpec(children=[worker(log, "a")]))
    await supervisor.stop()
    with pytest.raises(ActorStoppedError):
        supervisor.which_children()
    with pytest.raises(ActorStoppedError):
        await supervisor.start_child(worker(log, "b"))
    with pytest.raises(ActorStoppedError):
        await supervisor.terminate_child("a")


async def test_handle_on_a_worker_ref_is_not_a_supervisor(system: ActorSystem) -> None:
    ref = await system.spawn(idle)
    with pytest.raises(SupervisorError, match="not a running supervisor"):
        Supervisor(ref).count_children()


async def test_start_child_that_fails_to_start_keeps_nothing(system: ActorSystem) -> None:
    """OTP sup_start_child_returns_error."""
    log = EventLog()
    log.start_failures["b"] = 1
    supervisor = await start_supervisor(system, SupervisorSpec(children=[worker(log, "a")]))
    with pytest.raises(ActorStartError) as caught:
        await supervisor.start_child(worker(log, "b", name="b"))
    assert isinstance(caught.value.__cause__, Boom)
    assert [row.id for row in supervisor.which_children()] == ["a"]
    assert system.lookup("b") is None
    await supervisor.start_child(worker(log, "b", name="b"))  # the id and name are free


async def test_spawn_that_fails_to_start_keeps_nothing(system: ActorSystem) -> None:
    """OTP sup_start_child_returns_error_simple."""
    log = EventLog()
    log.start_failures["w"] = 1
    template = ChildSpec(id="w", start=Worker, args=(log, "w"))
    supervisor = await start_supervisor(
        system, SupervisorSpec(strategy=Strategy.SIMPLE_ONE_FOR_ONE, children=[template])
    )
    with pytest.raises(ActorStartError):
        await supervisor.spawn()
    assert supervisor.count_children().specs == 0
    await supervisor.spawn()
    assert supervisor.count_children().specs == 1


async def test_restart_child_that_fails_to_start_keeps_the_spec(system: ActorSystem) -> None:
    """OTP sup_start_restart_child_returns_error."""
    log = EventLog()
    supervisor = await start_supervisor(
        system, SupervisorSpec(children=[worker(log, "a"), worker(log, "b")])
    )
    await supervisor.terminate_child("a")
    log.start_failures["a"] = 1
    with pytest.raises(ActorStartError):
        await supervisor.restart_child("a")
    rows = supervisor.which_children()
    assert [(row.id, row.status) for row in rows] == [
        ("a", ChildStatus.STOPPED),
        ("b", ChildStatus.RUNNING),
    ]
    await supervisor.restart_child("a")
    assert [row.id for row in supervisor.which_children()] == ["a", "b"]


async def test_failing_static_child_stops_those_already_started_and_reports_the_cause(
    system: ActorSystem,
) -> None:
    """OTP faulty_application_shutdown: the original cause is kept as ``__cause__``."""
    log = EventLog()
    log.start_failures["c"] = 1
    spec = SupervisorSpec(children=[worker(log, k, name=k) for k in "abcd"])
    baseline = count_tasks()
    with pytest.raises(ActorStartError) as caught:
        await start_supervisor(system, spec)
    cause = caught.value.__cause__
    assert isinstance(cause, ActorStartError)
    assert isinstance(cause.__cause__, Boom)
    assert log.take() == [
        ("start", "a"),
        ("start", "b"),
        ("start-failed", "c"),
        ("stop", "b"),
        ("stop", "a"),
    ]
    assert system.statistics().registered_names == 0
    assert system.statistics().top_level_actors == 0
    assert count_tasks() == baseline


async def test_child_whose_name_is_taken_is_refused(system: ActorSystem) -> None:
    """OTP already_started_outside_supervisor."""
    log = EventLog()
    holder = await system.spawn(idle, name="taken")
    supervisor = await start_supervisor(system, SupervisorSpec())
    with pytest.raises(NameTakenError):
        await supervisor.start_child(worker(log, "a", name="taken"))
    assert supervisor.which_children() == []
    assert system.lookup("taken") is holder


def test_child_spec_defaults() -> None:
    spec = ChildSpec(id="a", start=idle)
    assert (spec.args, spec.restart, spec.name) == ((), Restart.PERMANENT, None)
    assert spec.shutdown is None  # resolved when the child starts: 5 s, or math.inf
    assert not spec.is_supervisor
    assert ChildSpec(id="s", start=SupervisorSpec()).is_supervisor


async def test_default_grace_is_five_seconds_for_workers_and_infinite_for_supervisors(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    log = EventLog()
    spec = SupervisorSpec(children=[worker(log, "a"), ChildSpec(id="s", start=SupervisorSpec())])
    supervisor = await start_supervisor(system, spec)
    supervisor.child("a").tell_nowait("block")
    await settle()
    t0 = trio.current_time()
    await supervisor.terminate_child("a")
    assert trio.current_time() - t0 == 5.0
    inner = Supervisor(supervisor.child("s"))
    assert (await inner.ref.stop()) == Shutdown()  # an empty supervisor stops at once
    assert trio.current_time() - t0 == 5.0


@pytest.mark.parametrize(
    "make",
    [
        lambda: ChildSpec(id="", start=idle),
        lambda: ChildSpec(id="a", start=idle, shutdown=-1.0),
        lambda: ChildSpec(id="a", start=idle, shutdown=math.nan),
        lambda: ChildSpec(id="a", start="not an actor"),
        lambda: ChildSpec(id="a", start=SupervisorSpec(), args=(1,)),
        lambda: SupervisorSpec(children=[ChildSpec(id="a", start=idle)] * 2),
        lambda: SupervisorSpec(strategy=Strategy.SIMPLE_ONE_FOR_ONE),
        lambda: SupervisorSpec(
            strategy=Strategy.SIMPLE_ONE_FOR_ONE,
            children=[ChildSpec(id="a", start=idle), ChildSpec(id="b", start=idle)],
        ),
        lambda: SupervisorSpec(strategy="one_for_one"),  # type: ignore[arg-type]
        lambda: SupervisorSpec(max_restarts=-1),
        lambda: SupervisorSpec(max_restarts=True),
        lambda: SupervisorSpec(max_restarts=math.inf),  # type: ignore[arg-type]
        lambda: SupervisorSpec(within=0),
        lambda: SupervisorSpec(within=math.inf),
    ],
    ids=[
        "empty-id",
        "negative-shutdown",
        "nan-shutdown",
        "bad-start",
        "supervisor-with-args",
        "duplicate-ids",
        "s141-no-template",
        "s141-two-templates",
        "strategy-string",
        "negative-intensity",
        "bool-intensity",
        "infinite-intensity",
        "zero-period",
        "infinite-period",
    ],
)
def test_invalid_specs_are_rejected(make: object) -> None:
    """OTP child_specs and sup_flags."""
    assert callable(make)
    with pytest.raises(InvalidSpecError):
        make()


@pytest.mark.parametrize(
    "strategy",
    [Strategy.ONE_FOR_ONE, Strategy.REST_FOR_ONE, Strategy.SIMPLE_ONE_FOR_ONE],
    ids=lambda s: s.value,
)
async def test_hanging_restart_loop_leaves_the_supervisor_responsive(
    system: ActorSystem, autojump_clock: trio.testing.MockClock, strategy: Strategy
) -> None:
    """OTP hanging_restart_loop(_rest_for_one, _simple): every restart of a fails in ``started``;
    the supervisor keeps trying with a backoff, answers admin calls, lets terminate_child end
    the loop, and stops at once."""
    log = EventLog()
    backoff = Backoff(initial=1.0, multiplier=1.0, jitter=0)
    failing = worker(log, "a", backoff=backoff)
    dynamic = strategy is Strategy.SIMPLE_ONE_FOR_ONE
    spec = SupervisorSpec(
        strategy=strategy,
        children=[failing] if dynamic else [failing, worker(log, "b")],
        max_restarts=1000,
        within=10,
    )
    supervisor = await start_supervisor(system, spec)
    a = await supervisor.spawn() if dynamic else supervisor.child("a")
    log.start_failures["a"] = -1
    t0 = trio.current_time()
    a.tell_nowait("crash")
    await trio.sleep(5.5)
    assert log.of("start-failed") == ["a"] * 5  # one attempt a second
    row = next(row for row in supervisor.which_children() if row.ref is a)
    assert row.status is ChildStatus.RESTARTING
    assert a.alive
    if not dynamic:
        with pytest.raises(ChildAlreadyExistsError, match="restarting"):
            await supervisor.restart_child("a")
        with pytest.raises(ChildAlreadyExistsError, match="restarting"):
            await supervisor.delete_child("a")
    await supervisor.terminate_child(a)
    assert a.exit_reason is not None
    assert trio.current_time() - t0 == 5.5
    await trio.sleep(5)
    assert len(log.of("start-failed")) == 5  # the loop is over
    t1 = trio.current_time()
    await supervisor.stop()
    assert trio.current_time() - t1 == 0


async def test_hanging_restart_loop_does_not_block_stop(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    log = EventLog()
    failing = worker(log, "a", backoff=Backoff(initial=1.0, multiplier=1.0, jitter=0))
    spec = SupervisorSpec(children=[failing], max_restarts=1000, within=10)
    supervisor = await start_supervisor(system, spec)
    log.start_failures["a"] = -1
    supervisor.child("a").tell_nowait("crash")
    await trio.sleep(3.5)
    t0 = trio.current_time()
    assert await supervisor.stop() == Shutdown()
    assert trio.current_time() - t0 == 0


async def test_children_added_later_restart_without_backoff_when_given_no_backoff(
    system: ActorSystem,
) -> None:
    log = EventLog()
    supervisor = await start_supervisor(system, SupervisorSpec())
    ref = await supervisor.start_child(
        ChildSpec(id="a", start=Worker, args=(log, "a"), backoff=NO_BACKOFF)
    )
    ref.tell_nowait("crash")
    await settle()
    assert ref.statistics().restarts == 1


async def test_concurrent_terminate_child_calls_on_one_child_both_wait_for_it(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    """Regression: the second caller crashed with NotImplementedError (a trio.Event used as a
    bool) instead of waiting for the same stop."""
    log = EventLog()
    spec = worker(log, "a", start=SlowStopper, extra=(1.0,))
    supervisor = await start_supervisor(system, SupervisorSpec(children=[spec]))
    t0 = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(supervisor.terminate_child, "a")
        nursery.start_soon(supervisor.terminate_child, "a")
    assert trio.current_time() - t0 == 1.0
    assert [row.status for row in supervisor.which_children()] == [ChildStatus.STOPPED]


async def test_child_stopped_through_its_ref_during_a_group_restart_is_not_restarted(
    system: ActorSystem,
) -> None:
    """Regression (found by test_properties.py): a crashed, whose restart waits for one_for_all to
    stop b, is stopped through its ref. The stop used to be lost: a was restarted anyway and
    ``a.stop()`` never returned."""
    log = EventLog()
    entered, release = trio.Event(), trio.Event()
    spec = SupervisorSpec(
        strategy=Strategy.ONE_FOR_ALL,
        children=[worker(log, "a"), worker(log, "b", start=Gate, extra=(entered, release))],
    )
    supervisor = await start_supervisor(system, spec)
    a = supervisor.child("a")
    a.tell_nowait("crash")
    await entered.wait()  # the supervisor is stopping b before restarting the group
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(a.stop)
            await trio.testing.wait_all_tasks_blocked()
            release.set()
    assert not a.alive
    assert isinstance(a.exit_reason, Crashed)  # it keeps the reason its last incarnation ended
    assert log.of("start") == ["a", "b", "b"]
    assert {row.id: row.status for row in supervisor.which_children()} == {
        "a": ChildStatus.STOPPED,
        "b": ChildStatus.RUNNING,
    }


async def test_child_terminated_during_a_group_restart_stays_terminated(
    system: ActorSystem,
) -> None:
    """Regression (found by test_properties.py): terminate_child on a crashed child whose group
    restart was still stopping its siblings used to be overridden: the supervisor restarted the
    child behind its finalized ref."""
    log = EventLog()
    entered, release = trio.Event(), trio.Event()
    spec = SupervisorSpec(
        strategy=Strategy.ONE_FOR_ALL,
        children=[worker(log, "a"), worker(log, "b", start=Gate, extra=(entered, release))],
    )
    supervisor = await start_supervisor(system, spec)
    a = supervisor.child("a")
    a.tell_nowait("crash")
    await entered.wait()
    await supervisor.terminate_child("a")
    release.set()
    await settle()
    assert not a.alive
    assert log.of("start") == ["a", "b", "b"]
    assert {row.id: row.status for row in supervisor.which_children()} == {
        "a": ChildStatus.STOPPED,
        "b": ChildStatus.RUNNING,
    }


async def test_which_children_keeps_the_last_exit_across_a_restart_and_takes_a_limit(
    system: ActorSystem,
) -> None:
    """An observer reads how each child last ended, and may ask for the first few alone."""
    log = EventLog()
    supervisor = await start_supervisor(
        system, SupervisorSpec(children=[worker(log, key) for key in "abc"])
    )
    assert [row.last_exit for row in supervisor.which_children()] == [None, None, None]
    supervisor.child("b").tell_nowait("crash")
    await settle()
    rows = supervisor.which_children()
    assert [row.status for row in rows] == [ChildStatus.RUNNING] * 3
    [crashed] = [row.last_exit for row in rows if row.id == "b"]
    assert isinstance(crashed, Crashed)
    assert isinstance(crashed.exception, Boom)
    assert supervisor.child("b").statistics().restarts == 1
    assert [row.id for row in supervisor.which_children(limit=2)] == ["a", "b"]
    assert [row.id for row in supervisor.which_children(limit=0)] == []
