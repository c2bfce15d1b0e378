"""Supervision trees (OTP ``tree``): restarts stay local until they escalate a level."""

from __future__ import annotations

import trio
from supervision_helpers import EventLog, count_tasks, settle, worker

from actors import (
    ActorSystem,
    ChildSpec,
    Crashed,
    RestartIntensityError,
    Shutdown,
    Strategy,
    Supervisor,
    SupervisorSpec,
    start_supervisor,
)
from actors.supervision import NO_BACKOFF


def build_tree(log: EventLog) -> SupervisorSpec:
    left = SupervisorSpec(
        children=[worker(log, "l1", name="l1"), worker(log, "l2", name="l2")], max_restarts=1
    )
    right = SupervisorSpec(children=[worker(log, "r1")], max_restarts=1)
    return SupervisorSpec(
        strategy=Strategy.ONE_FOR_ALL,
        children=[
            ChildSpec(id="left", start=left, backoff=NO_BACKOFF),
            ChildSpec(id="right", start=right, backoff=NO_BACKOFF),
        ],
        max_restarts=3,
    )


async def test_tree_starts_depth_first_in_order_and_stops_in_exact_reverse(
    system: ActorSystem,
) -> None:
    log = EventLog()
    root = await start_supervisor(system, build_tree(log))
    assert log.take() == [("start", "l1"), ("start", "l2"), ("start", "r1")]
    await root.stop()
    assert log.take() == [("stop", "r1"), ("stop", "l2"), ("stop", "l1")]


async def test_worker_crash_in_a_subtree_restarts_only_that_worker(system: ActorSystem) -> None:
    log = EventLog()
    root = await start_supervisor(system, build_tree(log))
    left = Supervisor(root.child("left"))
    log.take()
    left.child("l2").tell_nowait("crash")
    await settle()
    assert log.take() == [("stop", "l2"), ("start", "l2")]
    assert root.statistics().restarts == 0
    assert root.child("left").statistics().restarts == 0


async def test_escalation_restarts_the_subtree_with_static_children_only(
    system: ActorSystem,
) -> None:
    """OTP tree: the left supervisor gives up; the root (one_for_all) restarts both subtrees.
    Static children come back under new refs with their names re-registered; a child added with
    start_child does not come back."""
    log = EventLog()
    root = await start_supervisor(system, build_tree(log))
    left_ref = root.child("left")
    left = Supervisor(left_ref)
    old_l1 = left.child("l1")
    extra = await left.start_child(worker(log, "extra", name="extra"))
    log.take()
    for _ in range(2):
        left.child("l2").tell_nowait("crash")
        await settle()
    assert log.take() == [
        ("stop", "l2"),
        ("start", "l2"),
        ("stop", "l2"),  # the second crash exceeds left's intensity: left gives up
        ("stop", "extra"),
        ("stop", "l1"),
        ("stop", "r1"),  # one_for_all: the root stops right too, then restarts both
        ("start", "l1"),
        ("start", "l2"),
        ("start", "r1"),
    ]
    assert root.child("left") is left_ref  # the subtree's ref is stable
    assert left_ref.statistics().restarts == 1
    assert [row.id for row in left.which_children()] == ["l1", "l2"]
    new_l1 = left.child("l1")
    assert new_l1 is not old_l1
    assert not old_l1.alive
    assert not extra.alive
    assert system.lookup("l1") is new_l1
    assert system.lookup("extra") is None
    assert root.statistics().restarts == 1


async def test_repeated_escalation_takes_the_whole_tree_down(system: ActorSystem) -> None:
    log = EventLog()
    baseline = count_tasks()
    root = await start_supervisor(system, build_tree(log))
    refs = {"root": root.ref}
    for _ in range(4):  # 4 subtree restarts: one more than the root allows
        right = Supervisor(root.child("right"))
        for _ in range(2):
            right.child("r1").tell_nowait("crash")
            await settle()
        if not root.ref.alive:
            break
        refs["r1"] = right.child("r1")
    with trio.fail_after(1):
        reason = await root.wait_stopped()
    assert isinstance(reason, Crashed)
    assert isinstance(reason.exception, RestartIntensityError)
    assert not any(ref.alive for ref in refs.values())
    assert system.statistics().registered_names == 0
    assert system.statistics().top_level_actors == 0
    assert count_tasks() == baseline


async def test_stopping_a_subtree_from_outside_leaves_it_stopped(system: ActorSystem) -> None:
    log = EventLog()
    root = await start_supervisor(system, build_tree(log))
    left_ref = root.child("left")
    log.take()
    assert await left_ref.stop() == Shutdown()
    await settle()
    assert log.take() == [("stop", "l2"), ("stop", "l1")]
    assert root.statistics().restarts == 0
    assert root.child("right").alive
    assert system.lookup("l1") is None
