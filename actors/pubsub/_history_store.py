"""Where a broker keeps channel history: Redis streams, or the process's memory for ``memory://``.

``HistoryStore`` is what the typed layer needs: publish with history, read a range with the
window it came from, and forget a channel's history. ``RedisHistoryStore`` runs ``_history``'s
scripts on the broker's command connection (on a cluster, routed by the channel's hash slot);
``MemoryHistoryStore`` keeps the same numbering, cap, expiry and idempotency in memory, shared by
the brokers of one ``memory://NAME`` server, and publishes the same envelope.

``HistoryRules`` say which channels have history: the ``PubSubSettings.histories`` mapping of
channel names and glob patterns to ``History`` settings, shared by publishers and subscribers.
"""

from __future__ import annotations

import collections
import itertools
import secrets
from typing import TYPE_CHECKING, Final, Protocol

import attrs
import trio

from actors.messages import GLOB_CHARACTERS
from actors.pubsub._broker import LocalState
from actors.pubsub._glob import compile_glob
from actors.pubsub._history import (
    History,
    HistoryPublished,
    HistoryRange,
    HistoryWindow,
    Position,
    check_message_id,
    history_keys,
    publish_with_history,
    read_range,
    read_recent,
    write_envelope,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from actors.pubsub._broker import Broker
    from actors.redis import RedisCommands

__all__ = [
    "HistoryRules",
    "HistoryStore",
    "MemoryHistoryStore",
    "RedisHistoryStore",
    "history_store",
]

_RULE_CACHE_SIZE: Final = 4096  # channels whose rule is remembered


class HistoryStore(Protocol):
    """A broker's channel history: ``RedisHistoryStore`` or ``MemoryHistoryStore``."""

    async def publish(
        self,
        channel: str,
        payload: bytes,
        *,
        history: History,
        message_id: str,
        sharded: bool,
    ) -> HistoryPublished:
        """Number ``payload``, keep it, and publish its envelope (see ``publish_with_history``)."""
        ...

    async def read(
        self, channel: str, *, after: int, up_to: int | None, limit: int
    ) -> HistoryRange | None:
        """A page of the range ``after + 1`` to ``up_to`` and the window (see ``read_range``)."""
        ...

    async def recent(self, channel: str, limit: int) -> HistoryRange | None:
        """The newest ``limit`` publications and the window (see ``read_recent``)."""
        ...

    async def forget(self, channel: str) -> None:
        """Drop the channel's history, as its expiry does: the next publication starts a new
        epoch at offset 1, and a subscriber behind it gets ``Unrecoverable`` (``new_epoch``).
        For a channel that is gone for good, such as a deleted chat room."""
        ...


class RedisHistoryStore:
    """Channel history in Redis, through a broker's command connection.

    Args:
        connect: ``Broker.command_connection()``: waits for a reconnect within its bound.
    """

    def __init__(self, connect: Callable[[], Awaitable[RedisCommands]]) -> None:
        self._connect = connect

    async def publish(
        self,
        channel: str,
        payload: bytes,
        *,
        history: History,
        message_id: str,
        sharded: bool,
    ) -> HistoryPublished:
        """Number ``payload``, keep it, and publish its envelope (see ``HistoryStore``)."""
        commands = await self._connect()
        return await publish_with_history(
            commands, channel, payload, history=history, message_id=message_id, sharded=sharded
        )

    async def read(
        self, channel: str, *, after: int, up_to: int | None, limit: int
    ) -> HistoryRange | None:
        """A page of the range ``after + 1`` to ``up_to`` and the window (see ``HistoryStore``)."""
        commands = await self._connect()
        return await read_range(commands, channel, after=after, up_to=up_to, limit=limit)

    async def recent(self, channel: str, limit: int) -> HistoryRange | None:
        """The newest ``limit`` publications and the window (see ``HistoryStore``)."""
        commands = await self._connect()
        return await read_recent(commands, channel, limit)

    async def forget(self, channel: str) -> None:
        """Drop the channel's history (see ``HistoryStore``)."""
        keys = history_keys(channel)
        commands = await self._connect()
        await commands.execute("DEL", keys.meta, keys.stream, keys.ids)


@attrs.define
class _ChannelLog:
    """One channel's history in memory: what Redis keeps in its meta hash and stream."""

    epoch: str
    offset: int = 0
    entries: collections.deque[tuple[int, bytes]] = attrs.field(factory=collections.deque)
    ids: dict[str, int] = attrs.field(factory=dict)
    """The message ids of the last ``size`` publications and their offsets, oldest first."""
    expires_at: float = 0.0


@attrs.define
class _MemoryHistories:
    logs: dict[str, _ChannelLog] = attrs.field(factory=dict)


_MEMORY_HISTORIES: Final = LocalState(_MemoryHistories)


class MemoryHistoryStore:
    """Channel history for ``memory://``: the semantics of the Redis scripts, in memory.

    Offsets, epochs, the envelope, idempotent retries and expiry (on trio's clock) are the
    same as in Redis; the cap is exact where Redis's ``MAXLEN ~`` keeps a few more.
    """

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._state = _MEMORY_HISTORIES.of(broker)

    def _log(self, channel: str, now: float) -> _ChannelLog | None:
        log = self._state.logs.get(channel)
        if log is not None and log.expires_at <= now:
            del self._state.logs[channel]
            return None
        return log

    async def publish(
        self,
        channel: str,
        payload: bytes,
        *,
        history: History,
        message_id: str,
        sharded: bool,
    ) -> HistoryPublished:
        """Number ``payload``, keep it, and publish its envelope (see ``HistoryStore``)."""
        history_keys(channel)  # refuses what Redis would
        check_message_id(message_id)
        now = trio.current_time()
        log = self._log(channel, now)
        if log is None:
            log = self._state.logs[channel] = _ChannelLog(secrets.token_hex(8))
        seen = log.ids.get(message_id)
        if seen is not None:
            await trio.lowlevel.checkpoint()
            return HistoryPublished(Position(log.epoch, seen), appended=False)
        log.offset += 1
        log.entries.append((log.offset, payload))
        while len(log.entries) > history.size:
            log.entries.popleft()
        log.ids[message_id] = log.offset
        while len(log.ids) > history.size:
            del log.ids[next(iter(log.ids))]
        log.expires_at = now + history.ttl
        position = Position(log.epoch, log.offset)
        envelope = write_envelope(position, payload)
        send = self._broker.spublish if sharded else self._broker.publish
        receivers = await send(channel, envelope)
        return HistoryPublished(position, appended=True, receivers=receivers)

    async def recent(self, channel: str, limit: int) -> HistoryRange | None:
        """The newest ``limit`` publications and the window (see ``HistoryStore``)."""
        if limit < 0:
            raise ValueError(f"limit must not be negative, not {limit}")
        await trio.lowlevel.checkpoint()
        log = self._log(channel, trio.current_time())
        if log is None:
            return None
        return self._range(log, max(0, log.offset - limit), None, limit)

    async def read(
        self, channel: str, *, after: int, up_to: int | None, limit: int
    ) -> HistoryRange | None:
        """A page of the range ``after + 1`` to ``up_to`` and the window (see ``HistoryStore``)."""
        if limit < 0:
            raise ValueError(f"limit must not be negative, not {limit}")
        await trio.lowlevel.checkpoint()
        log = self._log(channel, trio.current_time())
        if log is None:
            return None
        return self._range(log, after, up_to, limit)

    async def forget(self, channel: str) -> None:
        """Drop the channel's history (see ``HistoryStore``)."""
        history_keys(channel)  # refuses what Redis would
        await trio.lowlevel.checkpoint()
        self._state.logs.pop(channel, None)

    @staticmethod
    def _range(log: _ChannelLog, after: int, up_to: int | None, limit: int) -> HistoryRange:
        first = log.entries[0][0] if log.entries else 0
        window = HistoryWindow(log.epoch, log.offset, first)
        last = log.offset if up_to is None else min(up_to, log.offset)
        entries: list[tuple[int, bytes]] = []
        if limit and log.entries and after + 1 <= last:
            # Offsets in the deque are consecutive: positions by arithmetic, not by search.
            start = max(after + 1, first) - first
            stop = min(last - first + 1, start + limit)
            entries = list(itertools.islice(log.entries, start, stop))
        return HistoryRange(window, entries)


def history_store(broker: Broker) -> HistoryStore:
    """The history store of ``broker``: in its Redis, or in memory for ``memory://``."""
    connect = broker.command_connection()
    if connect is None:
        return MemoryHistoryStore(broker)
    return RedisHistoryStore(connect)


class HistoryRules:
    """Which channels keep history, and how much: ``PubSubSettings.histories`` compiled once,
    and the rules added since (``PubSub.keep_history``).

    Keys are exact channel names or Redis glob patterns (``chat:*``); an exact name wins over
    patterns, and patterns are tried in the order they were given.
    """

    def __init__(self, histories: Mapping[str, History]) -> None:
        self._exact: dict[str, History] = {}
        self._patterns: list[tuple[Callable[[bytes], bool], History]] = []
        self._cache: dict[str, History | None] = {}
        for name, history in histories.items():
            self.add(name, history)

    def add(self, name: str, history: History) -> None:
        """Keep ``history`` for the channel ``name``, or the channels its glob pattern matches."""
        if not isinstance(history, History):
            raise TypeError(f"the history of {name!r} must be a History, not {history!r}")
        if not isinstance(name, str) or not name:
            raise ValueError(f"a channel or pattern to keep history for, not {name!r}")
        if any(char in GLOB_CHARACTERS for char in name):
            self._patterns.append((compile_glob(name.encode()), history))
        else:
            self._exact[name] = history
        self._cache.clear()

    def __bool__(self) -> bool:
        return bool(self._exact or self._patterns)

    def history_for(self, channel: str) -> History | None:
        """The history settings of ``channel``, or None if it keeps none."""
        try:
            return self._cache[channel]
        except KeyError:
            pass
        found = self._exact.get(channel)
        if found is None:
            subject = channel.encode()
            found = next((history for matches, history in self._patterns if matches(subject)), None)
        if len(self._cache) >= _RULE_CACHE_SIZE:
            self._cache.clear()  # user-named channels are unbounded; the rules are cheap to redo
        self._cache[channel] = found
        return found
