"""Shared pieces of the Pub/Sub tests against real servers: collectors, actors, options, polling.

Subscribers are real actors fed through ``MailboxSink`` (or trio channels through
``ChannelSink``); what they receive is recorded in a ``Collector`` the test waits on with a
deadline. Server state (``PUBSUB NUMSUB``, ``CLIENT LIST``) is polled with short sleeps, never
slept on blindly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import trio

from actors import ActorContext, Backoff, MailboxConfig
from actors.pubsub import ConnectionOptions, RedisPubSub
from actors.redis import (
    ConnectionLost,
    Kind,
    RedisConnection,
    RedisMessage,
    Resubscribed,
    SubscriptionEvent,
)
from actors.testing import wait_until

FAST_BACKOFF = Backoff(initial=0.01, maximum=0.05, jitter=0)
"""Reconnect quickly in tests: 10 ms, doubling, at most 50 ms, no jitter."""

FAST_OPTIONS = ConnectionOptions(
    reconnect=FAST_BACKOFF, max_restarts=100_000, within=1.0, ack_timeout=10.0
)
"""Fast reconnects that never exhaust the supervisor's restart intensity during an outage."""

POLL = 0.01  # seconds between checks of a real process's state


class Collector:
    """Everything one subscriber received, with waits on conditions over it."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.events: list[SubscriptionEvent] = []
        self._changed = trio.Event()

    def add(self, event: object) -> None:
        assert isinstance(event, RedisMessage | ConnectionLost | Resubscribed), event
        self.events.append(event)
        self._changed.set()

    def add_many(self, events: Sequence[object]) -> None:
        for event in events:
            assert isinstance(event, RedisMessage | ConnectionLost | Resubscribed), event
        self.events.extend(events)  # type: ignore[arg-type]
        self._changed.set()

    @property
    def messages(self) -> list[RedisMessage]:
        return [event for event in self.events if isinstance(event, RedisMessage)]

    @property
    def payloads(self) -> list[bytes]:
        return [event.payload for event in self.messages]

    @property
    def gap_events(self) -> list[ConnectionLost | Resubscribed]:
        return [event for event in self.events if isinstance(event, ConnectionLost | Resubscribed)]

    def count(self) -> int:
        return len(self.events)

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        """Wait (under the caller's deadline) until ``condition()`` holds after a delivery."""
        while not condition():
            self._changed = trio.Event()
            await self._changed.wait()

    async def wait_for_payload(self, payload: bytes) -> None:
        await self.wait_until(lambda: payload in self.payloads)

    async def wait_for_messages(self, count: int) -> None:
        await self.wait_until(lambda: len(self.messages) >= count)

    async def wait_for_lost(self) -> None:
        await self.wait_until(lambda: any(isinstance(e, ConnectionLost) for e in self.events))

    async def wait_for_resubscribed(self, count: int = 1) -> None:
        await self.wait_until(
            lambda: sum(isinstance(e, Resubscribed) for e in self.events) >= count
        )

    async def wait_for_message_after_gap(self) -> None:
        """Wait until a message arrived after the latest gap event."""
        await self.wait_until(
            lambda: bool(self.events) and isinstance(self.events[-1], RedisMessage)
        )


async def collector_actor(context: ActorContext, collector: Collector) -> None:
    """A subscriber actor: takes its mailbox in batches and records every event."""
    while True:
        collector.add_many(await context.receive_batch())


async def never_reading_actor(context: ActorContext) -> None:
    """A subscriber actor that never reads its mailbox: the slow consumer."""
    await trio.sleep_forever()


def mailbox(capacity: float = 100_000) -> MailboxConfig:
    return MailboxConfig(capacity=capacity)


async def wait_for(
    condition: Callable[[], Awaitable[bool]], *, what: str, limit: float = 10.0
) -> None:
    """Poll an async condition (typically a query to a real server) until it holds, every
    ``POLL`` seconds; a query that fails with ``OSError`` (a server going away) means "not yet"."""
    await wait_until(condition, timeout=limit, interval=POLL, what=what, retry_on=OSError)


def table_channels(pubsub: RedisPubSub) -> list[bytes]:
    """The channel names in the hub's table, the hub's own probe channel included."""
    return pubsub.hub.table.names(Kind.CHANNEL)


async def numsub_matches_table(pubsub: RedisPubSub, connection: RedisConnection) -> bool:
    """Whether the server counts exactly one subscriber (us) for each channel of our table."""
    channels = table_channels(pubsub)
    counts = await connection.pubsub_numsub(*channels)
    return all(counts[name.decode()] == 1 for name in channels)


def client_list(text: bytes | str) -> list[dict[str, str]]:
    """Parse ``CLIENT LIST`` into one dict per client."""
    if isinstance(text, bytes):
        text = text.decode()
    clients = []
    for line in text.splitlines():
        fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
        clients.append(fields)
    return clients
