"""``open_redis_pubsub``: the supervised connection actor plus the hub, as one handle."""

from __future__ import annotations

import logging
import math
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final

import attrs
import trio

from actors.pubsub._connection_actor import ConnectionOptions, run_connection
from actors.pubsub._redis_health import connection_check, server_check
from actors.redis import HubObserver, Kind, PubSubHub, RedisSettings
from actors.supervision import ChildSpec, Restart, SupervisorSpec, open_supervisor

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from actors._errors import RedisConfigurationError
    from actors.observability import HealthCheck
    from actors.redis import MessageSink, PubSubStatistics, RedisConnection
    from actors.runtime import ActorRef, ActorSystem
    from actors.supervision import Supervisor

CONNECTION_CHILD_ID: Final = "redis-connection"


@attrs.frozen(kw_only=True)
class RedisPubSubStatistics:
    """The hub's view plus the connection actor's restart count."""

    hub: PubSubStatistics
    """Connection state, liveness ages and every subscription."""
    connection_restarts: int
    """Times the connection actor was restarted (each is a reconnect attempt)."""


class Subscription:
    """A handle on one local subscription; ``await close()`` to unsubscribe."""

    __slots__ = ("_pubsub", "kind", "name", "sink")

    def __init__(self, pubsub: RedisPubSub, kind: Kind, name: bytes, sink: MessageSink) -> None:
        self._pubsub = pubsub
        self.kind = kind
        self.name = name
        self.sink = sink

    async def close(self) -> None:
        """Unsubscribe this sink; the last local sink of the name unsubscribes from Redis."""
        await self._pubsub.hub.unsubscribe(self.kind, self.name, self.sink)


def _name(name: bytes | str) -> bytes:
    return name.encode() if isinstance(name, str) else name


class RedisPubSub:
    """One process's Redis Pub/Sub: a supervised connection actor feeding every subscription."""

    def __init__(
        self, hub: PubSubHub, supervisor: Supervisor, options: ConnectionOptions | None = None
    ) -> None:
        self.hub = hub
        self.supervisor = supervisor
        self.options = options if options is not None else ConnectionOptions()
        # Kept, not looked up: the ref outlives the supervisor, so statistics still answer
        # once the block has ended (after a failure for good, say).
        self._connection_ref = supervisor.child(CONNECTION_CHILD_ID)

    @property
    def connection_ref(self) -> ActorRef:
        """The connection actor's ref (stable across reconnects)."""
        return self._connection_ref

    async def subscribe(self, channel: bytes | str, sink: MessageSink) -> Subscription:
        """Subscribe a sink to a channel; returns once Redis has acknowledged it."""
        return await self._subscribe(Kind.CHANNEL, _name(channel), sink)

    async def psubscribe(self, pattern: bytes | str, sink: MessageSink) -> Subscription:
        """Subscribe a sink to a glob pattern; each message carries its concrete channel."""
        return await self._subscribe(Kind.PATTERN, _name(pattern), sink)

    async def ssubscribe(self, channel: bytes | str, sink: MessageSink) -> Subscription:
        """Subscribe a sink to a shard channel (Redis 7 sharded Pub/Sub)."""
        return await self._subscribe(Kind.SHARD, _name(channel), sink)

    async def _subscribe(self, kind: Kind, name: bytes, sink: MessageSink) -> Subscription:
        await self.hub.subscribe(kind, name, sink)
        return Subscription(self, kind, name, sink)

    async def publish(
        self, channel: bytes | str, payload: bytes | str, deadline: float = math.inf
    ) -> int:
        """Publish a payload once; returns the number of receivers Redis counted.

        Never retried here (``PubSub.publish`` retries by its policy).

        Raises:
            RedisConnectionError: Not connected, or the connection broke before Redis answered.
            RedisConfigurationError: The connection stopped for good.
        """
        return await self.hub.publish(channel, payload, deadline)

    async def spublish(
        self, channel: bytes | str, payload: bytes | str, deadline: float = math.inf
    ) -> int:
        """Publish a payload once to a shard channel (``SPUBLISH``); returns the receivers.

        Raises:
            RedisConnectionError: As ``publish``.
            RedisConfigurationError: The connection stopped for good.
        """
        return await self.hub.spublish(channel, payload, deadline)

    def connection(self) -> RedisConnection:
        """The current connection for other commands (changes on every reconnect).

        Raises:
            RedisConnectionError: Not connected right now (starting, or reconnecting).
        """
        return self.hub.connection()

    async def ready_connection(self) -> RedisConnection:
        """The connection for other commands, once there is one.

        Waits up to the options' ``reconnect_wait`` (5 s) while the connection actor connects
        or reconnects, so that a command issued at startup or during a short outage is not
        refused at once.

        Raises:
            RedisConnectionError: Still not connected after ``reconnect_wait``.
            RedisConfigurationError: The connection stopped for good (at once).
        """
        if not self.hub.open_for_commands:  # the common case needs no cancel scope
            with trio.move_on_after(self.options.reconnect_wait):
                await self.hub.wait_connected()
        else:
            await trio.lowlevel.checkpoint()
        return self.hub.connection()

    @property
    def connected(self) -> bool:
        """Whether a connection is attached with every subscription replayed."""
        return self.hub.connected

    async def health_checks(self) -> dict[str, HealthCheck]:
        """``connection`` (state, liveness, the cause when down) and ``server`` (its view of
        our subscriptions)."""
        return {"connection": connection_check(self), "server": await server_check(self)}

    def command_connection(self) -> Callable[[], Awaitable[RedisConnection]]:
        """``ready_connection``: stores keep their state in this Redis."""
        return self.ready_connection

    @property
    def shared_state_key(self) -> object:
        """This broker: its state is in Redis, shared with every process already."""
        return self

    async def wait_connected(self) -> None:
        """Wait until connected with every subscription replayed; unbounded (an outage lasts
        as long as it lasts): bound it with a cancel scope.

        Raises:
            RedisConfigurationError: The connection stopped for good (at once).
        """
        await self.hub.wait_connected()

    def statistics(self) -> RedisPubSubStatistics:
        """The hub's statistics and the connection actor's restarts."""
        return RedisPubSubStatistics(
            hub=self.hub.statistics(), connection_restarts=self.connection_ref.statistics().restarts
        )


class ForwardingObserver(HubObserver):
    """Passes every hook on to ``observer``: a subclass overrides only the hooks it adds to,
    so a hook added to ``HubObserver`` reaches the caller's observer without another edit."""

    def __init__(self, observer: HubObserver | None) -> None:
        self.observer = observer or HubObserver()

    def attached(self, *, reconnect: bool) -> None:
        self.observer.attached(reconnect=reconnect)

    def lost(self, reason: str) -> None:
        self.observer.lost(reason)

    def gap_closed(self, seconds: float) -> None:
        self.observer.gap_closed(seconds)

    def failed(self, error: RedisConfigurationError) -> None:
        self.observer.failed(error)

    def ended_by_server(self, kind: Kind) -> None:
        self.observer.ended_by_server(kind)


class BlockObserver(ForwardingObserver):
    """Forwards to the caller's observer; a failure for good also cancels the block."""

    def __init__(self, body: trio.CancelScope, observer: HubObserver | None) -> None:
        super().__init__(observer)
        self.body = body

    def failed(self, error: RedisConfigurationError) -> None:
        super().failed(error)
        self.body.cancel(reason=f"the Redis connection failed for good: {error}")


@asynccontextmanager
async def open_redis_pubsub(
    system: ActorSystem,
    settings_or_url: RedisSettings | str,
    *,
    options: ConnectionOptions | None = None,
    name: str | None = None,
    observer: HubObserver | None = None,
) -> AsyncIterator[RedisPubSub]:
    """Run the Redis connection actor under its own supervisor for the duration of a block.

    The block starts at once, connected or not: ``subscribe`` waits for the connection and
    ``publish`` raises ``RedisConnectionError`` until it is up. Leaving the block stops the
    connection actor.

    A failure that cannot heal (``RedisConfigurationError``: refused credentials, a refused
    ``SELECT``, a certificate that does not verify) is not retried: every pending and later
    call fails with it at once, the block is cancelled, and the error leaves the
    ``async with``, at startup or whenever a reconnect meets it.

    Args:
        system: The actor system to run in.
        settings_or_url: Where Redis is: settings, or a ``redis://``, ``rediss://`` or
            ``unix://`` URL.
        options: Reconnect backoff, restart intensity, probes, acknowledgement timeout.
        name: A registered name for the connection's supervisor.
        observer: Told about attachments, losses, gaps and a failure (for metrics).

    Raises:
        RedisUrlError: The URL is invalid.
        RedisConfigurationError: The connection cannot work as configured.
    """
    if isinstance(settings_or_url, str):
        settings = RedisSettings.from_url(settings_or_url)
    else:
        settings = settings_or_url
    options = options if options is not None else ConnectionOptions()
    body = trio.CancelScope()
    hub = PubSubHub(
        ack_timeout=options.ack_timeout,
        probe_channel=options.probe_channel,
        observer=BlockObserver(body, observer),
    )
    spec = SupervisorSpec(
        max_restarts=options.max_restarts,
        within=options.within,
        children=[
            ChildSpec(
                id=CONNECTION_CHILD_ID,
                start=run_connection,
                args=(hub, settings, options),
                # Transient: a failure that cannot heal ends the actor with a shutdown, which
                # is not restarted; every other failure is a crash, restarted after the backoff.
                restart=Restart.TRANSIENT,
                backoff=options.reconnect,
                shutdown=1.0,
                crash_log_level=logging.WARNING,
            )
        ],
    )
    async with open_supervisor(system, spec, name=name) as supervisor:
        with body:
            yield RedisPubSub(hub, supervisor, options)
    if hub.failure is not None:
        raise hub.failure
