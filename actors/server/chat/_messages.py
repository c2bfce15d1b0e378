"""Chat messages, room names and the checks made before anything is sent."""

from __future__ import annotations

from typing import Final

import attrs

from actors.messages import Message, channel_name, check_room_name, message_type
from actors.server.chat._errors import InvalidChatMessageError

CHAT_CHANNEL: Final = "chat:{room}"
CHAT_SHARDED: Final = False
"""A room's messages travel on the classic channel the integration guide's ``ChatService``
uses (``chat:$roomId``), so services written from the guide keep talking to our rooms. On a
cluster a classic channel reaches every node (a room's traffic is not kept in one shard, unlike
its typing notices and presence diffs); its history's keys share the channel's slot."""
MAX_TEXT_LENGTH: Final = 2000  # characters


@message_type("chat.message")
@attrs.frozen(kw_only=True)
class ChatMessage(Message):
    """One message said in a room, as published on ``chat:{room}`` and kept in its history."""

    room: str
    user_id: str
    text: str
    sent_at: float = 0.0
    """Wall-clock time of sending, in seconds since the epoch."""


def room_channel(room: str) -> str:
    """The channel a room's messages go out on, ``chat:{room}`` (``chat:lobby``): a classic
    channel, the integration guide's name.

    Raises:
        InvalidIdentifierError: The room name breaks the rule of room names.
    """
    return channel_name(CHAT_CHANNEL, room=check_room_name(room))


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
