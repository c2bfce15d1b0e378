"""What real kotlinx.serialization writes and accepts for the integration guide's message classes.

The Kotlin peer (tests/kotlin/GuidePeer.kt) is compiled with the real Kotlin compiler and the
kotlinx.serialization plugin, and runs with kotlinx.serialization 1.9.0 and the default ``Json``,
as the guide uses it. These tests talk to it through a private redis-server with raw bytes only,
no ``actors`` codec, and record kotlinx's behaviour byte for byte: the payloads below are exactly
what kotlinx wrote, and the refusals are what kotlinx said.
"""

from __future__ import annotations

import json
import re

import pytest
import trio
from kotlin_peer import KINDS, KotlinPeer, PeerLine
from push_collector import PushCollector

from actors.redis import open_redis_connection
from actors.testing import RedisServer

TIMEOUT = 30.0

SEALED_BASES = frozenset({"PresenceMessage", "PubSubMessage", "LiveUpdate"})
SEALED_MEMBERS = frozenset(
    {"UserOnline", "UserOffline", "DataUpdate", "ConfigUpdate", "StatusUpdate"}
)
WITH_TYPE_PROPERTY = frozenset({"Notification", "Event", "PubSubMessage.Notification"})
CAMEL_CASE = re.compile(r"[a-z]+([A-Z][a-z]*)*")

DISCRIMINATOR_CONFLICT = (
    "IllegalStateException: Sealed class 'PubSubMessage.Notification' cannot be serialized as "
    "base class 'PubSubMessage' because it has property name that conflicts with JSON class "
    "discriminator 'type'. You can either change class discriminator in JsonConfiguration, "
    "rename property with @SerialName annotation or fall back to array polymorphism"
)

# What `publish` printed and published, in order: each kind's sample through that kind's
# serializer. Sealed bases write the discriminator "type" first, holding the class name (the
# classes are in the default package); a member encoded through its own serializer writes none.
PUBLISHED = [
    PeerLine(
        "NotificationMessage",
        json='{"userId":"user-42","notification":{"type":"friend-request",'
        '"title":"Ada wants to connect"},"timestamp":"2024-05-01T12:30:00Z"}',
    ),
    PeerLine("Notification", json='{"type":"friend-request","title":"Ada wants to connect"}'),
    PeerLine("Event", json='{"id":"e1","type":"deploy"}'),
    PeerLine(
        "PresenceMessage",
        json='{"type":"UserOnline","userId":"user-42",'
        '"presence":{"status":"ONLINE","lastSeen":"2024-05-01T12:29:59.250Z"}}',
    ),
    PeerLine("PresenceMessage", json='{"type":"UserOffline","userId":"user-42"}'),
    PeerLine(
        "UserOnline",
        json='{"userId":"user-42",'
        '"presence":{"status":"ONLINE","lastSeen":"2024-05-01T12:29:59.250Z"}}',
    ),
    PeerLine("UserOffline", json='{"userId":"user-42"}'),
    PeerLine("UserPresence", json='{"status":"ONLINE","lastSeen":"2024-05-01T12:29:59.250Z"}'),
    # The guide's PubSubMessage.Notification has a property named "type": through its sealed
    # base, the default Json refuses to write it at all.
    PeerLine("PubSubMessage", error=f"encode: {DISCRIMINATOR_CONFLICT}"),
    PeerLine(
        "PubSubMessage.Notification",
        json='{"id":"9b1d","timestamp":"2024-05-01T12:30:00Z","userId":"user-42",'
        '"type":"mention","data":{"post":7}}',
    ),
    PeerLine(
        "ChatMessage",
        json='{"id":"m1","timestamp":"2024-05-01T12:30:00Z","room":"rust-fans",'
        '"userId":"user-42","text":"Grüße, \\"Ada\\" \\\\ ✓\\nbye","sentAt":1.7145666005E9}',
    ),
    PeerLine(
        "LiveUpdate",
        json='{"type":"DataUpdate","id":"d1","timestamp":"2024-05-01T12:30:00Z",'
        '"key":"prices","values":[1.5,2.25,3.0]}',
    ),
    PeerLine(
        "LiveUpdate",
        json='{"type":"ConfigUpdate","id":"c1","timestamp":"2024-05-01T12:30:00Z",'
        '"settings":{"theme":"dark"}}',
    ),
    PeerLine(
        "LiveUpdate",
        json='{"type":"StatusUpdate","id":"s1","timestamp":"2024-05-01T12:30:00Z",'
        '"status":"degraded","healthy":false}',
    ),
    PeerLine(
        "DataUpdate",
        json='{"id":"d1","timestamp":"2024-05-01T12:30:00Z","key":"prices",'
        '"values":[1.5,2.25,3.0]}',
    ),
    PeerLine(
        "ConfigUpdate",
        json='{"id":"c1","timestamp":"2024-05-01T12:30:00Z","settings":{"theme":"dark"}}',
    ),
    PeerLine(
        "StatusUpdate",
        json='{"id":"s1","timestamp":"2024-05-01T12:30:00Z","status":"degraded","healthy":false}',
    ),
]

# Hand-written payloads for `receive`: (kind, payload, what kotlinx made of it). A JSON result is
# the decoded value encoded again, exactly; an error result is the start of kotlinx's refusal.
ACCEPTED = [
    # kotlinx's own output reads back as it was written.
    (
        "NotificationMessage",
        '{"userId":"u1","notification":{"type":"t","title":"x"},"timestamp":"2024-05-01T12:30:00Z"}',
        '{"userId":"u1","notification":{"type":"t","title":"x"},"timestamp":"2024-05-01T12:30:00Z"}',
    ),
    # The discriminator need not come first.
    (
        "PresenceMessage",
        '{"userId":"u1","type":"UserOffline"}',
        '{"type":"UserOffline","userId":"u1"}',
    ),
    (
        "LiveUpdate",
        '{"id":"s1","timestamp":"2024-05-01T12:30:00Z","status":"ok","healthy":true,'
        '"type":"StatusUpdate"}',
        '{"type":"StatusUpdate","id":"s1","timestamp":"2024-05-01T12:30:00Z","status":"ok",'
        '"healthy":true}',
    ),
    # Timestamps: microseconds (as Python writes them), an offset of +00:00, nanoseconds with
    # another offset; kotlinx writes UTC with Z and 0, 3, 6 or 9 fractional digits.
    (
        "UserPresence",
        '{"status":"AWAY","lastSeen":"2024-05-01T12:30:00.250000Z"}',
        '{"status":"AWAY","lastSeen":"2024-05-01T12:30:00.250Z"}',
    ),
    (
        "UserPresence",
        '{"status":"ONLINE","lastSeen":"2024-05-01T12:30:00+00:00"}',
        '{"status":"ONLINE","lastSeen":"2024-05-01T12:30:00Z"}',
    ),
    (
        "UserPresence",
        '{"status":"ONLINE","lastSeen":"2024-05-01T14:30:00.123456789+02:00"}',
        '{"status":"ONLINE","lastSeen":"2024-05-01T12:30:00.123456789Z"}',
    ),
    (
        "UserPresence",
        '{"status":"ONLINE","lastSeen":"2024-05-01T12:30:00.123456Z"}',
        '{"status":"ONLINE","lastSeen":"2024-05-01T12:30:00.123456Z"}',
    ),
    # Numbers: an integer and a quoted number for Doubles, a quoted boolean: all taken.
    (
        "DataUpdate",
        '{"id":"d1","timestamp":"2024-05-01T12:30:00Z","key":"k","values":[1,2.5,"3"]}',
        '{"id":"d1","timestamp":"2024-05-01T12:30:00Z","key":"k","values":[1.0,2.5,3.0]}',
    ),
    (
        "StatusUpdate",
        '{"id":"s1","timestamp":"2024-05-01T12:30:00Z","status":"ok","healthy":"true"}',
        '{"id":"s1","timestamp":"2024-05-01T12:30:00Z","status":"ok","healthy":true}',
    ),
    (
        "ChatMessage",
        '{"id":"m1","timestamp":"2024-05-01T12:30:00Z","room":"r","userId":"u","text":"\\u00e9",'
        '"sentAt":1714566600.5}',
        '{"id":"m1","timestamp":"2024-05-01T12:30:00Z","room":"r","userId":"u","text":"é",'
        '"sentAt":1.7145666005E9}',
    ),
    # Any JSON object for a JsonObject; written again, its numbers change: a number with a
    # fraction or an exponent, or too large for a Long, is written as a Double (precision lost).
    (
        "PubSubMessage.Notification",
        '{"id":"9b1d","timestamp":"2024-05-01T12:30:00Z","userId":"u1","type":"mention",'
        '"data":{"a":[1,{"b":null}],"c":1.50,"d":1e3,"e":12345678901234567890123,"f":"1"}}',
        '{"id":"9b1d","timestamp":"2024-05-01T12:30:00Z","userId":"u1","type":"mention",'
        '"data":{"a":[1,{"b":null}],"c":1.5,"d":1000.0,"e":1.2345678901234568E22,"f":"1"}}',
    ),
]

REFUSED = [
    # actors' own wire format (docs/wire-format.md): snake_case fields and registered names.
    (
        "PresenceMessage",
        '{"type":"user-offline","id":"77ab","timestamp":"2024-05-01T12:30:00Z",'
        '"user_id":"user-42"}',
        "decode: JsonDecodingException: Unexpected JSON token at offset 0: "
        "Serializer for subclass 'user-offline' is not found in the polymorphic scope of "
        "'PresenceMessage'",
    ),
    (
        "NotificationMessage",
        '{"type":"notification","id":"4f2a0c1e","timestamp":"2024-05-01T12:30:00Z",'
        '"user_id":"user-42","notification":{"type":"friend-request","title":"Hi"}}',
        "decode: JsonDecodingException: Encountered an unknown key 'type' at offset 2",
    ),
    # A sealed member decoded by its own serializer takes no discriminator.
    (
        "UserOffline",
        '{"type":"UserOffline","userId":"u1"}',
        "decode: JsonDecodingException: Encountered an unknown key 'type' at offset 2",
    ),
    # A sealed base needs the discriminator.
    (
        "PresenceMessage",
        '{"userId":"u1"}',
        "decode: JsonDecodingException: Class discriminator was missing and no default "
        "serializers were registered in the polymorphic scope of 'PresenceMessage'",
    ),
    # The guide's PubSubMessage through its base: kotlinx decodes it, but the discriminator is
    # also the property `type`, so the value cannot be written again. The first "type" key picks
    # the class and fills the property, unless a second "type" key follows.
    (
        "PubSubMessage",
        '{"type":"PubSubMessage.Notification","id":"9b1d","timestamp":"2024-05-01T12:30:00Z",'
        '"userId":"u1","data":{}}',
        f"encode: {DISCRIMINATOR_CONFLICT} [decoded: Notification(id=9b1d, "
        "timestamp=2024-05-01T12:30:00Z, userId=u1, type=PubSubMessage.Notification, data={})]",
    ),
    (
        "PubSubMessage",
        '{"type":"PubSubMessage.Notification","id":"9b1d","timestamp":"2024-05-01T12:30:00Z",'
        '"userId":"u1","type":"mention","data":{}}',
        f"encode: {DISCRIMINATOR_CONFLICT} [decoded: Notification(id=9b1d, "
        "timestamp=2024-05-01T12:30:00Z, userId=u1, type=mention, data={})]",
    ),
    # What PubSubMessage.Notification's own serializer writes: its "type" is no class name.
    (
        "PubSubMessage",
        '{"id":"9b1d","timestamp":"2024-05-01T12:30:00Z","userId":"u1","type":"mention","data":{}}',
        "decode: JsonDecodingException: Serializer for subclass 'mention' is not found in the "
        "polymorphic scope of 'PubSubMessage'",
    ),
    # Unknown keys, missing keys, null, and a number for a String.
    (
        "Event",
        '{"id":"e1","type":"deploy","extra":1}',
        "decode: JsonDecodingException: Encountered an unknown key 'extra' at offset 28",
    ),
    (
        "Event",
        '{"id":"e1"}',
        "decode: MissingFieldException: Field 'type' is required for type with serial name "
        "'Event', but it was missing",
    ),
    (
        "Event",
        '{"id":"e1","type":null}',
        "decode: JsonDecodingException: Unexpected JSON token at offset 18: "
        "Expected string literal but 'null' literal was found at path: $.type",
    ),
    (
        "Event",
        '{"id":7,"type":"deploy"}',
        "decode: JsonDecodingException: Unexpected JSON token at offset 6: "
        "Expected quotation mark '\"', but had '7' instead at path: $.id",
    ),
    # Enum constants by name only, and case matters.
    (
        "UserPresence",
        '{"status":"online","lastSeen":"2024-05-01T12:30:00Z"}',
        "decode: SerializationException: PresenceStatus does not contain element with name "
        "'online' at path $.status",
    ),
    # A timestamp without an offset; the exception is not a SerializationException.
    (
        "UserPresence",
        '{"status":"ONLINE","lastSeen":"2024-05-01T12:30:00"}',
        "decode: InstantFormatException: The input string is too short",
    ),
    (
        "Notification",
        "not json",
        "decode: JsonDecodingException: Unexpected JSON token at offset 0: "
        "Expected start of the object '{', but had 'n' instead at path: $",
    ),
]


async def test_kotlinx_publishes_the_guide_messages_byte_for_byte_as_recorded(
    kotlin_peer: KotlinPeer, redis_server: RedisServer
) -> None:
    pushes = PushCollector()
    channels = [kotlin_peer.channel("from-kotlin", kind) for kind in KINDS]
    with trio.fail_after(TIMEOUT):
        async with open_redis_connection(redis_server.url, push_handler=pushes) as redis:
            redis.send_subscription_command("SUBSCRIBE", *channels)
            await pushes.wait_for(len(channels))
            lines = await kotlin_peer.publish(redis_server.url, "from-kotlin")
            published = [line for line in lines if line.json is not None]
            frames = await pushes.wait_for(len(channels) + len(published))
    assert lines == PUBLISHED
    messages = frames[len(channels) :]
    received = [(channel.decode(), payload.decode()) for _, channel, payload in messages]
    assert received == [
        (kotlin_peer.channel("from-kotlin", line.kind), line.json) for line in published
    ]


@pytest.mark.parametrize("line", [line for line in PUBLISHED if line.json is not None])
def test_kotlinx_keys_are_camel_case_with_a_discriminator_only_through_a_sealed_base(
    line: PeerLine,
) -> None:
    assert line.json is not None
    payload = json.loads(line.json)

    def keys(value: object) -> list[str]:
        if isinstance(value, dict):
            return [*value, *(key for item in value.values() for key in keys(item))]
        if isinstance(value, list):
            return [key for item in value for key in keys(item)]
        return []

    assert all(CAMEL_CASE.fullmatch(key) for key in keys(payload)), keys(payload)
    if line.kind in SEALED_BASES:
        assert next(iter(payload)) == "type"
        assert payload["type"] in SEALED_MEMBERS
    else:  # only the classes with a property named "type" have that key
        assert ("type" in payload) == (line.kind in WITH_TYPE_PROPERTY)


async def test_kotlinx_default_json_takes_and_refuses_hand_written_payloads_as_recorded(
    kotlin_peer: KotlinPeer, redis_server: RedisServer
) -> None:
    cases = [(kind, payload, expected, None) for kind, payload, expected in ACCEPTED] + [
        (kind, payload, None, error) for kind, payload, error in REFUSED
    ]
    with trio.fail_after(TIMEOUT):
        async with (
            open_redis_connection(redis_server.url) as redis,
            kotlin_peer.receiving(redis_server.url, "to-kotlin", len(cases)) as receiver,
        ):
            for kind, payload, _, _ in cases:
                channel = kotlin_peer.channel("to-kotlin", kind)
                assert await redis.publish(channel, payload.encode()) == 1
            lines = await receiver.lines()
    assert [line.kind for line in lines] == [kind for kind, _, _, _ in cases]
    for line, (kind, payload, expected, error) in zip(lines, cases, strict=True):
        if expected is not None:
            assert line == PeerLine(kind, json=expected), payload
        else:
            assert error is not None
            assert line.error is not None, (payload, line)
            assert line.error.startswith(error), (payload, line.error)
