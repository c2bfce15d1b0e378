"""Presence: who is online per scope, kept in Redis (or memory) and announced by diffs.

Each scope's tracker is a supervised actor; see ``open_presence_tracker``.
"""

from __future__ import annotations

from actors.presence._messages import (
    PRESENCE_CHANNEL,
    PRESENCE_SHARDED,
    PresenceDiff,
    PresenceJoin,
    PresenceLeave,
    presence_channel,
)
from actors.presence._redis_store import RedisPresenceStore, presence_keys
from actors.presence._store import (
    JoinResult,
    MemoryPresenceStore,
    Metadata,
    PresenceStore,
    Removal,
    Snapshot,
)
from actors.presence._tracker import (
    DEFAULT_GRACE,
    DEFAULT_HEARTBEAT,
    DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_SWEEP_INTERVAL,
    DEFAULT_TTL,
    PresenceSettings,
    PresenceStatistics,
    PresenceTracker,
    default_store,
    open_presence_tracker,
)
from actors.presence._view import PresenceChange

__all__ = [
    "DEFAULT_GRACE",
    "DEFAULT_HEARTBEAT",
    "DEFAULT_REQUEST_TIMEOUT",
    "DEFAULT_SWEEP_INTERVAL",
    "DEFAULT_TTL",
    "PRESENCE_CHANNEL",
    "PRESENCE_SHARDED",
    "JoinResult",
    "MemoryPresenceStore",
    "Metadata",
    "PresenceChange",
    "PresenceDiff",
    "PresenceJoin",
    "PresenceLeave",
    "PresenceSettings",
    "PresenceStatistics",
    "PresenceStore",
    "PresenceTracker",
    "RedisPresenceStore",
    "Removal",
    "Snapshot",
    "default_store",
    "open_presence_tracker",
    "presence_channel",
    "presence_keys",
]
