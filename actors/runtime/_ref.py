"""ActorRef: the address of an actor.

A ref is stable for the actor's whole life, restarts included: its mailbox survives a restart, so
messages sent while a supervisor is restarting the actor are waiting for the new incarnation.
The ref goes dead only when the actor stops for good; then watchers get ``Down``. The actor's
state lives in its cell (``actors.runtime._cell``); the ref only sends to it and asks it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Final

import trio

from actors._errors import AskTimeoutError, SelfAskError
from actors.runtime._ask import Ask, wait_for_answer

if TYPE_CHECKING:
    from collections.abc import Callable

    from actors.runtime._cell import ActorCell, ActorState, ActorStatistics
    from actors.runtime._exit import ExitReason

DEFAULT_ASK_TIMEOUT: Final = 5.0  # seconds, like OTP's gen_server:call


class ActorRef:
    """The address of an actor: tell it things, ask it things, stop it, wait for it to stop.

    Refs are created with their actor by ``ActorSystem.spawn`` and by supervisors, never
    directly.
    """

    # The cell is the actor's mailbox too (``ActorCell`` is a ``Mailbox``), for its whole life:
    # a tell is one call on it.
    __slots__ = ("__weakref__", "_cell")

    _cell: ActorCell

    # No __init__: ``new_cell`` makes the ref empty, before the cell, and the cell binds it
    # (``bind``). The garbage collector walks objects in the order they were made, and a full
    # collection is cheapest when each object comes after one that refers to it; the ref is
    # what the rest of the program holds, so it goes first, then the cell (the mailbox too),
    # then the mailbox's deque with the first message.

    @property
    def actor_id(self) -> int:
        """Unique within the process."""
        return self._cell.actor_id

    @property
    def name(self) -> str | None:
        """The registered name, if any."""
        return self._cell.name

    # -- messaging -------------------------------------------------------------------------------

    def tell_nowait(self, message: object) -> None:
        """Send a message without waiting, applying the mailbox's overflow policy.

        Raises:
            trio.WouldBlock: The mailbox is full and its policy is ``block``.
            MailboxFullError: The mailbox is full and its policy is ``fail``.
            ActorStoppedError: The actor has stopped for good.
        """
        self._cell.put_nowait(message)

    async def tell(self, message: object) -> None:
        """Send a message, waiting for room if the mailbox's policy is ``block``.

        Raises:
            MailboxFullError: The mailbox is full and its policy is ``fail``.
            ActorStoppedError: The actor has stopped for good.
        """
        await self._cell.put(message)

    def delivery(self) -> Callable[[object], bool]:
        """Return the function that delivers one message into this actor's mailbox now.

        For sinks on a hot path (a Redis reader feeding thousands of subscribers): the function
        is the mailbox's own, so a delivery costs one call. It never waits. It returns True if
        nothing was lost, False if the overflow policy discarded a message (the arriving one or
        the oldest queued one).

        The returned function raises ``trio.WouldBlock`` (full, policy ``block``),
        ``MailboxFullError`` (full, policy ``fail``) or ``ActorStoppedError`` (stopped for good).
        """
        return self._cell.put_nowait

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
        if self._cell.in_current_task():
            raise SelfAskError(f"{self._cell.label} asked itself {type(message).__name__}")
        request = Ask(message)
        if timeout == math.inf:
            await self._cell.put(request)
            return await wait_for_answer(request)
        with trio.move_on_after(timeout):
            await self._cell.put(request)
            return await wait_for_answer(request)
        raise AskTimeoutError(
            f"ask to {self._cell.label} with {type(message).__name__} got no reply "
            f"within {timeout} s"
        )

    # -- stopping --------------------------------------------------------------------------------

    def request_stop(self, detail: object = None) -> None:
        """Ask the actor to stop for good, without waiting. Stopping an actor twice is harmless.

        A class-based actor stops at its next batch boundary and runs ``stopping``; a function
        actor is cancelled. Either is cancelled once its shutdown grace period runs out. A
        supervisor never restarts an actor stopped this way.
        """
        self._cell.request_stop(detail)

    async def stop(self, detail: object = None) -> ExitReason:
        """Stop the actor for good and wait until it has; returns its exit reason."""
        self._cell.request_stop(detail)
        return await self._cell.wait_stopped()

    async def wait_stopped(self) -> ExitReason:
        """Wait until the actor has stopped for good; returns its exit reason."""
        return await self._cell.wait_stopped()

    @property
    def alive(self) -> bool:
        """False once the actor has stopped for good."""
        return self._cell.exit_reason is None

    @property
    def exit_reason(self) -> ExitReason | None:
        """Why the actor stopped for good, or None while it lives."""
        return self._cell.exit_reason

    @property
    def state(self) -> ActorState:
        """Where the actor is in its life now."""
        return self._cell.state

    def statistics(self) -> ActorStatistics:
        """Return the actor's state and its mailbox's counters."""
        return self._cell.statistics()

    def __repr__(self) -> str:
        return f"<ActorRef {self._cell.label} {self._cell.state.value}>"


def bind(ref: ActorRef, cell: ActorCell) -> None:
    """Make the empty ``ref`` the address of ``cell``; the cell does it as it is made."""
    ref._cell = cell


def cell_of(ref: ActorRef) -> ActorCell:
    """The cell behind ``ref``: for the runtime and ``actors.runtime.lowlevel`` only."""
    return ref._cell
