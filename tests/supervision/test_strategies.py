"""The four restart strategies, with start order and reverse stop order checked event by event.

Ported from Erlang/OTP's lib/stdlib/test/supervisor_SUITE.erl (see
/work/shared/reference/otp-supervisor-cases.md). Where each scenario lives:

- test_strategies.py: sup_start_normal, one_for_one, one_for_all, rest_for_one,
  simple_one_for_one(_extra), one_for_all_other_child_fails_restart,
  rest_for_one_other_child_fails_restart, order_of_children.
- test_restart_types.py: the {permanent,transient,temporary}_{normal,shutdown,abnormal} matrix,
  temporary_bystander, do_not_save_child_specs_for_temporary_children.
- test_intensity.py: one_for_one (3rd crash), multiple_restarts (sliding window), the
  *_escalation cases, tree escalation to the root.
- test_backoff.py: no OTP counterpart (OTP restarts at once); delays, cap, jitter, reset, intensity.
- test_shutdown.py: sup_stop_infinity, sup_stop_timeout(_dynamic), sup_stop_brutal_kill(_dynamic),
  sup_stop_race, sup_stop_non_shutdown_exit_dynamic, sup_stop_manual(_timeout),
  simple_one_for_one_shutdown, child_unlink.
- test_admin.py: child_adm, child_adm_simple, sup_start_child_returns_error(_simple),
  sup_start_restart_child_returns_error, faulty_application_shutdown, child_specs, sup_flags,
  which_children, already_started_outside_supervisor, hanging_restart_loop(_rest_for_one,_simple).
- test_dynamic.py: count_children, count_restarting_children, simple_one_for_one_corruption,
  scale_start_stop_many_children, simple_one_for_one_scale_many_temporary_children (10,000).
- test_tree.py: tree, nested restart and stop order.
- test_properties.py: random operation sequences never leak tasks or names or corrupt state.

Skipped, and why:
- sup_start_ignore_*, extra_return, simple_one_for_one_restart_ignore: a start here either
  succeeds or raises; there is no ``ignore`` or ``{ok, Pid, Info}`` return to port.
- sup_start_error_return / sup_start_fail: a SupervisorSpec is validated when it is built
  (covered by the spec validation tests in test_admin.py); there is no ``init`` callback.
- sup_start_map*: Python keyword arguments with defaults replace map specs (defaults are
  checked in test_admin.py).
- code_change*, significant_upgrade_*: no hot code change or live reconfiguration API.
- auto_hibernate and the hibernation part of child_adm: trio tasks do not hibernate.
- nonsignificant_*, significant_*: no significant children / auto_shutdown.
- format_log_1, format_log_2, external_start_no_progress_log: log formatting is not part of
  the supervision behaviour under test.
- simple_global_supervisor: no globally registered names (only per-system names, whose
  re-registration on restart is covered in test_tree.py).
- get_callback_module: no callback module.
- do_not_save_start_parameters_for_temporary_children's heap check: memory is not measured; the
  observable part (temporary specs are dropped) is covered.
"""

from __future__ import annotations

import pytest
import trio
from supervision_helpers import EventLog, Worker, settle, worker

from actors import (
    ActorSystem,
    ChildSpec,
    Shutdown,
    Strategy,
    SupervisorError,
    SupervisorSpec,
    start_supervisor,
)
from actors.supervision import NO_BACKOFF, ChildStatus

STATIC_STRATEGIES = [Strategy.ONE_FOR_ONE, Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE]


async def test_supervisor_without_children_starts_and_stops_with_shutdown(
    system: ActorSystem,
) -> None:
    supervisor = await start_supervisor(system, SupervisorSpec(max_restarts=2, within=3600))
    assert supervisor.which_children() == []
    assert await supervisor.stop() == Shutdown()
    assert system.statistics().top_level_actors == 0


@pytest.mark.parametrize("strategy", STATIC_STRATEGIES, ids=lambda s: s.value)
async def test_static_children_start_in_spec_order_and_stop_in_reverse_order(
    system: ActorSystem, strategy: Strategy
) -> None:
    log = EventLog()
    spec = SupervisorSpec(strategy=strategy, children=[worker(log, key) for key in "abcd"])
    supervisor = await start_supervisor(system, spec)
    assert log.take() == [("start", "a"), ("start", "b"), ("start", "c"), ("start", "d")]
    assert [row.id for row in supervisor.which_children()] == ["a", "b", "c", "d"]
    await supervisor.stop()
    assert log.take() == [("stop", "d"), ("stop", "c"), ("stop", "b"), ("stop", "a")]


async def test_one_for_one_restarts_only_the_crashed_child(system: ActorSystem) -> None:
    log = EventLog()
    spec = SupervisorSpec(children=[worker(log, key) for key in "abc"])
    supervisor = await start_supervisor(system, spec)
    refs = {key: supervisor.child(key) for key in "abc"}
    log.take()
    refs["b"].tell_nowait("crash")
    await settle()
    assert log.take() == [("stop", "b"), ("start", "b")]
    assert {key: ref.statistics().restarts for key, ref in refs.items()} == {"a": 0, "b": 1, "c": 0}
    assert all(ref.alive for ref in refs.values())
    assert supervisor.child("b") is refs["b"]  # a ref is stable across restarts


async def test_one_for_all_stops_siblings_in_reverse_order_then_restarts_all_in_order(
    system: ActorSystem,
) -> None:
    log = EventLog()
    spec = SupervisorSpec(strategy=Strategy.ONE_FOR_ALL, children=[worker(log, k) for k in "abcd"])
    supervisor = await start_supervisor(system, spec)
    log.take()
    supervisor.child("b").tell_nowait("crash")
    await settle()
    assert log.take() == [
        ("stop", "b"),  # the crash itself
        ("stop", "d"),
        ("stop", "c"),
        ("stop", "a"),
        ("start", "a"),
        ("start", "b"),
        ("start", "c"),
        ("start", "d"),
    ]
    assert [supervisor.child(k).statistics().restarts for k in "abcd"] == [1, 1, 1, 1]
    assert supervisor.statistics().restarts == 1  # a group restart is one restart


async def test_rest_for_one_restarts_the_crashed_child_and_those_started_after_it(
    system: ActorSystem,
) -> None:
    log = EventLog()
    spec = SupervisorSpec(strategy=Strategy.REST_FOR_ONE, children=[worker(log, k) for k in "abcd"])
    supervisor = await start_supervisor(system, spec)
    log.take()
    supervisor.child("b").tell_nowait("crash")
    await settle()
    assert log.take() == [
        ("stop", "b"),
        ("stop", "d"),
        ("stop", "c"),
        ("start", "b"),
        ("start", "c"),
        ("start", "d"),
    ]
    assert [supervisor.child(k).statistics().restarts for k in "abcd"] == [0, 1, 1, 1]


async def test_rest_for_one_crash_of_the_last_child_restarts_only_it(system: ActorSystem) -> None:
    log = EventLog()
    spec = SupervisorSpec(strategy=Strategy.REST_FOR_ONE, children=[worker(log, k) for k in "abc"])
    supervisor = await start_supervisor(system, spec)
    log.take()
    supervisor.child("c").tell_nowait("crash")
    await settle()
    assert log.take() == [("stop", "c"), ("start", "c")]


async def test_simple_one_for_one_restarts_only_the_crashed_dynamic_child(
    system: ActorSystem,
) -> None:
    log = EventLog()
    template = ChildSpec(id="w", start=Worker, args=(log, "w"), backoff=NO_BACKOFF)
    spec = SupervisorSpec(strategy=Strategy.SIMPLE_ONE_FOR_ONE, children=[template])
    supervisor = await start_supervisor(system, spec)
    refs = [await supervisor.spawn(n) for n in range(3)]
    assert [await ref.ask("extra") for ref in refs] == [(0,), (1,), (2,)]
    log.take()
    refs[1].tell_nowait("crash")
    await settle()
    assert log.take() == [("stop", "w"), ("start", "w")]
    assert [ref.statistics().restarts for ref in refs] == [0, 1, 0]
    assert await refs[1].ask("extra") == (1,)  # the restart keeps the spawn arguments
    assert [row.ref for row in supervisor.which_children()] == refs


async def test_simple_one_for_one_stops_dynamic_children_all_at_once(system: ActorSystem) -> None:
    log = EventLog()
    template = ChildSpec(id="w", start=Worker, args=(log, "w"), backoff=NO_BACKOFF)
    spec = SupervisorSpec(strategy=Strategy.SIMPLE_ONE_FOR_ONE, children=[template])
    supervisor = await start_supervisor(system, spec)
    refs = [await supervisor.spawn() for _ in range(3)]
    await supervisor.stop()
    assert log.of("stop") == ["w", "w", "w"]
    assert all(ref.exit_reason == Shutdown("supervisor shutdown") for ref in refs)


async def test_one_for_all_retries_the_group_when_a_child_fails_to_restart(
    system: ActorSystem,
) -> None:
    """OTP one_for_all_other_child_fails_restart: b fails during the group restart, so the
    already-restarted a is stopped again and the whole group restarts once more."""
    log = EventLog()
    spec = SupervisorSpec(
        strategy=Strategy.ONE_FOR_ALL, children=[worker(log, k) for k in "abc"], max_restarts=10
    )
    supervisor = await start_supervisor(system, spec)
    log.take()
    log.start_failures["b"] = 1
    supervisor.child("a").tell_nowait("crash")
    await settle()
    assert log.take() == [
        ("stop", "a"),
        ("stop", "c"),
        ("stop", "b"),
        ("start", "a"),
        ("start-failed", "b"),
        ("stop", "a"),
        ("start", "a"),
        ("start", "b"),
        ("start", "c"),
    ]
    assert all(row.status is ChildStatus.RUNNING for row in supervisor.which_children())
    assert supervisor.statistics().restarts == 2


async def test_rest_for_one_failed_restart_of_a_later_child_leaves_earlier_ones_running(
    system: ActorSystem,
) -> None:
    """OTP rest_for_one_other_child_fails_restart: c fails to restart after b crashed; only c is
    tried again, b keeps its new incarnation and a is never touched."""
    log = EventLog()
    spec = SupervisorSpec(
        strategy=Strategy.REST_FOR_ONE, children=[worker(log, k) for k in "abc"], max_restarts=10
    )
    supervisor = await start_supervisor(system, spec)
    log.take()
    log.start_failures["c"] = 1
    supervisor.child("b").tell_nowait("crash")
    await settle()
    assert log.take() == [
        ("stop", "b"),
        ("stop", "c"),
        ("start", "b"),
        ("start-failed", "c"),
        ("start", "c"),
    ]
    assert [supervisor.child(k).statistics().restarts for k in "abc"] == [0, 1, 2]


@pytest.mark.parametrize("strategy", STATIC_STRATEGIES, ids=lambda s: s.value)
async def test_static_supervisor_refuses_spawn(system: ActorSystem, strategy: Strategy) -> None:
    supervisor = await start_supervisor(system, SupervisorSpec(strategy=strategy))
    with pytest.raises(SupervisorError, match="simple_one_for_one"):
        await supervisor.spawn()


async def test_simple_one_for_one_supervisor_refuses_start_child(system: ActorSystem) -> None:
    log = EventLog()
    spec = SupervisorSpec(strategy=Strategy.SIMPLE_ONE_FOR_ONE, children=[worker(log, "w")])
    supervisor = await start_supervisor(system, spec)
    with pytest.raises(SupervisorError, match="spawn"):
        await supervisor.start_child(worker(log, "other"))
    assert supervisor.which_children() == []


async def test_supervisor_fails_asks_and_drops_messages_sent_to_it(system: ActorSystem) -> None:
    supervisor = await start_supervisor(system, SupervisorSpec())
    with pytest.raises(SupervisorError, match="takes no messages"):
        await supervisor.ref.ask("hello")
    supervisor.ref.tell_nowait("hello")
    await settle()
    assert supervisor.ref.alive


async def test_order_of_children_is_kept_across_restarts(system: ActorSystem) -> None:
    """OTP order_of_children: restarts change neither the start order nor the stop order."""
    log = EventLog()
    spec = SupervisorSpec(strategy=Strategy.REST_FOR_ONE, children=[worker(log, k) for k in "abc"])
    supervisor = await start_supervisor(system, spec)
    for key in "abc":
        supervisor.child(key).tell_nowait("crash")
        await settle()
    log.take()
    with trio.fail_after(5):
        await supervisor.stop()
    assert log.take() == [("stop", "c"), ("stop", "b"), ("stop", "a")]
