"""Recovery: a subscriber that knows its position in a channel's history reads back what it missed.

A subscription with ``recover=True`` keeps ``(epoch, last offset)`` for its channel
(``RecoveryState``, kept across restarts of its actor). Every publication arrives in an envelope
with its position, so a missed one shows as a skipped offset; a ``Resubscribed`` after an outage
means any number may have been missed; a periodic check compares the position with the top of
the history, for a loss that nothing else showed. In each case ``ChannelRecovery`` reads the
missed range from the history (one round trip per page, the window read with it so both belong
to one epoch) and answers what to deliver, in order:

* ``(position, payload)`` pairs: the recovered publications, then the live one that showed the
  gap. Live publications at or below the position are duplicates of recovered ones and are
  dropped, so each offset is delivered once and in order; while a range is read, the live ones
  wait in the subscription's mailbox (bounded: one that overflows is another gap, read back
  in turn).
* ``Recovered(count)`` once a gap is filled;
* ``Unrecoverable(reason)`` when it cannot be: the epoch changed (the history started over), the
  stream no longer holds the range (trimmed by its size, or expired), or the history could not be
  read. The subscription continues from the newest position; the application reloads its state.
"""

from __future__ import annotations

import contextlib
import logging
import math
from typing import TYPE_CHECKING, Final, Literal, TypeAlias

import attrs
import trio

from actors._errors import ActorsError, RedisError, RedisProtocolError
from actors.pubsub._history import Position
from actors.redis import RedisMessage, heals
from actors.runtime import Down

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from actors.pubsub._history import History, HistoryWindow
    from actors.pubsub._history_store import HistoryStore
    from actors.runtime import ActorContext, ActorRef

logger = logging.getLogger(__name__)

RECOVERY_PAGE: Final = 1000  # publications read per round trip
HELD_READ_RETRY: Final = 0.1
"""Seconds after a failed read before a live message that shows the held gap reads again."""
_NEW_EPOCH: Final = "the history started over (a new epoch): what came before is gone"
UNKNOWN_GAP: Final = math.inf
"""The gap before a position given by the caller (``since``): any time may have passed."""


class HistoryReadMismatch(RedisProtocolError):
    """A page of a channel's history that disagrees with the window read with it: the window
    holds the next offset, the page does not start there. Read again, never taken for a
    trimmed history."""


@attrs.frozen
class Recovered:
    """A gap in a channel with history is filled: ``count`` missed publications were read back
    and delivered (0 when the gap cost none), before this event and in order.

    Attributes:
        channel: The channel.
        count: How many publications were recovered.
        position: The position the subscription stands at now (None when the channel's
            history expired without loss: the next publication starts a new epoch).
    """

    channel: str
    count: int
    position: Position | None


@attrs.frozen
class Unrecoverable:
    """Publications were missed that the history cannot give back: reload the state they built.

    Attributes:
        channel: The channel.
        reason: Why, in words.
        position: Where the subscription continues from (None until the channel has history).
        cause: Why, in one word (the metrics' label): ``new_epoch`` (the history started
            over), ``trimmed`` (the stream no longer holds the range), ``expired`` (the history
            expired during a longer gap), ``ahead`` (a position past the history's end), or
            ``unreadable`` (reading the history failed).
    """

    channel: str
    reason: str
    position: Position | None
    cause: str


@attrs.frozen
class CheckHistory:
    """Told to a recovering subscription periodically: compare the position with the top."""


@attrs.frozen
class CatchUp:
    """Told to a recovering subscription once it is subscribed: read what it missed so far."""

    gap: float
    """How long it may have missed publications (``UNKNOWN_GAP`` after a ``since``)."""
    report: Report
    """When to tell ``Recovered``: ``always`` after a ``since`` (the caller waits to hear that
    it is up to date); ``never`` when subscribing from now (what it reads would have come live:
    no gap was filled)."""


class HistoryMessage(RedisMessage, kw_only=True, gc=False, eq=False):
    """A publication taken out of its envelope (or read back from the history): the payload is
    the message, ``position`` (keyword-only) where it stands."""

    position: Position


@attrs.define
class RecoveryState:
    """A recovering subscription's position, and what recovery did; kept across restarts."""

    epoch: str | None = None
    """The history's epoch; None until the channel has one (then it is read from offset 1)."""
    last: int = 0
    """The last offset delivered."""
    checked: Position | None = None
    """The top of the history the last periodic check saw."""
    recovered: int = 0
    """Publications read back from the history to fill gaps (the sum of ``Recovered``)."""
    duplicates: int = 0
    """Live publications dropped because they were delivered already (read back first)."""
    unrecoverable: int = 0
    """Gaps the history could not fill."""
    failures: int = 0
    """Reads of the history that failed (retried by the next check or resubscription)."""
    held_since: float | None = None
    """When (trio's clock) a read of the gap a live message showed first failed; None while no
    gap is held. A read of a whole range that works clears it (a page that works does not)."""
    retry_at: float = -math.inf
    """Not before this time does a live message read the held gap again."""

    @property
    def position(self) -> Position | None:
        """Where the subscription stands; None while the channel has no history."""
        return None if self.epoch is None else Position(self.epoch, self.last)


Delivery: TypeAlias = "tuple[Position, bytes] | Recovered | Unrecoverable"
Report: TypeAlias = Literal["always", "when_any", "never"]


class ChannelRecovery:
    """The recovery of one channel for one subscription: what to deliver for each event.

    Args:
        store: Where the channel's history is.
        channel: The channel.
        history: Its history settings (the TTL tells whether an expired history lost anything).
        state: The subscription's position, changed in place.
        hold: Seconds a gap a live message showed is held while the history's reads keep
            failing with an error that heals (a lost connection, a timeout), before it is
            given up as ``unreadable``; the PubSub passes its connection's ``reconnect_wait``.
        page: Publications read per round trip.
    """

    def __init__(
        self,
        store: HistoryStore,
        channel: str,
        history: History,
        state: RecoveryState,
        *,
        hold: float,
        page: int = RECOVERY_PAGE,
    ) -> None:
        self.store = store
        self.channel = channel
        self.history = history
        self.state = state
        self.hold = hold
        self.page = page

    async def live(self, position: Position, payload: bytes) -> list[Delivery]:
        """A publication arrived: deliver it, after what it shows was missed; or drop it if it
        was delivered already."""
        state = self.state
        if state.epoch is None:
            state.epoch = position.epoch  # the history began: everything from offset 1 counts
        elif position.epoch != state.epoch:
            lost = self._lost(
                "new_epoch", _NEW_EPOCH, Position(position.epoch, position.offset - 1)
            )
            state.last = position.offset
            return [*lost, (position, payload)]
        if position.offset <= state.last:
            state.duplicates += 1
            return []
        deliveries: list[Delivery] = []
        if position.offset > state.last + 1:
            if state.held_since is not None and trio.current_time() < state.retry_at:
                # A read of this gap failed a moment ago: the messages queued behind it would
                # each fail the same way on a connection not yet replaced. This one is in the
                # history too; the read that fills the gap delivers it.
                return []
            try:
                deliveries = await self._read_forward(position.offset - 1, gap=0.0)
            except RedisError as error:
                self._failed(error)
                failed_at = trio.current_time()
                if state.held_since is None:
                    state.held_since = failed_at
                state.retry_at = failed_at + HELD_READ_RETRY
                may_pass = heals(error) or isinstance(error, HistoryReadMismatch)
                if may_pass and failed_at - state.held_since < self.hold:
                    # Most often the connection went down again: the gap and this message are
                    # in the history, and the next read (a resubscription, a message, a
                    # check) delivers them in order. Only a read that fails for good, or
                    # keeps failing for longer than the connection takes to come back,
                    # gives the gap up.
                    return []
                deliveries = self._lost(
                    "unreadable",
                    f"could not read the history: {error}",
                    Position(position.epoch, position.offset - 1),
                )
        if state.epoch == position.epoch and position.offset > state.last:
            state.last = position.offset
            deliveries.append((position, payload))
        else:
            state.duplicates += 1
        return deliveries

    async def catch_up(self, gap: float, *, report: Report = "always") -> list[Delivery]:
        """Read everything published after the position, up to the newest.

        Args:
            gap: How long the subscription may have missed publications (a resubscription's
                duration; ``math.inf`` for a position given by the caller): if the history
                expired meanwhile, it tells whether that lost anything.
            report: When to tell ``Recovered``: ``always`` (even when nothing was missed),
                ``when_any`` or ``never``.
        """
        try:
            return await self._read_forward(None, gap=gap, report=report)
        except RedisError as error:
            self._failed(error)
            return []

    async def check(self) -> list[Delivery]:
        """The periodic check: a position still below the top that the previous check saw is a
        loss nothing showed (what was in flight then has arrived by now): read it back."""
        state = self.state
        try:
            found = await self.store.read(self.channel, after=state.last, up_to=None, limit=0)
        except RedisError as error:
            self._failed(error)
            return []
        if found is None:
            state.checked = None
            if state.epoch is not None:
                # Nothing was published for a whole TTL while we were subscribed.
                state.epoch, state.last = None, 0
            return []
        top = Position(found.window.epoch, found.window.last)
        seen, state.checked = state.checked, top
        if state.held_since is None:
            if seen is None or seen.epoch != top.epoch:
                return []
            if state.epoch == seen.epoch and state.last >= seen.offset:
                return []
        # else a gap is held since a read failed: the history answers again, fill it now.
        try:
            return await self._read_forward(None, gap=0.0)
        except RedisError as error:
            self._failed(error)
            return []

    async def _read_forward(
        self, up_to: int | None, *, gap: float, report: Report = "when_any"
    ) -> list[Delivery]:
        """Read from the position to ``up_to`` (the newest when None), page by page."""
        state = self.state
        deliveries: list[Delivery] = []
        after = state.last
        while True:
            found = await self.store.read(self.channel, after=after, up_to=up_to, limit=self.page)
            if found is None:
                state.held_since = None
                return self._no_history(gap, report)
            window = found.window
            if state.epoch is None:
                state.epoch = window.epoch
            if window.epoch != state.epoch:
                return self._lost("new_epoch", _NEW_EPOCH, _top(window))
            target = window.last if up_to is None else min(up_to, window.last)
            if after > window.last:
                return self._lost(
                    "ahead",
                    f"position {after} is past the history's last offset {window.last}",
                    _top(window),
                )
            if after >= target:
                break
            entries = found.entries
            if not entries or entries[0][0] != after + 1:
                if window.covers(Position(window.epoch, after)):
                    # The window says the stream holds the next offset, read in the same
                    # script, and the page does not start there: a reply that does not add
                    # up. A gap is never given up on such a read; it is read again.
                    start = entries[0][0] if entries else "none"
                    raise HistoryReadMismatch(
                        f"the history of {self.channel!r} holds {window.first} to "
                        f"{window.last}, but the read after {after} answered {len(entries)} "
                        f"entries from {start}"
                    )
                return self._lost(
                    "trimmed",
                    f"the history no longer holds offset {after + 1} (it keeps "
                    f"{window.first or 'none'} to {window.last})",
                    _top(window) if up_to is None else Position(window.epoch, up_to),
                )
            deliveries.extend((Position(window.epoch, offset), data) for offset, data in entries)
            after = entries[-1][0]
            if after >= target:
                break
        count = len(deliveries)
        state.held_since = None  # the whole range was read: nothing is held any more
        state.last = after
        if report == "never":
            return deliveries  # they would have come live: no gap was filled
        state.recovered += count
        if report == "always" or count:
            deliveries.append(Recovered(self.channel, count, Position(state.epoch, after)))
        return deliveries

    def _no_history(self, gap: float, report: Report) -> list[Delivery]:
        """The channel has no history now: it expired a TTL after the last publication, so a
        gap shorter than the TTL lost nothing."""
        state = self.state
        had_history = state.epoch is not None
        state.epoch, state.last = None, 0
        if had_history and gap >= self.history.ttl:
            state.unrecoverable += 1
            reason = "the channel's history expired during the gap"
            return [Unrecoverable(self.channel, reason, None, "expired")]
        return [Recovered(self.channel, 0, None)] if report == "always" and had_history else []

    def _lost(self, cause: str, reason: str, resume: Position) -> list[Delivery]:
        state = self.state
        state.epoch, state.last = resume.epoch, resume.offset
        state.held_since = None
        state.unrecoverable += 1
        logger.warning(
            "recovery of channel %r: %s", self.channel, reason, extra={"channel": self.channel}
        )
        return [Unrecoverable(self.channel, reason, resume, cause)]

    def _failed(self, error: RedisError) -> None:
        self.state.failures += 1
        logger.warning(
            "recovery of channel %r could not read its history: %s",
            self.channel,
            error,
            extra={"channel": self.channel},
        )


def _top(window: HistoryWindow) -> Position:
    return Position(window.epoch, window.last)


@attrs.frozen
class WatchRecovery:
    """Tells the history checker about a new recovering subscription."""

    ref: ActorRef


async def check_histories(
    context: ActorContext, refs: Callable[[], Iterable[ActorRef]], interval: float
) -> None:
    """The history checker actor: every ``interval`` seconds, tells each recovering
    subscription to compare its position with the top of its channel's history.

    One actor for all of a ``PubSub``'s recovering subscriptions, a child of their supervisor.
    A check is told only to a subscription with nothing waiting in its mailbox: telling one into
    a full mailbox could push out a publication, and a subscription that is receiving sees a
    loss as a skipped offset anyway; once it is idle, the next check comes. A restarted checker
    asks ``refs`` for the open ones again.
    """
    watched: dict[ActorRef, None] = {}
    for ref in refs():
        watched[ref] = None
        context.watch(ref)
    deadline = trio.current_time() + interval
    while True:
        with trio.move_on_at(deadline):
            while True:
                message = await context.receive()
                if isinstance(message, WatchRecovery):
                    watched[message.ref] = None
                    context.watch(message.ref)
                elif isinstance(message, Down):
                    watched.pop(message.ref, None)
        for ref in watched:
            if ref.statistics().mailbox.size == 0:
                with contextlib.suppress(trio.WouldBlock, ActorsError):
                    ref.tell_nowait(CheckHistory())
        deadline = trio.current_time() + interval
