"""The broker interface: what the typed Pub/Sub layer needs from Redis or from memory."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from actors.observability import HealthCheck
    from actors.redis import Kind, MessageSink, RedisConnection


class BrokerSubscription(Protocol):
    """A handle on one local subscription."""

    kind: Kind
    name: bytes
    sink: MessageSink

    async def close(self) -> None:
        """Unsubscribe this sink; the last local sink of a name gives up the name."""
        ...


class Broker(Protocol):
    """Publish and subscribe: ``RedisPubSub`` (``redis://``) and ``MemoryBroker`` (``memory://``).

    Both deliver ``RedisMessage`` events to sinks without waiting, follow Redis's glob rules for
    patterns, and count receivers the way ``PUBLISH`` does.
    """

    async def subscribe(self, channel: bytes | str, sink: MessageSink) -> BrokerSubscription:
        """Subscribe a sink to one channel; returns once the subscription is active."""
        ...

    async def psubscribe(self, pattern: bytes | str, sink: MessageSink) -> BrokerSubscription:
        """Subscribe a sink to a glob pattern; messages carry their concrete channel."""
        ...

    async def publish(self, channel: bytes | str, payload: bytes | str) -> int:
        """Publish a payload; returns how many subscriptions received it."""
        ...

    async def wait_connected(self) -> None:
        """Wait until the broker can deliver (at once for the memory broker)."""
        ...

    @property
    def connected(self) -> bool | None:
        """Whether the broker's connection is up with every subscription active; None for a
        broker without a connection (``memory://``)."""
        ...

    async def health_checks(self) -> dict[str, HealthCheck]:
        """The broker's own checks for a health report, by name (``connection``, ...)."""
        ...

    def command_connection(self) -> Callable[[], Awaitable[RedisConnection]] | None:
        """Where stores that keep state in Redis get a connection for their commands (it waits
        for a reconnect within its bound); None for a broker without Redis."""
        ...

    @property
    def shared_state_key(self) -> object:
        """In-process stores (history, presence) are shared by the brokers with the same key:
        one per ``memory://NAME`` server, one per private broker."""
        ...
