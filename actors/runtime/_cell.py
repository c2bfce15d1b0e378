"""ActorCell: the one owner of an actor's life, from its first start to its end for good.

A cell holds everything the runtime knows about one actor: its mailbox (the cell is the mailbox
too), its state, the task and cancel scope of the running incarnation, the termination in
progress, its watchers and links, and the start and restart bookkeeping. Every change of that
state happens here; the ref (an address), the context (the actor's view of itself), the actor
system and supervisors call the cell's methods. Supervisors reach cells through
``actors.runtime.lowlevel``.

An owner (the actor system, or a supervisor) runs ``run_incarnation`` in a task it owns, once per
start or restart, and calls ``finalize`` when it decides the actor will not run again. Keeping
those two apart is what lets a supervisor restart an actor behind the same ref.
"""

from __future__ import annotations

import enum
import itertools
import math
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeAlias

import attrs
import trio

from actors._errors import (
    ActorShutdown,
    ActorStartError,
    ActorStoppedError,
    LinkedActorCrashedError,
    MailboxOverflowError,
)
from actors.runtime._actor import ClassBehavior
from actors.runtime._ask import Ask
from actors.runtime._context import ActorContext
from actors.runtime._exit import (
    CANCELLED,
    KILLED,
    NORMAL,
    SELF_STOP,
    Crashed,
    Down,
    ExitReason,
    Shutdown,
    StopRequest,
    is_abnormal,
)
from actors.runtime._mailbox import Mailbox, MailboxConfig, MailboxStatistics, Overflow
from actors.runtime._ref import ActorRef, bind

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from actors.runtime._instrument import Instrument
    from actors.runtime._system import ActorSystem, Names

DEFAULT_SHUTDOWN_GRACE: Final = 5.0  # seconds an actor gets to stop before it is cancelled

_actor_ids = itertools.count(1)


class ActorState(enum.Enum):
    """Where an actor is in its life."""

    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    STOPPING = "stopping"
    STOPPED = "stopped"


@attrs.frozen(kw_only=True)
class ActorStatistics:
    """A snapshot of one actor."""

    actor_id: int
    """Unique within the process."""
    name: str | None
    """The registered name, if any."""
    state: ActorState
    """Where the actor is in its life."""
    restarts: int
    """How many times a supervisor restarted it."""
    exit_reason: ExitReason | None
    """Why it stopped, once it has stopped for good."""
    mailbox: MailboxStatistics
    """Its mailbox's counters."""


class CellOwner(Protocol):
    """The owner of an actor (its supervisor), told what happens to the actor."""

    def child_stop_requested(self, ref: ActorRef) -> None:
        """Someone asked the actor to stop for good (``ActorRef.request_stop``)."""
        ...

    def child_healthy(self, ref: ActorRef) -> None:
        """The actor reported itself healthy (``ActorContext.reset_backoff``)."""
        ...

    def incarnation_ended(self, record: object, incarnation: int, reason: ExitReason) -> None:
        """An incarnation that ``run_incarnation`` ran has ended, for ``reason``.

        Called in the incarnation's own task, however it ended (``Shutdown("cancelled")`` when
        it was cancelled from outside). ``record`` is what the owner passed to
        ``run_incarnation``; ``incarnation`` is the number ``begin_start`` gave it.
        """
        ...


class BodyBehavior(Protocol):
    """What an actor does, as a body the cell runs: a function actor's, a supervisor's.

    With ``ClassBehavior`` (an ``Actor`` class, which runs its incarnations itself), these make
    up ``Behavior``: the runtime's view of an ``Actor`` class, a function or a supervisor.
    """

    @property
    def graceful(self) -> bool:
        """True if a stop request is a control message the actor handles itself.

        False if the actor is stopped by cancellation (function actors).
        """
        ...

    @property
    def is_supervisor(self) -> bool:
        """True for supervisors: counted apart, and given an infinite shutdown grace."""
        ...

    def describe(self) -> str:
        """A short name for logs: the class or function name."""
        ...

    async def run_actor(self, cell: ActorCell, previous: ExitReason | None) -> ExitReason:
        """Run one incarnation to its end and say why it ended.

        Must call ``cell.mark_started()`` once the actor is ready for messages.
        ``previous`` is the exit reason of the incarnation this one replaces, on a restart.
        """
        ...


Behavior: TypeAlias = "BodyBehavior | ClassBehavior"
"""What an actor does: a body the cell runs, or an ``Actor`` class's behavior."""


_Cells: TypeAlias = "ActorCell | list[ActorCell] | None"
"""Some cells: none, one cell as it is, or a list of them for more than one.

Most watched actors have one watcher, and most watchers watch one actor: a list for each would
be one more object, and about 90 bytes, per actor (a subscription's, say, watched by its client).
"""


def _added(cells: _Cells, cell: ActorCell) -> _Cells:
    if cells is None:
        return cell
    if isinstance(cells, list):
        cells.append(cell)
        return cells
    return [cells, cell]


def _removed(cells: _Cells, cell: ActorCell) -> _Cells:
    """``cells`` without one occurrence of ``cell``, if it is there."""
    if cells is cell:
        return None
    if isinstance(cells, list) and cell in cells:
        cells.remove(cell)
    return cells


def _each(cells: _Cells) -> list[ActorCell] | tuple[ActorCell, ...]:
    if cells is None:
        return ()
    return cells if isinstance(cells, list) else (cells,)


class _Extras:
    """The part of a cell that most actors never use, made the first time one is.

    An actor that is never named, watched, linked, crashed from outside or waited on pays
    nothing for these: every live actor's cell is walked by each full collection, so each slot
    on the cell itself costs something per actor, however rarely it is set.
    """

    __slots__ = ("links", "names", "pending_crash", "stopped_event", "watchers", "watching")

    def __init__(self) -> None:
        self.names: Names | None = None
        """The registry holding the actor's name, for a named actor."""
        self.watchers: _Cells = None
        """Who gets a ``Down`` when the actor stops for good."""
        self.watching: _Cells = None
        """Whom the actor watches, so that a watcher that stops first leaves nothing behind."""
        self.links: set[ActorCell] | None = None
        self.pending_crash: BaseException | None = None
        self.stopped_event: trio.Event | None = None


class ActorCell(Mailbox):
    """The runtime's record of one actor and the only code that changes it.

    Made by the actor system (``spawn``) or by a supervisor (``lowlevel.new_cell``). The
    attributes ``actor_id``, ``name``, ``system``, ``mailbox`` and ``ref`` are set once and never
    change; ``instance`` is set by the behavior running an incarnation; everything else is read
    through properties and changed through methods.

    The cell is the actor's mailbox too: a ``Mailbox`` subclass, and ``mailbox`` is the cell
    itself. One object per actor fewer, for the memory and for every full collection, which
    walks every live actor's objects; the cell answers the mailbox's reports (``label``,
    ``message_dropped``, ``mailbox_overflowed``) itself.
    """

    # One cell per actor, so slots, and only those that most actors use (see _Extras): 100,000
    # idle actors must stay small, and every full collection walks each of them. With the
    # mailbox's own slots, from Mailbox.
    __slots__ = (
        "_context",
        "_exit_reason",
        "_extras",
        "_grace",
        "_graceful",
        "_incarnation",
        "_instruments",
        "_owner",
        "_restarts",
        "_running_task",
        "_scope",
        "_start_error",
        "_start_waiter",
        "_state",
        "_stop_requested",
        "_terminating",
        "actor_id",
        "instance",
        "mailbox",
        "name",
        "ref",
        "system",
    )

    def __init__(
        self,
        ref: ActorRef,
        system: ActorSystem,
        *,
        name: str | None,
        mailbox: MailboxConfig,
        grace: float,
        graceful: bool,
        instruments: tuple[Instrument, ...],
        names: Names,
        owner: CellOwner | None = None,
    ) -> None:
        super().__init__(mailbox, report_drops=bool(instruments))
        self.mailbox: Mailbox = self
        """The actor's mailbox: the cell itself. An attribute rather than a property, as quick
        to read as when the mailbox was an object of its own."""
        self.actor_id = next(_actor_ids)
        self.name = name
        self.system = system
        self.ref = ref
        bind(ref, self)
        self._context: ActorContext | None = None
        self._extras: _Extras | None = None
        if name is not None:
            self._more().names = names
        self._instruments = instruments
        self._owner = owner
        self._grace = grace
        self._graceful = graceful
        self._state = ActorState.STARTING
        self._exit_reason: ExitReason | None = None
        self._running_task: trio.lowlevel.Task | None = None
        """The task of the running incarnation (``task`` is the mailbox's receiver, waiting)."""
        self._scope: trio.CancelScope | None = None
        self.instance: object = None
        """What the running incarnation is: the ``Actor`` object, or a supervisor's state."""
        self._stop_requested = False
        self._terminating: StopRequest | None = None
        self._restarts = 0
        self._incarnation = 0
        self._start_waiter: trio.lowlevel.Task | None = None
        self._start_error: BaseException | None = None

    def __bool__(self) -> bool:
        # True however many messages wait: a cell is a mailbox, and a mailbox has a length.
        return True

    def _more(self) -> _Extras:
        """The cell's extras, made now if they were not yet."""
        extras = self._extras
        if extras is None:
            extras = self._extras = _Extras()
        return extras

    # -- what the cell tells -----------------------------------------------------------------

    @property
    def context(self) -> ActorContext:
        """The actor's view of itself, made the first time it is asked for.

        Function actors get it as their first argument; a class-based actor or a supervisor
        that never reads it never pays for it.
        """
        context = self._context
        if context is None:
            context = self._context = ActorContext(self)
        return context

    @property
    def label(self) -> str:
        """The actor's name and id, for logs and errors: ``name#7`` or ``actor#7``."""
        return f"{self.name}#{self.actor_id}" if self.name else f"actor#{self.actor_id}"

    @property
    def state(self) -> ActorState:
        """Where the actor is in its life now."""
        return self._state

    @property
    def exit_reason(self) -> ExitReason | None:
        """Why the actor stopped for good, or None while it lives."""
        return self._exit_reason

    @property
    def stop_requested(self) -> bool:
        """Whether someone asked the actor to stop for good (``request_stop``)."""
        return self._stop_requested

    @property
    def stopping(self) -> bool:
        """Whether the current incarnation has been asked to end (``terminate``)."""
        return self._terminating is not None

    @property
    def incarnation(self) -> int:
        """The number of the latest incarnation ``begin_start`` prepared: 1 for the first."""
        return self._incarnation

    @property
    def start_failed(self) -> bool:
        """Whether the incarnation being started failed before it was ready."""
        return self._start_error is not None

    @property
    def pending_crash(self) -> BaseException | None:
        """The error a ``crash`` from outside is ending the running incarnation with."""
        extras = self._extras
        return extras.pending_crash if extras is not None else None

    def in_current_task(self) -> bool:
        """Whether the caller runs in the task of the actor's running incarnation."""
        task = self._running_task
        return task is not None and trio.lowlevel.current_task() is task

    def statistics(self) -> ActorStatistics:
        """Return the actor's state and its mailbox's counters."""
        return ActorStatistics(
            actor_id=self.actor_id,
            name=self.name,
            state=self._state,
            restarts=self._restarts,
            exit_reason=self._exit_reason,
            mailbox=self.mailbox_statistics(),
        )

    # -- starting ----------------------------------------------------------------------------

    def begin_start(self, *, restart: bool) -> None:
        """Make the cell ready for a new incarnation; an owner calls this before it starts one."""
        self._incarnation += 1
        self._terminating = None
        self._start_error = None
        self._state = ActorState.STARTING
        if restart:
            self._restarts += 1

    def mark_started(self) -> None:
        """The incarnation is ready for messages: wake whoever waits in ``wait_started``."""
        self._state = ActorState.RUNNING
        for instrument in self._instruments:
            instrument.actor_started(self.ref)
        waiter = self._start_waiter
        if waiter is not None:
            self._start_waiter = None
            trio.lowlevel.reschedule(waiter)

    async def wait_started(self) -> None:
        """Wait for the incarnation being started to be ready. Always a checkpoint.

        Raises:
            ActorStartError: It failed (or was stopped) before it was ready; the cause is chained.
        """
        if self._state is ActorState.STARTING and self._start_error is None:
            # Parked by the cell itself, as an asker parks by itself: a WaitSlot per spawn
            # would be one more object, and two more calls, on the spawn path.
            self._start_waiter = trio.lowlevel.current_task()
            await trio.lowlevel.wait_task_rescheduled(self._start_wait_aborted)
        else:
            await trio.lowlevel.checkpoint()
        if self._start_error is not None:
            raise ActorStartError(f"{self.label} failed to start") from self._start_error

    def _start_wait_aborted(self, _: object) -> trio.lowlevel.Abort:
        self._start_waiter = None
        return trio.lowlevel.Abort.SUCCEEDED

    def _fail_start(self, error: BaseException) -> None:
        self._start_error = error
        waiter = self._start_waiter
        if waiter is not None:
            self._start_waiter = None
            trio.lowlevel.reschedule(waiter)

    def mark_restarting(self) -> None:
        """The incarnation ended and the owner will start another one."""
        self._state = ActorState.RESTARTING

    def report_restart(self, reason: ExitReason, delay: float) -> None:
        """Tell the instruments that the owner restarts the actor after ``reason``."""
        for instrument in self._instruments:
            instrument.actor_restarted(self.ref, reason, delay)

    def report_healthy(self) -> None:
        """Tell the owner that this incarnation is healthy (``ActorContext.reset_backoff``)."""
        if self._owner is not None:
            self._owner.child_healthy(self.ref)

    # -- running an incarnation --------------------------------------------------------------
    #
    # An incarnation runs in steps, in the task its owner started for it: ``enter_incarnation``,
    # the body, ``leave_incarnation`` with how the body ended, and ``end_incarnation`` however
    # that went. ``run_incarnation`` takes them around a BodyBehavior's ``run_actor``; an
    # ``Actor`` class's behavior takes them itself around its message loop, so that an idle
    # class-based actor keeps one coroutine frame alive, not two.

    def run_incarnation(
        self, behavior: Behavior, previous: ExitReason | None = None, record: object = None
    ) -> Coroutine[Any, Any, ExitReason]:
        """Return the coroutine that runs one incarnation to its end, in the task running it.

        Await it, or start it as a task (``nursery.start_soon(cell.run_incarnation, ...)``);
        it returns why the incarnation ended. Exceptions raised by the actor become
        ``Crashed``; only cancellation from outside (and BaseExceptions such as
        KeyboardInterrupt) propagate. A cell with an owner tells it with
        ``incarnation_ended(record, ...)`` as the incarnation ends, so that the owner can run
        the coroutine itself as its child's task, with no wrapper coroutine kept alive per actor.
        """
        if isinstance(behavior, ClassBehavior):
            return behavior.run_incarnation(self, previous, record)
        return self._run_body(behavior, previous, record)

    async def _run_body(
        self, behavior: BodyBehavior, previous: ExitReason | None, record: object
    ) -> ExitReason:
        reason: ExitReason = CANCELLED
        incarnation = self._incarnation
        try:
            early = self.enter_incarnation()
            if early is not None:
                reason = early
                return reason
            try:
                if self.pending_crash is not None:
                    await trio.lowlevel.checkpoint()  # crashes at once: see enter_incarnation
                ending = await behavior.run_actor(self, previous)
            except BaseException as error:
                reason = self.leave_incarnation(error)
            else:
                reason = self.leave_incarnation(ending)
            return reason
        finally:
            self.end_incarnation(record, incarnation, reason)

    def enter_incarnation(self) -> ExitReason | None:
        """Begin the incarnation ``begin_start`` prepared, in the calling task: its first step.

        Returns None once its cancel scope is entered (``leave_incarnation`` leaves it); or, if
        it was asked to stop before it could begin, the reason it ends with at once, without
        running. When a crash waits for it (a linked actor ended abnormally while this one was
        waiting to restart), the scope is cancelled already: the body must checkpoint before it
        runs anything (``pending_crash`` tells), and the incarnation ends there, crashed.
        """
        early_stop = self._terminating
        if early_stop is not None:
            if self._state is ActorState.STARTING:
                self._fail_start(ActorStoppedError(f"{self.label} was stopped before it started"))
            return Shutdown(early_stop.detail)
        scope = trio.CancelScope()
        self._running_task = trio.lowlevel.current_task()
        self._scope = scope
        # Entered here and left in leave_incarnation, not in a with block: a with block keeps
        # the bound __exit__ for as long as it lasts, one more object per idle actor.
        scope.__enter__()
        if self._extras is not None and self._extras.pending_crash is not None:
            scope.cancel()
        return None

    def leave_incarnation(self, ended: ExitReason | BaseException) -> ExitReason:
        """Leave the incarnation's cancel scope and return why the incarnation ended.

        ``ended`` is what the body returned, or the exception it raised: an exception the actor
        raised becomes ``Crashed`` (``Shutdown`` for ``ActorShutdown``), and the cancellation
        the cell caused the reason it cancelled for. Anything else is raised again:
        cancellation from outside, BaseExceptions such as KeyboardInterrupt.
        """
        scope = self._scope
        assert scope is not None
        self._scope = None
        self._running_task = None
        reason: ExitReason = CANCELLED
        try:
            # As a with block leaves it: told the exception, which it swallows (its own
            # cancellation), lets through or replaces.
            if isinstance(ended, BaseException):
                if not scope.__exit__(type(ended), ended, ended.__traceback__):
                    raise ended
            else:
                scope.__exit__(None, None, None)
                reason = ended
        except Exception as error:
            is_shutdown, detail = _shutdown_detail(error)
            reason = Shutdown(detail) if is_shutdown else Crashed(error)
        if scope.cancelled_caught:
            reason = self._cancelled_outcome()
        if self._extras is not None:
            self._extras.pending_crash = None
        if isinstance(reason, Crashed):
            for instrument in self._instruments:
                instrument.actor_crashed(self.ref, reason.exception)
        if self._state is ActorState.STARTING:
            cause = reason.exception if isinstance(reason, Crashed) else None
            self._fail_start(cause or ActorStoppedError(f"{self.label} ended while starting"))
        return reason

    def end_incarnation(self, record: object, incarnation: int, reason: ExitReason) -> None:
        """Tell the owner that the incarnation ended: the last step, however the others went.

        ``incarnation`` is the number the incarnation had as it began (``incarnation``).
        """
        if self._owner is not None:
            self._owner.incarnation_ended(record, incarnation, reason)

    def _cancelled_outcome(self) -> ExitReason:
        """Why an incarnation that the cell cancelled ended."""
        pending_crash = self.pending_crash
        if pending_crash is not None:
            return Crashed(pending_crash)
        if self._terminating is SELF_STOP:
            return NORMAL  # a function actor called context.stop()
        if self._graceful:
            return KILLED  # it did not stop within its grace period
        return Shutdown(self._terminating.detail if self._terminating else None)

    # -- stopping ----------------------------------------------------------------------------

    def request_stop(self, detail: object = None) -> None:
        """Stop the actor for good, without waiting; see ``ActorRef.request_stop``."""
        if self._stop_requested or self._exit_reason is not None:
            return
        self._stop_requested = True
        if self._owner is not None:
            self._owner.child_stop_requested(self.ref)
        self.terminate(detail)

    async def wait_stopped(self) -> ExitReason:
        """Wait until the actor has stopped for good; return its exit reason. A checkpoint."""
        if self._exit_reason is None:
            extras = self._more()
            if extras.stopped_event is None:
                extras.stopped_event = trio.Event()
            await extras.stopped_event.wait()
        else:
            await trio.lowlevel.checkpoint()
        assert self._exit_reason is not None
        return self._exit_reason

    def terminate(self, detail: object = None, *, grace: float | None = None) -> None:
        """End the running incarnation, gracefully if the actor supports it, then by cancellation.

        Supervisors call this directly to stop a child they are about to restart. An
        incarnation that has not begun yet will not: ``run_incarnation`` returns at once.
        """
        if grace is None:
            grace = self._grace
        if self._terminating is None:
            self._terminating = StopRequest(detail)
        scope = self._scope
        if scope is None:
            return  # not running: run_incarnation checks _terminating before it starts the body
        if self._graceful and grace > 0:
            self.mailbox.put_control(StopRequest(detail))
            if grace != math.inf:
                scope.deadline = min(scope.deadline, trio.current_time() + grace)
        else:
            scope.cancel()

    def stop_self(self) -> None:
        """End the current incarnation with ``Normal`` (``ActorContext.stop``)."""
        if self._graceful:
            self.mailbox.put_control(SELF_STOP)
        elif self._scope is not None:
            self._terminating = self._terminating or SELF_STOP
            self._scope.cancel()

    def crash(self, error: BaseException) -> None:
        """Crash the running incarnation from outside: it is cancelled and exits with ``error``.

        An actor waiting to restart crashes as soon as its next incarnation starts.
        """
        extras = self._more()
        if extras.pending_crash is None:
            extras.pending_crash = error
        if self._scope is not None:
            self._scope.cancel()

    def mailbox_overflowed(self) -> None:
        """The mailbox's ``stop`` policy fired: crash with ``MailboxOverflowError``."""
        self.crash(MailboxOverflowError(f"mailbox of {self.label} overflowed"))

    def message_dropped(self, message: object, policy: Overflow) -> None:
        """The mailbox's overflow policy lost ``message``: tell the instruments."""
        for instrument in self._instruments:
            instrument.message_dropped(self.ref, message, policy)

    def finalize(self, reason: ExitReason) -> None:
        """End the actor for good: close its mailbox, answer its pending asks, release its name,
        tell watchers and links, then wake ``wait_stopped``. Later calls do nothing."""
        if self._exit_reason is not None:
            return
        self._exit_reason = reason
        self._state = ActorState.STOPPED
        stopped = ActorStoppedError(f"{self.label} stopped ({type(reason).__name__.lower()})")
        for leftover in self.mailbox.close():
            if type(leftover) is Ask:
                leftover.fail(stopped)
        extras = self._extras
        if extras is not None:
            self._end_ties(extras, reason)
        self.instance = None
        if extras is not None and extras.stopped_event is not None:
            extras.stopped_event.set()
        for instrument in self._instruments:
            instrument.actor_stopped(self.ref, reason)

    def _end_ties(self, extras: _Extras, reason: ExitReason) -> None:
        """Release the name, tell watchers and links, and stop watching (``finalize``)."""
        if extras.names is not None and self.name is not None:
            extras.names.release(self.name, self.ref)
        if extras.watchers is not None:
            down = Down(self.ref, reason)
            for watcher in _each(extras.watchers):
                watcher.mailbox.put_control(down)
            extras.watchers = None
        if extras.links:
            for linked in extras.links:
                theirs = linked._extras
                if theirs is not None and theirs.links is not None:
                    theirs.links.discard(self)
                if is_abnormal(reason):
                    linked.crash(self._linked_crash(reason))
            extras.links = None
        # Detached first: ``unwatch`` takes each one off this actor's own list too, and would
        # otherwise shorten the list this loop walks, skipping every other one.
        watching, extras.watching = extras.watching, None
        for watched in _each(watching):
            watched.unwatch(self)

    # -- monitors and links ------------------------------------------------------------------

    def watch(self, watcher: ActorCell) -> None:
        """Send ``watcher`` a ``Down`` when this actor stops for good (at once if it has)."""
        if self._exit_reason is not None:
            watcher.mailbox.put_control(Down(self.ref, self._exit_reason))
            return
        extras = self._more()
        extras.watchers = _added(extras.watchers, watcher)
        # The watcher remembers what it watches, so that a watcher that stops first leaves
        # nothing behind in a long-lived actor's list.
        theirs = watcher._more()
        theirs.watching = _added(theirs.watching, self)

    def unwatch(self, watcher: ActorCell) -> None:
        """Stop sending ``watcher`` a ``Down``. One already queued stays queued."""
        extras = self._extras
        if extras is not None:
            extras.watchers = _removed(extras.watchers, watcher)
        theirs = watcher._extras
        if theirs is not None:
            theirs.watching = _removed(theirs.watching, self)

    def link(self, other: ActorCell) -> None:
        """Link two actors both ways; see ``ActorContext.link``."""
        if other is self:
            return
        if other._exit_reason is not None:
            if is_abnormal(other._exit_reason):
                self.crash(other._linked_crash(other._exit_reason))
            return
        ours = self._more()
        if ours.links is None:
            ours.links = set()
        theirs = other._more()
        if theirs.links is None:
            theirs.links = set()
        ours.links.add(other)
        theirs.links.add(self)

    def unlink(self, other: ActorCell) -> None:
        """Remove the link between two actors, if there is one."""
        ours = self._extras
        if ours is not None and ours.links is not None:
            ours.links.discard(other)
        theirs = other._extras
        if theirs is not None and theirs.links is not None:
            theirs.links.discard(self)

    def _linked_crash(self, reason: ExitReason) -> LinkedActorCrashedError:
        """The error that this actor's end ``reason`` crashes its linked actors with."""
        error = LinkedActorCrashedError(f"linked actor {self.label} ended: {reason!r}")
        if isinstance(reason, Crashed):
            error.__cause__ = reason.exception
        return error


def _shutdown_detail(error: BaseException) -> tuple[bool, object]:
    """Whether ``error`` is an ``ActorShutdown``, possibly wrapped in exception groups."""
    if isinstance(error, ActorShutdown):
        return True, error.detail
    if isinstance(error, BaseExceptionGroup):
        matched, rest = error.split(ActorShutdown)
        if matched is not None and rest is None:
            leaf: BaseException = matched
            while isinstance(leaf, BaseExceptionGroup):
                leaf = leaf.exceptions[0]
            assert isinstance(leaf, ActorShutdown)
            return True, leaf.detail
    return False, None
