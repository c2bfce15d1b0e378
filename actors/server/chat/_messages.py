"""Chat messages, room names and the checks made before anything is sent."""

from __future__ import annotations

from typing import Final

import attrs

from actors.messages import Message, channel_name, check_room_name, message_type
from actors.server.chat._errors import InvalidChatMessageError

CHAT_CHANNEL: Final = "chat:{room}"
HISTORY_KEY: Final = "chat:{room}:history"
CHAT_SHARDED: Final = True
"""A room's messages travel on a shard channel (``SPUBLISH``/``SSUBSCRIBE``): on a cluster they
stay on the master that owns the room's slot, where its history is; subscribe to
``room_channel(room)`` with ``sharded=True`` to hear them."""
MAX_TEXT_LENGTH: Final = 2000  # characters


@message_type("chat.message")
@attrs.frozen(kw_only=True)
class ChatMessage(Message):
    """One message said in a room, as published on ``chat:{room}`` (the room in braces, a shard
    channel) and kept in its history."""

    room: str
    user_id: str
    text: str
    sent_at: float = 0.0
    """Wall-clock time of sending, in seconds since the epoch."""


def room_channel(room: str) -> str:
    """The shard channel a room's messages go out on, ``chat:{room}`` with the room as its hash
    tag (``chat:{lobby}``): the slot of the room's history.

    Raises:
        InvalidIdentifierError: The room name breaks the rule of room names.
    """
    return channel_name(CHAT_CHANNEL, room=check_room_name(room), hash_tag="room")


def history_key(room: str) -> str:
    """The Redis list holding a room's recent messages, ``chat:{room}:history`` with the room as
    its hash tag (``chat:{lobby}:history``)."""
    return channel_name(HISTORY_KEY, room=check_room_name(room), hash_tag="room")


def check_text(text: str, max_length: int = MAX_TEXT_LENGTH) -> str:
    """Return ``text`` if it may be sent.

    Raises:
        InvalidChatMessageError: It is not a string, is empty or blank, or is longer than
            ``max_length`` characters.
    """
    if not isinstance(text, str):
        raise InvalidChatMessageError(f"text must be a str, not {type(text).__name__}")
    if not text.strip():
        raise InvalidChatMessageError("text is empty")
    if len(text) > max_length:
        raise InvalidChatMessageError(
            f"text is {len(text)} characters long; the limit is {max_length}"
        )
    return text
