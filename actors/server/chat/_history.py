"""A room's history: its channel's stream (``PubSub.keep_history``), read as chat messages.

A room's messages are kept by the channel they travel on: every publish on ``chat:{room}`` is
numbered within the room's epoch and appended to the channel's capped stream, so what a joiner
reads and what a reconnecting client missed come from one place, by position. Reads go through
the broker's history store: Redis streams, or memory for ``memory://``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

import attrs

from actors._errors import MessageDecodeError
from actors.messages import CODEC
from actors.pubsub import History, Position
from actors.server.chat._messages import ChatMessage, room_channel

if TYPE_CHECKING:
    from actors.pubsub import HistoryStore

logger = logging.getLogger(__name__)

CHAT_CHANNELS: Final = "chat:*"
"""The pattern of every room's channel: what the chat service keeps history for."""
DEFAULT_HISTORY_TTL: Final = 7 * 24 * 3600.0
"""Seconds a room's history lives after its last message (a week)."""


@attrs.frozen
class RoomHistory:
    """What a read of a room's history found.

    Attributes:
        messages: ``(position, message)`` pairs, oldest first.
        position: The room's newest position when it was read (None: the room has no history
            now); a client that holds everything up to it is up to date.
        resumed: True when ``messages`` are exactly those after the position the reader gave
            (append them); False when they are the room's newest (replace what is held: the
            position was from another epoch, or the history no longer reaches back to it).
    """

    messages: list[tuple[Position, ChatMessage]]
    position: Position | None
    resumed: bool


def chat_history(size: int, ttl: float = DEFAULT_HISTORY_TTL) -> History:
    """The history settings of a room's channel: ``size`` messages, ``ttl`` seconds."""
    return History(size=size, ttl=ttl)


async def newest(store: HistoryStore, room: str, limit: int) -> RoomHistory:
    """The room's newest ``limit`` messages."""
    found = await store.recent(room_channel(room), limit)
    if found is None:
        return RoomHistory([], None, resumed=False)
    window = found.window
    messages = _decode(room, window.epoch, found.entries)
    return RoomHistory(messages, Position(window.epoch, window.last), resumed=False)


async def since(store: HistoryStore, room: str, after: Position, limit: int) -> RoomHistory:
    """Everything the room got after ``after`` (at most ``limit``: a client further behind
    gets the newest instead), or its newest ``limit`` when the history cannot say."""
    channel = room_channel(room)
    found = await store.read(channel, after=after.offset, up_to=None, limit=limit)
    if found is None:
        return RoomHistory([], None, resumed=False)
    window = found.window
    top = Position(window.epoch, window.last)
    entries = found.entries
    complete = (
        after.epoch == window.epoch
        and after.offset <= window.last
        and window.last - after.offset <= limit
        and (after.offset == window.last or (bool(entries) and entries[0][0] == after.offset + 1))
    )
    if not complete:
        return await newest(store, room, limit)
    return RoomHistory(_decode(room, window.epoch, entries), top, resumed=True)


def _decode(
    room: str, epoch: str, entries: list[tuple[int, bytes]]
) -> list[tuple[Position, ChatMessage]]:
    messages = []
    for offset, payload in entries:
        try:
            message = CODEC.decode(payload, ChatMessage)
        except MessageDecodeError as error:
            # Anyone may publish on a room's channel: a bad entry is skipped, the rest is read.
            logger.warning("room %r: history entry %d skipped: %s", room, offset, error)
            continue
        messages.append((Position(epoch, offset), message))
    return messages
