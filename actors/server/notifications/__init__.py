"""Notifications per user and for everybody, and live updates dispatched by type.

See ``Notifier``, ``UpdateDispatcher`` and docs/notifications.md.
"""

from __future__ import annotations

from actors.server.notifications._dispatch import CLOSE_GRACE, UpdateDispatcher
from actors.server.notifications._errors import InvalidNotificationError
from actors.server.notifications._messages import (
    BROADCAST_CHANNEL,
    MAX_BODY_LENGTH,
    MAX_DATA_ENTRIES,
    MAX_KIND_LENGTH,
    MAX_TITLE_LENGTH,
    USER_CHANNEL,
    USER_CHANNEL_GROUP,
    Notification,
    check_body,
    check_data,
    check_kind,
    check_title,
    new_notification_id,
    user_channel,
)
from actors.server.notifications._notifier import DEFAULT_USER_HISTORY, USER_CHANNELS, Notifier
from actors.server.notifications._updates import (
    UPDATE_CHANNEL_PREFIX,
    UPDATES_PATTERN,
    LiveUpdate,
    ServerStats,
    publish_update,
    registered_update_types,
    update_channel,
    update_type_name,
)

__all__ = [
    "BROADCAST_CHANNEL",
    "CLOSE_GRACE",
    "DEFAULT_USER_HISTORY",
    "MAX_BODY_LENGTH",
    "MAX_DATA_ENTRIES",
    "MAX_KIND_LENGTH",
    "MAX_TITLE_LENGTH",
    "UPDATES_PATTERN",
    "UPDATE_CHANNEL_PREFIX",
    "USER_CHANNEL",
    "USER_CHANNELS",
    "USER_CHANNEL_GROUP",
    "InvalidNotificationError",
    "LiveUpdate",
    "Notification",
    "Notifier",
    "ServerStats",
    "UpdateDispatcher",
    "check_body",
    "check_data",
    "check_kind",
    "check_title",
    "new_notification_id",
    "publish_update",
    "registered_update_types",
    "update_channel",
    "update_type_name",
    "user_channel",
]
