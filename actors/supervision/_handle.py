"""The Supervisor handle: start, stop and inspect a supervisor's children from any task."""

from __future__ import annotations

import itertools
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import attrs
import trio

from actors._errors import ActorStoppedError, SupervisorError
from actors.runtime import Crashed, ExitReason
from actors.runtime.lowlevel import cell_of, start_system_task
from actors.supervision._child import ChildStatus
from actors.supervision._core import SupervisorCore

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from actors.runtime import ActorRef, ActorSystem
    from actors.supervision._spec import ChildSpec, Restart, Strategy, SupervisorSpec


@attrs.frozen(kw_only=True)
class ChildInfo:
    """One row of ``Supervisor.which_children()``."""

    id: str
    """The spec id (for dynamic children, the template's id)."""
    ref: ActorRef
    """The child's ref, stable across restarts; dead once the child is stopped."""
    status: ChildStatus
    """Running, restarting (waiting out a backoff), stopped (spec kept), ..."""
    restart: Restart
    """The child's restart type."""
    is_supervisor: bool
    """Whether the child is a supervisor itself."""
    last_exit: ExitReason | None = None
    """How its last incarnation ended, kept across restarts; None while its first runs."""


@attrs.frozen(kw_only=True)
class ChildCounts:
    """OTP's ``count_children``."""

    specs: int
    """Children the supervisor knows of, running or not."""
    active: int
    """Children running now (restarting children are specs, not active)."""
    supervisors: int
    """Children that are supervisors."""
    workers: int
    """Children that are not supervisors."""


@attrs.frozen(kw_only=True)
class SupervisorStatistics:
    """A snapshot of a supervisor."""

    strategy: Strategy
    """Its restart strategy."""
    children: ChildCounts
    """Its children, counted."""
    restarting: int
    """Children waiting out a backoff or a group restart."""
    restarts: int
    """Restarts decided since this incarnation started (a group restart counts once)."""
    recent_restarts: int
    """Restarts within the intensity window that ended at the last restart."""
    max_restarts: int
    """The intensity limit."""
    within: float
    """The intensity window, in seconds."""


class Supervisor:
    """Administers a running supervisor. Get one from ``start_supervisor``, ``open_supervisor``,
    or ``Supervisor(ref)`` for the ref of a nested supervisor.
    """

    __slots__ = ("ref",)

    def __init__(self, ref: ActorRef) -> None:
        self.ref = ref

    def _core(self) -> SupervisorCore:
        cell = cell_of(self.ref)
        core = cell.instance
        if not isinstance(core, SupervisorCore):
            if not self.ref.alive:
                raise ActorStoppedError(f"supervisor {cell.label} has stopped")
            raise SupervisorError(f"{cell.label} is not a running supervisor")
        return core

    async def start_child(self, spec: ChildSpec) -> ActorRef:
        """Add a child and start it; returns its ref once its ``started`` hook has run.

        Raises:
            ChildAlreadyExistsError: A child with this id is running or its spec is kept.
            ActorStartError: The child failed to start; nothing is kept.
        """
        return await self._core().start_child(spec)

    async def spawn(self, *args: object, name: str | None = None) -> ActorRef:
        """Start a dynamic child from the template (simple_one_for_one), with extra arguments.

        The template's ``args`` come first, then ``args``.
        """
        return await self._core().spawn(args, name)

    async def terminate_child(self, child: str | ActorRef) -> None:
        """Stop a child within its grace period. Static specs are kept; dynamic ones are dropped.

        Terminating a child that is already stopped does nothing.
        """
        await self._core().terminate_child(child)

    async def restart_child(self, child_id: str) -> ActorRef:
        """Start again a stopped child whose spec was kept; returns its new ref."""
        return await self._core().restart_child(child_id)

    async def delete_child(self, child_id: str) -> None:
        """Forget the spec of a stopped child."""
        await self._core().delete_child(child_id)

    def child(self, child_id: str) -> ActorRef:
        """The ref of the child with this id."""
        return self._core().find(child_id).ref

    def which_children(self, *, limit: int | None = None) -> list[ChildInfo]:
        """Every child, in start order; only the first ``limit`` if given (an observer's
        bounded look at a supervisor of many dynamic children)."""
        children = itertools.islice(self._core().children.values(), limit)
        return [
            ChildInfo(
                id=child.spec.id,
                ref=child.ref,
                status=child.status,
                restart=child.spec.restart,
                is_supervisor=child.spec.is_supervisor,
                last_exit=child.last_exit,
            )
            for child in children
        ]

    def count_children(self) -> ChildCounts:
        """How many children, how many running, how many supervisors and workers."""
        children = self._core().children.values()
        supervisors = sum(1 for child in children if child.spec.is_supervisor)
        return ChildCounts(
            specs=len(children),
            active=sum(1 for child in children if child.running),
            supervisors=supervisors,
            workers=len(children) - supervisors,
        )

    def statistics(self) -> SupervisorStatistics:
        """Counts of children and restarts."""
        core = self._core()
        return SupervisorStatistics(
            strategy=core.spec.strategy,
            children=self.count_children(),
            restarting=sum(
                1 for child in core.children.values() if child.status is ChildStatus.RESTARTING
            ),
            restarts=core.total_restarts,
            recent_restarts=len(core.restart_times),
            max_restarts=core.spec.max_restarts,
            within=core.spec.within,
        )

    async def stop(self) -> ExitReason:
        """Stop the supervisor: its children stop in reverse start order, then it does."""
        return await self.ref.stop()

    async def wait_stopped(self) -> ExitReason:
        """Wait until the supervisor has stopped for good; returns its exit reason."""
        return await self.ref.wait_stopped()


async def start_supervisor(
    system: ActorSystem,
    spec: SupervisorSpec,
    *,
    name: str | None = None,
) -> Supervisor:
    """Start a top-level supervisor; returns once every static child has started, in order.

    Raises:
        ActorStartError: A child failed to start; the children already started were stopped.
    """
    ref = await system.spawn(spec, name=name)
    return Supervisor(ref)


@asynccontextmanager
async def open_supervisor(
    system: ActorSystem,
    spec: SupervisorSpec,
    *,
    name: str | None = None,
) -> AsyncIterator[Supervisor]:
    """Run a supervisor for the duration of a block, like a nursery runs tasks.

    Leaving the block stops the supervisor in order. If the supervisor gives up (its restart
    intensity is exceeded), the block is cancelled and the ``RestartIntensityError`` is raised
    from the ``async with``.
    """
    supervisor = await start_supervisor(system, spec, name=name)
    failure: BaseException | None = None
    body = trio.CancelScope()

    async def watch() -> None:
        nonlocal failure
        reason = await supervisor.ref.wait_stopped()
        if isinstance(reason, Crashed):
            failure = reason.exception
            body.cancel(reason="supervisor failed")

    # The watcher lives in the system's nursery so that the block's own exceptions reach the
    # caller as they are, not wrapped in an exception group.
    start_system_task(system, watch)
    with body:
        try:
            yield supervisor
        finally:
            with trio.CancelScope(shield=True):
                await supervisor.stop()
    if failure is not None:
        raise failure
