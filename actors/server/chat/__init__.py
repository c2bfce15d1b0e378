"""Chat rooms: a supervised actor per active room, history in the rooms' channels, rate limits.

See ``open_chat_service`` and docs/chat.md.
"""

from __future__ import annotations

from actors.server.chat._errors import ChatError, InvalidChatMessageError, RateLimitedError
from actors.server.chat._history import (
    CHAT_CHANNELS,
    DEFAULT_HISTORY_TTL,
    RoomHistory,
    chat_history,
)
from actors.server.chat._messages import (
    CHAT_CHANNEL,
    CHAT_SHARDED,
    MAX_TEXT_LENGTH,
    ChatMessage,
    check_text,
    room_channel,
)
from actors.server.chat._rate import DEFAULT_BURST, DEFAULT_RATE, RateLimit, RateLimiter
from actors.server.chat._service import (
    DEFAULT_HISTORY_SIZE,
    DEFAULT_IDLE_TIMEOUT,
    ChatService,
    RoomActor,
    open_chat_service,
)

__all__ = [
    "CHAT_CHANNEL",
    "CHAT_CHANNELS",
    "CHAT_SHARDED",
    "DEFAULT_BURST",
    "DEFAULT_HISTORY_SIZE",
    "DEFAULT_HISTORY_TTL",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_RATE",
    "MAX_TEXT_LENGTH",
    "ChatError",
    "ChatMessage",
    "ChatService",
    "InvalidChatMessageError",
    "RateLimit",
    "RateLimitedError",
    "RateLimiter",
    "RoomActor",
    "RoomHistory",
    "chat_history",
    "check_text",
    "open_chat_service",
    "room_channel",
]
