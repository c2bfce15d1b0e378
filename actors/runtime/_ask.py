"""The request half of ``ask``: a message plus the slot its reply goes into."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from actors._errors import ActorsError


class Ask:
    """A message sent with ``ask``; the receiver answers it once with ``reply`` or ``fail``.

    Class-based actors never see this wrapper: the value their ``receive`` returns is the reply.
    Function actors receive it as it is and must answer it, or the asker hits its deadline.

    Attributes:
        message: What the asker sent.
    """

    __slots__ = ("_done", "_error", "_value", "_waiter", "message")

    def __init__(self, message: object) -> None:
        self.message = message
        self._done = False
        self._value: Any = None
        self._error: BaseException | None = None
        self._waiter: trio.lowlevel.Task | None = None

    @property
    def answered(self) -> bool:
        """Whether ``reply`` or ``fail`` has been called (or the asker gave up)."""
        return self._done

    def reply(self, value: object) -> None:
        """Answer the ask with ``value``. Later answers are ignored: the first one wins."""
        if not self._done:
            self._done = True
            self._value = value
            self._wake()

    def fail(self, error: ActorsError) -> None:
        """Answer the ask with an error, raised in the asker."""
        if not self._done:
            self._done = True
            self._error = error
            self._wake()

    def _wake(self) -> None:
        if self._waiter is not None:
            trio.lowlevel.reschedule(self._waiter)
            self._waiter = None

    def __repr__(self) -> str:
        return f"Ask({self.message!r})"


async def wait_for_answer(request: Ask) -> Any:
    """Wait for the answer to ``request`` (the caller owns the deadline); return it or raise its
    error. For ``ActorRef.ask``."""
    if not request._done:
        request._waiter = trio.lowlevel.current_task()

        def abort(_: object) -> trio.lowlevel.Abort:
            request._waiter = None
            request._done = True  # a late reply is dropped, not delivered to a later ask
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)
    else:
        await trio.lowlevel.checkpoint()
    if request._error is not None:
        raise request._error
    return request._value
