"""Numbered messages on channels with history, and paced publishers that publish each number
exactly once, for tests/pubsub/test_history_faults.py and its publisher process
(tests/pubsub/history_publisher.py).

Each channel has ``PUBLISHERS`` publishers, each numbering its own messages 1, 2, 3, ..., that
publish at once on one connection, which pipelines their publishes. Each publisher is paced to
its share of the rate and catches up after an outage, as a service with a queue would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from actors import Message, RedisConnectionError, RedisTimeoutError, message_type
from actors.pubsub import ConnectionOptions, History, PubSub, PubSubSettings, RetryPolicy
from actors.redis import TRANSIENT_CODES, RedisReplyError
from actors.supervision import Backoff

CHANNELS = ("seq:{a}", "seq:{b}", "seq:{c}")
HISTORIES = {"seq:{*}": History(size=100_000, ttl=600.0)}
PUBLISHERS = 6  # per channel, each with numbers of its own
RATE = 5000.0  # messages a second, on the three channels together
WAIT = 10.0  # seconds any one wait may take

PUBLISHER_BACKOFF = Backoff(initial=0.01, multiplier=2.0, maximum=0.05, jitter=0.0, reset_after=0)
SUBSCRIBER_BACKOFF = Backoff(initial=0.2, multiplier=1.0, maximum=0.2, jitter=0.0, reset_after=0)

Sender = tuple[str, int]  # (channel, publisher)


@message_type("history-faults.numbered")
@attrs.frozen(kw_only=True)
class Numbered(Message):
    publisher: int
    n: int


def settings(reconnect: Backoff) -> PubSubSettings:
    return PubSubSettings(
        histories=HISTORIES,
        connection=ConnectionOptions(
            reconnect=reconnect, max_restarts=100_000, within=1.0, ack_timeout=WAIT
        ),
        publish_retry=RetryPolicy(max_attempts=5, backoff=PUBLISHER_BACKOFF),
        history_check_interval=1.0,
    )


@attrs.define
class Publishing:
    """What the publishers did: the last number each published, and the retries."""

    published: dict[Sender, int]
    retried: int = 0
    started_at: float = 0.0
    stopped_at: float = 0.0
    stop: trio.Event = attrs.field(factory=trio.Event)

    @property
    def total(self) -> int:
        return sum(self.published.values())

    @property
    def elapsed(self) -> float:
        return self.stopped_at - self.started_at

    def rate(self) -> float:
        return self.total / max(self.elapsed, 1e-9)

    def marks(self) -> dict[Sender, int]:
        return dict(self.published)

    def of(self, channel: str) -> dict[int, int]:
        """The last number each publisher of ``channel`` published."""
        return {p: n for (c, p), n in self.published.items() if c == channel}

    def counts(self) -> dict[str, list[int]]:
        """``published`` as JSON: each channel's publishers' last numbers, by publisher."""
        counts: dict[str, list[int]] = {}
        for (channel, publisher), n in sorted(self.published.items()):
            assert publisher == len(counts.setdefault(channel, []))
            counts[channel].append(n)
        return counts

    def report(self) -> dict[str, Any]:
        """What a publisher process says when it stops (``from_report`` reads it back)."""
        return {"published": self.counts(), "retried": self.retried, "elapsed": self.elapsed}

    @classmethod
    def from_report(cls, report: Mapping[str, Any]) -> Publishing:
        return cls(
            marks_of(report),
            retried=int(report["retried"]),
            stopped_at=float(report["elapsed"]),
        )


def marks_of(report: Mapping[str, Any]) -> dict[Sender, int]:
    """The last number of each publisher in a publisher process's report."""
    counts: Mapping[str, Sequence[int]] = report["published"]
    return {
        (channel, publisher): int(n)
        for channel, numbers in counts.items()
        for publisher, n in enumerate(numbers)
    }


async def publish_numbers(
    pubsub: PubSub, sender: Sender, rate: float, publishing: Publishing, sharded: bool
) -> None:
    """Publish 1, 2, 3, ... from one publisher on its channel at ``rate`` a second until told
    to stop, catching up after an outage.

    Each number is published until a publish succeeds, with the same message (the same id) on
    every attempt, so that it is appended once: ``publish`` retries a lost connection or a
    refusal for now within its bound, and this loop past it. Stopping is checked between two
    numbers, never during one, so the numbers published are exactly 1 to ``published[sender]``.
    """
    channel, publisher = sender
    interval = 1.0 / rate
    due = trio.current_time()
    n = 0
    while not publishing.stop.is_set():
        n += 1
        message = Numbered(publisher=publisher, n=n)
        while True:
            try:
                await pubsub.publish(channel, message, sharded=sharded)
            except (RedisConnectionError, RedisTimeoutError, RedisReplyError) as error:
                if isinstance(error, RedisReplyError) and error.code not in TRANSIENT_CODES:
                    raise
                publishing.retried += 1
                await trio.sleep(0.01)
            else:
                break
        publishing.published[sender] = n
        due += interval
        now = trio.current_time()
        if due > now:
            await trio.sleep(due - now)


@asynccontextmanager
async def publishers(
    pubsub: PubSub, channels: Sequence[str], rate: float, *, sharded: bool
) -> AsyncIterator[Publishing]:
    """``PUBLISHERS`` paced publishers per channel, ``rate`` a second in all, while the block
    runs; they stop cleanly at its end."""
    senders = [(channel, publisher) for channel in channels for publisher in range(PUBLISHERS)]
    publishing = Publishing(dict.fromkeys(senders, 0))
    async with trio.open_nursery() as nursery:
        publishing.started_at = trio.current_time()
        for sender in senders:
            nursery.start_soon(
                publish_numbers, pubsub, sender, rate / len(senders), publishing, sharded
            )
        try:
            yield publishing
        finally:
            publishing.stop.set()
    publishing.stopped_at = trio.current_time()
