"""The codec: one cattrs converter with orjson, tagged unions and hostile-input-safe decoding.

Wire format (docs/wire-format.md): a registered message is a JSON object whose first key is
``"type"`` (its registered name), then its fields in snake_case; datetimes are ISO-8601 UTC
strings ending in ``Z``; bytes fields are standard base64. Plain ``str`` payloads are UTF-8 text,
``bytes`` payloads are raw, ``dict`` payloads are a JSON object.
"""

from __future__ import annotations

import base64
import binascii
import types
import typing
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar, cast, overload

import attrs
import cattrs
import orjson
from cattrs.cols import (
    homogenous_tuple_structure_factory,
    is_frozenset,
    is_mapping,
    is_sequence,
    is_set,
    list_structure_factory,
)
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn
from cattrs.preconf.orjson import make_converter
from cattrs.strategies import configure_tagged_union
from cattrs.v import format_exception

from actors._errors import MessageDecodeError
from actors.messages._base import TYPE_FIELD, _names, message_type_name

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "CODEC",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_PAYLOAD_SIZE",
    "Codec",
    "Decodable",
    "decode_cached",
]

T = TypeVar("T")

DEFAULT_MAX_PAYLOAD_SIZE: Final = 1024 * 1024  # bytes
"""Payloads longer than this are refused before parsing."""

DEFAULT_MAX_DEPTH: Final = 64  # levels of JSON arrays and objects
"""Payloads nested deeper than this are refused before structuring."""

_MAX_DATETIME_LENGTH: Final = 64  # characters
_DUMPS_OPTIONS: Final = orjson.OPT_UTC_Z


def _json_kind(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def describe(expected: object) -> str:
    """A short name for an expected type: its wire name, class name, or ``A | B``."""
    if isinstance(expected, type):
        return message_type_name(expected) or expected.__qualname__
    args = typing.get_args(expected)
    if args and _is_union(expected):
        return " | ".join(describe(arg) for arg in args)
    return repr(expected)


def _is_union(tp: object) -> bool:
    return isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union


# ---- strict hooks for scalars: cattrs' defaults call str()/int(), which would accept 1 as "1"


def _structure_str(value: object, _: type) -> str:
    if type(value) is not str:
        raise TypeError(f"expected a string, got {_json_kind(value)}")
    return value


def _structure_int(value: object, _: type) -> int:
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {_json_kind(value)}")
    return value


def _structure_float(value: object, _: type) -> float:
    if type(value) is float:
        return value
    if type(value) is int:
        return float(value)
    raise TypeError(f"expected a number, got {_json_kind(value)}")


def _structure_bool(value: object, _: type) -> bool:
    if type(value) is not bool:
        raise TypeError(f"expected a boolean, got {_json_kind(value)}")
    return value


def _structure_bytes(value: object, _: type) -> bytes:
    if type(value) is not str:
        raise TypeError(f"expected a base64 string, got {_json_kind(value)}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("invalid base64") from None


def _unstructure_bytes(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _structure_datetime(value: object, _: type) -> datetime:
    if type(value) is not str:
        raise TypeError(f"expected an ISO-8601 string, got {_json_kind(value)}")
    if len(value) > _MAX_DATETIME_LENGTH:
        raise ValueError("datetime string too long")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("datetime without a UTC offset: add Z or +00:00")
    return parsed if parsed.tzinfo is UTC else parsed.astimezone(UTC)


def _unstructure_datetime(value: datetime) -> datetime:
    # orjson writes the string (with OPT_UTC_Z, "...Z"); we only normalize to UTC.
    if value.tzinfo is UTC:
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"cannot encode the naive datetime {value!r}: attach tzinfo=UTC")
    return value.astimezone(UTC)


def _max_depth_exceeded(value: object, limit: int) -> bool:
    """Whether JSON arrays and objects nest deeper than ``limit``; iterative, stops early."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend(
                (child, depth + 1) for child in item.values() if isinstance(child, (dict, list))
            )
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item if isinstance(child, (dict, list)))
    return False


class Codec:
    """Encodes messages to bytes and decodes payloads into an expected type, safely.

    One per process is typical: use ``CODEC``. A codec owns one cattrs converter (the orjson
    preconf ``make_converter()``) configured for registered messages, tagged unions of them,
    UTC datetimes, base64 bytes and strict scalar types.

    Decoding never evaluates or unpickles anything; it refuses payloads over ``max_payload_size``
    before parsing and JSON nested deeper than ``max_depth`` before structuring, so the work per
    payload is bounded. Every failure is a ``MessageDecodeError``.

    Args:
        max_payload_size: The longest payload ``decode`` accepts, in bytes.
        max_depth: The deepest nesting of JSON arrays and objects ``decode`` accepts.

    Raises:
        ValueError: A limit is not positive.
    """

    def __init__(
        self,
        *,
        max_payload_size: int = DEFAULT_MAX_PAYLOAD_SIZE,
        max_depth: int = DEFAULT_MAX_DEPTH,
    ) -> None:
        if max_payload_size < 1 or max_depth < 1:
            raise ValueError("max_payload_size and max_depth must be positive")
        self.max_payload_size = max_payload_size
        self.max_depth = max_depth
        self._prepared: set[Any] = set()
        # Per expected type: its accepted tags and its structure hook, looked up once.
        self._decoders: dict[Any, tuple[tuple[str, ...], Callable[[Any, Any], Any]]] = {}
        converter = make_converter()
        self.converter: cattrs.Converter = converter
        for scalar, hook in (
            (str, _structure_str),
            (int, _structure_int),
            (float, _structure_float),
            (bool, _structure_bool),
            (bytes, _structure_bytes),
            (datetime, _structure_datetime),
        ):
            converter.register_structure_hook(scalar, hook)
        converter.register_unstructure_hook(bytes, _unstructure_bytes)
        converter.register_unstructure_hook(datetime, _unstructure_datetime)
        converter.register_structure_hook_factory(_is_collection, self._collection_hook)
        converter.register_structure_hook_factory(_is_message, self._message_structure_hook)
        converter.register_unstructure_hook_factory(_is_message, self._message_unstructure_hook)

    # ---- encoding

    def encode(self, message: object) -> bytes:
        """Turn a message into the bytes to publish.

        Args:
            message: An instance of a registered message class, a ``str`` (sent as UTF-8),
                ``bytes`` (sent as they are) or a ``dict`` (sent as a JSON object).

        Returns:
            The payload.

        Raises:
            TypeError: The message is of another type, or a dict holds something JSON cannot.
            ValueError: A datetime in the message is naive.
        """
        cls = type(message)
        if cls is bytes:
            return cast("bytes", message)
        if cls is str:
            return cast("str", message).encode("utf-8")
        if cls is dict:
            return orjson.dumps(message, option=_DUMPS_OPTIONS)
        if cls not in _names:
            raise TypeError(
                f"cannot encode {cls.__qualname__}: register it with @message_type(...), "
                "or send str, bytes or dict"
            )
        if cls not in self._prepared:
            self.prepare(cls)
        return orjson.dumps(self.converter.unstructure(message, cls), option=_DUMPS_OPTIONS)

    # ---- decoding

    @overload
    def decode(self, payload: bytes, expected: type[T]) -> T: ...
    @overload
    def decode(self, payload: bytes, expected: object) -> Any: ...
    def decode(self, payload: bytes, expected: object) -> Any:
        """Turn a received payload into an instance of the expected type.

        Args:
            payload: The received bytes.
            expected: A registered message class, a union of them (``UserOnline | UserOffline``),
                or ``str``, ``bytes`` or ``dict``.

        Returns:
            The decoded message; for ``dict``, a new dict (treat it as read-only when shared).

        Raises:
            MessageDecodeError: The payload is not a valid ``expected``, for any reason.
            TypeError: ``expected`` is not something the codec can decode into.
        """
        if len(payload) > self.max_payload_size:
            raise MessageDecodeError(
                f"payload too large: {len(payload)} bytes, limit {self.max_payload_size}",
                expected=describe(expected),
            )
        if expected is bytes:
            return bytes(payload)
        if expected is str:
            try:
                return payload.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise MessageDecodeError(
                    f"invalid UTF-8 at byte {exc.start}", expected="str"
                ) from None
        decoder = self._decoders.get(expected)
        if decoder is None:
            self.prepare(expected)
            decoder = self._decoders[expected] = (
                () if expected is dict else self._tags(expected),
                self.converter.get_structure_hook(cast("Any", expected)),
            )
        try:
            value = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise MessageDecodeError(
                _json_reason(payload, exc), expected=describe(expected)
            ) from None
        if type(value) is not dict:
            raise MessageDecodeError(
                f"not a JSON object but {_json_kind(value)}", expected=describe(expected)
            )
        # Count brackets first (fast, in C): only payloads that could be too deep are walked.
        if payload.count(b"[") + payload.count(b"{") > self.max_depth and _max_depth_exceeded(
            value, self.max_depth
        ):
            raise MessageDecodeError(
                f"nested deeper than {self.max_depth} levels", expected=describe(expected)
            )
        if expected is dict:
            return value
        tag = value.get(TYPE_FIELD)
        tags, structure = decoder
        if tag not in tags:
            if tag is None:
                reason = f"missing type tag {TYPE_FIELD!r}"
            elif type(tag) is not str:
                reason = f"type tag is {_json_kind(tag)}, not a string"
            else:
                reason = (
                    f"unexpected type tag {tag[:128]!r}; expected {' or '.join(map(repr, tags))}"
                )
            raise MessageDecodeError(reason, expected=describe(expected))
        try:
            return structure(value, expected)
        except Exception as exc:
            errors = tuple(cattrs.transform_error(exc, "$", _format_exception))
            raise MessageDecodeError(
                "invalid fields", expected=describe(expected), errors=errors
            ) from exc

    def prepare(self, expected: object) -> None:
        """Check a message type or union and build its hooks now rather than on first use.

        Unions of registered messages, at the top or in fields, are configured as cattrs
        tagged unions on ``"type"``.

        Args:
            expected: A registered message class, a union of them, or ``str``, ``bytes``, ``dict``.

        Raises:
            TypeError: ``expected`` is neither, or its annotations cannot be resolved.
        """
        if expected in (str, bytes, dict):
            self._prepared.add(expected)
            return
        if not (isinstance(expected, type) and expected in _names) and not (
            _is_union(expected) and all(arg in _names for arg in typing.get_args(expected))
        ):
            raise TypeError(
                f"cannot decode into {expected!r}: expected a registered message class, a union "
                "of them, str, bytes or dict"
            )
        self._walk(expected, set())
        self._prepared.add(expected)

    def _walk(self, tp: Any, seen: set[object]) -> None:
        if tp in seen:
            return
        seen.add(tp)
        if isinstance(tp, type) and attrs.has(tp):
            try:
                attrs.resolve_types(tp)
            except NameError as exc:
                raise TypeError(
                    f"cannot resolve the annotations of {tp.__qualname__} ({exc}); define the "
                    "classes it names at module level, or call attrs.resolve_types(cls, "
                    "localns=...) yourself"
                ) from None
            for field in attrs.fields(tp):
                self._walk(field.type, seen)
            return
        args = typing.get_args(tp)
        if _is_union(tp) and args and all(arg in _names for arg in args):
            for arg in args:
                self._walk(arg, seen)
            configure_tagged_union(
                tp, self.converter, tag_generator=_names.__getitem__, tag_name=TYPE_FIELD
            )
            return
        for arg in args:
            self._walk(arg, seen)

    def _tags(self, expected: object) -> tuple[str, ...]:
        if isinstance(expected, type):
            return (_names[expected],)
        return tuple(_names[arg] for arg in typing.get_args(expected))

    # ---- hook factories

    def _message_structure_hook(self, cls: type) -> Callable[[Any, type], Any]:
        name = _names[cls]
        base: Callable[[Any, type], Any] = make_dict_structure_fn(cls, self.converter)

        def structure_message(value: Any, _: type) -> Any:
            if type(value) is not dict:
                raise TypeError(f"expected an object for {name!r}, got {_json_kind(value)}")
            if value.get(TYPE_FIELD) != name:
                raise ValueError(f"expected type tag {name!r}, got {value.get(TYPE_FIELD)!r}")
            return base(value, cls)

        return structure_message

    def _message_unstructure_hook(self, cls: type) -> Callable[[Any], dict[str, Any]]:
        name = _names[cls]
        base: Callable[[Any], dict[str, Any]] = make_dict_unstructure_fn(cls, self.converter)

        def unstructure_message(value: Any) -> dict[str, Any]:
            return {TYPE_FIELD: name, **base(value)}

        return unstructure_message

    def _collection_hook(self, tp: Any) -> Callable[[Any, type], Any]:
        # cattrs' defaults accept any iterable ("abc" as a list of 3 strings); JSON gives
        # exactly list and dict, so insist on them before delegating.
        inner: Callable[[Any, Any], Any]
        converter: Any = self.converter
        if is_mapping(tp):
            inner = converter.gen_structure_mapping(tp)
            wanted: type = dict
        else:
            wanted = list
            origin = typing.get_origin(tp) or tp
            args = typing.get_args(tp)
            if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis) and args:
                inner = converter.gen_structure_hetero_tuple(tp)
            elif origin is tuple:
                inner = homogenous_tuple_structure_factory(tp, self.converter)
            elif is_set(tp) or is_frozenset(tp):
                list_type: Any = list[args[0]] if args else list  # type: ignore[valid-type]
                as_list = list_structure_factory(list_type, converter)
                make: Callable[[list[Any]], Any] = frozenset if is_frozenset(tp) else set

                def from_list(value: Any, _: type) -> Any:
                    return make(as_list(value, list))

                inner = from_list
            else:
                inner = list_structure_factory(tp, self.converter)

        def structure_collection(value: Any, cl: type) -> Any:
            if type(value) is not wanted:
                kind = "an object" if wanted is dict else "an array"
                raise TypeError(f"expected {kind}, got {_json_kind(value)}")
            return inner(value, cl)

        return structure_collection


def _is_message(tp: object) -> bool:
    return isinstance(tp, type) and tp in _names


def _is_collection(tp: object) -> bool:
    if tp in (str, bytes, bytearray):
        return False
    try:
        return bool(is_mapping(tp) or is_sequence(tp) or is_set(tp) or is_frozenset(tp))
    except TypeError:
        return False


def _format_exception(exc: BaseException, tp: type | None) -> str:
    # Our hooks raise TypeError/ValueError with a message saying what was wrong; keep it.
    if isinstance(exc, (TypeError, ValueError)) and str(exc):
        return str(exc)
    return format_exception(exc, tp)


def _json_reason(payload: bytes, exc: orjson.JSONDecodeError) -> str:
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError as unicode_error:
        return f"invalid UTF-8 at byte {unicode_error.start}"
    if "depth" in exc.msg or "recursion" in exc.msg.lower():
        return "nested too deeply for the JSON parser"
    return f"invalid JSON: {exc.msg} at byte {exc.pos}"


CODEC: Final = Codec()
"""The process-wide default codec."""


class Decodable(Protocol):
    """Anything carrying a received payload and a ``decoded`` slot, such as ``RedisMessage``."""

    payload: bytes
    decoded: object


@overload
def decode_cached(message: Decodable, expected: type[T], codec: Codec = ...) -> T: ...
@overload
def decode_cached(message: Decodable, expected: object, codec: Codec = ...) -> Any: ...
def decode_cached(message: Decodable, expected: object, codec: Codec = CODEC) -> Any:
    """Decode a received message's payload at most once per expected type.

    The result, or the ``MessageDecodeError``, is kept in ``message.decoded`` (an
    ``(expected, result)`` pair, or a dict keyed by the expected type once a second type is
    asked for), so every local subscription of the same type shares one decoding.
    Messages are frozen, so sharing the decoded object is safe; a decoded ``dict`` is shared
    too, so treat it as read-only.

    Args:
        message: An object with ``payload`` bytes and a ``decoded`` attribute (None at first).
        expected: As for ``Codec.decode``.
        codec: The codec to decode with.

    Returns:
        The decoded message.

    Raises:
        MessageDecodeError: The payload is not a valid ``expected`` (the same error each time).
        TypeError: ``expected`` is not something the codec can decode into.
    """
    # One expected type per payload is the common case: a pair, not a dict, until a second.
    cache = message.decoded
    if type(cache) is tuple and (cache[0] is expected or cache[0] == expected):
        result = cache[1]
    elif type(cache) is dict and expected in cache:
        result = cache[expected]
    else:
        try:
            result = codec.decode(message.payload, expected)
        except MessageDecodeError as exc:
            result = exc
        if type(cache) is dict:
            cache[expected] = result
        elif type(cache) is tuple:
            message.decoded = {cache[0]: cache[1], expected: result}
        else:
            message.decoded = (expected, result)
    if isinstance(result, MessageDecodeError):
        raise result.with_traceback(None)
    return result
