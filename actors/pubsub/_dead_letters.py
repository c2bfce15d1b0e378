"""Ready-made dead-letter sinks: a capped Redis list, or a channel."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Final

import orjson
import trio

from actors._errors import RedisError
from actors.redis import Script

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from actors.pubsub._broker import Broker
    from actors.pubsub._policy import DeadLetter

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


DEAD_LETTER_WAIT: Final = 1.0  # seconds
"""How long ``dead_letters_to_list`` waits for a connection (a reconnect, a cluster's slot map)
and for Redis to answer before it drops a letter."""

PUSH_SCRIPT: Final = Script(
    """
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
return 1
"""
)
"""KEYS: the list. ARGV: the record, the most records to keep."""


def dead_letters_to_list(
    broker: Broker, key: str, *, cap: int = 1000, wait: float = DEAD_LETTER_WAIT
) -> Callable[[DeadLetter], Awaitable[None]]:
    """A sink that pushes each dead letter onto a Redis list, keeping the newest ``cap``.

    ``LPUSH`` then ``LTRIM`` in one script (one round trip, one key: on a cluster it runs on the
    master of the key's slot). If Redis does not answer within ``wait`` seconds the letter is
    logged and dropped: a dead-letter sink must never block a subscription for long.

    Args:
        broker: A broker with Redis (``redis://``, ``redis+cluster://``...): its
            ``command_connection``.
        key: The list.
        cap: The most records the list keeps.
        wait: Seconds a letter may wait for a connection and its answer.

    Raises:
        ValueError: ``cap`` is below 1, or ``wait`` is not positive.
        TypeError: The broker has no Redis (``memory://``).
    """
    if cap < 1:
        raise ValueError(f"cap must be at least 1: {cap}")
    if not wait > 0:
        raise ValueError(f"wait must be positive: {wait}")
    connect = broker.command_connection()
    if connect is None:
        raise TypeError(f"{type(broker).__name__} keeps no Redis list; use a Redis broker")

    async def sink(letter: DeadLetter) -> None:
        record = dead_letter_record(letter)
        pushed = False
        try:
            with trio.move_on_after(wait):
                await PUSH_SCRIPT.run(await connect(), [key], [record, cap])
                pushed = True
        except RedisError as error:
            logger.warning(
                "dead letter for %r dropped: %s",
                letter.channel,
                error,
                extra={"channel": letter.channel},
            )
            return
        if not pushed:
            logger.warning(
                "dead letter for %r dropped: no answer within %s s",
                letter.channel,
                wait,
                extra={"channel": letter.channel},
            )

    return sink


def dead_letters_to_channel(
    broker: Broker, channel: str
) -> Callable[[DeadLetter], Awaitable[None]]:
    """A sink that publishes each dead letter, as a JSON record, on a channel."""

    async def sink(letter: DeadLetter) -> None:
        try:
            await broker.publish(channel, dead_letter_record(letter))
        except RedisError as error:
            logger.warning(
                "dead letter for %r dropped: %s",
                letter.channel,
                error,
                extra={"channel": letter.channel},
            )

    return sink
