"""WaitSlot: one task parked until another task wakes it.

The mailbox's receiver and a gateway session's sender wait the same way: park the current task
with trio's lowest-level primitives, and have the task that produces something reschedule it.
``trio.Event`` would do the same job, but it is one more object per wait and cannot be reused; a
slot lives as long as its owner and costs nothing while nobody waits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from collections.abc import Callable


class WaitSlot:
    """A place for one task to wait until another task calls ``wake``.

    Only one task may wait in a slot at a time. Cancelling the waiting task empties the slot, so
    a later ``wake`` finds nobody and does nothing. A ``wake`` with nobody waiting is not
    remembered: check the condition you wait for before you wait, as with a condition variable.
    """

    __slots__ = ("task",)

    def __init__(self) -> None:
        self.task: trio.lowlevel.Task | None = None
        """The task waiting here, or None."""

    def park(self) -> Callable[[object], trio.lowlevel.Abort]:
        """Take the slot for the current task; return the abort function to pass to
        ``trio.lowlevel.wait_task_rescheduled``.

        For hot loops that await ``wait_task_rescheduled`` themselves rather than ``wait``:
        that keeps one coroutine frame fewer alive while the task is parked.
        """
        self.task = trio.lowlevel.current_task()
        # The slot itself is the abort function (``__call__``): a bound method would be one
        # more object for as long as the task waits, which for an idle actor is its whole life,
        # and one more allocation per wait.
        return self

    async def wait(self) -> None:
        """Park the current task until ``wake`` is called. Always a checkpoint.

        Raises:
            trio.Cancelled: The wait was cancelled; the slot is empty again.
        """
        await trio.lowlevel.wait_task_rescheduled(self.park())

    def wake(self) -> None:
        """Reschedule the waiting task, if there is one."""
        task = self.task
        if task is not None:
            self.task = None
            trio.lowlevel.reschedule(task)

    def __call__(self, _: object) -> trio.lowlevel.Abort:
        """The abort function of a wait in this slot: trio calls it when the waiter is
        cancelled, and the slot is empty again."""
        self.task = None
        return trio.lowlevel.Abort.SUCCEEDED
