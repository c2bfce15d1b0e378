"""The wire options a service in another language needs (issue 15, requirements 1 to 4).

No discriminator for a plain class or ``untagged(cls)``; the discriminator's key per codec and
per union; camelCase field names; enums by name; unknown keys ignored or refused. Each option
codec-wide and per type, in both directions. ``tests/test_kotlin_interop.py`` proves them
against a real kotlinx.serialization program.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

import attrs
import orjson
import pytest
import trio

from actors import (
    Codec,
    Message,
    MessageDecodeError,
    message_type,
    open_actor_system,
    tagged_union,
    untagged,
)
from actors.messages import CODEC, FieldNaming, UnknownKeys, enum_by_name, field_naming
from actors.pubsub import open_pubsub

AT = datetime(2026, 12, 4, 12, 5, 0, 250_000, tzinfo=UTC)


class Status(enum.Enum):
    ONLINE = "online"
    AWAY = "away"


@enum_by_name
class Colour(enum.Enum):
    RED = "r"
    GREEN = "g"


@attrs.frozen
class Presence:
    status: Status
    last_seen: datetime


@message_type("Online")
@attrs.frozen(kw_only=True)
class UserOnline:
    user_id: str
    presence: Presence


@message_type("PresenceMessage.Offline")
@attrs.frozen(kw_only=True)
class UserOffline:
    user_id: str


@message_type("com.example.PubSubMessage.Notification")
@attrs.frozen(kw_only=True)
class FullyQualified(Message):
    user_id: str


@field_naming(FieldNaming.CAMEL_CASE)
@attrs.frozen(kw_only=True)
class ChatMessage:
    """Not registered: written and read without a discriminator, as kotlinx writes a plain
    ``@Serializable`` class; its own naming, whatever the codec's."""

    room_id: str
    user_id: str
    text: str
    sent_at: datetime
    colour: Colour


@attrs.frozen(kw_only=True)
class Event:
    id: str
    type: str
    payload_size: int


CAMEL = Codec(field_naming=FieldNaming.CAMEL_CASE, enums_by_name=True)
STRICT = Codec(unknown_keys=UnknownKeys.FORBID)
KIND = Codec(discriminator="kind")


def json(payload: bytes) -> Any:
    return orjson.loads(payload)


# -- requirement 1: untagged ---------------------------------------------------------------------


def test_a_plain_class_has_no_discriminator_and_may_have_a_field_called_type() -> None:
    event = Event(id="e1", type="deploy", payload_size=3)
    assert json(CODEC.encode(event)) == {"id": "e1", "type": "deploy", "payload_size": 3}
    assert CODEC.decode(b'{"id":"e1","type":"deploy","payload_size":3}', Event) == event


def test_a_registered_class_is_used_both_ways() -> None:
    online = UserOnline(user_id="ada", presence=Presence(status=Status.AWAY, last_seen=AT))
    tagged = CODEC.encode(online)
    plain = CODEC.encode(online, as_type=untagged(UserOnline))
    assert json(tagged) == {"type": "Online", **json(plain)}
    assert "type" not in json(plain)
    assert CODEC.decode(tagged, UserOnline | UserOffline) == online
    assert CODEC.decode(plain, untagged(UserOnline)) == online
    with pytest.raises(MessageDecodeError, match="missing type tag 'type'"):
        CODEC.decode(plain, UserOnline)


# -- requirement 2: the discriminator and its values ---------------------------------------------


def test_tag_values_may_be_kotlin_simple_nested_or_qualified_names() -> None:
    offline = UserOffline(user_id="ada")
    assert json(CODEC.encode(offline)) == {"type": "PresenceMessage.Offline", "user_id": "ada"}
    qualified = FullyQualified(user_id="ada", id="n1", timestamp=AT)
    assert json(CODEC.encode(qualified))["type"] == "com.example.PubSubMessage.Notification"
    assert CODEC.decode(CODEC.encode(qualified), FullyQualified) == qualified


def test_the_discriminator_is_set_per_codec_and_per_union() -> None:
    offline = UserOffline(user_id="ada")
    assert json(KIND.encode(offline)) == {"kind": "PresenceMessage.Offline", "user_id": "ada"}
    assert KIND.decode(b'{"kind":"PresenceMessage.Offline","user_id":"b"}', UserOffline) == (
        UserOffline(user_id="b")
    )
    at_type = tagged_union(UserOnline | UserOffline, discriminator="@type")
    payload = CODEC.encode(offline, as_type=at_type)
    assert json(payload) == {"@type": "PresenceMessage.Offline", "user_id": "ada"}
    assert CODEC.decode(payload, at_type) == offline
    with pytest.raises(MessageDecodeError, match="missing type tag '@type'"):
        CODEC.decode(b'{"type":"PresenceMessage.Offline","user_id":"b"}', at_type)
    with pytest.raises(ValueError, match="invalid discriminator"):
        tagged_union(UserOffline, discriminator="no spaces")


# -- requirement 3 and field naming: as Kotlin writes them ---------------------------------------


def test_camel_case_names_and_enum_names_both_ways_nested_included() -> None:
    online = UserOnline(user_id="ada", presence=Presence(status=Status.ONLINE, last_seen=AT))
    payload = CAMEL.encode(online)
    assert json(payload) == {
        "type": "Online",
        "userId": "ada",
        "presence": {"status": "ONLINE", "lastSeen": "2026-12-04T12:05:00.250000Z"},
    }
    assert CAMEL.decode(payload, UserOnline) == online
    with pytest.raises(MessageDecodeError) as refused:
        CAMEL.decode(
            b'{"type":"Online","userId":"a","presence":{"status":"online","lastSeen":'
            b'"2026-12-04T12:05:00Z"}}',
            UserOnline,
        )
    assert "'online' is not one of ONLINE, AWAY @ $.presence.status" in refused.value.errors


def test_a_class_and_an_enum_keep_their_own_settings_under_any_codec() -> None:
    chat = ChatMessage(room_id="r", user_id="u", text="hi", sent_at=AT, colour=Colour.GREEN)
    expected = {
        "roomId": "r",
        "userId": "u",
        "text": "hi",
        "sentAt": "2026-12-04T12:05:00.250000Z",
        "colour": "GREEN",
    }
    for codec in (CODEC, CAMEL, STRICT):
        assert json(codec.encode(chat)) == expected
        assert codec.decode(orjson.dumps(expected), ChatMessage) == chat


# -- requirement 4: unknown keys -----------------------------------------------------------------


def test_unknown_keys_are_ignored_by_default_and_refused_when_asked() -> None:
    extra = b'{"type":"PresenceMessage.Offline","user_id":"a","added_later":1}'
    assert CODEC.decode(extra, UserOffline) == UserOffline(user_id="a")
    with pytest.raises(MessageDecodeError) as refused:
        STRICT.decode(extra, UserOffline)
    assert any("added_later" in line for line in refused.value.errors)
    # The discriminator is no unknown key, and nested objects are held to the same rule.
    assert STRICT.decode(extra.replace(b',"added_later":1', b""), UserOffline) == UserOffline(
        user_id="a"
    )
    nested = (
        b'{"type":"Online","user_id":"a","presence":'
        b'{"status":"online","last_seen":"2026-12-04T12:05:00Z","mood":"fine"}}'
    )
    assert CODEC.decode(nested, UserOnline).user_id == "a"
    with pytest.raises(MessageDecodeError):
        STRICT.decode(nested, UserOnline)


def test_only_declared_fields_are_written() -> None:
    """A ``Message`` writes its id and timestamp because it declares them; a plain class
    writes its own fields only, so a receiver that refuses unknown keys takes it."""
    assert set(json(CODEC.encode(FullyQualified(user_id="a")))) == {
        "type",
        "id",
        "timestamp",
        "user_id",
    }
    assert set(json(CODEC.encode(UserOffline(user_id="a")))) == {"type", "user_id"}


# -- through PubSub ------------------------------------------------------------------------------


async def test_a_subscription_and_a_publish_name_an_untagged_class() -> None:
    received: list[object] = []
    done = trio.Event()

    async def on_chat(message: ChatMessage) -> None:  # the annotation is the message type
        received.append(message)
        if len(received) == 2:
            done.set()

    async def on_online(message: object) -> None:
        received.append(message)
        if len(received) == 2:
            done.set()

    chat = ChatMessage(room_id="r", user_id="u", text="hi", sent_at=AT, colour=Colour.RED)
    online = UserOnline(user_id="ada", presence=Presence(status=Status.AWAY, last_seen=AT))
    async with open_actor_system() as system, open_pubsub(system) as pubsub:
        await pubsub.subscribe("chat", on_chat)
        await pubsub.subscribe("plain", on_online, message_type=untagged(UserOnline))
        await pubsub.publish("plain", online, as_type=untagged(UserOnline))
        await pubsub.publish("chat", chat)
        with trio.fail_after(5):
            await done.wait()
    assert set(received) == {online, chat}
