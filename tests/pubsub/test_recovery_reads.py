"""A recovering subscription whose history read fails: it holds the gap, then gives up (unit).

``ChannelRecovery`` against a store that fails on demand: a live message that shows a gap while
the history cannot be read is delivered later, from the history, in order; only reads that keep
failing make the gap ``unreadable``.
"""

from __future__ import annotations

from collections.abc import Sequence

from actors import RedisConnectionError
from actors.pubsub import History, HistoryWindow, Position, RecoveryState, Unrecoverable
from actors.pubsub._history import HistoryRange
from actors.pubsub._recovery import MAX_HELD_READS, ChannelRecovery

EPOCH = "e1"


class FlakyStore:
    """A history of offsets 1 to ``last`` whose reads fail while ``failing`` is set."""

    def __init__(self, last: int) -> None:
        self.last = last
        self.failing = False

    async def read(
        self, channel: str, *, after: int, up_to: int | None, limit: int
    ) -> HistoryRange | None:
        if self.failing:
            raise RedisConnectionError("the connection was lost")
        top = self.last if up_to is None else min(up_to, self.last)
        entries = [(n, b"%d" % n) for n in range(after + 1, top + 1)][:limit]
        return HistoryRange(HistoryWindow(EPOCH, self.last, 1), entries)


def offsets(deliveries: Sequence[object]) -> list[int]:
    return [item[0].offset for item in deliveries if isinstance(item, tuple)]


async def test_a_gap_shown_while_the_history_cannot_be_read_is_delivered_later_in_order() -> None:
    store = FlakyStore(last=10)
    state = RecoveryState(epoch=EPOCH, last=2)
    recovery = ChannelRecovery(store, "c", History(size=100, ttl=60.0), state)  # type: ignore[arg-type]
    store.failing = True
    assert await recovery.live(Position(EPOCH, 5), b"5") == []  # held: nothing lost
    assert (state.last, state.failures, state.unrecoverable) == (2, 1, 0)
    store.failing = False
    assert offsets(await recovery.live(Position(EPOCH, 6), b"6")) == [3, 4, 5, 6]
    assert (state.last, state.failing) == (6, 0)


async def test_reads_that_keep_failing_give_the_gap_up_as_unreadable() -> None:
    store = FlakyStore(last=20)
    state = RecoveryState(epoch=EPOCH, last=2)
    recovery = ChannelRecovery(store, "c", History(size=100, ttl=60.0), state)  # type: ignore[arg-type]
    store.failing = True
    for offset in range(5, 5 + MAX_HELD_READS - 1):
        assert await recovery.live(Position(EPOCH, offset), b"") == []
    given_up = await recovery.live(Position(EPOCH, 9), b"9")  # the third failure in a row
    assert isinstance(given_up[0], Unrecoverable)
    assert given_up[0].cause == "unreadable"
    assert offsets(given_up) == [9]
    assert state.last == 9
