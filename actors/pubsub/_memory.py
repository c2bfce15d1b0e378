"""``memory://``: an in-process broker with the semantics of Redis Pub/Sub through ``RedisPubSub``.

Model. A ``MemoryBroker`` plays the part of one Redis client connection, the one a
``RedisPubSub`` multiplexes all of a process's subscriptions over; the ``_MemoryServer`` it is
attached to plays the Redis server. ``memory://`` gets a private server per broker;
``memory://NAME`` attaches every broker opened with that name (in the same process) to one shared
server, just as several ``open_redis_pubsub`` calls would be several connections to one Redis.

Receiver counts follow ``PUBLISH`` exactly: one per client holding the channel, plus one per
client and matching pattern it holds (so one client with a channel and a matching pattern counts
2, and gets the message twice). Local sinks are not counted: like ``RedisPubSub``, which sends
one ``SUBSCRIBE`` for a name however many local sinks share it, a broker counts once per name,
so three sinks on one channel count 1 on both brokers. Code therefore sees the same numbers on
``memory://`` as on ``redis://`` (where other processes' connections add theirs).

Delivery goes through the broker's ``SubscriptionTable``, fed the very frames Redis would push
(``message``, ``pmessage``, ``smessage`` and the subscribe acknowledgements), so routing, the
shared ``RedisMessage`` per name, and the per-subscription delivered/dropped counters are the
same code as for Redis. Delivery is synchronous and never waits: a sink that refuses (returns
False or raises) costs a counted drop and the others still get the message.

Everything runs in one trio run (one thread); brokers sharing a name must live in the same run.
"""

from __future__ import annotations

import math
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final, NoReturn

import trio

from actors._errors import RedisConnectionError
from actors.observability import HealthCheck
from actors.pubsub._glob import compile_glob
from actors.redis import Kind, PubSubStatistics, SubscriptionTable

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from actors.redis import MessageSink

MEMORY_SCHEME: Final = "memory"

_ACK_WORDS: Final = {
    Kind.CHANNEL: b"subscribe",
    Kind.PATTERN: b"psubscribe",
    Kind.SHARD: b"ssubscribe",
}


def _bytes(value: bytes | str) -> bytes:
    if isinstance(value, str):
        return value.encode()
    return value if type(value) is bytes else bytes(value)


def _text(value: bytes) -> str:
    """As ``RedisCommands`` decodes names."""
    return value.decode("utf-8", "surrogateescape")


class _MemoryServer:
    """The Redis server's side: which client holds which channel and pattern.

    Mirrors Redis's ``server.pubsub_channels`` / ``pubsub_patterns`` / ``pubsub_shardchannels``:
    name -> the clients that hold it, in the order they took it. A tuple, made again when a
    client takes or gives up the name: a name has one holder or a few (one per broker), and a
    dict per name would cost about four times a one-client tuple's memory, for every channel.
    A tuple also needs no copy to be walked while a delivery changes it.
    """

    def __init__(self, name: str | None) -> None:
        self.name = name
        self.clients: dict[MemoryBroker, None] = {}
        self.channels: dict[bytes, tuple[MemoryBroker, ...]] = {}
        self.shards: dict[bytes, tuple[MemoryBroker, ...]] = {}
        self.patterns: dict[bytes, tuple[Callable[[bytes], bool], tuple[MemoryBroker, ...]]] = {}

    def hold(self, client: MemoryBroker, kind: Kind, name: bytes) -> None:
        if kind is Kind.PATTERN:
            entry = self.patterns.get(name)
            if entry is None:
                self.patterns[name] = (compile_glob(name), (client,))
            elif client not in entry[1]:
                self.patterns[name] = (entry[0], (*entry[1], client))
        else:
            index = self.channels if kind is Kind.CHANNEL else self.shards
            holders = index.get(name, ())
            if client not in holders:
                index[name] = (*holders, client)

    def release(self, client: MemoryBroker, kind: Kind, name: bytes) -> None:
        if kind is Kind.PATTERN:
            entry = self.patterns.get(name)
            if entry is not None:
                rest = tuple(holder for holder in entry[1] if holder is not client)
                if rest:
                    self.patterns[name] = (entry[0], rest)
                else:
                    del self.patterns[name]
        else:
            index = self.channels if kind is Kind.CHANNEL else self.shards
            holders = index.get(name)
            if holders is not None:
                rest = tuple(holder for holder in holders if holder is not client)
                if rest:
                    index[name] = rest
                else:
                    del index[name]

    def publish(self, channel: bytes, payload: bytes) -> int:
        """Deliver to every holder, as ``pubsubPublishMessage`` does; returns the receivers."""
        receivers = 0
        holders = self.channels.get(channel)
        if holders:
            frame: list[object] = [b"message", channel, payload]
            for client in holders:
                client.table.route(frame)
                receivers += 1
        if self.patterns:
            for pattern, (matches, clients) in list(self.patterns.items()):
                if matches(channel):
                    frame = [b"pmessage", pattern, channel, payload]
                    for client in clients:
                        client.table.route(frame)
                        receivers += 1
        return receivers

    def spublish(self, channel: bytes, payload: bytes) -> int:
        holders = self.shards.get(channel)
        if not holders:
            return 0
        frame: list[object] = [b"smessage", channel, payload]
        for client in holders:
            client.table.route(frame)
        return len(holders)


_named_servers: dict[str, _MemoryServer] = {}


class MemorySubscription:
    """A handle on one local subscription of a ``MemoryBroker``; ``await close()`` to leave."""

    __slots__ = ("_broker", "kind", "name", "sink")

    def __init__(self, broker: MemoryBroker, kind: Kind, name: bytes, sink: MessageSink) -> None:
        self._broker = broker
        self.kind = kind
        self.name = name
        self.sink = sink

    async def close(self) -> None:
        """Unsubscribe this sink; the broker gives up the name with its last sink. A checkpoint."""
        self._broker._remove(self.kind, self.name, self.sink)
        await trio.lowlevel.checkpoint()

    def __repr__(self) -> str:
        return f"<MemorySubscription {self.kind.value} {self.name!r}>"


class MemoryBroker:
    """An in-process broker behaving like ``RedisPubSub`` on one Redis connection.

    Open it with ``open_memory_broker`` (or ``open_broker(system, "memory://")``). Subscriptions
    are reference counted per name, patterns follow Redis's glob rules (``glob_match``),
    ``publish`` returns what ``PUBLISH`` would and delivers synchronously, never waiting for a
    subscriber; ``pubsub_channels``/``pubsub_numsub``/``pubsub_numpat`` answer like ``PUBSUB``.

    Args:
        name: Attach to the process-wide server of this name, shared with every other broker of
            the same name (each one counts as its own client); None for a private server.
    """

    def __init__(self, name: str | None = None) -> None:
        server: _MemoryServer | None = None
        if name is not None:
            server = _named_servers.get(name)
        if server is None:
            server = _MemoryServer(name)
            if name is not None:
                _named_servers[name] = server
        self._server = server
        server.clients[self] = None
        self.table = SubscriptionTable()
        """This client's subscriptions and the routing to their sinks (shared with Redis)."""
        self._closed = False

    @property
    def name(self) -> str | None:
        """The shared server's name, or None for a private one."""
        return self._server.name

    @property
    def closed(self) -> bool:
        """Whether ``aclose`` was called."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("the memory broker is closed")

    # -- subscriptions ---------------------------------------------------------------------------

    async def subscribe(self, channel: bytes | str, sink: MessageSink) -> MemorySubscription:
        """Subscribe a sink to a channel; active when this returns.

        Args:
            channel: The channel.
            sink: Where its messages go.

        Returns:
            The handle to unsubscribe with.

        Raises:
            ValueError: The name is empty.
            trio.ClosedResourceError: The broker is closed.
        """
        return await self._subscribe(Kind.CHANNEL, _bytes(channel), sink)

    async def psubscribe(self, pattern: bytes | str, sink: MessageSink) -> MemorySubscription:
        """Subscribe a sink to a glob pattern; each message carries its concrete channel.

        Args:
            pattern: A Redis glob pattern (see ``glob_match``).
            sink: Where matching messages go.

        Returns:
            The handle to unsubscribe with.

        Raises:
            ValueError: The pattern is empty.
            trio.ClosedResourceError: The broker is closed.
        """
        return await self._subscribe(Kind.PATTERN, _bytes(pattern), sink)

    async def ssubscribe(self, channel: bytes | str, sink: MessageSink) -> MemorySubscription:
        """Subscribe a sink to a shard channel (fed by ``spublish`` only, as in Redis 7).

        Args:
            channel: The shard channel.
            sink: Where its messages go.

        Returns:
            The handle to unsubscribe with.

        Raises:
            ValueError: The name is empty.
            trio.ClosedResourceError: The broker is closed.
        """
        return await self._subscribe(Kind.SHARD, _bytes(channel), sink)

    async def _subscribe(self, kind: Kind, name: bytes, sink: MessageSink) -> MemorySubscription:
        if not name:
            raise ValueError("a channel or pattern name must not be empty")
        # The checkpoint comes first: a cancelled subscribe adds nothing.
        await trio.lowlevel.checkpoint()
        self._check_open()
        if self.table.add(kind, name, sink):
            self._server.hold(self, kind, name)
            self.table.route([_ACK_WORDS[kind], name, len(self.table)])
        return MemorySubscription(self, kind, name, sink)

    def _remove(self, kind: Kind, name: bytes, sink: MessageSink) -> None:
        if self.table.remove(kind, name, sink):
            self._server.release(self, kind, name)

    # -- publishing ------------------------------------------------------------------------------

    async def publish(
        self, channel: bytes | str, payload: bytes | str, deadline: float = math.inf
    ) -> int:
        """Deliver a payload to every matching subscription now, without waiting for any.

        Either it is delivered and no ``Cancelled`` comes out, or it is cancelled before
        anything is delivered.

        Args:
            channel: The channel.
            payload: The payload (``str`` is sent as UTF-8).
            deadline: Not needed: delivery never waits.

        Returns:
            The receivers, counted as ``PUBLISH`` counts them: per client (broker) holding the
            channel, plus per client and matching pattern, whatever the number of local sinks.

        Raises:
            trio.ClosedResourceError: The broker is closed.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        self._check_open()
        receivers = self._server.publish(_bytes(channel), _bytes(payload))
        await trio.lowlevel.cancel_shielded_checkpoint()
        return receivers

    async def spublish(
        self, channel: bytes | str, payload: bytes | str, deadline: float = math.inf
    ) -> int:
        """Publish to a shard channel, as ``SPUBLISH``.

        Args:
            channel: The shard channel.
            payload: The payload.
            deadline: Not needed: delivery never waits.

        Returns:
            The number of clients (brokers) holding the shard channel.

        Raises:
            trio.ClosedResourceError: The broker is closed.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        self._check_open()
        receivers = self._server.spublish(_bytes(channel), _bytes(payload))
        await trio.lowlevel.cancel_shielded_checkpoint()
        return receivers

    # -- introspection, as PUBSUB answers --------------------------------------------------------

    async def pubsub_channels(self, pattern: str | bytes | None = None) -> list[str]:
        """List the channels some client holds, like ``PUBSUB CHANNELS [pattern]``.

        Args:
            pattern: Only channels matching this glob pattern.

        Returns:
            The channel names, sorted (decoded as ``RedisCommands.pubsub_channels`` does).
        """
        await trio.lowlevel.checkpoint()
        names = list(self._server.channels)
        if pattern is not None:
            matches = compile_glob(_bytes(pattern))
            names = [name for name in names if matches(name)]
        return sorted(_text(name) for name in names)

    async def pubsub_numsub(self, *channels: str | bytes) -> dict[str, int]:
        """Count the clients holding each channel, like ``PUBSUB NUMSUB``.

        Args:
            *channels: The channels.

        Returns:
            Each channel's count of clients (brokers), zero included; patterns not counted.
        """
        await trio.lowlevel.checkpoint()
        index = self._server.channels
        return {_text(_bytes(c)): len(index.get(_bytes(c), ())) for c in channels}

    async def pubsub_shardnumsub(self, *channels: str | bytes) -> dict[str, int]:
        """Count the clients holding each shard channel, like ``PUBSUB SHARDNUMSUB``.

        Args:
            *channels: The shard channels.

        Returns:
            Each shard channel's count of clients (brokers), zero included.
        """
        await trio.lowlevel.checkpoint()
        index = self._server.shards
        return {_text(_bytes(c)): len(index.get(_bytes(c), ())) for c in channels}

    async def pubsub_numpat(self) -> int:
        """Count the patterns subscribed on this broker's server, like ``PUBSUB NUMPAT``.

        Returns:
            The number of distinct patterns held by all its clients (Redis 7 counts a pattern
            once, however many clients hold it).
        """
        await trio.lowlevel.checkpoint()
        return len(self._server.patterns)

    # -- the rest of the broker interface -------------------------------------------------------

    async def wait_connected(self) -> None:
        """Return at once (a checkpoint): the memory broker is always connected."""
        await trio.lowlevel.checkpoint()

    @property
    def connected(self) -> None:
        """None: there is no connection behind ``memory://``."""
        return None

    async def health_checks(self) -> dict[str, HealthCheck]:
        """``connection``: up while the broker is open."""
        await trio.lowlevel.checkpoint()
        if self._closed:
            return {"connection": HealthCheck.down(broker="memory", reason="closed")}
        return {"connection": HealthCheck.up(broker="memory")}

    def command_connection(self) -> None:
        """None: stores keep their state in this process."""
        return None

    @property
    def shared_state_key(self) -> object:
        """The shared server's name for ``memory://NAME``, else this broker."""
        return self._server.name if self._server.name is not None else self

    def connection(self) -> NoReturn:
        """There is no Redis connection behind ``memory://``.

        Raises:
            RedisConnectionError: Always, naming the memory broker, so that code written for
                ``RedisPubSub.connection()`` (which raises it while reconnecting) copes.
        """
        raise RedisConnectionError(
            "the memory:// broker has no Redis connection: run Redis commands against a "
            "redis:// broker"
        )

    def statistics(self) -> PubSubStatistics:
        """The same snapshot as ``PubSubHub.statistics()``.

        Returns:
            ``connected`` (True until closed), ``protocol`` None, ``reconnects`` 0, no probe and
            no gap, and each subscription's sinks and delivered/dropped counters.
        """
        last = self.table.last_frame
        return PubSubStatistics(
            connected=not self._closed,
            protocol=None,
            reconnects=0,
            last_message_age=None if last is None else trio.current_time() - last,
            last_probe_age=None,
            gap_started=None,
            unroutable=self.table.unroutable,
            subscriptions=self.table.statistics(),
        )

    async def aclose(self) -> None:
        """Drop every subscription and leave the server; later calls raise. Idempotent."""
        if not self._closed:
            self._closed = True
            for row in self.table.rows():
                for sink in list(row.sinks):
                    self._remove(row.kind, row.name, sink)
            server = self._server
            server.clients.pop(self, None)
            if (
                server.name is not None
                and not server.clients
                and _named_servers.get(server.name) is server
            ):
                del _named_servers[server.name]
        await trio.lowlevel.checkpoint()

    def __repr__(self) -> str:
        where = "memory://" + (self.name or "")
        return f"<MemoryBroker {where} {len(self.table)} subscriptions>"


@asynccontextmanager
async def open_memory_broker(name: str | None = None) -> AsyncIterator[MemoryBroker]:
    """Run an in-process broker for the duration of a block; leaving it drops its subscriptions.

    Args:
        name: Share the server of this name with the other brokers opened with it in this
            process (each is a separate client, as separate Redis connections are); None for a
            private one.

    Yields:
        The broker.
    """
    broker = MemoryBroker(name)
    try:
        yield broker
    finally:
        await broker.aclose()
