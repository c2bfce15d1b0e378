"""Live updates: ``LiveUpdate`` types published on ``events.{type name}``.

Each update type is an attrs message registered with ``@message_type``; its type name is both
the ``"type"`` field on the wire and the last part of its channel, so one ``events.*`` pattern
subscription receives every update and the codec's tagged union tells them apart.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final

import attrs

from actors.messages import message_type, message_type_name

if TYPE_CHECKING:
    from actors.pubsub import PubSub

UPDATE_CHANNEL_PREFIX: Final = "events."
"""Every update goes out on this prefix followed by its type name."""
UPDATES_PATTERN: Final = "events.*"
"""The pattern that receives every live update; also their metrics channel group."""


@attrs.frozen
class LiveUpdate:
    """Base class of live updates; it has no fields of its own.

    Derive an ``@attrs.frozen`` class and register it with ``@message_type``; the type name
    picks its channel::

        @message_type("price")
        @attrs.frozen(kw_only=True)
        class Price(LiveUpdate):
            symbol: str
            cents: int

    ``publish_update(pubsub, Price(...))`` then publishes on ``events.price``.
    """


@message_type("server_stats")
@attrs.frozen(kw_only=True)
class ServerStats(LiveUpdate):
    """The figures of one server process, published every few seconds.

    Attributes:
        server: The process's name, such as ``"web-1"``.
        sessions: Connected sessions.
        rooms: Active rooms.
        users: Users online.
        sent_at: Wall-clock time of the figures, in seconds since the epoch.
    """

    server: str
    sessions: int
    rooms: int
    users: int
    sent_at: float = attrs.field(factory=time.time)


def update_type_name(update_type: type) -> str:
    """The registered type name of a live update class.

    Raises:
        TypeError: The class is not a ``LiveUpdate`` registered with ``@message_type``.
    """
    if not (isinstance(update_type, type) and issubclass(update_type, LiveUpdate)):
        raise TypeError(f"{update_type!r} is not a LiveUpdate class")
    name = message_type_name(update_type)
    if name is None:
        raise TypeError(
            f"{update_type.__qualname__} is not registered: decorate it with @message_type(...)"
        )
    return name


def update_channel(update_type: type) -> str:
    """The channel updates of a type go out on: ``events.`` and its type name.

    Type names have no glob characters, so the channel is always an exact one.

    Raises:
        TypeError: The class is not a ``LiveUpdate`` registered with ``@message_type``.
    """
    return UPDATE_CHANNEL_PREFIX + update_type_name(update_type)


def registered_update_types() -> tuple[type[LiveUpdate], ...]:
    """Every ``LiveUpdate`` class registered so far in this process, sorted by type name."""
    found: dict[str, type[LiveUpdate]] = {}
    pending = [LiveUpdate]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        name = message_type_name(cls)
        if name is not None:
            found[name] = cls
    return tuple(found[name] for name in sorted(found))


async def publish_update(pubsub: PubSub, update: LiveUpdate) -> int:
    """Publish a live update on ``events.{type name}``.

    Args:
        pubsub: Where to publish.
        update: An instance of a registered ``LiveUpdate`` class.

    Returns:
        The number of receivers Redis counted.

    Raises:
        TypeError: The update is not a registered ``LiveUpdate``.
        RedisConnectionError: The publish failed after its retries.
    """
    channel = update_channel(type(update))
    return await pubsub.publish(channel, update, group=UPDATES_PATTERN)
