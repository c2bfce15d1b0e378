"""The desired-subscription table and the routing of pushed messages to local sinks.

The table is the single source of truth for what this process wants from Redis: a reference
count of local sinks per channel, pattern and shard channel. The first sink of a name means a
SUBSCRIBE must go out, the last one leaving means an UNSUBSCRIBE. After every (re)connect the whole
table is sent again. Routing is synchronous: a sink's ``deliver`` must never wait, so one slow
consumer cannot stall the reader that feeds every other one.
"""

from __future__ import annotations

import enum
import logging
from typing import Protocol

import attrs

logger = logging.getLogger(__name__)


class Kind(enum.Enum):
    """The three kinds of Redis subscription."""

    CHANNEL = "channel"
    PATTERN = "pattern"
    SHARD = "shard"

    @property
    def subscribe_command(self) -> bytes:
        return _SUBSCRIBE[self]

    @property
    def unsubscribe_command(self) -> bytes:
        return _UNSUBSCRIBE[self]


_SUBSCRIBE = {Kind.CHANNEL: b"SUBSCRIBE", Kind.PATTERN: b"PSUBSCRIBE", Kind.SHARD: b"SSUBSCRIBE"}
_UNSUBSCRIBE = {
    Kind.CHANNEL: b"UNSUBSCRIBE",
    Kind.PATTERN: b"PUNSUBSCRIBE",
    Kind.SHARD: b"SUNSUBSCRIBE",
}
_ACKS = {
    b"subscribe": (Kind.CHANNEL, True),
    b"psubscribe": (Kind.PATTERN, True),
    b"ssubscribe": (Kind.SHARD, True),
    b"unsubscribe": (Kind.CHANNEL, False),
    b"punsubscribe": (Kind.PATTERN, False),
    b"sunsubscribe": (Kind.SHARD, False),
}


class RedisMessage:
    """One message pushed by Redis, shared by every local sink that receives it.

    Attributes:
        channel: The channel it was published on.
        payload: The published bytes.
        pattern: The pattern that matched, for pattern subscriptions; otherwise None.
        kind: Which kind of subscription delivered it.
        decoded: A slot for the layer above to keep its decoding of ``payload``, so that a
            payload is decoded at most once however many sinks receive it.
    """

    __slots__ = ("channel", "decoded", "kind", "pattern", "payload")

    def __init__(
        self, kind: Kind, channel: bytes, payload: bytes, pattern: bytes | None = None
    ) -> None:
        self.kind = kind
        self.channel = channel
        self.payload = payload
        self.pattern = pattern
        self.decoded: object = None

    @property
    def subscription(self) -> bytes:
        """The name that was subscribed to: the pattern for pattern messages, else the channel."""
        return self.pattern if self.pattern is not None else self.channel

    def __repr__(self) -> str:
        via = f" via {self.pattern!r}" if self.pattern is not None else ""
        return f"RedisMessage({self.channel!r}{via}, {len(self.payload)} bytes)"


@attrs.frozen
class ConnectionLost:
    """Told to every sink when the connection carrying its subscription broke.

    Messages published from now until the matching ``Resubscribed`` are lost: Pub/Sub is
    at-most-once.
    """

    at: float
    """Wall-clock time (``time.time()``) the loss was noticed."""
    reason: str
    """What broke."""


@attrs.frozen
class Resubscribed:
    """Told to every sink once its subscription is active again after a ``ConnectionLost``."""

    gap_start: float
    """Wall-clock time the connection was lost."""
    gap_end: float
    """Wall-clock time every subscription was acknowledged again."""


SubscriptionEvent = RedisMessage | ConnectionLost | Resubscribed


class MessageSink(Protocol):
    """Where routed messages go: typically an adapter around an actor's mailbox."""

    def deliver(self, event: SubscriptionEvent) -> bool:
        """Take the event without waiting; return False if it was dropped (it is counted)."""
        ...


@attrs.define
class Subscription:
    """One row of the table: a name, its sinks, and what went through it."""

    kind: Kind
    name: bytes
    sinks: list[MessageSink] = attrs.Factory(list)
    delivered: int = 0
    """Deliveries to sinks (a message reaching three sinks counts three)."""
    dropped: int = 0
    """Deliveries a sink refused (its mailbox's overflow policy dropped the message)."""
    acknowledged: bool = False
    """Whether Redis has confirmed the subscription on the current connection."""


class SubscriptionTable:
    """Reference-counted subscriptions and the routing of pushed frames to their sinks."""

    def __init__(self) -> None:
        self._rows: dict[tuple[Kind, bytes], Subscription] = {}
        self.unroutable = 0
        """Messages for a name no local sink holds (in flight while unsubscribing)."""

    def add(self, kind: Kind, name: bytes, sink: MessageSink) -> bool:
        """Add a sink; True if it is the name's first, so a subscribe command must go out."""
        row = self._rows.get((kind, name))
        if row is None:
            row = self._rows[(kind, name)] = Subscription(kind, name)
            row.sinks.append(sink)
            return True
        row.sinks.append(sink)
        return False

    def remove(self, kind: Kind, name: bytes, sink: MessageSink) -> bool:
        """Remove a sink; True if it was the name's last, so an unsubscribe must go out."""
        row = self._rows.get((kind, name))
        if row is None or sink not in row.sinks:
            return False
        row.sinks.remove(sink)
        if row.sinks:
            return False
        del self._rows[(kind, name)]
        return True

    def rows(self) -> list[Subscription]:
        """Every subscription, in the order they were first made."""
        return list(self._rows.values())

    def names(self, kind: Kind) -> list[bytes]:
        """The names of one kind, for replaying them after a reconnect."""
        return [name for (row_kind, name) in self._rows if row_kind is kind]

    def get(self, kind: Kind, name: bytes) -> Subscription | None:
        return self._rows.get((kind, name))

    def __len__(self) -> int:
        return len(self._rows)

    def mark_unacknowledged(self) -> None:
        """A new connection: nothing is confirmed on it yet."""
        for row in self._rows.values():
            row.acknowledged = False

    def unacknowledged(self) -> int:
        return sum(1 for row in self._rows.values() if not row.acknowledged)

    def broadcast(self, event: ConnectionLost | Resubscribed) -> None:
        """Tell every sink of every subscription about a gap (each sink once)."""
        told: set[int] = set()
        for row in self._rows.values():
            for sink in row.sinks:
                if id(sink) not in told:
                    told.add(id(sink))
                    sink.deliver(event)

    def route(self, frame: list[object]) -> bool:
        """Handle one pushed frame; False if it is not a Pub/Sub frame at all.

        Message frames go to their sinks; subscribe and unsubscribe acknowledgements update
        the rows' ``acknowledged`` flags.
        """
        if not frame or not isinstance(frame[0], bytes):
            return False
        kind_word = frame[0]
        if kind_word == b"message" and len(frame) == 3:
            channel, payload = frame[1], frame[2]
            if isinstance(channel, bytes) and isinstance(payload, bytes):
                self._deliver(Kind.CHANNEL, channel, RedisMessage(Kind.CHANNEL, channel, payload))
                return True
        elif kind_word == b"pmessage" and len(frame) == 4:
            pattern, channel, payload = frame[1], frame[2], frame[3]
            if (
                isinstance(pattern, bytes)
                and isinstance(channel, bytes)
                and isinstance(payload, bytes)
            ):
                message = RedisMessage(Kind.PATTERN, channel, payload, pattern)
                self._deliver(Kind.PATTERN, pattern, message)
                return True
        elif kind_word == b"smessage" and len(frame) == 3:
            channel, payload = frame[1], frame[2]
            if isinstance(channel, bytes) and isinstance(payload, bytes):
                self._deliver(Kind.SHARD, channel, RedisMessage(Kind.SHARD, channel, payload))
                return True
        elif kind_word in _ACKS and len(frame) == 3:
            kind, subscribed = _ACKS[kind_word]
            name = frame[1]
            if isinstance(name, bytes):
                row = self._rows.get((kind, name))
                if row is not None:
                    row.acknowledged = subscribed
                return True
        return False

    def _deliver(self, kind: Kind, name: bytes, message: RedisMessage) -> None:
        row = self._rows.get((kind, name))
        if row is None:
            self.unroutable += 1
            return
        for sink in row.sinks:
            if sink.deliver(message):
                row.delivered += 1
            else:
                row.dropped += 1
