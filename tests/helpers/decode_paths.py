"""Payloads for comparing the codec's two decode paths, and the comparison itself.

Used by tests/messages/test_decode_paths.py, in its own process and in a subprocess per example
module whose message type names clash with the framework's (the registry is process-wide).
"""

from __future__ import annotations

import base64
import enum
import importlib
import sys
import types
import typing
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.messages import Codec, MessageDecodeError, message_type_name, registered_message_types

COMPILED = Codec()
CATTRS_ONLY = Codec(compiled=False)

_INT = st.integers(-(2**63), 2**64 - 1)
_SCALAR_JSON = st.one_of(
    st.none(), st.booleans(), _INT, st.floats(allow_nan=False, allow_infinity=False), st.text()
)
ANY_JSON = st.recursive(
    _SCALAR_JSON,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)

_OFFSETS = st.integers(-23 * 60, 23 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))
_MOMENTS = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)
TIMESTAMPS = st.one_of(
    _MOMENTS.map(lambda moment: moment.isoformat().replace("+00:00", "Z")),
    _MOMENTS.map(lambda moment: moment.isoformat()),
    st.builds(lambda moment, offset: moment.astimezone(offset).isoformat(), _MOMENTS, _OFFSETS),
    _MOMENTS.map(lambda moment: moment.replace(tzinfo=None).isoformat()),
    st.builds(
        lambda moment, nanoseconds: f"{moment:%Y-%m-%dT%H:%M:%S}.{nanoseconds:09d}Z",
        _MOMENTS,
        st.integers(0, 999_999_999),
    ),
    st.builds(
        lambda moment, digits: f"{moment:%Y-%m-%dT%H:%M:%S}.{digits}Z",
        _MOMENTS,
        st.text("0123456789", min_size=0, max_size=12),
    ),
    _MOMENTS.map(lambda moment: moment.isoformat().replace("+00:00", "z").replace("T", "t")),
    _MOMENTS.map(lambda moment: moment.isoformat().replace("+00:00", "Z").replace("T", " ")),
    st.sampled_from(
        [
            "2026-01-01T23:59:60Z",
            "2026-01-01T24:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-01-01T00:00Z",
            "20260101T000000Z",
            "2026-W01-1T00:00:00Z",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00,5Z",
            "2026-01-01T00:00:00+00",
            "2026-01-01T00:00:00-00:00",
            "2026-01-01T00:00:00+00:00:30",
            "0000-01-01T00:00:00Z",
            "",
        ]
    ),
)


def valid_json(tp: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    """JSON values that are, or are close to, a valid value of ``tp``."""
    args = typing.get_args(tp)
    origin = typing.get_origin(tp)
    if tp is type(None):
        return st.none()
    if tp is str:
        return st.text(max_size=12)
    if tp is bool:
        return st.booleans()
    if tp is int:
        return _INT
    if tp is float:
        return st.floats(allow_nan=False, allow_infinity=False) | _INT
    if tp is bytes:
        return st.binary(max_size=8).map(lambda raw: base64.b64encode(raw).decode())
    if tp is datetime:
        return TIMESTAMPS
    if isinstance(tp, types.UnionType) or origin is typing.Union:
        return st.one_of(*(valid_json(arg, depth) for arg in args))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return st.sampled_from([member.value for member in tp] + [member.name for member in tp])
    if isinstance(tp, type) and attrs.has(tp):
        # A class that holds itself (a tree) stops at a few levels.
        return json_object(tp, depth) if depth < 3 else st.none()
    if origin in (list, set, frozenset) or (origin is tuple and args[-1:] == (Ellipsis,)):
        return st.lists(valid_json(args[0], depth), max_size=3)
    if origin is tuple:
        return st.tuples(*(valid_json(arg, depth) for arg in args)).map(list)
    if origin is dict:
        return st.dictionaries(st.text(max_size=5), valid_json(args[1], depth), max_size=3)
    return ANY_JSON


def field_json(tp: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    """Mostly a valid value; now and then any JSON value at all."""
    valid = valid_json(tp, depth)
    return st.one_of(valid, valid, valid, ANY_JSON)


def json_object(cls: type, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """An object for ``cls``: its tag when it is registered, its fields, maybe one dropped,
    maybe unknown keys."""
    fields = {field.name: field_json(field.type, depth + 1) for field in attrs.fields(cls)}
    # A field filled by a factory (a new id, the time now) differs between two decodings.
    droppable = sorted(
        field.name
        for field in attrs.fields(cls)
        if not isinstance(field.default, attrs.Factory)  # type: ignore[arg-type]
    )
    name = message_type_name(cls)

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        value: dict[str, Any] = {}
        if name is not None:
            tag = draw(st.sampled_from([name, name, name, "other-type", 1, None, "<absent>"]))
            if tag != "<absent>":
                value["type"] = tag
        value.update(draw(st.fixed_dictionaries(fields)))
        drop = draw(st.integers(0, 3)) == 0
        if droppable and drop:
            del value[draw(st.sampled_from(droppable))]
        value.update(draw(st.dictionaries(st.text(max_size=4), ANY_JSON, max_size=2)))
        return value

    return build()


def outcome(codec: Codec, payload: bytes, expected: Any) -> tuple[Any, ...]:
    try:
        decoded = codec.decode(payload, expected)
    except MessageDecodeError as exc:
        return ("refused", exc.reason, exc.errors)
    return ("decoded", repr(decoded), decoded)


def assert_same_outcome(payload: bytes, expected: Any) -> None:
    assert outcome(COMPILED, payload, expected) == outcome(CATTRS_ONLY, payload, expected)


def nested_plain_classes(cls: type, found: dict[str, type]) -> None:
    """Add the plain (unregistered) attrs classes reachable through ``cls``'s fields."""
    attrs.resolve_types(cls)
    for field in attrs.fields(cls):
        for tp in _types_in(field.type):
            if attrs.has(tp) and message_type_name(tp) is None and tp.__qualname__ not in found:
                found[tp.__qualname__] = tp
                nested_plain_classes(tp, found)


def _types_in(tp: Any) -> list[Any]:
    return [tp, *(inner for arg in typing.get_args(tp) for inner in _types_in(arg))]


def check_class(cls: type, *, examples: int) -> None:
    """Both paths agree on ``examples`` hypothesis payloads for ``cls``."""

    @settings(max_examples=examples, suppress_health_check=list(HealthCheck), deadline=None)
    @given(st.data())
    def agree(data: st.DataObject) -> None:
        assert_same_outcome(orjson.dumps(data.draw(json_object(cls))), cls)

    agree()


def check_module(name: str, *, examples: int = 40) -> None:
    """Import one module and check every message class it registers and their nested classes."""
    before = set(registered_message_types().values())
    importlib.import_module(name)
    registered = [cls for cls in registered_message_types().values() if cls not in before]
    if not registered:
        sys.exit(f"{name} registers no message class")
    plain: dict[str, type] = {}
    for cls in registered:
        nested_plain_classes(cls, plain)
        check_class(cls, examples=examples)
    for cls in plain.values():
        check_class(cls, examples=examples)
    sys.stdout.write(
        f"{name}: {len(registered)} message classes, {len(plain)} nested classes agree\n"
    )
