"""Where a command waits for its reply: one slot per command, and a watch over their deadlines.

A caller parks its task in the slot with trio's lowest-level primitives and the reader
reschedules it with the reply: no ``trio.Event`` and no cancel scope per command. A command with
a deadline needs no cancel scope of its own either: one watch per connection sleeps until the
earliest deadline it knows of and fails what is overdue, so bounding every publish costs one
comparison on the hot path instead of entering and leaving a scope (a quarter of a publish's
time, measured with bench_publish).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import trio

from actors._errors import RedisTimeoutError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from actors._errors import RedisReplyError


class ReplySlot:
    """The slot where the reader leaves one command's reply.

    Attributes:
        reply: The reply, or the error that replaces it; None until it comes.
        abandoned: Nobody waits for the reply any more (the caller was cancelled, or its
            deadline passed): the reader discards it when it comes.
        on_error: Set only on the fence behind a subscription command: called with an error
            reply instead of filling the slot.
        deadline: When (trio's clock) the caller stops waiting; ``math.inf`` for never.
    """

    __slots__ = ("abandoned", "deadline", "on_error", "reply", "task")

    def __init__(
        self,
        on_error: Callable[[RedisReplyError], object] | None = None,
        deadline: float = math.inf,
    ) -> None:
        self.task: trio.lowlevel.Task | None = None
        self.reply: object = None
        self.abandoned = False
        self.on_error = on_error
        self.deadline = deadline

    async def wait(self) -> object:
        """Park until the reply is filled in, and return it. Always a checkpoint.

        Raises:
            trio.Cancelled: The caller was cancelled; the reply will be discarded.
        """
        self.task = trio.lowlevel.current_task()
        await trio.lowlevel.wait_task_rescheduled(self.aborted)
        return self.reply

    def fill(self, reply: object) -> None:
        """Leave the reply (or an error in its place) and wake the caller, if it waits."""
        self.reply = reply
        task = self.task
        if task is not None:
            self.task = None
            trio.lowlevel.reschedule(task)

    def aborted(self, _: object) -> trio.lowlevel.Abort:
        """The abort function of a caller parked on this slot: its reply will be discarded."""
        self.abandoned = True
        self.task = None
        return trio.lowlevel.Abort.SUCCEEDED


class DeadlineWatch:
    """Fails the commands whose deadline has passed, from one task per connection.

    ``earliest`` is never later than the deadline of any slot waiting, so an overdue slot is
    failed at its deadline exactly. The watch wakes at ``earliest``; the slots answered by then
    cost it nothing but that one look.
    """

    def __init__(self, describe: str) -> None:
        self._describe = describe
        self._scope: trio.CancelScope | None = None
        self.earliest = math.inf

    def watch(self, deadline: float) -> None:
        """Take a new command's deadline into account (a comparison, unless it is earlier than
        every deadline known)."""
        if deadline < self.earliest:
            self.earliest = deadline
            if self._scope is not None:
                self._scope.deadline = deadline

    async def run(self, waiting: Iterable[ReplySlot]) -> None:
        """Fail overdue slots until cancelled; ``waiting`` is the connection's queue of slots."""
        while True:
            with trio.CancelScope(deadline=self.earliest) as scope:
                self._scope = scope
                await trio.sleep_forever()
            self._scope = None
            now = trio.current_time()
            earliest = math.inf
            for slot in waiting:
                if slot.abandoned or slot.task is None:
                    continue
                if slot.deadline <= now:
                    slot.abandoned = True
                    slot.fill(
                        RedisTimeoutError(
                            f"no reply from {self._describe} by the command's deadline; it may "
                            "or may not have run"
                        )
                    )
                elif slot.deadline < earliest:
                    earliest = slot.deadline
            self.earliest = earliest
