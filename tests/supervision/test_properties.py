"""Hypothesis: random sequences of crashes, exits, stops and admin calls never leave an orphaned
task, a leaked name or an inconsistent supervisor.

Each example opens its own actor system inside the test body: pytest-trio runs every example in a
fresh trio run, but fixtures are not re-run per example. Restarts use ``NO_BACKOFF`` and a one-hour
intensity window, so the real clock never matters.
"""

from __future__ import annotations

import random

import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from supervision_helpers import EventLog, Worker, assert_consistent, count_tasks, settle, worker

from actors import (
    ActorRef,
    ActorsError,
    ActorStartError,
    ActorStoppedError,
    ActorSystem,
    Backoff,
    ChildSpec,
    Restart,
    Strategy,
    Supervisor,
    SupervisorSpec,
    open_actor_system,
    start_supervisor,
)
from actors.supervision import NO_BACKOFF, ChildAlreadyExistsError, ChildNotFoundError, ChildStatus

STATIC_OPERATIONS = [
    "crash",
    "normal",
    "shutdown",
    "stop",
    "terminate",
    "restart",
    "delete",
    "start",
]
DYNAMIC_OPERATIONS = ["crash", "normal", "shutdown", "stop", "terminate", "spawn"]
restart_types = st.sampled_from(list(Restart))


def check_tree(
    supervisor: Supervisor, system: ActorSystem, seen: set[ActorRef], base_tasks: int
) -> None:
    """Every task and name belongs to a live child the supervisor knows about."""
    if supervisor.ref.alive:
        assert_consistent(supervisor, system)
        rows = supervisor.which_children()
        live = {row.ref for row in rows if row.ref.alive}
        assert {ref for ref in seen if ref.alive} == live  # no live child the supervisor forgot
        running = sum(1 for row in rows if row.status is ChildStatus.RUNNING)
        assert count_tasks() == base_tasks + 1 + running
        assert system.statistics().registered_names == sum(1 for r in live if r.name)
    else:
        assert not any(ref.alive for ref in seen)
        assert count_tasks() == base_tasks
        assert system.statistics().registered_names == 0


async def perform_static(
    supervisor: Supervisor, log: EventLog, operation: str, key: str, restart: Restart
) -> ActorRef | None:
    rows = {row.id: row for row in supervisor.which_children()}
    row = rows.get(key)
    match operation:
        case "crash" | "normal" | "shutdown":
            if row is not None and row.status is ChildStatus.RUNNING:
                row.ref.tell_nowait(operation)
        case "stop":
            if row is not None:
                await row.ref.stop()
        case "terminate":
            await supervisor.terminate_child(key)
        case "restart":
            return await supervisor.restart_child(key)
        case "delete":
            await supervisor.delete_child(key)
        case "start":
            return await supervisor.start_child(worker(log, key, restart=restart, name=key))
    return None


@settings(max_examples=60, deadline=None)
@given(
    strategy=st.sampled_from([Strategy.ONE_FOR_ONE, Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE]),
    children=st.lists(restart_types, min_size=1, max_size=4),
    max_restarts=st.integers(min_value=0, max_value=8),
    operations=st.lists(
        st.tuples(
            st.sampled_from(STATIC_OPERATIONS),
            st.integers(min_value=0, max_value=4),
            restart_types,
            st.booleans(),
        ),
        max_size=25,
    ),
)
async def test_random_operations_on_a_static_supervisor_leave_nothing_behind(
    strategy: Strategy,
    children: list[Restart],
    max_restarts: int,
    operations: list[tuple[str, int, Restart, bool]],
) -> None:
    log = EventLog()
    outside = count_tasks()
    with trio.fail_after(10):
        async with open_actor_system(random=random.Random(0)) as system:
            base_tasks = count_tasks()
            spec = SupervisorSpec(
                strategy=strategy,
                children=[
                    worker(log, f"c{n}", restart=restart, name=f"c{n}")
                    for n, restart in enumerate(children)
                ],
                max_restarts=max_restarts,
                within=3600,
            )
            supervisor = await start_supervisor(system, spec)
            seen = {row.ref for row in supervisor.which_children()}
            for operation, index, restart, wait in operations:
                if not supervisor.ref.alive:
                    break
                try:
                    ref = await perform_static(supervisor, log, operation, f"c{index}", restart)
                except (
                    ChildNotFoundError,
                    ChildAlreadyExistsError,
                    ActorStoppedError,
                    ActorStartError,
                ):
                    ref = None
                if ref is not None:
                    seen.add(ref)
                if wait:
                    await settle()
                    check_tree(supervisor, system, seen, base_tasks)
            await settle()
            check_tree(supervisor, system, seen, base_tasks)
            await supervisor.stop()
            check_tree(supervisor, system, seen, base_tasks)
    assert count_tasks() == outside


@settings(max_examples=60, deadline=None)
@given(
    restart=restart_types,
    max_restarts=st.integers(min_value=0, max_value=8),
    operations=st.lists(
        st.tuples(
            st.sampled_from(DYNAMIC_OPERATIONS),
            st.integers(min_value=0, max_value=5),
            st.booleans(),
        ),
        max_size=30,
    ),
)
async def test_random_operations_on_a_dynamic_supervisor_leave_nothing_behind(
    restart: Restart, max_restarts: int, operations: list[tuple[str, int, bool]]
) -> None:
    log = EventLog()
    outside = count_tasks()
    with trio.fail_after(10):
        async with open_actor_system(random=random.Random(0)) as system:
            base_tasks = count_tasks()
            template = ChildSpec(
                id="w", start=Worker, args=(log, "w"), restart=restart, backoff=NO_BACKOFF
            )
            spec = SupervisorSpec(
                strategy=Strategy.SIMPLE_ONE_FOR_ONE,
                children=[template],
                max_restarts=max_restarts,
                within=3600,
            )
            supervisor = await start_supervisor(system, spec)
            seen: set[ActorRef] = set()
            spawned = 0
            for operation, index, wait in operations:
                if not supervisor.ref.alive:
                    break
                rows = supervisor.which_children()
                row = rows[index % len(rows)] if rows else None
                try:
                    if operation == "spawn":
                        spawned += 1
                        seen.add(await supervisor.spawn(name=f"d{spawned}"))
                    elif row is None:
                        pass
                    elif operation == "stop":
                        await row.ref.stop()
                    elif operation == "terminate":
                        await supervisor.terminate_child(row.ref)
                    elif row.status is ChildStatus.RUNNING:
                        row.ref.tell_nowait(operation)
                except (ChildNotFoundError, ActorStoppedError, ActorStartError):
                    pass
                if wait:
                    await settle()
                    check_tree(supervisor, system, seen, base_tasks)
            await settle()
            check_tree(supervisor, system, seen, base_tasks)
            await supervisor.stop()
            check_tree(supervisor, system, seen, base_tasks)
    assert count_tasks() == outside


@given(
    initial=st.floats(min_value=0, max_value=100),
    multiplier=st.floats(min_value=1, max_value=10),
    maximum=st.floats(min_value=0, max_value=1000),
    jitter=st.floats(min_value=0, max_value=1),
    attempt=st.integers(min_value=0, max_value=5000),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_backoff_delay_is_never_negative_nor_above_the_maximum(
    initial: float, multiplier: float, maximum: float, jitter: float, attempt: int, seed: int
) -> None:
    backoff = Backoff(initial=initial, multiplier=multiplier, maximum=maximum, jitter=jitter)
    delay = backoff.delay(attempt, random.Random(seed))
    assert 0 <= delay <= maximum


@given(seed=st.integers(min_value=0, max_value=2**32), attempts=st.integers(1, 20))
def test_backoff_delays_replay_exactly_from_the_same_seed(seed: int, attempts: int) -> None:
    backoff = Backoff(initial=0.5, jitter=0.5)
    first, second = random.Random(seed), random.Random(seed)
    assert [backoff.delay(n, first) for n in range(attempts)] == [
        backoff.delay(n, second) for n in range(attempts)
    ]


def test_actors_error_is_the_base_of_supervision_errors() -> None:
    assert issubclass(ChildNotFoundError, ActorsError)
    assert issubclass(ChildAlreadyExistsError, ActorsError)
