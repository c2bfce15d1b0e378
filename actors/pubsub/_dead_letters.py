"""Ready-made dead-letter sinks: a capped Redis list, or a channel."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import orjson

from actors._errors import RedisError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from actors.pubsub._broker import Broker
    from actors.pubsub._policy import DeadLetter
    from actors.pubsub._redis import RedisPubSub

logger = logging.getLogger(__name__)


def dead_letter_record(letter: DeadLetter) -> bytes:
    """A dead letter as JSON: channel, subscription, reason, error type, time and raw payload.

    The payload is kept as text when it is valid UTF-8, and as a list of byte values otherwise,
    so that the record itself is always valid JSON.
    """
    try:
        payload: object = letter.payload.decode()
    except UnicodeDecodeError:
        payload = list(letter.payload)
    return orjson.dumps(
        {
            "channel": letter.channel.decode(errors="replace"),
            "subscription": letter.subscription.decode(errors="replace"),
            "reason": letter.reason,
            "error": type(letter.error).__name__ if letter.error is not None else None,
            "at": time.time(),
            "payload": payload,
        }
    )


def dead_letters_to_list(
    broker: RedisPubSub, key: str, *, cap: int = 1000
) -> Callable[[DeadLetter], Awaitable[None]]:
    """A sink that pushes each dead letter onto a Redis list, keeping the newest ``cap``.

    ``LPUSH`` then ``LTRIM`` in one pipelined round trip. If Redis is unreachable the letter
    is logged and dropped: a dead-letter sink must never block a subscription for long.
    """
    if cap < 1:
        raise ValueError(f"cap must be at least 1: {cap}")

    async def sink(letter: DeadLetter) -> None:
        record = dead_letter_record(letter)
        try:
            connection = broker.connection()
            await connection.execute("LPUSH", key, record)
            await connection.execute("LTRIM", key, 0, cap - 1)
        except RedisError as error:
            logger.warning("dead letter for %r dropped: %s", letter.channel, error)

    return sink


def dead_letters_to_channel(
    broker: Broker, channel: str
) -> Callable[[DeadLetter], Awaitable[None]]:
    """A sink that publishes each dead letter, as a JSON record, on a channel."""

    async def sink(letter: DeadLetter) -> None:
        try:
            await broker.publish(channel, dead_letter_record(letter))
        except RedisError as error:
            logger.warning("dead letter for %r dropped: %s", letter.channel, error)

    return sink
