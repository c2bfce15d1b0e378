"""Running one incarnation of an actor, and ending an actor for good.

An owner (the actor system, or a supervisor) calls ``run_incarnation`` in a task it owns, once per
start or restart, and ``finalize`` when it decides the actor will not run again. Keeping those two
apart is what lets a supervisor restart an actor behind the same ref.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

import trio

from actors._errors import (
    ActorShutdown,
    ActorStoppedError,
    LinkedActorCrashedError,
)
from actors.runtime._ask import Ask
from actors.runtime._exit import (
    KILLED,
    NORMAL,
    Crashed,
    Down,
    ExitReason,
    Killed,
    Shutdown,
    is_abnormal,
)
from actors.runtime._ref import SELF_STOP, ActorRef, ActorState

if TYPE_CHECKING:
    from actors.runtime._context import ActorContext

logger = logging.getLogger("actors.runtime")


class Behavior(Protocol):
    """What an actor does: the runtime's view of an ``Actor`` class, a function or a supervisor."""

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

    async def run_actor(self, context: ActorContext, previous: ExitReason | None) -> ExitReason:
        """Run one incarnation to its end and say why it ended.

        Must call ``context.ref._mark_started()`` once the actor is ready for messages.
        ``previous`` is the exit reason of the incarnation this one replaces, on a restart.
        """
        ...


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


async def run_incarnation(
    ref: ActorRef, behavior: Behavior, previous: ExitReason | None = None
) -> ExitReason:
    """Run one incarnation of ``ref`` and return why it ended.

    Exceptions raised by the actor become ``Crashed``; only cancellation from outside (and
    BaseExceptions such as KeyboardInterrupt) propagate.
    """
    early_stop = ref._terminating
    if early_stop is not None:
        # Asked to stop before this incarnation could run.
        reason: ExitReason = Shutdown(early_stop.detail)
        if ref._state is ActorState.STARTING:
            ref._fail_start(ActorStoppedError(f"{ref._label()} was stopped before it started"))
        return reason
    scope = trio.CancelScope()
    ref._begin_incarnation(scope)
    outcome: ExitReason | None = None
    try:
        with scope:
            if ref._pending_crash is not None:
                # A linked actor ended abnormally while this one was waiting to restart.
                scope.cancel()
                await trio.lowlevel.checkpoint()
            outcome = await behavior.run_actor(ref._context, previous)
    except Exception as error:
        is_shutdown, detail = _shutdown_detail(error)
        outcome = Shutdown(detail) if is_shutdown else Crashed(error)
    finally:
        ref._scope = None
        ref._task = None
    if scope.cancelled_caught:
        if ref._pending_crash is not None:
            outcome = Crashed(ref._pending_crash)
        elif ref._terminating is SELF_STOP:
            outcome = NORMAL  # a function actor called context.stop()
        elif ref._graceful:
            outcome = KILLED  # it did not stop within its grace period
        else:
            outcome = Shutdown(ref._terminating.detail if ref._terminating else None)
    ref._pending_crash = None
    assert outcome is not None
    if isinstance(outcome, Crashed):
        for instrument in ref._system._instruments:
            instrument.actor_crashed(ref, outcome.exception)
    if ref._state is ActorState.STARTING:
        cause = outcome.exception if isinstance(outcome, Crashed) else None
        ref._fail_start(cause or ActorStoppedError(f"{ref._label()} ended while starting"))
    return outcome


def finalize(ref: ActorRef, reason: ExitReason) -> None:
    """End ``ref`` for good: close its mailbox, answer its pending asks, tell watchers and links."""
    if ref._exit_reason is not None:
        return
    ref._exit_reason = reason
    ref._state = ActorState.STOPPED
    stopped = ActorStoppedError(f"{ref._label()} stopped ({type(reason).__name__.lower()})")
    for leftover in ref._mailbox.close():
        if type(leftover) is Ask:
            leftover.fail(stopped)
    ref._system._release(ref)
    if ref._watchers:
        down = Down(ref, reason)
        for watcher in ref._watchers:
            watcher._mailbox.put_control(down)
        ref._watchers = None
    if ref._links:
        for linked in ref._links:
            if linked._links is not None:
                linked._links.discard(ref)
            if is_abnormal(reason):
                linked._crash(_linked_crash(ref, reason))
        ref._links = None
    if ref._watching:
        for watched in ref._watching:
            watched._remove_watcher(ref)
        ref._watching = None
    ref._instance = None
    if ref._stopped_event is not None:
        ref._stopped_event.set()
    for instrument in ref._system._instruments:
        instrument.actor_stopped(ref, reason)


def _linked_crash(ref: ActorRef, reason: ExitReason) -> LinkedActorCrashedError:
    error = LinkedActorCrashedError(f"linked actor {ref._label()} ended: {reason!r}")
    if isinstance(reason, Crashed):
        error.__cause__ = reason.exception
    return error


def link(ref: ActorRef, other: ActorRef) -> None:
    """Link two actors both ways; see ``ActorContext.link``."""
    if other is ref:
        return
    if other._exit_reason is not None:
        if is_abnormal(other._exit_reason):
            ref._crash(_linked_crash(other, other._exit_reason))
        return
    if ref._links is None:
        ref._links = set()
    if other._links is None:
        other._links = set()
    ref._links.add(other)
    other._links.add(ref)


def unlink(ref: ActorRef, other: ActorRef) -> None:
    """Remove the link between two actors, if there is one."""
    if ref._links is not None:
        ref._links.discard(other)
    if other._links is not None:
        other._links.discard(ref)


def log_exit(
    ref: ActorRef,
    reason: ExitReason,
    what_next: str,
    *,
    level: int = logging.ERROR,
    label: str | None = None,
) -> None:
    """Log an abnormal exit with the actor's identity and what its owner does about it.

    A crash logged at ERROR (the default) carries its traceback. Below ERROR, for failures the
    owner expects and heals (a lost connection), it is one line with the error's type and
    message, and the traceback goes to DEBUG.
    """
    name = label or ref._label()
    if isinstance(reason, Crashed):
        error = reason.exception
        if level >= logging.ERROR:
            logger.log(level, "%s crashed: %r; %s", name, error, what_next, exc_info=error)
        else:
            logger.log(level, "%s failed: %s: %s; %s", name, type(error).__name__, error, what_next)
            logger.debug("%s failed", name, exc_info=error)
    elif isinstance(reason, Killed):
        logger.warning("%s did not stop within its grace period and was cancelled", ref._label())
