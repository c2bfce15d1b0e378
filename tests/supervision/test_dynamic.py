"""Dynamic children under simple_one_for_one, at scale: counts, and nothing left behind."""

from __future__ import annotations

import trio
from supervision_helpers import EventLog, Worker, count_tasks, idle, settle

from actors import (
    ActorSystem,
    Backoff,
    ChildSpec,
    Restart,
    Shutdown,
    Strategy,
    Supervisor,
    SupervisorSpec,
    start_supervisor,
)
from actors.supervision import ChildCounts

MANY = 10_000


async def start_dynamic(
    system: ActorSystem, start: object, *, restart: Restart = Restart.PERMANENT
) -> Supervisor:
    template = ChildSpec(id="w", start=start, restart=restart)
    spec = SupervisorSpec(strategy=Strategy.SIMPLE_ONE_FOR_ONE, children=[template])
    return await start_supervisor(system, spec)


async def test_ten_thousand_dynamic_children_stop_with_their_supervisor(
    system: ActorSystem,
) -> None:
    """OTP scale_start_stop_many_children / count_children: nothing is left afterwards."""
    baseline = count_tasks()
    supervisor = await start_dynamic(system, idle)
    with trio.fail_after(30):
        refs = [await supervisor.spawn(name=f"w{n}") for n in range(MANY)]
    assert supervisor.count_children() == ChildCounts(
        specs=MANY, active=MANY, supervisors=0, workers=MANY
    )
    assert count_tasks() == baseline + 1 + MANY  # the supervisor, and one task per child
    assert system.statistics().registered_names == MANY
    with trio.fail_after(30):
        assert await supervisor.stop() == Shutdown()
    assert not any(ref.alive for ref in refs)
    assert all(ref.exit_reason == Shutdown("supervisor shutdown") for ref in refs)
    assert system.statistics().registered_names == 0
    assert system.lookup("w0") is None
    assert count_tasks() == baseline


async def test_ten_thousand_dynamic_children_terminated_one_by_one(system: ActorSystem) -> None:
    """OTP simple_one_for_one_scale_many_temporary_children."""
    baseline = count_tasks()
    supervisor = await start_dynamic(system, idle, restart=Restart.TEMPORARY)
    with trio.fail_after(30):
        refs = [await supervisor.spawn(name=f"w{n}") for n in range(MANY)]
        for ref in refs:
            await supervisor.terminate_child(ref)
    assert supervisor.count_children() == ChildCounts(specs=0, active=0, supervisors=0, workers=0)
    assert not any(ref.alive for ref in refs)
    assert system.statistics().registered_names == 0
    assert count_tasks() == baseline + 1  # only the supervisor is left
    await supervisor.stop()
    assert count_tasks() == baseline


async def test_restarting_dynamic_children_count_as_specs_not_active(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    """OTP count_restarting_children."""
    log = EventLog()
    template = ChildSpec(
        id="w", start=Worker, args=(log, "w"), backoff=Backoff(initial=10.0, jitter=0)
    )
    spec = SupervisorSpec(
        strategy=Strategy.SIMPLE_ONE_FOR_ONE, children=[template], max_restarts=1000
    )
    supervisor = await start_supervisor(system, spec)
    refs = [await supervisor.spawn() for _ in range(1000)]
    for ref in refs[::2]:
        ref.tell_nowait("crash")
    await settle()
    assert supervisor.count_children() == ChildCounts(
        specs=1000, active=500, supervisors=0, workers=1000
    )
    assert supervisor.statistics().restarting == 500
    await trio.sleep(10)
    await settle()  # the restarts are due at the very moment this sleep ends
    assert supervisor.count_children().active == 1000


async def test_temporary_dynamic_child_leaves_no_trace_when_it_ends(system: ActorSystem) -> None:
    """OTP simple_one_for_one_corruption / do_not_save_start_parameters_for_temporary_children."""
    log = EventLog()
    template = ChildSpec(id="w", start=Worker, args=(log, "w"), restart=Restart.TEMPORARY)
    supervisor = await start_supervisor(
        system, SupervisorSpec(strategy=Strategy.SIMPLE_ONE_FOR_ONE, children=[template])
    )
    refs = [await supervisor.spawn(n, name=f"t{n}") for n in range(5)]
    for ref, how in zip(refs, ["crash", "normal", "shutdown", "crash", "normal"], strict=True):
        ref.tell_nowait(how)
    await settle()
    assert supervisor.which_children() == []
    assert system.statistics().registered_names == 0
    fresh = await supervisor.spawn(99, name="t0")  # names are free again
    assert await fresh.ask("extra") == (99,)
    assert [row.ref for row in supervisor.which_children()] == [fresh]


async def test_dynamic_children_named_and_anonymous_coexist(system: ActorSystem) -> None:
    supervisor = await start_dynamic(system, idle)
    named = await supervisor.spawn(name="named")
    anonymous = await supervisor.spawn()
    assert system.lookup("named") is named
    assert anonymous.name is None
    await supervisor.terminate_child(named)
    assert system.lookup("named") is None
    assert [row.ref for row in supervisor.which_children()] == [anonymous]
