"""Chat rooms: a supervised actor per active room, history in Redis, per-user rate limits.

See ``open_chat_service`` and docs/chat.md.
"""

from __future__ import annotations

from actors.server.chat._errors import ChatError, InvalidChatMessageError, RateLimitedError
from actors.server.chat._history import (
    HistoryStore,
    MemoryHistoryStore,
    RedisHistoryStore,
    default_history_store,
)
from actors.server.chat._messages import (
    CHAT_CHANNEL,
    CHAT_SHARDED,
    HISTORY_KEY,
    MAX_TEXT_LENGTH,
    ChatMessage,
    check_text,
    history_key,
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
    "CHAT_SHARDED",
    "DEFAULT_BURST",
    "DEFAULT_HISTORY_SIZE",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_RATE",
    "HISTORY_KEY",
    "MAX_TEXT_LENGTH",
    "ChatError",
    "ChatMessage",
    "ChatService",
    "HistoryStore",
    "InvalidChatMessageError",
    "MemoryHistoryStore",
    "RateLimit",
    "RateLimitedError",
    "RateLimiter",
    "RedisHistoryStore",
    "RoomActor",
    "check_text",
    "default_history_store",
    "history_key",
    "open_chat_service",
    "room_channel",
]
