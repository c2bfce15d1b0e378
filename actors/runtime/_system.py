"""The actor system: the nursery every top-level actor runs in, and the registry of names."""

from __future__ import annotations

import math
import random as random_module
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import attrs
import trio

from actors._errors import ActorStoppedError, NameTakenError
from actors.runtime._actor import behavior_for
from actors.runtime._cell import DEFAULT_SHUTDOWN_GRACE, ActorCell
from actors.runtime._exit import is_abnormal, log_exit
from actors.runtime._mailbox import DEFAULT_MAILBOX, MailboxConfig
from actors.runtime._ref import ActorRef

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

    from actors.runtime._cell import Behavior, CellOwner
    from actors.runtime._exit import ExitReason
    from actors.runtime._instrument import Instrument


@attrs.frozen(kw_only=True)
class SystemStatistics:
    """A snapshot of an actor system."""

    top_level_actors: int
    """Actors spawned directly on the system that are still alive (supervisors included)."""
    registered_names: int
    """Names held by live actors."""
    failed_top_level_actors: int = 0
    """Top-level actors that ended crashed or killed, such as a supervisor that gave up: the
    tree under it no longer stands (a liveness probe reports it)."""
    closing: bool = False
    """Whether the system is shutting down (``open_actor_system``'s block is being left)."""


class Names:
    """The registry of names of one actor system: a name is taken when its actor is made and
    released when the actor ends for good (``ActorCell.finalize``)."""

    __slots__ = ("_refs",)

    def __init__(self) -> None:
        self._refs: dict[str, ActorRef] = {}

    def take(self, name: str, ref: ActorRef) -> None:
        """Register ``ref`` under ``name``; the caller checked the name is free (``check``)."""
        self._refs[name] = ref

    def check(self, name: str) -> None:
        """Refuse a name that cannot be taken.

        Raises:
            ValueError: The name is empty.
            NameTakenError: A live actor holds it.
        """
        if not name:
            raise ValueError("an actor name must not be empty")
        holder = self._refs.get(name)
        if holder is not None:
            raise NameTakenError(f"the name {name!r} belongs to {holder!r}")

    def release(self, name: str, ref: ActorRef) -> None:
        """Give ``name`` up if ``ref`` holds it."""
        if self._refs.get(name) is ref:
            del self._refs[name]

    def lookup(self, name: str) -> ActorRef | None:
        """The live actor registered under ``name``, or None."""
        return self._refs.get(name)

    def __len__(self) -> int:
        return len(self._refs)


class ActorSystem:
    """Owns the top-level actors and the registry of names. Open one with ``open_actor_system``.

    Top-level actors are not supervised: when one ends, for any reason, it stays ended and its
    watchers are told. Put actors that should be restarted under a supervisor (see
    ``actors.supervision``), and spawn the supervisor here.
    """

    def __init__(
        self,
        nursery: trio.Nursery,
        *,
        name: str,
        instruments: tuple[Instrument, ...],
        random: random_module.Random,
    ) -> None:
        self.name = name
        self.random = random
        """The random source for backoff jitter; seed it to make runs repeatable."""
        self._nursery = nursery
        self._instruments = instruments
        self._names = Names()
        self._top_level: dict[ActorRef, None] = {}
        self._owner = _TopLevelOwner(self)
        self._closing = False
        self._failed_top_level = 0  # fed by _TopLevelOwner as each one ends, never recounted

    async def spawn(
        self,
        target: object,
        *args: object,
        name: str | None = None,
        mailbox: MailboxConfig = DEFAULT_MAILBOX,
        shutdown: float | None = None,
    ) -> ActorRef:
        """Start a top-level actor and return its ref once it has started.

        Args:
            target: An ``Actor`` subclass, an async function ``fn(context, *args)``, or a
                supervisor spec.
            args: Passed to the class's constructor or to the function after the context.
            name: A name unique within this system, released when the actor stops for good.
            mailbox: Mailbox capacity, overflow policy and batch size.
            shutdown: Seconds the actor gets to stop before it is cancelled; default 5 s for
                workers and ``math.inf`` for supervisors.

        Raises:
            NameTakenError: ``name`` belongs to a live actor.
            ActorStartError: The actor failed in its constructor or ``started`` hook.
        """
        if self._closing:
            await trio.lowlevel.checkpoint()
            raise ActorStoppedError(f"actor system {self.name!r} is shutting down")
        behavior = behavior_for(target, args)
        cell = new_cell(
            self, behavior, name=name, mailbox=mailbox, shutdown=shutdown, owner=self._owner
        )
        self._top_level[cell.ref] = None
        # The cell's own coroutine is the task: it tells the owner when the incarnation ends
        # (``_TopLevelOwner.incarnation_ended``), so no wrapper coroutine stays alive per actor.
        self._nursery.start_soon(cell.run_incarnation, behavior, None, cell, name=cell.label)
        await cell.wait_started()
        return cell.ref

    def lookup(self, name: str) -> ActorRef | None:
        """Return the live actor registered under ``name``, or None."""
        return self._names.lookup(name)

    def top_level_actors(self) -> list[ActorRef]:
        """The live top-level actors (supervisors included), in start order: where an observer
        starts walking the supervision tree."""
        return list(self._top_level)

    def statistics(self) -> SystemStatistics:
        """Return counts of top-level actors and registered names."""
        return SystemStatistics(
            top_level_actors=len(self._top_level),
            registered_names=len(self._names),
            failed_top_level_actors=self._failed_top_level,
            closing=self._closing,
        )

    async def _shutdown(self) -> None:
        """Stop every top-level actor, newest first, each within its own grace period."""
        self._closing = True
        for ref in reversed(list(self._top_level)):
            await ref.stop("system shutdown")


class _TopLevelOwner:
    """The owner (``CellOwner``) of a system's top-level actors: one per system, not per actor.

    A top-level actor runs one incarnation, and when it ends, however it ends, the actor has
    stopped for good. A separate object rather than methods of ``ActorSystem``, which would put
    the owner protocol on the system's public face.
    """

    __slots__ = ("_system",)

    def __init__(self, system: ActorSystem) -> None:
        self._system = system

    def child_stop_requested(self, ref: ActorRef) -> None:
        """Nothing to do: a top-level actor is never restarted."""

    def child_healthy(self, ref: ActorRef) -> None:
        """Nothing to do: a top-level actor has no restart backoff."""

    def incarnation_ended(self, record: object, incarnation: int, reason: ExitReason) -> None:
        """End the actor for good; called by its cell in the actor's task, as its last step.

        ``record`` is the cell. Cancelled from outside (the system's nursery), the reason is
        ``Shutdown("cancelled")``, which is not logged, and the cancellation goes on up.
        """
        cell = record
        assert isinstance(cell, ActorCell)
        log_exit(cell.label, reason, "it is not supervised, so it stays stopped")
        if is_abnormal(reason):
            self._system._failed_top_level += 1
        cell.finalize(reason)
        self._system._top_level.pop(cell.ref, None)


def new_cell(
    system: ActorSystem,
    behavior: Behavior,
    *,
    name: str | None,
    mailbox: MailboxConfig,
    shutdown: float | None,
    owner: CellOwner | None = None,
) -> ActorCell:
    """Make the cell of a new actor in ``system`` and register its name; nothing runs yet.

    See ``actors.runtime.lowlevel.new_cell``.
    """
    if name is not None:
        system._names.check(name)
    if shutdown is None:
        shutdown = math.inf if behavior.is_supervisor else DEFAULT_SHUTDOWN_GRACE
    if shutdown < 0:
        raise ValueError(f"shutdown grace must not be negative: {shutdown}")
    # The ref is made before its cell: see ``ActorRef``.
    cell = ActorCell(
        ActorRef(),
        system,
        name=name,
        mailbox=mailbox,
        grace=shutdown,
        graceful=behavior.graceful,
        instruments=system._instruments,
        names=system._names,
        owner=owner,
    )
    if name is not None:
        system._names.take(name, cell.ref)
    return cell


def start_system_task(
    system: ActorSystem, async_fn: Callable[[], Awaitable[object]], *, name: str | None = None
) -> None:
    """Run ``async_fn()`` in the system's own nursery: it lives until the system closes.

    See ``actors.runtime.lowlevel.start_system_task``.
    """
    system._nursery.start_soon(async_fn, name=name)


@asynccontextmanager
async def open_actor_system(
    *,
    name: str = "system",
    instruments: Iterable[Instrument] = (),
    random: random_module.Random | None = None,
) -> AsyncIterator[ActorSystem]:
    """Open an actor system; leaving the block stops every actor in reverse start order.

    The orderly shutdown also runs when the block raises (KeyboardInterrupt included): it is
    shielded, and bounded by each actor's own shutdown grace period. When the block is cancelled
    from outside, trio cancels every actor's task at once: their exit reason is ``Shutdown``,
    but no ``stopping`` hook runs and there is no order. An exception raised by the block
    propagates as it is, not wrapped in an exception group. Top-level actors' crashes never
    propagate: they are logged and reported to watchers.

    Args:
        name: A label for logs.
        instruments: Hooks called on actor life-cycle events.
        random: The random source for backoff jitter (default: a fresh ``random.Random()``).
    """
    body_error: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            system = ActorSystem(
                nursery,
                name=name,
                instruments=tuple(instruments),
                random=random if random is not None else random_module.Random(),
            )
            try:
                yield system
            except BaseException as error:
                body_error = error
                raise
            finally:
                with trio.CancelScope(shield=True):
                    await system._shutdown()
                nursery.cancel_scope.cancel(reason="actor system closed")
    except BaseExceptionGroup as group:
        # The block's own exception reaches the caller as it is, not wrapped in the group
        # that the system's nursery adds around it.
        if body_error is None or list(group.exceptions) != [body_error]:
            raise
    if body_error is not None:
        raise body_error
