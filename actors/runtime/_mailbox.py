"""A bounded mailbox with overflow policies and a separate lane for control messages.

The mailbox is a deque guarded by trio's low-level parking primitives rather than a memory channel,
for two reasons: the ``drop_oldest`` policy needs to evict from the front of the buffer, and the
receiver takes a whole batch of ready messages per wake-up, which is where throughput comes from.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from typing import Final

import attrs
import trio

from actors._errors import ActorStoppedError, MailboxFullError
from actors.runtime._ask import Ask
from actors.runtime._parking import WaitSlot

DEFAULT_MAILBOX_CAPACITY: Final = 1000  # messages; the buffer size our users asked for
DEFAULT_BATCH_SIZE: Final = 512  # messages taken per wake-up of the receiver


class Overflow(enum.Enum):
    """What happens when a message arrives at a full mailbox."""

    BLOCK = "block"
    """``tell`` waits for room (backpressure); ``tell_nowait`` raises ``trio.WouldBlock``."""
    DROP_OLDEST = "drop_oldest"
    """The oldest queued message is discarded to make room."""
    DROP_NEWEST = "drop_newest"
    """The arriving message is discarded."""
    FAIL = "fail"
    """The sender gets ``MailboxFullError``."""
    STOP = "stop"
    """The arriving message is discarded and the receiver crashes with ``MailboxOverflowError``."""


@attrs.frozen
class MailboxConfig:
    """How big a mailbox is and what it does when full.

    Attributes:
        capacity: Messages the mailbox holds; ``math.inf`` only when you mean it.
        overflow: The policy applied when a message arrives at a full mailbox.
        batch_size: The most messages the receiver takes per wake-up.
    """

    capacity: float = attrs.field(default=DEFAULT_MAILBOX_CAPACITY)
    overflow: Overflow = Overflow.BLOCK
    batch_size: int = attrs.field(default=DEFAULT_BATCH_SIZE)

    @capacity.validator
    def _check_capacity(self, _: object, value: float) -> None:
        if value != math.inf and (value < 1 or int(value) != value):
            raise ValueError(
                f"mailbox capacity must be a positive whole number or math.inf: {value}"
            )

    @batch_size.validator
    def _check_batch_size(self, _: object, value: int) -> None:
        if value < 1:
            raise ValueError(f"batch_size must be at least 1: {value}")


DEFAULT_MAILBOX: Final = MailboxConfig()


@attrs.frozen(kw_only=True)
class MailboxStatistics:
    """A snapshot of a mailbox's counters."""

    capacity: float
    """The most user messages the mailbox holds."""
    overflow: Overflow
    """The overflow policy."""
    size: int
    """User messages waiting now."""
    control_size: int
    """Control messages (stop, down notifications) waiting now."""
    high_water: int
    """The most user messages that were ever waiting at once."""
    enqueued: int
    """User messages accepted into the mailbox."""
    taken: int
    """User messages the receiver has taken out."""
    dropped_oldest: int
    """Queued messages evicted by ``drop_oldest``."""
    dropped_newest: int
    """Arriving messages discarded by ``drop_newest`` or ``stop``."""
    rejected: int
    """Arriving messages refused with ``MailboxFullError`` (the ``fail`` policy)."""
    overflow_stops: int
    """Times the ``stop`` policy crashed the receiver."""
    discarded: int
    """Messages still queued when the actor stopped for good: never handled."""
    blocked_senders: int
    """Senders waiting for room now (the ``block`` policy)."""
    closed: bool
    """Whether the mailbox is closed because its actor stopped for good."""

    @property
    def dropped(self) -> int:
        """Every message lost to the overflow policy, whatever the policy."""
        return self.dropped_oldest + self.dropped_newest + self.rejected


class Mailbox(WaitSlot):
    """A bounded message queue with one receiver and a control lane that never fills up.

    The receiver waits in the mailbox itself (it is the receiver's ``WaitSlot``), and an actor's
    cell is its mailbox (``ActorCell`` is a ``Mailbox``): an idle actor costs no extra object for
    either. The cell names the actor in errors (``label``), and hears of drops
    (``message_dropped``) and of the ``stop`` policy firing (``mailbox_overflowed``: it should
    crash the receiver then); a bare mailbox says "mailbox" and hears nothing.

    Args:
        config: Capacity, overflow policy and batch size.
        report_drops: Whether to call ``message_dropped`` for every dropped message.
    """

    # Counters are plain int slots, not a list: a list would be one more object per actor for
    # the garbage collector to visit, and 100,000 actors make that visible.
    __slots__ = (
        "_buffer",
        "_capacity",
        "_closed",
        "_control",
        "_discarded",
        "_dropped_newest",
        "_dropped_oldest",
        "_high_water",
        "_overflow_stops",
        "_policy",
        "_rejected",
        "_report_drops",
        "_senders",
        "_taken",
        "batch_size",
    )

    def __init__(
        self,
        config: MailboxConfig = DEFAULT_MAILBOX,
        *,
        report_drops: bool = False,
    ) -> None:
        # Made by the first message: an empty deque is about 600 bytes, and many actors (an
        # idle subscription, a supervisor's quiet child) never get one. Until then the buffer
        # is the empty tuple, which has a length and is false like an empty deque.
        self._buffer: deque[object] | tuple[()] = ()
        self._control: deque[object] | None = None
        self._capacity = config.capacity
        self._policy = config.overflow
        self.batch_size = config.batch_size
        self._report_drops = report_drops
        self.task = None  # WaitSlot's: no receiver waits yet (set here, saving a call per actor)
        self._senders: trio.lowlevel.ParkingLot | None = None
        self._closed = False
        self._high_water = 0
        self._discarded = 0
        self._taken = 0
        self._dropped_oldest = 0
        self._dropped_newest = 0
        self._rejected = 0
        self._overflow_stops = 0

    @property
    def label(self) -> str:
        """Who the mailbox belongs to, for error messages: the actor's label, for a cell."""
        return "mailbox"

    def message_dropped(self, message: object, policy: Overflow) -> None:
        """An overflow policy discarded or refused ``message`` (with ``report_drops``)."""

    def mailbox_overflowed(self) -> None:
        """The ``stop`` policy fired: the receiver should crash."""

    # -- sending ---------------------------------------------------------------------------------

    def put_nowait(self, message: object) -> bool:
        """Queue a message now, applying the overflow policy if the mailbox is full.

        Returns:
            True if nothing was lost; False if the ``drop_oldest``, ``drop_newest`` or ``stop``
            policy discarded a message (the arriving one, or the oldest queued one).

        Raises:
            trio.WouldBlock: Full, and the policy is ``block``.
            MailboxFullError: Full, and the policy is ``fail``.
            ActorStoppedError: The mailbox is closed.
        """
        if self._closed:
            raise ActorStoppedError(f"{self.label} has stopped")
        buffer = self._buffer
        if len(buffer) < self._capacity:
            # The hot path: no counter here. ``enqueued`` and ``high_water`` are derived where
            # the buffer shrinks (see take_batch and statistics). No test for the first
            # message either: a try costs nothing until the tuple refuses ``append``.
            try:
                buffer.append(message)  # type: ignore[union-attr]
            except AttributeError:
                self._buffer = deque((message,))
            if self.task is not None:
                self.wake()
            return True
        self._overflow(message)
        return False

    async def put(self, message: object) -> None:
        """Queue a message, waiting for room when the policy is ``block``. Always a checkpoint."""
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            self.put_nowait(message)
        except trio.WouldBlock:
            pass
        else:
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        while True:
            if self._senders is None:
                self._senders = trio.lowlevel.ParkingLot()
            await self._senders.park()
            try:
                self.put_nowait(message)
            except trio.WouldBlock:
                continue
            return

    def put_control(self, message: object) -> None:
        """Queue a control message ahead of every user message; never blocks, never drops."""
        if self._closed:
            return
        if self._control is None:
            self._control = deque()
        self._control.append(message)
        self.wake()

    def _overflow(self, message: object) -> None:
        policy = self._policy
        if policy is Overflow.BLOCK:
            raise trio.WouldBlock
        if policy is Overflow.DROP_OLDEST:
            buffer = self._buffer
            assert isinstance(buffer, deque)  # full, so no longer the empty tuple
            evicted = buffer.popleft()
            buffer.append(message)
            self._dropped_oldest += 1
            self._high_water = max(self._high_water, len(buffer))
            self._dropped(evicted, policy)
            return
        if policy is Overflow.FAIL:
            self._rejected += 1
            if self._report_drops:
                self.message_dropped(message, policy)
            raise MailboxFullError(f"mailbox of {self.label} is full ({self._capacity} messages)")
        self._dropped_newest += 1
        self._dropped(message, policy)
        if policy is Overflow.STOP:
            self._overflow_stops += 1
            self.mailbox_overflowed()

    def _dropped(self, message: object, policy: Overflow) -> None:
        if type(message) is Ask:
            message.fail(MailboxFullError(f"mailbox of {self.label} overflowed ({policy.value})"))
        if self._report_drops:
            self.message_dropped(message, policy)

    # -- receiving -------------------------------------------------------------------------------

    def take_control(self) -> object | None:
        """Return the oldest control message, or None."""
        control = self._control
        if control:
            return control.popleft()
        return None

    def take_batch(self, limit: int) -> list[object]:
        """Take up to ``limit`` user messages (possibly none) and wake senders waiting for room."""
        buffer = self._buffer
        size = len(buffer)
        if size > self._high_water:
            self._high_water = size  # the buffer only grows between takes, so this is its peak
        count = min(limit, size)
        if count == 0:
            return []
        assert isinstance(buffer, deque)  # not empty, so no longer the empty tuple
        if count == len(buffer):
            batch = list(buffer)
            buffer.clear()
        else:
            popleft = buffer.popleft
            batch = [popleft() for _ in range(count)]
        self._taken += count
        if self._senders:
            self._senders.unpark(count=count)
        return batch

    def return_unhandled(self, messages: list[object]) -> None:
        """Put taken but unhandled messages back at the front, in order (after a crash)."""
        if self._closed:
            for message in messages:
                if type(message) is Ask:
                    message.fail(ActorStoppedError(f"{self.label} has stopped"))
            return
        if not isinstance(self._buffer, deque):
            self._buffer = deque()
        self._buffer.extendleft(reversed(messages))
        self._taken -= len(messages)

    def has_control(self) -> bool:
        return bool(self._control)

    def __len__(self) -> int:
        return len(self._buffer)

    async def wait(self) -> None:
        """Wait until a user or control message is ready or the mailbox closes.

        Returns at once (after a checkpoint) if something is ready already.
        """
        if self._buffer or self._control or self._closed:
            await trio.lowlevel.checkpoint()
            return
        await trio.lowlevel.wait_task_rescheduled(self.park())

    # -- closing ---------------------------------------------------------------------------------

    def close(self) -> list[object]:
        """Close for good: refuse new messages, wake everyone waiting, return what was queued."""
        self._closed = True
        self._high_water = max(self._high_water, len(self._buffer))
        self._discarded = len(self._buffer)
        leftovers = list(self._buffer)
        if self._control:
            leftovers.extend(self._control)
        self._buffer = ()
        self._control = None
        self.wake()
        if self._senders is not None:
            self._senders.unpark_all()
        return leftovers

    @property
    def closed(self) -> bool:
        return self._closed

    def mailbox_statistics(self) -> MailboxStatistics:
        """Return the mailbox's counters as they are now."""
        return MailboxStatistics(
            capacity=self._capacity,
            overflow=self._policy,
            size=len(self._buffer),
            control_size=len(self._control) if self._control else 0,
            high_water=max(self._high_water, len(self._buffer)),
            # Every accepted message is still queued, was taken, was evicted, or was discarded
            # when the mailbox closed.
            enqueued=self._taken + len(self._buffer) + self._dropped_oldest + self._discarded,
            taken=self._taken,
            dropped_oldest=self._dropped_oldest,
            dropped_newest=self._dropped_newest,
            rejected=self._rejected,
            overflow_stops=self._overflow_stops,
            discarded=self._discarded,
            blocked_senders=self._senders.statistics().tasks_waiting if self._senders else 0,
            closed=self._closed,
        )
