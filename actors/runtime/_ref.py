"""ActorRef: the address of an actor, and the runtime state that lives as long as the address does.

A ref is stable for the actor's whole life, restarts included: its mailbox survives a restart, so
messages sent while a supervisor is restarting the actor are waiting for the new incarnation.
The ref goes dead only when the actor stops for good; then watchers get ``Down``.
"""

from __future__ import annotations

import enum
import itertools
import math
from typing import TYPE_CHECKING, Any, Final, Protocol

import attrs
import trio

from actors._errors import ActorStartError, AskTimeoutError, SelfAskError
from actors.runtime._ask import Ask
from actors.runtime._exit import Down, ExitReason
from actors.runtime._mailbox import Mailbox, MailboxConfig, MailboxStatistics, Overflow

if TYPE_CHECKING:
    from actors.runtime._system import ActorSystem

DEFAULT_ASK_TIMEOUT: Final = 5.0  # seconds, like OTP's gen_server:call
DEFAULT_SHUTDOWN_GRACE: Final = 5.0  # seconds an actor gets to stop before it is cancelled

_actor_ids = itertools.count(1)


class StopListener(Protocol):
    """The owner of an actor (its supervisor): told when someone asks the actor to stop, and
    when the actor reports itself healthy (``ActorContext.reset_backoff``)."""

    def child_stop_requested(self, ref: ActorRef) -> None: ...

    def child_healthy(self, ref: ActorRef) -> None: ...


class ActorState(enum.Enum):
    """Where an actor is in its life."""

    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    STOPPING = "stopping"
    STOPPED = "stopped"


@attrs.frozen
class StopRequest:
    """Control message: end the current incarnation at the next batch boundary."""

    detail: object = None


SELF_STOP: Final = StopRequest("self")


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


class ActorRef:
    """The address of an actor: tell it things, ask it things, stop it, wait for it to stop.

    Refs are created by ``ActorSystem.spawn`` and by supervisors, never directly.
    """

    __slots__ = (
        "__weakref__",
        "_context",
        "_exit_reason",
        "_grace",
        "_graceful",
        "_instance",
        "_links",
        "_mailbox",
        "_owner",
        "_pending_crash",
        "_restarts",
        "_scope",
        "_start_error",
        "_start_waiter",
        "_state",
        "_stop_requested",
        "_stopped_event",
        "_system",
        "_task",
        "_terminating",
        "_watchers",
        "_watching",
        "actor_id",
        "name",
    )

    def __init__(
        self,
        system: ActorSystem,
        *,
        name: str | None,
        mailbox: MailboxConfig,
        grace: float,
        graceful: bool,
    ) -> None:
        self.actor_id = next(_actor_ids)
        self.name = name
        self._system = system
        self._mailbox = Mailbox(mailbox, owner=self, report_drops=bool(system._instruments))
        self._grace = grace
        self._graceful = graceful
        self._state = ActorState.STARTING
        self._exit_reason: ExitReason | None = None
        self._stopped_event: trio.Event | None = None
        self._watchers: list[ActorRef] | None = None
        self._watching: list[ActorRef] | None = None
        self._links: set[ActorRef] | None = None
        self._task: trio.lowlevel.Task | None = None
        self._scope: trio.CancelScope | None = None
        self._context: Any = None
        self._instance: object = None
        self._stop_requested = False
        self._terminating: StopRequest | None = None
        self._pending_crash: BaseException | None = None
        self._restarts = 0
        self._start_waiter: trio.lowlevel.Task | None = None
        self._start_error: BaseException | None = None
        self._owner: StopListener | None = None

    # -- messaging -------------------------------------------------------------------------------

    def tell_nowait(self, message: object) -> None:
        """Send a message without waiting, applying the mailbox's overflow policy.

        Raises:
            trio.WouldBlock: The mailbox is full and its policy is ``block``.
            MailboxFullError: The mailbox is full and its policy is ``fail``.
            ActorStoppedError: The actor has stopped for good.
        """
        self._mailbox.put_nowait(message)

    async def tell(self, message: object) -> None:
        """Send a message, waiting for room if the mailbox's policy is ``block``.

        Raises:
            MailboxFullError: The mailbox is full and its policy is ``fail``.
            ActorStoppedError: The actor has stopped for good.
        """
        await self._mailbox.put(message)

    async def ask(
        self,
        message: object,
        *,
        timeout: float = DEFAULT_ASK_TIMEOUT,  # noqa: ASYNC109 - asks always have a deadline
    ) -> Any:
        """Send a message and wait for the reply.

        Args:
            message: The request. A class-based actor's ``receive`` return value is the reply.
            timeout: Seconds to wait, queueing included; ``math.inf`` waits for ever.

        Raises:
            AskTimeoutError: No reply within ``timeout``.
            SelfAskError: An actor asked itself.
            ActorCrashedError: The actor crashed while handling the request.
            ActorStoppedError: The actor stopped before it answered.
            MailboxFullError: The mailbox refused or dropped the request.
        """
        if self._task is not None and trio.lowlevel.current_task() is self._task:
            raise SelfAskError(f"{self._label()} asked itself {type(message).__name__}")
        request = Ask(message)
        if timeout == math.inf:
            await self._mailbox.put(request)
            return await request._wait()
        with trio.move_on_after(timeout):
            await self._mailbox.put(request)
            return await request._wait()
        raise AskTimeoutError(
            f"ask to {self._label()} with {type(message).__name__} got no reply within {timeout} s"
        )

    # -- stopping --------------------------------------------------------------------------------

    def request_stop(self, detail: object = None) -> None:
        """Ask the actor to stop for good, without waiting. Stopping an actor twice is harmless.

        A class-based actor stops at its next batch boundary and runs ``stopping``; a function
        actor is cancelled. Either is cancelled once its shutdown grace period runs out. A
        supervisor never restarts an actor stopped this way.
        """
        if self._stop_requested or self._exit_reason is not None:
            return
        self._stop_requested = True
        if self._owner is not None:
            self._owner.child_stop_requested(self)
        self._terminate(detail)

    async def stop(self, detail: object = None) -> ExitReason:
        """Stop the actor for good and wait until it has; returns its exit reason."""
        self.request_stop(detail)
        return await self.wait_stopped()

    async def wait_stopped(self) -> ExitReason:
        """Wait until the actor has stopped for good; returns its exit reason."""
        if self._exit_reason is None:
            if self._stopped_event is None:
                self._stopped_event = trio.Event()
            await self._stopped_event.wait()
        else:
            await trio.lowlevel.checkpoint()
        assert self._exit_reason is not None
        return self._exit_reason

    @property
    def alive(self) -> bool:
        """False once the actor has stopped for good."""
        return self._exit_reason is None

    @property
    def exit_reason(self) -> ExitReason | None:
        """Why the actor stopped for good, or None while it lives."""
        return self._exit_reason

    @property
    def state(self) -> ActorState:
        """Where the actor is in its life now."""
        return self._state

    def statistics(self) -> ActorStatistics:
        """Return the actor's state and its mailbox's counters."""
        return ActorStatistics(
            actor_id=self.actor_id,
            name=self.name,
            state=self._state,
            restarts=self._restarts,
            exit_reason=self._exit_reason,
            mailbox=self._mailbox.statistics(),
        )

    def __repr__(self) -> str:
        return f"<ActorRef {self._label()} {self._state.value}>"

    def _label(self) -> str:
        return f"{self.name}#{self.actor_id}" if self.name else f"actor#{self.actor_id}"

    # -- runtime internals -----------------------------------------------------------------------

    def _terminate(self, detail: object = None, *, grace: float | None = None) -> None:
        """End the running incarnation, gracefully if the actor supports it, then by cancellation.

        Supervisors call this directly to stop a child they are about to restart.
        """
        if grace is None:
            grace = self._grace
        if self._terminating is None:
            self._terminating = StopRequest(detail)
        scope = self._scope
        if scope is None:
            return  # not running: the runner checks _terminating before it starts the body
        if self._graceful and grace > 0:
            self._mailbox.put_control(StopRequest(detail))
            if grace != math.inf:
                scope.deadline = min(scope.deadline, trio.current_time() + grace)
        else:
            scope.cancel()

    def _begin_incarnation(self, scope: trio.CancelScope) -> None:
        self._task = trio.lowlevel.current_task()
        self._scope = scope

    def _crash(self, error: BaseException) -> None:
        """Crash the running incarnation from outside: it is cancelled and exits with ``error``."""
        if self._pending_crash is None:
            self._pending_crash = error
        if self._scope is not None:
            self._scope.cancel()

    def _on_overflow_stop(self) -> None:
        from actors._errors import MailboxOverflowError

        self._crash(MailboxOverflowError(f"mailbox of {self._label()} overflowed"))

    def _on_drop(self, message: object, policy: Overflow) -> None:
        for instrument in self._system._instruments:
            instrument.message_dropped(self, message, policy)

    def _mark_started(self) -> None:
        self._state = ActorState.RUNNING
        for instrument in self._system._instruments:
            instrument.actor_started(self)
        if self._start_waiter is not None:
            trio.lowlevel.reschedule(self._start_waiter)
            self._start_waiter = None

    async def _wait_started(self) -> None:
        """Wait for the first incarnation to finish starting; raise if it failed to."""
        if self._state is ActorState.STARTING and self._start_error is None:
            self._start_waiter = trio.lowlevel.current_task()

            def abort(_: object) -> trio.lowlevel.Abort:
                self._start_waiter = None
                return trio.lowlevel.Abort.SUCCEEDED

            await trio.lowlevel.wait_task_rescheduled(abort)
        else:
            await trio.lowlevel.checkpoint()
        if self._start_error is not None:
            raise ActorStartError(f"{self._label()} failed to start") from self._start_error

    def _fail_start(self, error: BaseException) -> None:
        self._start_error = error
        if self._start_waiter is not None:
            trio.lowlevel.reschedule(self._start_waiter)
            self._start_waiter = None

    def _add_watcher(self, watcher: ActorRef) -> None:
        if self._exit_reason is not None:
            watcher._mailbox.put_control(Down(self, self._exit_reason))
            return
        if self._watchers is None:
            self._watchers = []
        self._watchers.append(watcher)
        # The watcher remembers what it watches, so that a watcher that stops first leaves
        # nothing behind in a long-lived actor's list.
        if watcher._watching is None:
            watcher._watching = []
        watcher._watching.append(self)

    def _remove_watcher(self, watcher: ActorRef) -> None:
        if self._watchers is not None and watcher in self._watchers:
            self._watchers.remove(watcher)
        if watcher._watching is not None and self in watcher._watching:
            watcher._watching.remove(self)
