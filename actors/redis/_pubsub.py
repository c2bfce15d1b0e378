"""Pub/Sub multiplexed over one connection, with subscriptions that outlive the connection.

``PubSubHub`` owns the desired-subscription table. Whoever owns the connection (the connection
actor in ``actors.pubsub``) attaches each new connection with ``attach`` and reports its loss with
``detach``; the hub replays the table, waits for Redis to acknowledge it, and tells every sink
about the gap. Subscribers call ``subscribe``/``unsubscribe`` at any time, connected or not.

In RESP3 one connection carries everything: replies and pushes are told apart by frame type.
In RESP2 (servers without RESP3, such as fakeredis) a subscribed connection can run no other
command, so the owner attaches two connections: one for commands, one for subscriptions.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import socket
from typing import TYPE_CHECKING, Final

import attrs
import trio

from actors._errors import (
    RedisConfigurationError,
    RedisConnectionError,
    RedisReplyError,
    RedisTimeoutError,
)
from actors.redis._slots import key_slot
from actors.redis._subscriptions import (
    ConnectionLost,
    Kind,
    MessageSink,
    RedisMessage,
    Resubscribed,
    SubscriptionEvent,
    SubscriptionTable,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Iterator

    from actors.redis._connection import RedisConnection
    from actors.redis._subscriptions import SubscriptionStatistics

logger = logging.getLogger(__name__)

DEFAULT_ACK_TIMEOUT: Final = 30.0  # seconds; the subscription timeout our users asked for
REPLAY_BATCH: Final = 256  # names per subscribe command in a replay (of one slot, for shards)
PROBE_CHANNEL_PREFIX: Final = b"__actors:probe:"

_NOT_SERVED_HERE: Final = frozenset({"MOVED", "ASK", "CLUSTERDOWN", "TRYAGAIN"})
"""Errors of a cluster node that does not serve a slot now: not a refusal of the name."""

_hub_numbers = itertools.count(1)


def unique_probe_channel(prefix: bytes = PROBE_CHANNEL_PREFIX) -> bytes:
    """``prefix`` and a name unique to this process and call: a hub's own probe channel."""
    unique = f"{socket.gethostname()}:{os.getpid()}:{next(_hub_numbers)}"
    return prefix + unique.encode()


def replay_batches(kind: Kind, names: list[bytes]) -> Iterator[list[bytes]]:
    """The names of one kind cut into subscribe commands for a replay, in the table's order.

    Up to ``REPLAY_BATCH`` names per command. Shard channels are grouped by hash slot first, so
    that each ``SSUBSCRIBE`` carries one slot: a cluster refuses a command whose names span
    slots (``CROSSSLOT``). Channels and patterns are not slot-bound.
    """
    groups: Iterable[list[bytes]] = [names]
    if kind is Kind.SHARD:
        slots: dict[int, list[bytes]] = {}
        for name in names:
            slots.setdefault(key_slot(name), []).append(name)
        groups = slots.values()
    for group in groups:
        for start in range(0, len(group), REPLAY_BATCH):
            yield group[start : start + REPLAY_BATCH]


def _unsubscribe_refused(error: RedisReplyError) -> None:
    """An unsubscribe the server refused: ``MOVED`` and the like when a cluster node serves
    the slot no more (nothing to give up there), an error otherwise."""
    if error.code in _NOT_SERVED_HERE:
        logger.info("unsubscribing met %s: the node serves the slot no more", error)
    else:
        logger.error("Redis refused an unsubscribe command: %s", error)


@attrs.frozen(kw_only=True)
class PubSubStatistics:
    """A snapshot of the hub: connection, liveness and every subscription."""

    connected: bool
    """Whether a connection is attached and its subscriptions replayed."""
    protocol: int | None
    """RESP version of the attached connection."""
    reconnects: int
    """Connections attached after the first one."""
    last_message_age: float | None
    """Seconds since the last pushed message (probes included), or None if none came yet."""
    last_probe_age: float | None
    """Seconds since the last liveness probe came back, or None."""
    gap_started: float | None
    """When the current gap began, on trio's clock, or None while connected."""
    gap_age: float | None = None
    """Seconds since the current gap began, or None while connected."""
    last_error: str | None = None
    """Why the last connection attempt failed or the last connection was lost, or None."""
    failure: str | None = None
    """The error that stopped the connection for good (a ``RedisConfigurationError``), or None."""
    unroutable: int
    """Messages for names no local subscriber holds any more."""
    server_unsubscribed: int = 0
    """Subscriptions the server ended on its own (a shard channel's hash slot moved), each a gap
    of that subscription alone."""
    subscriptions: tuple[SubscriptionStatistics, ...]
    """Every subscription in the table, in the order they were made."""
    probe_channel: bytes | None = None
    """The liveness probe's channel (a shard channel on a cluster node)."""
    probe_displaced: bool = False
    """Whether the server does not serve the probe's shard channel here now (its slot moved):
    the probe proves the connection with PING alone until the channel is re-homed."""


@attrs.frozen
class HandOver:
    """A subscription on its way from one hub to another (see ``PubSubHub.hand_over``)."""

    sinks: tuple[MessageSink, ...]
    """Its local sinks, in order."""
    gap_start: float
    """When its gap began, on trio's clock."""


class HubObserver:
    """Hooks the hub calls where connection events happen, for metrics of the layer above.

    Every hook defaults to doing nothing. They run synchronously in the connection's tasks, so
    they must be quick and must not raise.
    """

    def attached(self, *, reconnect: bool) -> None:
        """A connection was attached and every subscription replayed on it; ``reconnect`` is
        False for the first one."""

    def lost(self, reason: str) -> None:
        """The attached connection was lost (a gap begins)."""

    def gap_closed(self, seconds: float) -> None:
        """A gap ended: subscriptions were inactive for ``seconds``."""

    def failed(self, error: RedisConfigurationError) -> None:
        """The connection stopped for good: retrying cannot heal ``error``."""

    def ended_by_server(self, kind: Kind) -> None:
        """The server ended a subscription we hold (a shard channel's slot moved): a gap of
        that subscription alone begins."""


_NO_OBSERVER: Final = HubObserver()


class _ProbeSink:
    """Receives the hub's own probe messages."""

    def __init__(self, hub: PubSubHub) -> None:
        self._hub = hub

    def deliver(self, event: SubscriptionEvent) -> bool:
        if isinstance(event, RedisMessage):
            self._hub._probe_arrived(event.payload)
        return True


class PubSubHub:
    """Subscriptions kept across reconnects, routed from one connection to many sinks.

    Every time here is trio's clock (``trio.current_time()``), so that a ``MockClock`` drives
    probes, gaps and the ages in ``statistics()``.

    Args:
        ack_timeout: Seconds ``subscribe`` and a replay wait for Redis's acknowledgements.
        probe_channel: The channel the liveness probe publishes to and listens on; by default
            ``__actors:probe:`` plus a name unique to this process and hub. Where ACLs limit
            channels, allow it (or a pattern covering it); if Redis refuses it, the probe falls
            back to PING alone.
        observer: Told about attachments, losses, gaps and a failure for good.
        not_served: For a cluster client: called, instead of subscribing again on this
            connection, with ``(kind, name, error)`` when the server ended a subscription on
            its own (``error`` None: a shard channel's slot moved away) or when subscribing
            again, or replaying a shard channel, met ``MOVED``/``ASK``/``CLUSTERDOWN``/``TRYAGAIN``
            (``error`` says which). The subscription stays in the table, its gap open, until the
            caller moves it to its new owner's hub (``hand_over``, ``take_over``). Called from
            the reader: it must be quick and must not raise.
        probe_kind: ``Kind.CHANNEL`` (the default): the probe publishes and subscribes plainly.
            ``Kind.SHARD``: with ``SPUBLISH``/``SSUBSCRIBE`` on a shard channel, which a cluster
            client names so that its slot is one the node owns (``rehome_probe`` when that
            changes): the probe then proves the node's own shard subscriptions.
        probe_publish: Publishes the probe's token (``(channel, token)``) somewhere else than
            on this connection: a replica's hub publishes on the shard's master, whose message
            must reach the replica. None: on this connection.
    """

    def __init__(
        self,
        *,
        ack_timeout: float = DEFAULT_ACK_TIMEOUT,
        probe_channel: bytes | None = None,
        observer: HubObserver | None = None,
        not_served: Callable[[Kind, bytes, RedisReplyError | None], object] | None = None,
        probe_kind: Kind = Kind.CHANNEL,
        probe_publish: Callable[[bytes, bytes], Awaitable[object]] | None = None,
    ) -> None:
        self.table = SubscriptionTable(
            on_acknowledgement=self._acknowledged,
            on_released=self._released,
            on_server_unsubscribed=self._server_unsubscribed,
        )
        # The connection's push handler is the table's router itself: one call per frame on
        # the hot path. It never blocks and never raises.
        self.push = self.table.route
        self.push_many = self.table.route_many
        self.ack_timeout = ack_timeout
        self.observer = observer or _NO_OBSERVER
        self._not_served = not_served
        self._commands: RedisConnection | None = None
        self._subscriber: RedisConnection | None = None
        self._ready = False
        self._acks = trio.Event()
        # Set and replaced on every change of connection state (attached, detached, failed):
        # a waiter re-reads the state after waking, so no change can leave it on a stale event.
        self._changed = trio.Event()
        self._attachments = 0
        self._gap_start: float | None = None
        self._last_error: str | None = None
        self._last_exception: BaseException | None = None
        self._failure: RedisConfigurationError | None = None
        self._last_probe: float | None = None
        self._probe_token: bytes | None = None
        self._probe_event: trio.Event | None = None
        self._probe_numbers = itertools.count(1)
        self._refusals: dict[tuple[Kind, bytes], RedisReplyError] = {}
        if probe_channel is None:
            probe_channel = unique_probe_channel()
        self.probe_channel = probe_channel
        self.probe_kind = probe_kind
        self._probe_publish = probe_publish
        # The server does not serve the probe's shard channel here now (its slot moved, or it
        # answered MOVED): a topology event, for the cluster client to re-home the probe.
        self._probe_displaced = False
        self._probe_rehomed = trio.Event()
        self._probe_sink = _ProbeSink(self)
        self.table.add(probe_kind, self.probe_channel, self._probe_sink)

    # -- the connection's side -------------------------------------------------------------------

    def _acknowledged(self) -> None:
        """Wake whoever waits for subscription acknowledgements."""
        if self._probe_displaced:
            row = self.table.get(self.probe_kind, self.probe_channel)
            self._probe_displaced = row is None or not row.acknowledged
        self._acks.set()
        self._acks = trio.Event()

    def _state_changed(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def attach(
        self, commands: RedisConnection, subscriber: RedisConnection | None = None
    ) -> None:
        """Use a new connection: replay every subscription and wait for Redis to confirm them.

        Args:
            commands: The connection for commands (and, in RESP3, subscriptions too).
            subscriber: In RESP2 mode, the separate connection that carries subscriptions.

        Raises:
            RedisTimeoutError: Redis did not confirm everything within ``ack_timeout``.
        """
        self._commands = commands
        self._subscriber = subscriber if subscriber is not None else commands
        self._probe_displaced = False
        self.table.mark_unacknowledged()
        for kind in Kind:
            # A cluster client moves a shard channel its node does not serve (any more).
            moving = self._not_served is not None and kind is Kind.SHARD
            for batch in replay_batches(kind, self.table.names(kind)):
                self._subscriber.send_subscription_command(
                    kind.subscribe_command,
                    *batch,
                    on_error=self._refusal_handler(kind, batch, resubscribing=moving),
                )
        await self._wait_acknowledged(lambda: self.table.unacknowledged() == 0, "the replay")
        self._ready = True
        self._attachments += 1
        self._last_error = None
        self._last_exception = None
        self._state_changed()
        self.observer.attached(reconnect=self._attachments > 1)
        if self._gap_start is not None:
            gap = Resubscribed(gap_start=self._gap_start, gap_end=trio.current_time())
            self._gap_start = None
            logger.info(
                "resubscribed %d subscriptions after a gap of %.3f s",
                len(self.table),
                gap.duration,
            )
            self.observer.gap_closed(gap.duration)
            self.table.broadcast(gap)

    def detach(
        self, reason: str, *, notify: bool = True, error: BaseException | None = None
    ) -> None:
        """The attached connection is gone, or a connection attempt failed: a gap has started.

        Every sink is told once per gap (``ConnectionLost``); ``reason`` is kept for health
        reports until a connection is attached again, with ``error`` if there is one (see
        ``failure_cause``). ``notify=False`` is for an orderly close, which is no gap: nothing is
        lost.
        """
        was_attached = self._ready
        self._commands = None
        self._subscriber = None
        self._ready = False
        self._probe_event = None
        if notify:
            self._last_error = reason
            self._last_exception = error
        self._state_changed()
        if notify and was_attached and self._gap_start is None:
            self._gap_start = trio.current_time()
            self.observer.lost(reason)
            self.table.broadcast(ConnectionLost(at=self._gap_start, reason=reason))

    def fail(self, error: RedisConfigurationError) -> None:
        """The connection cannot work as configured: fail every waiter, now and later.

        Pending and later ``subscribe``, ``wait_connected`` and ``connection`` calls raise
        ``error``. A hub that failed stays failed.
        """
        if self._failure is not None:
            return
        self.detach(str(error), error=error)
        self._failure = error
        self._state_changed()
        self._acknowledged()
        self.observer.failed(error)

    @property
    def failure(self) -> RedisConfigurationError | None:
        """The error that stopped the connection for good, or None."""
        return self._failure

    @property
    def last_error(self) -> str | None:
        """Why the last attempt failed or the last connection was lost (None once attached)."""
        return self._last_error

    @property
    def last_exception(self) -> BaseException | None:
        """The error behind ``last_error``, when there was one."""
        return self._last_exception

    @property
    def connected(self) -> bool:
        """Whether a connection is attached and every subscription replayed on it (until the
        connection actor detaches it: health and metrics report this)."""
        return self._ready

    @property
    def open_for_commands(self) -> bool:
        """Whether ``connection()`` would hand out a connection now: attached, replayed and
        still open. A connection that has just closed is not, although the connection actor
        has not detached it yet: whoever waits for a connection waits for the next one."""
        return self._ready and self._commands is not None and not self._commands.closed

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise self._failure

    async def wait_connected(self) -> None:
        """Wait until a connection is attached and replayed.

        The caller bounds the wait (``trio.move_on_after``): during an outage it lasts as long
        as the outage.

        Raises:
            RedisConfigurationError: The connection stopped for good (at once, or as soon as it
                does).
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        while not self.open_for_commands:
            self._raise_if_failed()
            # A closed connection still attached is detached by the connection actor soon,
            # which is a change: the wait goes on until the next connection is attached.
            await self._changed.wait()
        await trio.lowlevel.cancel_shielded_checkpoint()

    # -- subscribers' side -----------------------------------------------------------------------

    async def subscribe(self, kind: Kind, name: bytes, sink: MessageSink) -> bool:
        """Add a sink for a channel, pattern or shard channel; return once Redis confirmed it
        (True), or a cluster client handed it over to another hub meanwhile (False: see
        ``wait_subscribed``).

        The first local sink of a name sends the subscribe command; later ones share it. While
        disconnected, the subscription waits for the next connection's replay.

        Raises:
            RedisTimeoutError: No acknowledgement within ``ack_timeout``; nothing was added.
            RedisPermissionError: Redis refused the name (an ACL); nothing was added.
            RedisConfigurationError: The connection stopped for good; nothing was added.
        """
        if not name:
            raise ValueError("a channel or pattern name must not be empty")
        self._raise_if_failed()
        self._refusals.pop((kind, name), None)  # a refusal nobody waited for is stale now
        first = self.table.add(kind, name, sink)
        # Sent as soon as a connection is attached, even while its replay is still waiting for
        # acknowledgements: the replay only covers the names that were in the table when it began.
        if first and self._subscriber is not None:
            # If the connection just broke, the replay on the next one sends it.
            with contextlib.suppress(RedisConnectionError):
                self._subscriber.send_subscription_command(
                    kind.subscribe_command, name, on_error=self._refusal_handler(kind, [name])
                )
        return await self.wait_subscribed(kind, name, sink)

    async def wait_subscribed(self, kind: Kind, name: bytes, sink: MessageSink) -> bool:
        """Wait until Redis confirmed ``sink``'s subscription in this hub, or it was handed over
        to another hub (a cluster client moved it: ``hand_over``). Up to ``ack_timeout``.

        Returns:
            True if confirmed here, False if handed over (wait on the hub that took it).

        Raises:
            RedisTimeoutError: No acknowledgement within ``ack_timeout``; the sink was removed.
            RedisReplyError: Redis refused the name; the sink was removed.
            RedisConfigurationError: The connection stopped for good; the sink was removed.
        """
        try:
            await self._wait_acknowledged(
                lambda: self._is_settled(kind, name, sink), f"subscribing to {name!r}"
            )
            refusal = self._refusals.pop((kind, name), None)
            if refusal is not None:
                raise refusal
        except BaseException:
            self._remove(kind, name, sink)
            raise
        row = self.table.get(kind, name)
        return row is not None and sink in row.sinks

    async def unsubscribe(self, kind: Kind, name: bytes, sink: MessageSink) -> None:
        """Remove a sink; the last one leaving sends the unsubscribe command. A checkpoint."""
        self._remove(kind, name, sink)
        await trio.lowlevel.checkpoint()

    def _remove(self, kind: Kind, name: bytes, sink: MessageSink) -> None:
        if self.table.remove(kind, name, sink):
            self._released(kind, name)

    def _released(self, kind: Kind, name: bytes) -> None:
        """The last local sink of a name is gone: give the name up on the server."""
        if self._subscriber is not None:
            # If the connection just broke, the next replay simply leaves the name out.
            with contextlib.suppress(RedisConnectionError):
                self._subscriber.send_subscription_command(
                    kind.unsubscribe_command, name, on_error=_unsubscribe_refused
                )
                self.table.unsubscribe_sent(kind, name)

    def _server_unsubscribed(self, kind: Kind, name: bytes) -> None:
        """The server ended a subscription we hold (a shard channel's slot moved): subscribe
        again on the current connection; its acknowledgement ends the subscription's gap.

        With one server that is the right place. A cluster client (``not_served``) routes it to
        the slot's new owner instead.
        """
        self.observer.ended_by_server(kind)
        if self._not_served is not None:
            if self._is_probe(kind, name):
                self._probe_displaced = True
                self._acks.set()  # a probe waiting for its subscription waits no more
                self._acks = trio.Event()
            self._not_served(kind, name, None)
            return
        self.resubscribe(kind, name)

    @property
    def probe_displaced(self) -> bool:
        """Whether the server does not serve the probe's shard channel on this connection now
        (a ``sunsubscribe`` or ``MOVED``), until it is re-homed or acknowledged again."""
        return self._probe_displaced

    def _is_probe(self, kind: Kind, name: bytes) -> bool:
        return kind is self.probe_kind and name == self.probe_channel

    def rehome_probe(self, channel: bytes) -> None:
        """Move the probe to another channel of ``probe_kind`` (a cluster client: the node's
        slots changed, and the old channel's slot is not the node's any more): unsubscribe the
        old one, subscribe the new one. A probe in flight starts again on the new channel
        within its own bound, so a re-home is never a dead verdict."""
        if channel == self.probe_channel:
            return
        kind = self.probe_kind
        self._remove(kind, self.probe_channel, self._probe_sink)
        self.probe_channel = channel
        self._probe_displaced = False
        if self.table.add(kind, channel, self._probe_sink) and self._subscriber is not None:
            with contextlib.suppress(RedisConnectionError):
                self._subscriber.send_subscription_command(
                    kind.subscribe_command,
                    channel,
                    on_error=self._refusal_handler(kind, [channel], resubscribing=True),
                )
        self._acknowledged()  # a replay waiting for the old channel waits no more
        self._probe_rehomed.set()
        self._probe_rehomed = trio.Event()

    def resubscribe(self, kind: Kind, name: bytes) -> None:
        """Send the subscribe command for a subscription in the table again, on the current
        connection (nothing while none is attached: the next replay does it). Its
        acknowledgement ends the subscription's gap; ``MOVED`` and the like leave it open."""
        if self._subscriber is not None and self.table.get(kind, name) is not None:
            # If the connection just broke, the replay on the next one subscribes again.
            with contextlib.suppress(RedisConnectionError):
                self._subscriber.send_subscription_command(
                    kind.subscribe_command,
                    name,
                    on_error=self._refusal_handler(kind, [name], resubscribing=True),
                )

    def hand_over(self, kind: Kind, name: bytes) -> HandOver | None:
        """Take a subscription out of this hub, sinks and gap, to move it to another hub.

        For a cluster client whose slot map says the name is served elsewhere now. If the
        subscription was still active here, its sinks are told its gap begins now
        (``ConnectionLost`` naming it) and the unsubscribe command goes out; a subscription the
        server ended, or one cut off by a lost connection, keeps the start of its gap.

        Returns:
            What ``take_over`` needs, or None if the hub holds no such subscription.
        """
        row = self.table.get(kind, name)
        if row is None:
            return None
        sinks = tuple(row.sinks)
        if row.gap_start is not None:
            gap_start = row.gap_start
        elif self._gap_start is not None:  # the connection's gap: its sinks were told
            gap_start = self._gap_start
        else:
            gap_start = trio.current_time()
            reason = f"the {kind.value} subscription moves to another node"
            lost = ConnectionLost(at=gap_start, reason=reason, kind=kind, name=name)
            for sink in dict.fromkeys(sinks):
                try:
                    sink.deliver(lost)
                except Exception:
                    logger.debug("a sink refused %r", lost)
        acknowledged = row.acknowledged
        for sink in sinks:
            self.table.remove(kind, name, sink)
        if acknowledged:
            self._released(kind, name)
        self._acknowledged()  # a replay waiting for this row waits no more
        return HandOver(sinks=sinks, gap_start=gap_start)

    def take_over(self, kind: Kind, name: bytes, moved: HandOver) -> None:
        """Add a subscription another hub handed over, and subscribe it here (now if a
        connection is attached, else in the next replay). Its gap stays open until this server
        acknowledges it; then its sinks receive ``Resubscribed`` naming it, with the gap's
        start from the other hub."""
        first = False
        for sink in moved.sinks:
            first = self.table.add(kind, name, sink) or first
        row = self.table.get(kind, name)
        if row is None:
            return
        if row.gap_start is None:
            row.gap_start = moved.gap_start
        if first and self._subscriber is not None:
            with contextlib.suppress(RedisConnectionError):
                self._subscriber.send_subscription_command(
                    kind.subscribe_command,
                    name,
                    on_error=self._refusal_handler(kind, [name], resubscribing=True),
                )

    def _is_settled(self, kind: Kind, name: bytes, sink: MessageSink) -> bool:
        """Acknowledged, refused by Redis, or handed over to another hub."""
        self._raise_if_failed()
        if (kind, name) in self._refusals:
            return True
        row = self.table.get(kind, name)
        return row is None or sink not in row.sinks or row.acknowledged

    def _refusal_handler(
        self, kind: Kind, names: list[bytes], *, resubscribing: bool = False
    ) -> Callable[[RedisReplyError], None]:
        def refused(error: RedisReplyError) -> None:
            if resubscribing and error.code in _NOT_SERVED_HERE and self._not_served is not None:
                for name in names:
                    if self._is_probe(kind, name):
                        self._probe_displaced = True
                        self._acks.set()  # a probe waiting for its subscription waits no more
                        self._acks = trio.Event()
                    self._not_served(kind, name, error)
                return
            if resubscribing and error.code in _NOT_SERVED_HERE:
                # The slot is not served here (yet): no refusal of the name. The subscription
                # stays in the table, its gap open, until a replay subscribes it again.
                logger.warning(
                    "subscribing again to %s %r failed: %s; its gap stays open until the next "
                    "connection replays it",
                    kind.value,
                    names[0],
                    error,
                    extra={"channel": names[0]},
                )
                return
            subscriber = self._subscriber
            if len(names) > 1 and subscriber is not None:
                # Redis refuses a whole command when one of its names is forbidden: ask again
                # name by name, so that only the forbidden ones are refused.
                for name in names:
                    with contextlib.suppress(RedisConnectionError):
                        subscriber.send_subscription_command(
                            kind.subscribe_command,
                            name,
                            on_error=self._refusal_handler(kind, [name]),
                        )
                return
            # One name by now, as a field of its own for structured logs (JsonLogFormatter).
            about = {"channel": names[0] if len(names) == 1 else None}
            if error.code in _NOT_SERVED_HERE and self._not_served is not None:
                # A cluster's topology event (the caller refreshes and subscribes at the new
                # owner), not a refusal of the name.
                logger.info("subscribing to %s %r met %s", kind.value, names, error, extra=about)
            else:
                logger.error(
                    "Redis refused subscribing to %s %r: %s", kind.value, names, error, extra=about
                )
            for name in names:
                self._refusals[(kind, name)] = error
                row = self.table.get(kind, name)
                if row is not None and not row.acknowledged:
                    # Nobody gets messages for it: drop it, and its sinks with it, rather than
                    # let the table claim a subscription Redis does not have.
                    for sink in list(row.sinks):
                        self.table.remove(kind, name, sink)
            self._acknowledged()

        return refused

    async def _wait_acknowledged(self, done: Callable[[], bool], what: str) -> None:
        if done():
            await trio.lowlevel.checkpoint()
            return
        with trio.move_on_after(self.ack_timeout) as scope:
            while not done():
                await self._acks.wait()
        if scope.cancelled_caught:
            raise RedisTimeoutError(
                f"Redis did not acknowledge {what} within {self.ack_timeout} s",
                seconds=self.ack_timeout,
            )

    # -- commands --------------------------------------------------------------------------------

    def connection(self) -> RedisConnection:
        """The connection for commands.

        Raises:
            RedisConnectionError: No connection is attached (a reconnect is in progress).
            RedisConfigurationError: The connection stopped for good.
        """
        commands = self._commands
        if commands is None or commands.closed:
            self._raise_if_failed()
            cause = f": {self._last_error}" if self._last_error else ""
            if commands is not None:
                cause = f": {commands.close_cause or 'the connection closed'}"
            raise RedisConnectionError(f"not connected to Redis (reconnecting){cause}")
        return commands

    async def publish(
        self, channel: bytes | str, payload: bytes | str, deadline: float = math.inf
    ) -> int:
        """Publish on the attached connection; returns the number of receivers.

        Raises:
            RedisConnectionError: Not connected, or the connection broke before the reply
                (``RedisConnectionLostError``). Publishes are never retried here.
            RedisTimeoutError: No reply by ``deadline`` (trio's clock).
            RedisConfigurationError: The connection stopped for good.
        """
        return int(await self.connection().execute("PUBLISH", channel, payload, deadline=deadline))

    async def spublish(
        self, channel: bytes | str, payload: bytes | str, deadline: float = math.inf
    ) -> int:
        """``SPUBLISH`` on the attached connection; returns the number of receivers.

        Raises:
            RedisConnectionError: As ``publish``.
            RedisTimeoutError: As ``publish``.
            RedisConfigurationError: The connection stopped for good.
        """
        return int(await self.connection().execute("SPUBLISH", channel, payload, deadline=deadline))

    # -- liveness --------------------------------------------------------------------------------

    async def probe(self, within: float) -> float:
        """Prove the connection alive: PING, then publish to our own probe channel and wait for it.

        With ``probe_kind`` ``Kind.SHARD`` the probe uses ``SPUBLISH`` (through
        ``probe_publish`` if given) and waits for the probe subscription's acknowledgement
        first. A probe whose shard channel the server does not serve here (a ``sunsubscribe``
        or ``MOVED``) is a topology event, reported through ``not_served``: the connection
        answered its PING, so it is alive. A re-home (``rehome_probe``) in flight publishes
        again on the new channel, within the same bound.

        Returns:
            The probe's round trip in seconds.

        Raises:
            RedisTimeoutError: The probe did not come back ``within`` seconds: the connection
                is deaf, even if its socket looks open.
        """
        connection = self.connection()
        started = trio.current_time()
        with trio.move_on_after(within) as scope:
            await connection.ping()
            while not await self._probe_round(connection):
                pass
        if scope.cancelled_caught:
            probe_row = self.table.get(self.probe_kind, self.probe_channel)
            what = "PING" if probe_row is None else "probe"
            raise RedisTimeoutError(
                f"the liveness {what} did not come back within {within} s", seconds=within
            )
        return trio.current_time() - started

    async def _probe_round(self, connection: RedisConnection) -> bool:
        """Publish one token on the probe channel and wait for it; False if the probe was
        re-homed meanwhile (publish again)."""
        kind = self.probe_kind
        channel = self.probe_channel
        rehomed = self._probe_rehomed
        row = self.table.get(kind, channel)
        if row is None or self._probe_displaced:
            # Redis refused the probe channel (ACL), or a cluster moves it: the PING that
            # came back exposes a deaf connection, though not a broken subscription path.
            self._last_probe = trio.current_time()
            return True
        if kind is Kind.SHARD:
            while not row.acknowledged and not rehomed.is_set() and not self.probe_displaced:
                await self._acks.wait()
            if rehomed.is_set():
                return False
            if self.probe_displaced:
                self._last_probe = trio.current_time()
                return True
        token = str(next(self._probe_numbers)).encode()
        event = trio.Event()
        self._probe_token = token
        self._probe_event = event
        try:
            if self._probe_publish is not None:
                await self._probe_publish(channel, token)
            elif kind is Kind.SHARD:
                await connection.spublish(channel, token)
            else:
                await connection.publish(channel, token)
        except RedisReplyError as error:
            if error.code not in _NOT_SERVED_HERE or self._not_served is None:
                raise
            # The channel's slot is served elsewhere now: re-homing it is the topology's job.
            self._probe_displaced = True
            self._not_served(kind, channel, error)
            self._last_probe = trio.current_time()
            return True
        async with trio.open_nursery() as nursery:

            async def wait_rehomed() -> None:
                await rehomed.wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(wait_rehomed)
            await event.wait()
            nursery.cancel_scope.cancel()
        return not rehomed.is_set() or event.is_set()

    def _probe_arrived(self, token: bytes) -> None:
        self._last_probe = trio.current_time()
        if token == self._probe_token and self._probe_event is not None:
            self._probe_event.set()
            self._probe_event = None

    def idle_for(self) -> float:
        """Seconds since the last pushed frame arrived (infinite if none came yet)."""
        if self.table.last_frame is None:
            return math.inf
        return trio.current_time() - self.table.last_frame

    def statistics(self) -> PubSubStatistics:
        """Return the hub's connection state, liveness ages and per-subscription counters."""
        now = trio.current_time()
        last_frame = self.table.last_frame
        commands = self._commands
        failure = self._failure
        return PubSubStatistics(
            connected=self._ready,
            protocol=commands.protocol if commands is not None else None,
            reconnects=max(self._attachments - 1, 0),
            last_message_age=None if last_frame is None else now - last_frame,
            last_probe_age=None if self._last_probe is None else now - self._last_probe,
            gap_started=self._gap_start,
            gap_age=None if self._gap_start is None else now - self._gap_start,
            last_error=self._last_error,
            failure=None if failure is None else str(failure),
            unroutable=self.table.unroutable,
            server_unsubscribed=self.table.server_unsubscribed,
            subscriptions=self.table.statistics(hidden=self.probe_channel),
            probe_channel=self.probe_channel,
            probe_displaced=self._probe_displaced,
        )
