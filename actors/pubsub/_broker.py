"""The broker interface: what the typed Pub/Sub layer needs from Redis or from memory."""

from __future__ import annotations

import math
import weakref
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

import trio

from actors._errors import RedisTimeoutError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from actors.observability import HealthCheck
    from actors.redis import Kind, MessageSink, RedisCommands


T = TypeVar("T")


async def within(deadline: float, work: Awaitable[T]) -> T:
    """Await ``work`` until ``deadline`` (trio's clock), then give up with
    ``RedisTimeoutError``: how a publish path without deadlines of its own honours one."""
    if deadline == math.inf:
        return await work
    with trio.move_on_at(deadline):
        return await work
    raise RedisTimeoutError("no answer by the deadline; it may or may not have been published")


class BrokerSubscription(Protocol):
    """A handle on one local subscription."""

    kind: Kind
    name: bytes
    sink: MessageSink

    async def close(self) -> None:
        """Unsubscribe this sink; the last local sink of a name gives up the name."""
        ...


class Broker(Protocol):
    """Publish and subscribe: ``RedisPubSub`` (``redis://``), ``ClusterPubSub``
    (``redis+cluster://``) and ``MemoryBroker`` (``memory://``).

    Both deliver ``RedisMessage`` events to sinks without waiting, follow Redis's glob rules for
    patterns, and count receivers the way ``PUBLISH`` does.
    """

    async def subscribe(self, channel: bytes | str, sink: MessageSink) -> BrokerSubscription:
        """Subscribe a sink to one channel; returns once the subscription is active."""
        ...

    async def psubscribe(self, pattern: bytes | str, sink: MessageSink) -> BrokerSubscription:
        """Subscribe a sink to a glob pattern; messages carry their concrete channel."""
        ...

    async def ssubscribe(self, channel: bytes | str, sink: MessageSink) -> BrokerSubscription:
        """Subscribe a sink to a shard channel (Redis 7 sharded Pub/Sub); only ``spublish``
        reaches it, and no pattern ever matches it."""
        ...

    async def publish(
        self, channel: bytes | str, payload: bytes | str, deadline: float = math.inf
    ) -> int:
        """Publish a payload; returns how many subscriptions received it. Once ``deadline``
        (trio's clock) has passed it stops waiting and raises ``RedisTimeoutError``."""
        ...

    async def spublish(
        self, channel: bytes | str, payload: bytes | str, deadline: float = math.inf
    ) -> int:
        """Publish a payload to a shard channel; returns how many clients hold it. Bounded by
        ``deadline`` as ``publish`` is."""
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

    def command_connection(self) -> Callable[[], Awaitable[RedisCommands]] | None:
        """Where stores that keep state in Redis get a connection for their commands (it waits
        for a reconnect within its bound; on a cluster it routes each command by its key's
        slot); None for a broker without Redis."""
        ...

    @property
    def shared_state_key(self) -> object:
        """In-process stores (history, presence) are shared by the brokers with the same key:
        one per ``memory://NAME`` server, one per private broker."""
        ...


class LocalState(Generic[T]):
    """In-process state that stands in for what Redis would keep, one per broker state.

    Stores without Redis (presence, chat history on ``memory://``) keep their state here: one
    value per ``Broker.shared_state_key``. A shared server's name keeps its value for the
    process's life, as the server keeps its name; a private broker's value lives as long as the
    broker.

    Args:
        factory: Makes the value the first time a key is asked for.
    """

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._named: dict[str, T] = {}
        self._private: weakref.WeakKeyDictionary[object, T] = weakref.WeakKeyDictionary()

    def of(self, broker: Broker) -> T:
        """The value for ``broker``'s state key, made on first use."""
        key = broker.shared_state_key
        if isinstance(key, str):
            named = self._named.get(key)
            if named is None:
                named = self._named[key] = self._factory()
            return named
        private = self._private.get(key)
        if private is None:
            private = self._private[key] = self._factory()
        return private
