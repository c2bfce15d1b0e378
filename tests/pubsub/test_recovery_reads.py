"""A recovering subscription whose history read fails: it holds the gap, then gives up (unit).

``ChannelRecovery`` against a store that fails on demand, on trio's MockClock: a live message
that shows a gap while the history cannot be read is delivered later, from the history, in
order; the messages queued behind a failed read don't each read again; only a refusal for good,
or reads that keep failing for ``hold`` seconds, make the gap ``unreadable``.
"""

from __future__ import annotations

from collections.abc import Sequence

import trio
import trio.testing

from actors.pubsub import History, HistoryWindow, Position, RecoveryState, Unrecoverable
from actors.pubsub._history import HistoryRange
from actors.pubsub._recovery import HELD_READ_RETRY, ChannelRecovery, Recovered
from actors.redis import (
    RedisConnectionError,
    RedisError,
    RedisPermissionError,
    RedisReplyError,
)

EPOCH = "e1"
HOLD = 5.0


class FlakyStore:
    """A history of offsets 1 to ``last`` whose reads raise ``error`` while it is set."""

    def __init__(self, last: int) -> None:
        self.last = last
        self.first = 1
        self.error: RedisError | None = None
        self.reads = 0
        self.skip = 0  # entries a read leaves out at the start of its page, window unchanged
        self.skip_from = 0  # ... in the reads after this offset only

    async def read(
        self, channel: str, *, after: int, up_to: int | None, limit: int
    ) -> HistoryRange | None:
        self.reads += 1
        if self.error is not None:
            raise self.error
        top = self.last if up_to is None else min(up_to, self.last)
        skip = self.skip if after >= self.skip_from else 0
        start = max(after + 1, self.first) + skip
        entries = [(n, b"%d" % n) for n in range(start, top + 1)][:limit]
        return HistoryRange(HistoryWindow(EPOCH, self.last, self.first), entries)


def behind(last: int) -> tuple[FlakyStore, RecoveryState, ChannelRecovery]:
    """A history of offsets 1 to ``last``, and a recovery that delivered up to offset 2."""
    store = FlakyStore(last)
    state = RecoveryState(epoch=EPOCH, last=2)
    history = History(size=100, ttl=60.0)
    return store, state, ChannelRecovery(store, "c", history, state, hold=HOLD)  # type: ignore[arg-type]


def offsets(deliveries: Sequence[object]) -> list[int]:
    return [item[0].offset for item in deliveries if isinstance(item, tuple)]


LOST = RedisConnectionError("the connection was lost")


async def test_a_gap_shown_while_the_history_cannot_be_read_is_delivered_later_in_order(
    mock_clock: trio.testing.MockClock,
) -> None:
    store, state, recovery = behind(10)
    store.error = LOST
    assert await recovery.live(Position(EPOCH, 5), b"5") == []  # held: nothing lost
    assert (state.last, state.failures, state.unrecoverable, state.held_since) == (2, 1, 0, 0.0)
    store.error = None
    mock_clock.jump(HELD_READ_RETRY)
    assert offsets(await recovery.live(Position(EPOCH, 6), b"6")) == [3, 4, 5, 6]
    assert (state.last, state.held_since) == (6, None)


async def test_messages_queued_behind_a_failed_read_do_not_each_read_again(
    mock_clock: trio.testing.MockClock,
) -> None:
    """The bug this guards against: each queued message read at once on the connection that
    was not replaced yet, and three such failures within a millisecond gave the gap up."""
    store, state, recovery = behind(20)
    store.error = LOST
    assert await recovery.live(Position(EPOCH, 5), b"") == []
    for offset in range(6, 16):  # the mailbox behind it, at once: held, no read
        assert await recovery.live(Position(EPOCH, offset), b"") == []
    assert (store.reads, state.failures, state.unrecoverable) == (1, 1, 0)
    mock_clock.jump(HELD_READ_RETRY / 2)
    assert await recovery.live(Position(EPOCH, 16), b"") == []
    assert store.reads == 1
    mock_clock.jump(HELD_READ_RETRY / 2)  # the retry is due: one more read, which fails again
    assert await recovery.live(Position(EPOCH, 17), b"") == []
    assert (store.reads, state.failures, state.unrecoverable) == (2, 2, 0)
    store.error = None  # the connection is back
    mock_clock.jump(HELD_READ_RETRY)
    assert offsets(await recovery.live(Position(EPOCH, 18), b"")) == list(range(3, 19))
    assert (state.last, state.unrecoverable, state.held_since) == (18, 0, None)


async def test_reads_that_keep_failing_for_the_hold_give_the_gap_up_as_unreadable(
    mock_clock: trio.testing.MockClock,
) -> None:
    store, state, recovery = behind(20)
    store.error = LOST
    assert await recovery.live(Position(EPOCH, 5), b"") == []  # held at 0.0
    mock_clock.jump(HOLD - 0.5)
    assert await recovery.live(Position(EPOCH, 6), b"") == []  # still within the hold
    mock_clock.jump(0.5)
    given_up = await recovery.live(Position(EPOCH, 7), b"7")  # failing for exactly HOLD
    assert isinstance(given_up[0], Unrecoverable)
    assert given_up[0].cause == "unreadable"
    assert given_up[0].position == Position(EPOCH, 6)
    assert offsets(given_up) == [7]
    assert (state.last, state.failures, state.unrecoverable, state.held_since) == (7, 3, 1, None)


async def test_a_read_refused_for_good_gives_the_gap_up_at_once(
    mock_clock: trio.testing.MockClock,
) -> None:
    store, state, recovery = behind(20)
    store.error = RedisPermissionError("NOPERM this user has no permissions to run 'evalsha'")
    given_up = await recovery.live(Position(EPOCH, 5), b"5")
    assert isinstance(given_up[0], Unrecoverable)
    assert (given_up[0].cause, given_up[0].position) == ("unreadable", Position(EPOCH, 4))
    assert "NOPERM" in given_up[0].reason
    assert offsets(given_up) == [5]
    assert (state.last, state.unrecoverable) == (5, 1)


async def test_a_refusal_that_says_not_now_holds_the_gap(
    mock_clock: trio.testing.MockClock,
) -> None:
    store, state, recovery = behind(20)
    store.error = RedisReplyError("LOADING Redis is loading the dataset in memory")
    assert await recovery.live(Position(EPOCH, 5), b"5") == []
    assert state.unrecoverable == 0


async def test_the_next_check_fills_a_held_gap_at_once(
    mock_clock: trio.testing.MockClock,
) -> None:
    """A held gap is not a loss the check must see twice: the first check that can read fills
    it (no live message may come to show it again)."""
    store, state, recovery = behind(9)
    store.error = LOST
    assert await recovery.live(Position(EPOCH, 9), b"") == []
    store.error = None
    deliveries = await recovery.check()
    assert offsets(deliveries) == list(range(3, 10))
    assert deliveries[-1] == Recovered("c", 7, Position(EPOCH, 9))
    assert (state.last, state.held_since) == (9, None)


async def test_a_page_that_disagrees_with_its_window_is_read_again_not_taken_for_trimmed(
    mock_clock: trio.testing.MockClock,
) -> None:
    """The window says the stream holds the next offset; a page that starts later (or is
    empty) does not add up: the gap is held and read again, never given up as trimmed."""
    store, state, recovery = behind(10)
    store.skip = 3
    assert await recovery.live(Position(EPOCH, 9), b"") == []
    assert (state.last, state.failures, state.unrecoverable, state.held_since) == (2, 1, 0, 0.0)
    store.skip = 0
    mock_clock.jump(HELD_READ_RETRY)
    assert offsets(await recovery.live(Position(EPOCH, 10), b"")) == list(range(3, 11))
    assert (state.unrecoverable, state.held_since) == (0, None)


async def test_a_page_that_starts_past_a_trimmed_window_is_a_loss(
    mock_clock: trio.testing.MockClock,
) -> None:
    store, _, recovery = behind(10)
    store.first = 6  # the stream keeps 6 to 10: 3 to 5 were trimmed
    given_up = await recovery.live(Position(EPOCH, 9), b"9")
    assert isinstance(given_up[0], Unrecoverable)
    assert given_up[0].cause == "trimmed"
    assert offsets(given_up) == [9]


async def test_a_page_that_keeps_disagreeing_gives_the_gap_up_after_the_hold(
    mock_clock: trio.testing.MockClock,
) -> None:
    """A range whose first page reads well and whose second never does is still held only for
    ``hold``: a page that works does not restart the hold, only a whole range does."""
    store = FlakyStore(20)
    state = RecoveryState(epoch=EPOCH, last=2)
    recovery = ChannelRecovery(store, "c", History(size=100, ttl=60.0), state, hold=HOLD, page=4)  # type: ignore[arg-type]
    store.skip, store.skip_from = 1, 6  # 3 to 6 read well, the page after 6 never does
    assert await recovery.live(Position(EPOCH, 15), b"") == []
    mock_clock.jump(HOLD - 0.5)
    assert await recovery.live(Position(EPOCH, 16), b"") == []
    mock_clock.jump(0.5)
    given_up = await recovery.live(Position(EPOCH, 17), b"17")
    assert isinstance(given_up[0], Unrecoverable)
    assert given_up[0].cause == "unreadable"
    assert "answered" in given_up[0].reason
    assert offsets(given_up) == [17]
    assert (state.last, state.unrecoverable, state.held_since) == (17, 1, None)
