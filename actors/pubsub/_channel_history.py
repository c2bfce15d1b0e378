"""Channels with history in one ``PubSub``: how a publish on one is sent, and what a
subscription to one receives.

``ChannelHistories`` holds the ``HistoryRules`` (which channels keep history) and the broker's
``HistoryStore`` (made on first use). A publish on a channel with history goes through the store
under a message id that every retry repeats; a subscription learns which of its channels come
in envelopes and, with ``recover=True``, gets its ``ChannelRecovery``.
"""

from __future__ import annotations

import math
import uuid
from typing import TYPE_CHECKING

import attrs
import orjson
import trio

from actors._errors import RedisTimeoutError
from actors.pubsub._broker import within
from actors.pubsub._history import MAX_MESSAGE_ID_LENGTH, History, Position
from actors.pubsub._history_store import HistoryRules, HistoryStore, history_store
from actors.pubsub._recovery import ChannelRecovery, RecoveryState

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from actors.pubsub._broker import Broker

__all__ = ["ChannelHistories"]


class ChannelHistories:
    """The channels with history of one ``PubSub``: their rules, their store, and how publish
    and subscribe use them.

    Args:
        broker: The broker whose store keeps the histories.
        rules: Which channels keep history, and how much.
        ack_timeout: Seconds a subscription waits for its history's first position.
        hold: Seconds a recovering subscription holds a gap while its history cannot be read
            (the connection options' ``reconnect_wait``).
    """

    def __init__(
        self, broker: Broker, rules: HistoryRules, *, ack_timeout: float, hold: float
    ) -> None:
        self.rules = rules
        self._broker = broker
        self._ack_timeout = ack_timeout
        self._hold = hold
        self._store: HistoryStore | None = None

    @property
    def store(self) -> HistoryStore:
        """Where the broker keeps channel history: its Redis, or memory for ``memory://``."""
        if self._store is None:
            self._store = history_store(self._broker)
        return self._store

    def publisher(
        self, channel: str, message: object, payload: bytes, sharded: bool
    ) -> Callable[[str, bytes, float], Awaitable[int]] | None:
        """What publishes ``message`` (encoded as ``payload``) on ``channel`` with its history;
        None for a channel without history.

        Raises:
            TypeError: A ``str`` or ``bytes`` message is not JSON.
        """
        history = self.rules.history_for(channel) if self.rules else None
        if history is None:
            return None
        send = _HistoryPublisher(self.store, history, _message_id(message), sharded)
        if type(message) in (str, bytes):
            _check_json(channel, payload)
        return send

    async def for_subscription(
        self, name: bytes, pattern: bool, recover: bool, since: Position | None
    ) -> tuple[Callable[[bytes], bool] | None, ChannelRecovery | None]:
        """Which of the subscription's channels come in envelopes, and its recovery."""
        if since is not None and not recover:
            raise ValueError("since is a position to recover from: pass recover=True with it")
        rules = self.rules
        if pattern:
            if recover:
                raise ValueError("a pattern does not recover: subscribe to each channel")
            if not rules:
                return None, None
            return (
                lambda channel: rules.history_for(channel.decode(errors="replace")) is not None
            ), None
        channel = name.decode()
        history = rules.history_for(channel) if rules else None
        if history is None:
            if recover:
                raise ValueError(
                    f"channel {channel!r} keeps no history to recover from: name it in "
                    "PubSubSettings.histories"
                )
            return None, None
        if not recover:
            return _every_channel, None
        state = RecoveryState()
        if since is not None:
            state.epoch, state.last = since.epoch, since.offset
        else:
            bound = self._ack_timeout
            with trio.move_on_after(bound) as waited:
                found = await self.store.read(channel, after=0, up_to=None, limit=0)
            if waited.cancelled_caught:
                raise RedisTimeoutError(
                    f"the history of {channel!r} did not say its position within {bound:.3g} s"
                )
            if found is not None:
                state.epoch, state.last = found.window.epoch, found.window.last
        return _every_channel, ChannelRecovery(self.store, channel, history, state, hold=self._hold)


def _every_channel(_channel: bytes) -> bool:
    return True


def _message_id(message: object) -> str:
    """The idempotency key of a publication: the message's own ``id``, else a new one."""
    identifier = getattr(message, "id", None)
    if type(identifier) is str and 0 < len(identifier) <= MAX_MESSAGE_ID_LENGTH:
        return identifier
    return uuid.uuid4().hex


def _check_json(channel: str, payload: bytes) -> None:
    try:
        orjson.loads(payload)
    except orjson.JSONDecodeError as error:
        raise TypeError(
            f"channel {channel!r} keeps history, and its envelope carries the payload as JSON: "
            f"send an attrs message, a dict, or JSON text ({error.msg})"
        ) from None


@attrs.frozen
class _HistoryPublisher:
    """Publishes on a channel with history, the same message id on every attempt."""

    store: HistoryStore
    history: History
    message_id: str
    sharded: bool

    async def __call__(self, channel: str, payload: bytes, deadline: float = math.inf) -> int:
        published = await within(
            deadline,
            self.store.publish(
                channel,
                payload,
                history=self.history,
                message_id=self.message_id,
                sharded=self.sharded,
            ),
        )
        return published.receivers
