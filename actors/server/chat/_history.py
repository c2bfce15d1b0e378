"""Where a room's last messages are kept: a capped Redis list, or memory for ``memory://``."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Final, Protocol

from actors.messages import CODEC
from actors.pubsub import LocalState
from actors.redis import Argument, Script
from actors.server.chat._messages import ChatMessage, history_key

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from actors.pubsub import PubSub

APPEND_SCRIPT: Final = Script(
    """
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
return 1
"""
)
"""KEYS: the history list. ARGV: the encoded message, the most messages to keep."""


class HistoryStore(Protocol):
    """Keeps the last messages of each room."""

    async def append(self, message: ChatMessage, size: int) -> None:
        """Add a message to its room's history, keeping only the newest ``size``."""

    async def recent(self, room: str, limit: int) -> list[ChatMessage]:
        """The newest ``limit`` messages of a room, oldest first."""


class _Executor(Protocol):
    async def execute(self, *args: Argument) -> Any: ...


class MemoryHistoryStore:
    """``HistoryStore`` in this process's memory (for ``memory://``)."""

    def __init__(self) -> None:
        self._rooms: dict[str, deque[ChatMessage]] = {}

    async def append(self, message: ChatMessage, size: int) -> None:
        """Add a message, dropping the oldest past ``size``."""
        history = self._rooms.get(message.room)
        if history is None or history.maxlen != size:
            history = deque(history or (), maxlen=size)
            self._rooms[message.room] = history
        history.append(message)

    async def recent(self, room: str, limit: int) -> list[ChatMessage]:
        """The newest ``limit`` messages, oldest first."""
        history = self._rooms.get(room, ())
        return list(history)[-limit:] if limit > 0 else []


class RedisHistoryStore:
    """``HistoryStore`` on Redis: ``chat:{room}:history`` is a list, newest first, capped by
    ``LPUSH`` and ``LTRIM`` in one script.

    Args:
        connection: Returns the connection to run commands on, such as
            ``RedisPubSub.ready_connection`` (it changes on every reconnect, and waits for
            one during a reconnect).
    """

    def __init__(self, connection: Callable[[], Awaitable[_Executor]]) -> None:
        self._connection = connection

    async def append(self, message: ChatMessage, size: int) -> None:
        """``LPUSH`` the encoded message and ``LTRIM`` the list to ``size``, atomically."""
        await APPEND_SCRIPT.run(
            await self._connection(), [history_key(message.room)], [CODEC.encode(message), size]
        )

    async def recent(self, room: str, limit: int) -> list[ChatMessage]:
        """``LRANGE`` the newest ``limit`` entries and return them oldest first."""
        if limit <= 0:
            return []
        connection = await self._connection()
        raw = await connection.execute("LRANGE", history_key(room), 0, limit - 1)
        return [CODEC.decode(bytes(item), ChatMessage) for item in reversed(raw)]


_memory_stores: Final = LocalState(MemoryHistoryStore)


def default_history_store(pubsub: PubSub) -> HistoryStore:
    """The history store matching a ``PubSub``'s broker.

    Redis when the broker has it; otherwise one in-process store per broker state (shared by
    every broker of one ``memory://NAME``, private to a ``memory://`` broker).
    """
    broker = pubsub.broker
    connection = broker.command_connection()
    if connection is not None:
        return RedisHistoryStore(connection)
    return _memory_stores.of(broker)
