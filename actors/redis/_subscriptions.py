"""The desired-subscription table and the routing of pushed messages to local sinks.

The table is the single source of truth for what this process wants from Redis: a reference
count of local sinks per channel, pattern and shard channel. The first sink of a name means a
SUBSCRIBE must go out, the last one leaving means an UNSUBSCRIBE. After every (re)connect the whole
table is sent again. Routing is synchronous: a sink's ``deliver`` must never wait, so one slow
consumer cannot stall the reader that feeds every other one.

An unsubscribe acknowledgement is ours only if we sent an unsubscribe for that name and its
acknowledgement is still due; any other one for a name we hold is the server ending the
subscription on its own (a cluster sends ``sunsubscribe`` when a shard channel's hash slot moves
away from the node). That is a gap of that subscription alone, never an acknowledgement.
"""

from __future__ import annotations

import enum
import logging
from typing import TYPE_CHECKING, Protocol

import attrs
import msgspec
import trio

if TYPE_CHECKING:
    from collections.abc import Callable

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


# Not tracked by the cyclic garbage collector (``gc=False``): a flood keeps thousands of these
# in mailboxes at once, and each one the collector tracks is counted towards its next full
# collection whenever it outlives two young ones; at 50,000 msg/s that made a full collection
# (tens of milliseconds with a thousand actors) every second or so, and those pauses were the
# latency tail. A message refers to bytes, an enum, a float and what ``decoded`` holds, so it
# takes part in no reference cycle (``decoded`` must never refer back to the message).
class RedisMessage(msgspec.Struct, gc=False, eq=False):
    """One message pushed by Redis, shared by every local sink that receives it.

    Attributes:
        kind: Which kind of subscription delivered it.
        channel: The channel it was published on.
        payload: The published bytes.
        pattern: The pattern that matched, for pattern subscriptions; otherwise None.
        received_at: When the read that brought it ended, on trio's clock; None for a
            message made by hand.
        decoded: A slot for the layer above to keep its decoding of ``payload``, so that a
            payload is decoded at most once however many sinks receive it.
    """

    kind: Kind
    channel: bytes
    payload: bytes
    pattern: bytes | None = None
    received_at: float | None = None
    decoded: object = None

    @property
    def subscription(self) -> bytes:
        """The name that was subscribed to: the pattern for pattern messages, else the channel."""
        return self.pattern if self.pattern is not None else self.channel

    def __repr__(self) -> str:
        via = f" via {self.pattern!r}" if self.pattern is not None else ""
        return f"RedisMessage({self.channel!r}{via}, {len(self.payload)} bytes)"


@attrs.frozen
class ConnectionLost:
    """Told to every sink when the connection carrying its subscription broke, or to the sinks
    of one subscription when the server ended that subscription alone (``kind`` and ``name``
    say which: a cluster does so when a shard channel's hash slot moves).

    Messages published from now until the matching ``Resubscribed`` are lost: Pub/Sub is
    at-most-once.
    """

    at: float
    """When the loss was noticed, on trio's clock (``trio.current_time()``)."""
    reason: str
    """What broke."""
    kind: Kind | None = None
    """The kind of the one subscription lost, or None when the connection was."""
    name: bytes | None = None
    """The channel or pattern of the one subscription lost, or None when the connection was."""


@attrs.frozen
class Resubscribed:
    """Told to the sinks of a ``ConnectionLost`` once what it lost is active again: every
    subscription (``kind`` and ``name`` None), or the one it names."""

    gap_start: float
    """When the gap began, on trio's clock (the ``at`` of the ``ConnectionLost``)."""
    gap_end: float
    """When the subscriptions were acknowledged again, on trio's clock."""
    kind: Kind | None = None
    """The kind of the one subscription back, or None for every subscription."""
    name: bytes | None = None
    """The channel or pattern of the one subscription back, or None for every subscription."""

    @property
    def duration(self) -> float:
        """Seconds the subscription was not active."""
        return self.gap_end - self.gap_start


SubscriptionEvent = RedisMessage | ConnectionLost | Resubscribed


class MessageSink(Protocol):
    """Where routed messages go: typically an adapter around an actor's mailbox.

    A sink may also have a ``dropped(error)`` method: the table calls it once for each message
    the sink refused, with the exception ``deliver`` raised (or None when it returned False), so
    that the layer above counts the loss where it happens.
    """

    def deliver(self, event: SubscriptionEvent) -> bool:
        """Take the event without waiting; return False, or raise, if it was dropped.

        Either way the drop is counted and routing goes on to the next sink: an exception
        from a sink never reaches the reader. Raising ``trio.ClosedResourceError`` (as the
        mailbox of an actor that stopped for good does) says the sink is closed for good: the
        table removes it, and gives the name up if it was the last sink.
        """
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
    gap_start: float | None = None
    """When the server ended this subscription on its own (on trio's clock), until it is
    acknowledged again; None otherwise."""
    deliveries: tuple[Callable[[RedisMessage], bool], ...] = ()
    """The sinks' ``deliver`` methods, looked up once, in the order of ``sinks``: the reader
    calls them per message. A new tuple whenever the sinks change."""
    drop_reports: tuple[Callable[[BaseException | None], object] | None, ...] = ()
    """The sinks' ``dropped`` methods (None for a sink without one), in the same order; the
    empty tuple when no sink has one, as for an actor's plain ``MailboxSink``."""

    def sinks_changed(self) -> None:
        # Only what the reader needs per message is copied; a row per subscribed name, so a
        # tuple of the sinks or of None for each of them would cost every subscription.
        reports = tuple(getattr(sink, "dropped", None) for sink in self.sinks)
        self.drop_reports = reports if any(report is not None for report in reports) else ()
        self.deliveries = tuple(sink.deliver for sink in self.sinks)


@attrs.frozen(kw_only=True)
class SubscriptionStatistics:
    """One subscription as the hub sees it."""

    kind: Kind
    """Channel, pattern or shard channel."""
    name: bytes
    """The channel or pattern."""
    sinks: int
    """Local subscribers."""
    delivered: int
    """Messages handed to those subscribers (once per subscriber)."""
    dropped: int
    """Messages a subscriber's mailbox refused under its overflow policy."""
    acknowledged: bool
    """Whether Redis confirmed it on the current connection."""


class SubscriptionTable:
    """Reference-counted subscriptions and the routing of pushed frames to their sinks.

    One dict per kind, keyed by the bare name: routing a message is one dict lookup, with no
    key tuple to build and hash. This is the hot path of every subscriber in the process.
    """

    def __init__(
        self,
        on_acknowledgement: Callable[[], object] | None = None,
        *,
        on_released: Callable[[Kind, bytes], object] | None = None,
        on_server_unsubscribed: Callable[[Kind, bytes], object] | None = None,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self._on_acknowledgement = on_acknowledgement
        self._on_released = on_released
        self._on_server_unsubscribed = on_server_unsubscribed
        self._clock = clock
        # Unsubscribe commands sent on the current connection whose acknowledgement is due,
        # per name: an acknowledgement beyond them is the server's own unsubscribe.
        self._unsubscribing: dict[tuple[Kind, bytes], int] = {}
        self.last_frame: float | None = None
        """``clock()`` (trio's clock) when the last Pub/Sub frame (message or acknowledgement)
        came."""
        self._channels: dict[bytes, Subscription] = {}
        self._patterns: dict[bytes, Subscription] = {}
        self._shards: dict[bytes, Subscription] = {}
        self._by_kind = {
            Kind.CHANNEL: self._channels,
            Kind.PATTERN: self._patterns,
            Kind.SHARD: self._shards,
        }
        # The words of a channel and a shard message, with their rows and kinds: looked up
        # once per frame rather than compared one by one (an enum member costs an attribute
        # lookup through its class each time it is named).
        self._message_rows: dict[object, tuple[dict[bytes, Subscription], Kind]] = {
            b"message": (self._channels, Kind.CHANNEL),
            b"smessage": (self._shards, Kind.SHARD),
        }
        self.unroutable = 0
        """Messages for a name no local sink holds (in flight while unsubscribing)."""
        self.malformed = 0
        """Pushed frames that looked like Pub/Sub frames but were not well formed."""
        self.server_unsubscribed = 0
        """Subscriptions the server ended on its own (an unsubscribe push nobody asked for)."""

    def add(self, kind: Kind, name: bytes, sink: MessageSink) -> bool:
        """Add a sink; True if it is the name's first, so a subscribe command must go out."""
        rows = self._by_kind[kind]
        row = rows.get(name)
        if row is None:
            # The list made with its one sink: an empty one grows by four at its first append.
            row = rows[name] = Subscription(kind, name, [sink])
            row.sinks_changed()
            return True
        row.sinks.append(sink)
        row.sinks_changed()
        return False

    def remove(self, kind: Kind, name: bytes, sink: MessageSink) -> bool:
        """Remove a sink; True if it was the name's last, so an unsubscribe must go out."""
        rows = self._by_kind[kind]
        row = rows.get(name)
        if row is None or sink not in row.sinks:
            return False
        row.sinks.remove(sink)
        row.sinks_changed()
        if row.sinks:
            return False
        del rows[name]
        return True

    def rows(self) -> list[Subscription]:
        """Every subscription: channels, then patterns, then shard channels, each in the order
        they were first made."""
        return [*self._channels.values(), *self._patterns.values(), *self._shards.values()]

    def statistics(self, hidden: bytes | None = None) -> tuple[SubscriptionStatistics, ...]:
        """Every subscription's counters, leaving out the ``hidden`` name (a probe channel)."""
        return tuple(
            SubscriptionStatistics(
                kind=row.kind,
                name=row.name,
                sinks=len(row.sinks),
                delivered=row.delivered,
                dropped=row.dropped,
                acknowledged=row.acknowledged,
            )
            for row in self.rows()
            if row.name != hidden
        )

    def names(self, kind: Kind) -> list[bytes]:
        """The names of one kind, for replaying them after a reconnect."""
        return list(self._by_kind[kind])

    def get(self, kind: Kind, name: bytes) -> Subscription | None:
        """The subscription of ``kind`` to ``name``, or None if there is none."""
        return self._by_kind[kind].get(name)

    def __len__(self) -> int:
        return len(self._channels) + len(self._patterns) + len(self._shards)

    def mark_unacknowledged(self) -> None:
        """A new connection: nothing is confirmed on it yet, and no unsubscribe is due on it."""
        self._unsubscribing.clear()
        for row in self.rows():
            row.acknowledged = False

    def unsubscribe_sent(self, kind: Kind, name: bytes) -> None:
        """An unsubscribe command for ``name`` went out: its acknowledgement is ours."""
        key = (kind, name)
        self._unsubscribing[key] = self._unsubscribing.get(key, 0) + 1

    def unacknowledged(self) -> int:
        """How many subscriptions the server has not confirmed yet."""
        return sum(1 for row in self.rows() if not row.acknowledged)

    def broadcast(self, event: ConnectionLost | Resubscribed) -> None:
        """Tell every sink of every subscription about a gap (each sink once)."""
        _tell_once(self.rows(), event)

    def route_many(self, frames: list[list[object]]) -> None:
        """Route the push frames of one read, in order, as ``route`` would one by one, with
        the clock read once per read instead of once per frame."""
        self.last_frame = now = self._clock()
        route_one = self._route_one
        deliver_to = self._deliver_to
        message_rows = self._message_rows
        for frame in frames:
            # A channel or shard message to a subscription with one sink, as _route_one and
            # _deliver_to take it, without their calls: nearly every frame under load.
            if len(frame) == 3:
                word, channel, payload = frame
                if type(word) is bytes and type(channel) is bytes and type(payload) is bytes:
                    target = message_rows.get(word)
                    if target is not None:
                        row = target[0].get(channel)
                        if row is None:
                            self.unroutable += 1
                            continue
                        message = RedisMessage(target[1], channel, payload, None, now)
                        deliveries = row.deliveries
                        if len(deliveries) != 1:
                            deliver_to(row, message)
                            continue
                        try:
                            if deliveries[0](message):
                                row.delivered += 1
                                continue
                            error = None
                        except Exception as exc:
                            error = exc
                        self._refused(row, deliveries, 0, error)
                        continue
            route_one(frame)

    def route(self, frame: list[object]) -> bool:
        """Handle one pushed frame; False if it is not a well-formed Pub/Sub frame.

        Message frames go to their sinks; subscribe and unsubscribe acknowledgements update
        the rows' ``acknowledged`` flags. A frame that looks like Pub/Sub but is malformed is
        counted in ``malformed`` and goes nowhere; nothing here raises.
        """
        if not frame:
            return False
        self.last_frame = self._clock()
        return self._route_one(frame)

    def _route_one(self, frame: list[object]) -> bool:
        if not frame:
            return False
        word = frame[0]
        if type(word) is not bytes:
            return False
        size = len(frame)
        target = self._message_rows.get(word)
        if target is not None:
            if size == 3 and type(frame[1]) is bytes and type(frame[2]) is bytes:
                self._deliver(target[0], target[1], frame[1], frame[2], None)
                return True
        elif word == b"pmessage":
            if (
                size == 4
                and type(frame[1]) is bytes
                and type(frame[2]) is bytes
                and type(frame[3]) is bytes
            ):
                self._deliver(self._patterns, Kind.PATTERN, frame[2], frame[3], frame[1])
                return True
        elif word in _ACKS:
            if size == 3 and type(frame[1]) is bytes:
                kind, subscribed = _ACKS[word]
                name = frame[1]
                row = self._by_kind[kind].get(name)
                if subscribed:
                    if row is not None:
                        row.acknowledged = True
                        if row.gap_start is not None:
                            self._gap_closed(row)
                elif self._unsubscribing.get((kind, name)):
                    self._unsubscribe_acknowledged(kind, name)
                    if row is not None:  # subscribed again since: its acknowledgement follows
                        row.acknowledged = False
                elif row is not None:
                    self._ended_by_server(row)
                if self._on_acknowledgement is not None:
                    self._on_acknowledgement()
                return True
        else:
            return False
        self.malformed += 1
        logger.warning("ignored a malformed Pub/Sub frame: %.200r", frame)
        return False

    def _unsubscribe_acknowledged(self, kind: Kind, name: bytes) -> None:
        key = (kind, name)
        due = self._unsubscribing[key] - 1
        if due:
            self._unsubscribing[key] = due
        else:
            del self._unsubscribing[key]

    def _ended_by_server(self, row: Subscription) -> None:
        """The server unsubscribed us from a name that still has sinks: a gap of that row.

        Its sinks are told (``ConnectionLost`` naming the subscription), and the owner asked to
        subscribe again (``on_server_unsubscribed``); the acknowledgement closes the gap.
        """
        row.acknowledged = False
        self.server_unsubscribed += 1
        if row.kind is Kind.SHARD:
            reason = "the server ended the shard subscription (its hash slot moved)"
        else:
            reason = f"the server ended the {row.kind.value} subscription"
        logger.warning("%s: %s %r", reason, row.kind.value, row.name, extra={"channel": row.name})
        if row.gap_start is None:
            at = self.last_frame if self.last_frame is not None else self._clock()
            row.gap_start = at
            _tell_once([row], ConnectionLost(at=at, reason=reason, kind=row.kind, name=row.name))
        if self._on_server_unsubscribed is not None:
            self._on_server_unsubscribed(row.kind, row.name)

    def _gap_closed(self, row: Subscription) -> None:
        assert row.gap_start is not None
        end = self.last_frame if self.last_frame is not None else self._clock()
        gap = Resubscribed(gap_start=row.gap_start, gap_end=end, kind=row.kind, name=row.name)
        row.gap_start = None
        logger.info(
            "resubscribed to %s %r after a gap of %.3f s",
            row.kind.value,
            row.name,
            gap.duration,
            extra={"channel": row.name},
        )
        _tell_once([row], gap)

    def _deliver(
        self,
        rows: dict[bytes, Subscription],
        kind: Kind,
        channel: bytes,
        payload: bytes,
        pattern: bytes | None,
    ) -> None:
        row = rows.get(channel if pattern is None else pattern)
        if row is None:
            self.unroutable += 1
            return
        self._deliver_to(row, RedisMessage(kind, channel, payload, pattern, self.last_frame))

    def _deliver_to(self, row: Subscription, message: RedisMessage) -> None:
        deliveries = row.deliveries
        delivered = 0
        for index, deliver in enumerate(deliveries):
            try:
                if deliver(message):
                    delivered += 1
                    continue
                error = None
            except Exception as exc:
                error = exc
            self._refused(row, deliveries, index, error)
        row.delivered += delivered

    def _refused(
        self,
        row: Subscription,
        deliveries: tuple[Callable[[RedisMessage], bool], ...],
        index: int,
        error: Exception | None,
    ) -> None:
        """Count one refused delivery, tell the sink, and remove it if it is closed for good.

        Off the hot path: only a full mailbox, or a closed one, comes here.
        """
        row.dropped += 1
        if row.deliveries is not deliveries:
            return  # the row changed while the message was being delivered
        sink = row.sinks[index]  # the sinks are as they were when ``deliveries`` was made
        report = row.drop_reports[index] if row.drop_reports else None
        if report is not None:
            try:
                report(error)
            except Exception:
                logger.exception("the drop report of a sink of %r failed", row.name)
        if isinstance(error, trio.ClosedResourceError):
            logger.debug("a sink of %s %r is closed; removing it", row.kind.value, row.name)
            if self.remove(row.kind, row.name, sink) and self._on_released is not None:
                self._on_released(row.kind, row.name)


def _tell_once(rows: list[Subscription], event: ConnectionLost | Resubscribed) -> None:
    """Deliver a gap event to each sink of ``rows``, once however many rows it is in; a sink
    that refuses it (closed, or full) is skipped with a debug line: the gap reaches the rest."""
    told: set[int] = set()
    for row in rows:
        for sink in list(row.sinks):
            if id(sink) not in told:
                told.add(id(sink))
                try:
                    sink.deliver(event)
                except Exception:
                    logger.debug("a sink refused %r", event)
