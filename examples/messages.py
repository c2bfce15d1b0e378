"""Typed messages: the integration guide's message kinds, encoded, decoded and dispatched.

Runs by itself: ``python examples/messages.py``.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

import attrs

from actors import Message, MessageDecodeError, channel_name, message_type
from actors.messages import CODEC, enum_by_name, escape_glob

# docs: start notification


@attrs.frozen
class Notification:
    """Not a message itself: a plain attrs class nested inside one (no "type" field)."""

    type: str
    title: str


@message_type("notification")
@attrs.frozen(kw_only=True)
class NotificationMessage(Message):
    user_id: str
    notification: Notification


# docs: end notification
# docs: start pubsub


@message_type("pubsub.notification")
@attrs.frozen(kw_only=True)
class PubSubNotification(Message):
    user_id: str
    kind: str  # the guide's `type`: renamed, because "type" is the discriminator
    data: dict[str, Any]


# docs: end pubsub
# docs: start presence


@enum_by_name  # "ONLINE" on the wire, as Kotlin writes an enum constant
class PresenceStatus(enum.Enum):
    ONLINE = "online"
    AWAY = "away"


@attrs.frozen
class UserPresence:
    status: PresenceStatus
    last_seen: datetime


@message_type("user-online")
@attrs.frozen(kw_only=True)
class UserOnline(Message):
    user_id: str
    presence: UserPresence


@message_type("user-offline")
@attrs.frozen(kw_only=True)
class UserOffline(Message):
    user_id: str


PresenceMessage = UserOnline | UserOffline

# docs: end presence
# docs: start live-updates


@message_type("data-update")
@attrs.frozen(kw_only=True)
class DataUpdate(Message):
    key: str
    values: list[float]


@message_type("config-update")
@attrs.frozen(kw_only=True)
class ConfigUpdate(Message):
    settings: dict[str, str]


@message_type("status-update")
@attrs.frozen(kw_only=True)
class StatusUpdate(Message):
    status: str
    healthy: bool


LiveUpdate = DataUpdate | ConfigUpdate | StatusUpdate


def describe(update: LiveUpdate) -> str:
    match update:
        case DataUpdate(key=key, values=values):
            return f"data {key}: {len(values)} values"
        case ConfigUpdate(settings=settings):
            return f"config: {sorted(settings)}"
        case StatusUpdate(status=status, healthy=healthy):
            return f"status {status} (healthy: {healthy})"


# docs: end live-updates


def main() -> None:
    at = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    # docs: start encode
    message = NotificationMessage(
        id="4f2a0c1e",
        timestamp=at,
        user_id="user-42",
        notification=Notification(type="friend-request", title="Ada wants to connect"),
    )
    payload = CODEC.encode(message)
    print(payload.decode())
    assert CODEC.decode(payload, NotificationMessage) == message
    # docs: end encode
    others: list[Message] = [
        PubSubNotification(
            id="9b1d", timestamp=at, user_id="user-42", kind="mention", data={"post": 7}
        ),
        UserOnline(
            id="77aa",
            timestamp=at,
            user_id="user-42",
            presence=UserPresence(status=PresenceStatus.ONLINE, last_seen=at),
        ),
        UserOffline(id="77ab", timestamp=at, user_id="user-42"),
        DataUpdate(id="d1", timestamp=at, key="prices", values=[1.5, 2.25]),
        ConfigUpdate(id="c1", timestamp=at, settings={"theme": "dark"}),
        StatusUpdate(id="s1", timestamp=at, status="degraded", healthy=False),
    ]
    for other in others:
        print(CODEC.encode(other).decode())

    # docs: start union
    presence: dict[str, UserPresence] = {}
    for update in [others[1], others[2]]:
        match CODEC.decode(CODEC.encode(update), PresenceMessage):
            case UserOnline(user_id=user_id, presence=state):
                presence[user_id] = state
            case UserOffline(user_id=user_id):
                presence.pop(user_id, None)
    # docs: end union
    print("presence after online then offline:", presence)
    for update in others[3:]:
        decoded = CODEC.decode(CODEC.encode(update), LiveUpdate)
        print("live update:", describe(decoded))

    # docs: start errors
    try:
        CODEC.decode(b'{"type": "user-online", "user_id": 42}', PresenceMessage)
    except MessageDecodeError as error:
        print("refused:", error.reason, list(error.errors))
    # docs: end errors

    # docs: start channels
    room = channel_name("chat:{room}", room="rust-fans")
    pattern = escape_glob("prices[eur]") + ".*"
    print("channel:", room, "pattern:", pattern)
    # docs: end channels
    print("plain payloads:", CODEC.encode("hello"), CODEC.decode(b'{"a": 1}', dict))


if __name__ == "__main__":
    main()
