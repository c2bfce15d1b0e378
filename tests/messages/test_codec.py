"""The codec: round-trips for every message shape, and clean failures for every bad payload."""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import attrs
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors import Codec, Message, MessageDecodeError, message_type, tagged_union, untagged
from actors.messages import CODEC, decode_cached, message_class, message_type_name

if TYPE_CHECKING:
    from collections.abc import Callable


class PresenceStatus(enum.Enum):
    ONLINE = "online"
    AWAY = "away"


@attrs.frozen
class Notification:
    type: str
    title: str
    body: str


@attrs.frozen
class UserPresence:
    status: PresenceStatus
    last_seen: datetime


@message_type("test.notification")
@attrs.frozen(kw_only=True)
class NotificationMessage(Message):
    user_id: str
    notification: Notification


@message_type("test.pubsub.notification")
@attrs.frozen(kw_only=True)
class PubSubNotification(Message):
    user_id: str
    kind: str
    data: dict[str, Any]


@message_type("test.user-online")
@attrs.frozen(kw_only=True)
class UserOnline(Message):
    user_id: str
    presence: UserPresence


@message_type("test.user-offline")
@attrs.frozen(kw_only=True)
class UserOffline(Message):
    user_id: str


PresenceMessage = UserOnline | UserOffline


@message_type("test.data-update")
@attrs.frozen(kw_only=True)
class DataUpdate(Message):
    key: str
    version: int
    values: list[float]
    blob: bytes = b""


@message_type("test.config-update")
@attrs.frozen(kw_only=True)
class ConfigUpdate(Message):
    settings: dict[str, str]
    removed: frozenset[str] = frozenset()


@message_type("test.status-update")
@attrs.frozen(kw_only=True)
class StatusUpdate(Message):
    status: str
    healthy: bool
    note: str | None = None


LiveUpdate = DataUpdate | ConfigUpdate | StatusUpdate


@message_type("test.envelope")
@attrs.frozen(kw_only=True)
class Envelope(Message):
    """Nests a union of messages and a pair, to cover tagged unions inside fields."""

    update: DataUpdate | ConfigUpdate | StatusUpdate
    pair: tuple[int, str]


@message_type("test.tree")
@attrs.frozen(kw_only=True)
class Tree:
    """A recursive shape: the depth limit protects it from stack exhaustion."""

    children: list[Tree] = attrs.field(factory=list)


# ---- strategies

texts = st.text(max_size=40)
ids = st.text(min_size=1, max_size=32)
timestamps = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
) | st.datetimes(timezones=st.sampled_from([timezone(timedelta(hours=5, minutes=30))]))
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)


def base(cls: type, **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.builds(cls, id=ids, timestamp=timestamps, **fields)


notifications = base(
    NotificationMessage,
    user_id=texts,
    notification=st.builds(Notification, type=texts, title=texts, body=texts),
)
pubsub_notifications = base(
    PubSubNotification, user_id=texts, kind=texts, data=st.dictionaries(texts, json_values)
)
onlines = base(
    UserOnline,
    user_id=texts,
    presence=st.builds(UserPresence, status=st.sampled_from(PresenceStatus), last_seen=timestamps),
)
offlines = base(UserOffline, user_id=texts)
data_updates = base(
    DataUpdate,
    key=texts,
    version=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    values=st.lists(st.floats(allow_nan=False, allow_infinity=False)),
    blob=st.binary(max_size=64),
)
config_updates = base(
    ConfigUpdate, settings=st.dictionaries(texts, texts), removed=st.frozensets(texts)
)
status_updates = base(StatusUpdate, status=texts, healthy=st.booleans(), note=st.none() | texts)
live_updates = data_updates | config_updates | status_updates
envelopes = base(Envelope, update=live_updates, pair=st.tuples(st.integers(-100, 100), texts))
trees = st.recursive(
    st.just(Tree()), lambda inner: st.builds(Tree, children=st.lists(inner, max_size=3))
)


def round_trip(message: object, expected: object) -> object:
    return CODEC.decode(CODEC.encode(message), expected)


@given(notifications)
def test_notification_message_round_trips(message: NotificationMessage) -> None:
    assert round_trip(message, NotificationMessage) == message


@given(pubsub_notifications)
def test_guide_pubsub_notification_with_json_object_round_trips(
    message: PubSubNotification,
) -> None:
    assert round_trip(message, PubSubNotification) == message


@given(onlines | offlines)
def test_presence_union_round_trips_to_the_right_member(message: UserOnline | UserOffline) -> None:
    decoded = round_trip(message, PresenceMessage)
    assert decoded == message
    assert type(decoded) is type(message)


@given(live_updates)
def test_live_update_union_round_trips(message: DataUpdate | ConfigUpdate | StatusUpdate) -> None:
    assert round_trip(message, LiveUpdate) == message
    assert round_trip(message, type(message)) == message


@given(envelopes)
def test_union_nested_in_a_field_round_trips(message: Envelope) -> None:
    assert round_trip(message, Envelope) == message


@given(trees)
def test_recursive_message_round_trips(tree: Tree) -> None:
    assert round_trip(tree, Tree) == tree


@given(st.text())
def test_str_payload_round_trips_as_utf8(text: str) -> None:
    assert CODEC.encode(text) == text.encode()
    assert round_trip(text, str) == text


@given(st.binary())
def test_bytes_payload_round_trips_raw(data: bytes) -> None:
    assert CODEC.encode(data) is data
    assert round_trip(data, bytes) == data


@given(st.dictionaries(texts, json_values))
def test_dict_payload_round_trips_as_json_object(data: dict[str, Any]) -> None:
    assert round_trip(data, dict) == data


# ---- the wire format


def test_wire_format_has_type_first_and_utc_timestamps() -> None:
    moment = datetime(2024, 5, 1, 14, 30, tzinfo=timezone(timedelta(hours=2)))
    message = UserOffline(id="abc", timestamp=moment, user_id="u1")
    assert CODEC.encode(message) == (
        b'{"type":"test.user-offline","id":"abc","timestamp":"2024-05-01T12:30:00Z","user_id":"u1"}'
    )
    decoded = CODEC.decode(CODEC.encode(message), UserOffline)
    assert decoded.timestamp.tzinfo is UTC


@pytest.mark.parametrize(
    "stamp",
    [
        "2024-05-01T12:30:00Z",
        "2024-05-01T12:30:00+00:00",
        "2024-05-01T14:30:00+02:00",
        "2024-05-01T12:30:00.000000000Z",  # kotlinx Instant with nanoseconds
    ],
)
def test_iso8601_offsets_are_accepted_and_normalized_to_utc(stamp: str) -> None:
    payload = orjson.dumps(
        {"type": "test.user-offline", "id": "a", "timestamp": stamp, "user_id": "u"}
    )
    decoded = CODEC.decode(payload, UserOffline)
    assert decoded.timestamp == datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    assert decoded.timestamp.tzinfo is UTC


def test_naive_datetimes_are_refused_on_construction_and_encode() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        UserOffline(user_id="u", timestamp=datetime(2024, 1, 1))
    presence = UserPresence(PresenceStatus.AWAY, datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="naive"):
        CODEC.encode(UserOnline(user_id="u", presence=presence))


def test_defaults_fill_id_and_timestamp() -> None:
    first, second = UserOffline(user_id="u"), UserOffline(user_id="u")
    assert first.id != second.id
    assert len(first.id) == 32
    assert first.timestamp.tzinfo is UTC


def test_registry_lookups() -> None:
    assert message_type_name(UserOnline) == "test.user-online"
    assert message_class("test.user-online") is UserOnline
    assert message_type_name(Notification) is None
    assert message_class("nope") is None


@pytest.mark.parametrize("name", ["", "1abc", "a b", "a*", "é", "x" * 129])
def test_invalid_type_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="type name"):
        message_type(name)


def test_duplicate_registrations_are_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):

        @message_type("test.user-online")
        @attrs.frozen
        class Other:
            x: int

    with pytest.raises(ValueError, match="already registered"):
        message_type("test.another-name")(UserOnline)


def test_a_field_named_like_the_discriminator_is_refused_only_where_it_is_tagged() -> None:
    @message_type("test.clash")
    @attrs.frozen
    class Clash:
        type: str

    for call in (
        lambda: CODEC.encode(Clash(type="x")),
        lambda: CODEC.decode(b'{"type": "test.clash"}', Clash),
    ):
        with pytest.raises(TypeError, match="the discriminator it is tagged with"):
            call()
    # Untagged, or told apart by another key, the field is just a field.
    assert CODEC.encode(Clash(type="x"), as_type=untagged(Clash)) == b'{"type":"x"}'
    assert CODEC.decode(b'{"type": "x"}', untagged(Clash)) == Clash(type="x")
    kind = tagged_union(Clash, discriminator="kind")
    assert CODEC.encode(Clash(type="x"), as_type=kind) == b'{"kind":"test.clash","type":"x"}'
    assert CODEC.decode(b'{"kind": "test.clash", "type": "y"}', kind) == Clash(type="y")


def test_classes_defined_in_a_function_with_postponed_annotations_work() -> None:
    @attrs.frozen
    class Point:
        x: int
        y: int

    @message_type("test.local-shape")
    @attrs.frozen(kw_only=True)
    class Shape(Message):
        points: list[Point]
        label: str | None = None

    @message_type("test.local-other")
    @attrs.frozen
    class Other:
        shape: Shape

    shape = Shape(points=[Point(1, 2)], label="a")
    assert round_trip(shape, Shape) == shape
    assert round_trip(Other(shape), Other) == Other(shape)
    assert round_trip(shape, Shape | Other) == shape


def test_an_attrs_class_that_is_not_registered_is_untagged_both_ways() -> None:
    """As kotlinx writes a plain ``@Serializable`` class: its fields, and no discriminator."""
    notification = Notification("mention", "a", "b")
    payload = CODEC.encode(notification)
    # Its own field called type is a field, not a discriminator.
    assert orjson.loads(payload) == {"type": "mention", "title": "a", "body": "b"}
    assert CODEC.decode(payload, Notification) == notification
    extra = b'{"type": "mention", "title": "a", "body": "b", "new": 1}'
    assert CODEC.decode(extra, Notification) == notification


def test_encode_and_decode_refuse_what_is_not_an_attrs_class_or_a_plain_payload() -> None:
    with pytest.raises(TypeError, match="send an attrs class"):
        CODEC.encode(object())
    with pytest.raises(TypeError, match="cannot decode into"):
        CODEC.decode(b"{}", list[int])
    with pytest.raises(TypeError, match="cannot send"):
        CODEC.encode(Notification("t", "a", "b"), as_type=UserOnline)


# ---- every decode failure kind

VALID = {"type": "test.user-offline", "id": "a", "timestamp": "2024-01-01T00:00:00Z"}


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        pytest.param(b"\xff\xfe{}", "invalid UTF-8", id="invalid-utf8"),
        pytest.param(
            b'{"type": "test.user-offline", "user_id": "\xc3"}',
            "invalid UTF-8",
            id="utf8-in-string",
        ),
        pytest.param(b"{", "invalid JSON", id="truncated"),
        pytest.param(b"", "invalid JSON", id="empty"),
        pytest.param(b"NaN", "invalid JSON", id="nan"),
        pytest.param(b"[1, 2]", "not a JSON object but an array", id="array"),
        pytest.param(b'"text"', "not a JSON object but a string", id="string"),
        pytest.param(b"null", "not a JSON object but null", id="null"),
        pytest.param(orjson.dumps({"user_id": "u"}), "missing type tag", id="missing-tag"),
        pytest.param(
            orjson.dumps({**VALID, "type": "nope"}), "unexpected type tag", id="unknown-tag"
        ),
        pytest.param(
            orjson.dumps({**VALID, "type": "test.status-update"}),
            "unexpected type tag",
            id="wrong-tag",
        ),
        pytest.param(orjson.dumps({**VALID, "type": 3}), "type tag is a number", id="tag-number"),
        pytest.param(orjson.dumps(VALID), "invalid fields", id="missing-field"),
        pytest.param(orjson.dumps({**VALID, "user_id": 5}), "invalid fields", id="wrong-type"),
        pytest.param(
            orjson.dumps({**VALID, "user_id": "u", "timestamp": "2024-01-01T00:00:00"}),
            "invalid fields",
            id="naive-timestamp",
        ),
        pytest.param(
            orjson.dumps({**VALID, "user_id": "u", "timestamp": "yesterday"}),
            "invalid fields",
            id="bad-timestamp",
        ),
        pytest.param(
            b'{"type":"test.user-offline","user_id":"u","x":' + b"[" * 65 + b"]" * 65 + b"}",
            "nested deeper than 64",
            id="deep",
        ),
        pytest.param(b"[" * 5000 + b"]" * 5000, "nested too deeply", id="very-deep"),
    ],
)
def test_decode_failures_raise_message_decode_error(payload: bytes, reason: str) -> None:
    with pytest.raises(MessageDecodeError) as caught:
        CODEC.decode(payload, UserOffline)
    assert reason in caught.value.reason
    assert caught.value.expected == "test.user-offline"
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"user_id": 5}, "expected a string, got a number @ $.user_id"),
        ({"user_id": True}, "expected a string, got a boolean @ $.user_id"),
        ({}, "required field missing @ $.user_id"),
    ],
)
def test_field_errors_carry_transform_error_lines(fields: dict[str, Any], error: str) -> None:
    with pytest.raises(MessageDecodeError) as caught:
        CODEC.decode(orjson.dumps({**VALID, **fields}), UserOffline)
    assert caught.value.errors == (error,)
    assert error in str(caught.value)


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"key": "k", "version": 1.5, "values": []}, "$.version"),
        ({"key": "k", "version": "1", "values": []}, "$.version"),
        ({"key": "k", "version": 1, "values": "abc"}, "$.values"),
        ({"key": "k", "version": 1, "values": [1, "x"]}, "$.values[1]"),
        ({"key": "k", "version": 1, "values": [], "blob": "!!"}, "$.blob"),
    ],
)
def test_wrong_field_types_are_not_coerced(fields: dict[str, Any], path: str) -> None:
    payload = orjson.dumps({**VALID, "type": "test.data-update", **fields})
    with pytest.raises(MessageDecodeError) as caught:
        CODEC.decode(payload, DataUpdate)
    assert any(line.endswith(f"@ {path}") for line in caught.value.errors), caught.value.errors


def test_nested_union_member_with_bad_tag_fails_cleanly() -> None:
    payload = orjson.dumps(
        {**VALID, "type": "test.envelope", "pair": [1, "a"], "update": {"type": "zzz"}}
    )
    with pytest.raises(MessageDecodeError, match="invalid fields"):
        CODEC.decode(payload, Envelope)


def test_a_one_megabyte_string_fits_and_a_bigger_payload_fails() -> None:
    big = "x" * 1_000_000
    message = UserOffline(user_id=big)
    assert CODEC.decode(CODEC.encode(message), UserOffline) == message
    too_big = CODEC.encode(UserOffline(user_id="x" * (1024 * 1024)))
    with pytest.raises(MessageDecodeError, match="payload too large"):
        CODEC.decode(too_big, UserOffline)
    with pytest.raises(MessageDecodeError, match="payload too large"):
        CODEC.decode(too_big, bytes)


def test_limits_are_configurable() -> None:
    codec = Codec(max_payload_size=100, max_depth=2)
    with pytest.raises(MessageDecodeError, match="too large"):
        codec.decode(b" " * 101, dict)
    assert codec.decode(b'{"a": {"b": 1}}', dict) == {"a": {"b": 1}}
    with pytest.raises(MessageDecodeError, match="deeper than 2"):
        codec.decode(b'{"a": {"b": []}}', dict)
    with pytest.raises(ValueError, match="positive"):
        Codec(max_depth=0)


def test_deep_recursive_payload_fails_without_recursion_error() -> None:
    """A recursive class fed 900 levels (under orjson's own limit) is stopped by max_depth."""
    levels = 450  # two JSON levels each: an object and its children array
    deep = b'{"type":"test.tree","children":[' * levels + b"]}" * levels
    with pytest.raises(MessageDecodeError, match="nested deeper"):
        CODEC.decode(deep, Tree)
    lenient = Codec(max_depth=2000)
    with pytest.raises(MessageDecodeError):
        lenient.decode(deep, Tree)  # a RecursionError in cattrs, still translated


def test_decode_errors_for_plain_payload_types() -> None:
    with pytest.raises(MessageDecodeError, match="invalid UTF-8"):
        CODEC.decode(b"\xff", str)
    with pytest.raises(MessageDecodeError, match="not a JSON object"):
        CODEC.decode(b"[]", dict)


# ---- decode once


class Received:
    """Stands in for RedisMessage: a payload and a ``decoded`` slot."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.decoded: object = None


class CountingCodec(Codec):
    """Counts the payloads its decoders decode."""

    calls = 0

    def decoder(self, expected: object) -> Callable[[bytes], Any]:
        decode = super().decoder(expected)

        def counted(payload: bytes) -> Any:
            self.calls += 1
            return decode(payload)

        return counted


def test_decode_cached_decodes_once_per_expected_type() -> None:
    codec = CountingCodec()
    message = UserOffline(user_id="u")
    received = Received(codec.encode(message))
    results = [decode_cached(received, PresenceMessage, codec) for _ in range(1000)]
    assert codec.calls == 1
    assert all(result is results[0] for result in results)
    assert results[0] == message
    assert decode_cached(received, UserOffline, codec) == message
    assert decode_cached(received, dict, codec)["user_id"] == "u"
    assert codec.calls == 3
    # All three are kept: asking again decodes nothing.
    assert decode_cached(received, PresenceMessage, codec) is results[0]
    assert decode_cached(received, UserOffline, codec) == message
    assert decode_cached(received, dict, codec)["user_id"] == "u"
    assert codec.calls == 3


def test_decode_cached_remembers_the_error() -> None:
    codec = CountingCodec()
    received = Received(b"not json")
    for _ in range(3):
        with pytest.raises(MessageDecodeError, match="invalid JSON"):
            decode_cached(received, UserOffline, codec)
    assert codec.calls == 1


def test_decode_cached_raises_the_same_error_with_its_cause_each_time() -> None:
    codec = CountingCodec()
    received = Received(orjson.dumps({"type": "test.user-offline", "user_id": 7}))
    raised = []
    for _ in range(3):
        with pytest.raises(MessageDecodeError, match="invalid fields") as error:
            decode_cached(received, UserOffline, codec)
        raised.append(error.value)
    assert codec.calls == 1
    assert raised[0] is raised[1] is raised[2]
    assert raised[0].__cause__ is not None  # the cattrs error behind "invalid fields"
    # A second type is decoded on its own; the first one's error stays.
    assert decode_cached(received, dict, codec)["user_id"] == 7
    with pytest.raises(MessageDecodeError, match="invalid fields"):
        decode_cached(received, UserOffline, codec)
    assert codec.calls == 2
