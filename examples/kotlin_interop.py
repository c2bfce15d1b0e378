"""Talking to the integration guide's Kotlin services: their message classes, mirrored.

Runs by itself: ``python examples/kotlin_interop.py`` decodes what kotlinx.serialization's
default ``Json`` writes for the guide's classes (recorded from a real Kotlin program, see
tests/test_kotlin_peer.py) and encodes the same values back, byte for byte where kotlinx would
write the same. tests/test_kotlin_interop.py runs these classes against the real Kotlin program.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

import attrs
import orjson

from actors import Codec, message_type, untagged
from actors.messages import FieldNaming, UnknownKeys

# docs: start codec
# kotlinx's default Json: camelCase properties, enum constants by name, unknown keys refused;
# the discriminator is "type", holding the class's serial name.
KOTLIN = Codec(
    field_naming=FieldNaming.CAMEL_CASE,
    enums_by_name=True,
    unknown_keys=UnknownKeys.FORBID,
)
# docs: end codec

# docs: start plain


# A plain @Serializable class: no discriminator, so not registered; a field may be "type".
@attrs.frozen(kw_only=True)
class Notification:
    type: str
    title: str


@attrs.frozen(kw_only=True)
class NotificationMessage:
    user_id: str
    notification: Notification
    timestamp: datetime


@attrs.frozen(kw_only=True)
class Event:
    id: str
    type: str


# docs: end plain
# docs: start sealed


class PresenceStatus(enum.Enum):
    ONLINE = "online"
    AWAY = "away"


@attrs.frozen(kw_only=True)
class UserPresence:
    status: PresenceStatus
    last_seen: datetime


# A sealed class's members: registered under the serial names kotlinx writes (the class name,
# qualified by the package when there is one: "com.acme.chat.UserOnline").
@message_type("UserOnline")
@attrs.frozen(kw_only=True)
class UserOnline:
    user_id: str
    presence: UserPresence


@message_type("UserOffline")
@attrs.frozen(kw_only=True)
class UserOffline:
    user_id: str


PresenceMessage = UserOnline | UserOffline


# docs: end sealed
# docs: start clash


# The guide's PubSubMessage.Notification has a property named "type", the discriminator:
# kotlinx cannot write it through its sealed base, only through its own serializer. Here it is
# a plain class, read and written without a discriminator.
@attrs.frozen(kw_only=True)
class PubSubNotification:
    id: str
    timestamp: datetime
    user_id: str
    type: str
    data: dict[str, Any]


# docs: end clash


@attrs.frozen(kw_only=True)
class ChatMessage:
    id: str
    timestamp: datetime
    room: str
    user_id: str
    text: str
    sent_at: float


@message_type("DataUpdate")
@attrs.frozen(kw_only=True)
class DataUpdate:
    id: str
    timestamp: datetime
    key: str
    values: list[float]


@message_type("ConfigUpdate")
@attrs.frozen(kw_only=True)
class ConfigUpdate:
    id: str
    timestamp: datetime
    settings: dict[str, str]


@message_type("StatusUpdate")
@attrs.frozen(kw_only=True)
class StatusUpdate:
    id: str
    timestamp: datetime
    status: str
    healthy: bool


LiveUpdate = DataUpdate | ConfigUpdate | StatusUpdate

# docs: start kinds
# What a payload of each Kotlin type decodes into, and is published as: a sealed base as the
# union of its members (tagged), a member used on its own as untagged(cls), a plain class as it.
AS_KOTLIN_TYPE: dict[str, object] = {
    "NotificationMessage": NotificationMessage,
    "Notification": Notification,
    "Event": Event,
    "PresenceMessage": PresenceMessage,
    "UserOnline": untagged(UserOnline),
    "UserOffline": untagged(UserOffline),
    "UserPresence": UserPresence,
    "PubSubMessage.Notification": PubSubNotification,
    "ChatMessage": ChatMessage,
    "LiveUpdate": LiveUpdate,
    "DataUpdate": untagged(DataUpdate),
    "ConfigUpdate": untagged(ConfigUpdate),
    "StatusUpdate": untagged(StatusUpdate),
}
# docs: end kinds

AT = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
SEEN = datetime(2024, 5, 1, 12, 29, 59, 250_000, tzinfo=UTC)
NOTIFICATION = Notification(type="friend-request", title="Ada wants to connect")
ONLINE = UserOnline(
    user_id="user-42", presence=UserPresence(status=PresenceStatus.ONLINE, last_seen=SEEN)
)
OFFLINE = UserOffline(user_id="user-42")
DATA = DataUpdate(id="d1", timestamp=AT, key="prices", values=[1.5, 2.25, 3.0])
CONFIG = ConfigUpdate(id="c1", timestamp=AT, settings={"theme": "dark"})
STATUS = StatusUpdate(id="s1", timestamp=AT, status="degraded", healthy=False)

SAMPLES: list[tuple[str, object]] = [
    (
        "NotificationMessage",
        NotificationMessage(user_id="user-42", notification=NOTIFICATION, timestamp=AT),
    ),
    ("Notification", NOTIFICATION),
    ("Event", Event(id="e1", type="deploy")),
    ("PresenceMessage", ONLINE),
    ("PresenceMessage", OFFLINE),
    ("UserOnline", ONLINE),
    ("UserOffline", OFFLINE),
    ("UserPresence", ONLINE.presence),
    (
        "PubSubMessage.Notification",
        PubSubNotification(
            id="9b1d", timestamp=AT, user_id="user-42", type="mention", data={"post": 7}
        ),
    ),
    (
        "ChatMessage",
        ChatMessage(
            id="m1",
            timestamp=AT,
            room="rust-fans",
            user_id="user-42",
            text='Grüße, "Ada" \\ ✓\nbye',
            sent_at=1714566600.5,
        ),
    ),
    ("LiveUpdate", DATA),
    ("LiveUpdate", CONFIG),
    ("LiveUpdate", STATUS),
    ("DataUpdate", DATA),
    ("ConfigUpdate", CONFIG),
    ("StatusUpdate", STATUS),
]
"""The values the Kotlin peer publishes (tests/kotlin/GuidePeer.kt, ``SAMPLES``), by kind."""

# docs: start decode
FROM_KOTLIN = (
    b'{"type":"UserOnline","userId":"user-42",'
    b'"presence":{"status":"ONLINE","lastSeen":"2024-05-01T12:29:59.250Z"}}'
)
# docs: end decode


def main() -> None:
    # docs: start roundtrip
    online = KOTLIN.decode(FROM_KOTLIN, PresenceMessage)
    assert online == ONLINE
    print(KOTLIN.encode(online).decode())
    # A member published on its own, as kotlinx does with UserOnline.serializer():
    print(KOTLIN.encode(online, as_type=untagged(UserOnline)).decode())
    # docs: end roundtrip
    for kind, value in SAMPLES:
        payload = KOTLIN.encode(value, as_type=AS_KOTLIN_TYPE[kind])
        assert KOTLIN.decode(payload, AS_KOTLIN_TYPE[kind]) == value, kind
        print(f"{kind}: {orjson.loads(payload)}")


if __name__ == "__main__":
    main()
