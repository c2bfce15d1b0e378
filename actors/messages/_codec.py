"""The codec: one cattrs converter with orjson, tagged unions and hostile-input-safe decoding.

Wire format (docs/wire-format.md): a registered message is a JSON object whose first key is the
discriminator (``"type"`` unless configured) holding its registered name, then its fields; an
attrs class that is not registered, or one named with ``untagged()``, is the object of its
fields alone. Field names are as written in Python or camelCase, enums by value or by name,
unknown keys ignored or refused: each a codec-wide setting that a type may override (see
``_wire``). Datetimes are ISO-8601 UTC strings ending in ``Z``; bytes fields are standard base64.
Plain ``str`` payloads are UTF-8 text, ``bytes`` payloads are raw, ``dict`` payloads a JSON
object.
"""

from __future__ import annotations

import enum
import functools
import typing
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast, overload

import attrs
import cattrs
import orjson
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override
from cattrs.preconf.orjson import make_converter
from cattrs.strategies import configure_tagged_union
from cattrs.v import format_exception

from actors._errors import MessageDecodeError
from actors.messages._base import TYPE_FIELD, _names
from actors.messages._collections import collection_structure_hook, is_collection
from actors.messages._compiled import (
    CodecStatistics,
    CompiledPaths,
    compile_decoder,
    opening_brackets,
)
from actors.messages._scalars import (
    json_kind,
    max_depth_exceeded,
    structure_bool,
    structure_bytes,
    structure_datetime,
    structure_float,
    structure_int,
    structure_str,
    unstructure_bytes,
    unstructure_datetime,
)
from actors.messages._types import (
    describe,
    is_message,
    is_plain_attrs,
    is_union,
    registered_members,
)
from actors.messages._wire import (
    FieldNaming,
    TaggedUnion,
    UnknownKeys,
    Untagged,
    check_discriminator,
    class_naming,
    is_enum_by_name,
)

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["CODEC", "DEFAULT_MAX_DEPTH", "DEFAULT_MAX_PAYLOAD_SIZE", "Codec"]

T = TypeVar("T")

DEFAULT_MAX_PAYLOAD_SIZE: Final = 1024 * 1024  # bytes
"""Payloads longer than this are refused before parsing."""

DEFAULT_MAX_DEPTH: Final = 64  # levels of JSON arrays and objects
"""Payloads nested deeper than this are refused before structuring."""

_DUMPS_OPTIONS: Final = orjson.OPT_UTC_Z


class Codec:
    """Encodes messages to bytes and decodes payloads into an expected type, safely.

    One per process is typical: use ``CODEC``. A codec owns one cattrs converter (the orjson
    preconf ``make_converter()``) configured for registered messages, tagged unions of them,
    plain attrs classes, UTC datetimes, base64 bytes and strict scalar types.

    Decoding never evaluates or unpickles anything; it refuses payloads over ``max_payload_size``
    before parsing and JSON nested deeper than ``max_depth`` before structuring, so the work per
    payload is bounded. Every failure is a ``MessageDecodeError``.

    Args:
        max_payload_size: The longest payload ``decode`` accepts, in bytes.
        max_depth: The deepest nesting of JSON arrays and objects ``decode`` accepts.
        discriminator: The key that holds a registered message's type name (kotlinx's
            ``classDiscriminator``); ``tagged_union`` sets one per union.
        field_naming: How field names go on the wire; ``@field_naming`` sets one per class.
        enums_by_name: Write and read enums by member name (``"ONLINE"``, as Kotlin does)
            rather than by value; ``@enum_by_name`` sets it per enum.
        unknown_keys: Whether a key the class does not declare is ignored (the default) or
            refused, as kotlinx's default ``Json`` refuses it.
        compiled: Decode with msgspec's compiled decoder the classes it expresses exactly as
            cattrs does (the default); False keeps cattrs for every class. Either way the
            same payloads are accepted and refused, with the same results and reasons
            (docs/wire-format.md, "Two decode paths").

    Raises:
        ValueError: A limit is not positive, or the discriminator is not a plausible key.
    """

    def __init__(
        self,
        *,
        max_payload_size: int = DEFAULT_MAX_PAYLOAD_SIZE,
        max_depth: int = DEFAULT_MAX_DEPTH,
        discriminator: str = TYPE_FIELD,
        field_naming: FieldNaming = FieldNaming.AS_WRITTEN,
        enums_by_name: bool = False,
        unknown_keys: UnknownKeys = UnknownKeys.IGNORE,
        compiled: bool = True,
    ) -> None:
        if max_payload_size < 1 or max_depth < 1:
            raise ValueError("max_payload_size and max_depth must be positive")
        self.max_payload_size = max_payload_size
        self.max_depth = max_depth
        self.discriminator = check_discriminator(discriminator)
        self.field_naming = field_naming
        self.enums_by_name = enums_by_name
        self.unknown_keys = unknown_keys
        self.compiled = compiled
        self._prepared: set[Any] = set()
        # Per expected type: (discriminator or None, structure by tag, structure when untagged).
        self._decoders: dict[Any, _Decoder] = {}
        refusal = (
            "the codec was made with compiled=False"
            if not compiled
            else "the codec refuses unknown keys"
            if unknown_keys is UnknownKeys.FORBID
            else None
        )
        self._compiled_paths = CompiledPaths(
            lambda cls: compile_decoder(
                cls,
                structure_hook=self.converter.get_structure_hook,
                naming=self._naming,
                enum_by_name=self._by_name,
                tagged=is_message,
            ),
            refusal=refusal,
            max_payload_size=max_payload_size,
            max_depth=max_depth,
        )
        # Per expected type with a compiled path: it, with every check it needs built in.
        self._fast = self._compiled_paths.by_expected
        # Per expected type: what decode() calls, the compiled path or the cattrs one.
        self._entries: dict[Any, Callable[[bytes], Any]] = {}
        self._dict_handed_over: Callable[[bytes], dict[str, Any]]  # set with dict's path
        self._tagged_bodies: dict[tuple[type, str], Callable[[dict[str, Any]], Any]] = {}
        self._unstructure_bodies: dict[type, Callable[[Any], dict[str, Any]]] = {}
        self._encoders: dict[object, Callable[[Any], dict[str, Any]]] = {}
        converter = make_converter()
        self.converter: cattrs.Converter = converter
        for scalar, hook in (
            (str, structure_str),
            (int, structure_int),
            (float, structure_float),
            (bool, structure_bool),
            (bytes, structure_bytes),
            (datetime, structure_datetime),
        ):
            converter.register_structure_hook(scalar, hook)
        converter.register_unstructure_hook(bytes, unstructure_bytes)
        converter.register_unstructure_hook(datetime, unstructure_datetime)
        converter.register_structure_hook_factory(
            is_collection, lambda tp: collection_structure_hook(converter, tp)
        )
        converter.register_structure_hook_factory(self._by_name, self._enum_structure_hook)
        converter.register_unstructure_hook_factory(self._by_name, self._enum_unstructure_hook)
        # Later factories are tried first: registered messages before plain attrs classes.
        converter.register_structure_hook_factory(is_plain_attrs, self._body_structure_hook)
        converter.register_unstructure_hook_factory(is_plain_attrs, self._body_unstructure_hook)
        converter.register_structure_hook_factory(is_message, self._message_structure_hook)
        converter.register_unstructure_hook_factory(is_message, self._message_unstructure_hook)

    # ---- encoding

    def encode(self, message: object, *, as_type: object = None) -> bytes:
        """Turn a message into the bytes to publish.

        Args:
            message: An instance of an attrs class (a registered message, tagged; any other,
                untagged), or a ``str`` (sent as UTF-8), ``bytes`` (sent as they are) or a
                ``dict`` (sent as a JSON object).
            as_type: What the message is sent as: ``untagged(cls)`` for a registered class
                without its discriminator, a ``tagged_union(...)`` for its union's
                discriminator, or the class, union or attrs class it belongs to (the default:
                its own class).

        Returns:
            The payload.

        Raises:
            TypeError: The message is of another type, does not belong to ``as_type``, or a
                dict holds something JSON cannot.
            ValueError: A datetime in the message is naive.
        """
        cls = type(message)
        # The common case first: a class sent as itself before, whose encoder is made already.
        encoder = self._encoders.get(cls if as_type is None else (cls, as_type))
        if encoder is not None:
            return orjson.dumps(encoder(message), option=_DUMPS_OPTIONS)
        if cls is bytes:
            return cast("bytes", message)
        if cls is str:
            return cast("str", message).encode("utf-8")
        if cls is dict:
            return orjson.dumps(message, option=_DUMPS_OPTIONS)
        if not attrs.has(cls):
            raise TypeError(
                f"cannot encode {cls.__qualname__}: send an attrs class (registered with "
                "@message_type(...) for a type tag), str, bytes or dict"
            )
        return orjson.dumps(self._encoder(cls, as_type)(message), option=_DUMPS_OPTIONS)

    def _encoder(self, cls: type, as_type: object) -> Callable[[Any], dict[str, Any]]:
        discriminator = self._encoding_discriminator(cls, as_type)
        body = self._body_unstructure(cls)
        encoder = body
        if discriminator is not None:
            name = _names[cls]

            def encoder(message: Any) -> dict[str, Any]:
                return {discriminator: name, **body(message)}

        self._encoders[cls if as_type is None else (cls, as_type)] = encoder
        return encoder

    def _encoding_discriminator(self, cls: type, as_type: object) -> str | None:
        key = (cls, as_type)
        if as_type is None or as_type is cls:
            discriminator = self.discriminator if cls in _names else None
        elif isinstance(as_type, Untagged):
            if as_type.cls is not cls:
                raise TypeError(f"cannot send {cls.__qualname__} as {describe(as_type)}")
            discriminator = None
        else:
            expected = as_type.union if isinstance(as_type, TaggedUnion) else as_type
            members = registered_members(expected)
            if members is None or cls not in members:
                raise TypeError(f"cannot send {cls.__qualname__} as {describe(as_type)}")
            discriminator = (
                as_type.discriminator if isinstance(as_type, TaggedUnion) else self.discriminator
            )
        if key not in self._prepared:
            self._walk(cls, set())
            if discriminator is not None:
                self._check_clash(cls, discriminator)
            self._prepared.add(key)
        return discriminator

    # ---- decoding

    @overload
    def decode(self, payload: bytes, expected: type[T]) -> T: ...
    @overload
    def decode(self, payload: bytes, expected: object) -> Any: ...
    def decode(self, payload: bytes, expected: object) -> Any:
        """Turn a received payload into an instance of the expected type.

        Args:
            payload: The received bytes.
            expected: A registered message class or a union of them (tagged, on the codec's
                discriminator), a ``tagged_union(...)`` (on its own), an attrs class that is
                not registered or ``untagged(cls)`` (no discriminator), or ``str``, ``bytes``
                or ``dict``.

        Returns:
            The decoded message; for ``dict``, a new dict (treat it as read-only when shared).

        Raises:
            MessageDecodeError: The payload is not a valid ``expected``, for any reason.
            TypeError: ``expected`` is not something the codec can decode into.
        """
        entry = self._entries.get(expected)
        if entry is None:
            entry = self.decoder(expected)
        return entry(payload)

    def decoder(self, expected: object) -> Callable[[bytes], Any]:
        """The function that ``decode(payload, expected)`` calls for ``expected``.

        Keep it to decode many payloads of one type without looking the type up each time:
        ``decoder(expected)(payload)`` is ``decode(payload, expected)``, with the same results,
        errors and statistics.

        Raises:
            TypeError: ``expected`` is not something the codec can decode into.
        """
        entry = self._entries.get(expected)
        if entry is not None:
            return entry
        if expected in (bytes, str):
            entry = functools.partial(self._decode, expected=expected)
        else:
            # Both paths are built at once, so that every payload of the type, the first
            # included, meets the same path.
            self._decoders[expected] = self._decoder(expected)
            entry = self._fast.get(expected) or functools.partial(self._decode, expected=expected)
        self._entries[expected] = entry
        return entry

    def _decode(self, payload: bytes, expected: object) -> Any:
        """The cattrs path: types without a compiled path, and payloads it did not take."""
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
        # decode() built it with the type's compiled path.
        discriminator, structures, structure = self._decoders[expected]
        try:
            value = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise MessageDecodeError(
                _json_reason(payload, exc), expected=describe(expected)
            ) from None
        if type(value) is not dict:
            raise MessageDecodeError(
                f"not a JSON object but {json_kind(value)}", expected=describe(expected)
            )
        # Count brackets first (fast, in C): only payloads that could be too deep are walked.
        if opening_brackets(payload) > self.max_depth and max_depth_exceeded(value, self.max_depth):
            raise MessageDecodeError(
                f"nested deeper than {self.max_depth} levels", expected=describe(expected)
            )
        if discriminator is not None:
            tag = value.get(discriminator)
            structure = structures.get(tag) if type(tag) is str else None
            if structure is None:
                raise MessageDecodeError(
                    _tag_reason(tag, discriminator, tuple(structures)),
                    expected=describe(expected),
                )
        elif structure is None:
            return value  # dict
        try:
            return structure(value)
        except Exception as exc:
            errors = tuple(cattrs.transform_error(exc, "$", _format_exception))
            raise MessageDecodeError(
                "invalid fields", expected=describe(expected), errors=errors
            ) from exc

    def _object_within_limits(self, payload: bytes) -> dict[str, Any]:
        """``dict``'s compiled path: the JSON object; ``_decode`` says what is wrong (too
        large, not JSON, not an object) or walks a payload that may be too deep."""
        if len(payload) <= self.max_payload_size:
            try:
                value = orjson.loads(payload)
            except orjson.JSONDecodeError:
                pass
            else:
                if type(value) is dict and opening_brackets(payload) <= self.max_depth:
                    return value
        return self._dict_handed_over(payload)

    def _decoder(self, expected: object) -> _Decoder:
        self.prepare(expected)
        key = expected  # the compiled path is kept under what decode() is given
        cattrs_path = functools.partial(self._decode, expected=expected)
        if expected is dict:
            self._dict_handed_over = self._compiled_paths.handing_over(cattrs_path)
            self._fast[dict] = self._object_within_limits
            return None, {}, None
        if isinstance(expected, Untagged) or is_plain_attrs(expected):
            cls = expected.cls if isinstance(expected, Untagged) else cast("type", expected)
            body = self._body_structure(cls)
            self._compiled_paths.add(expected, None, {None: cls}, cattrs_path)
            return None, {}, lambda value: body(value, cls)
        if isinstance(expected, TaggedUnion):
            discriminator, expected = expected.discriminator, expected.union
        else:
            discriminator = self.discriminator
        members = registered_members(expected)
        assert members is not None  # prepare() checked it
        self._compiled_paths.add(
            key, discriminator, {_names[cls]: cls for cls in members}, cattrs_path
        )
        return (
            discriminator,
            {_names[cls]: self._tagged_body(cls, discriminator) for cls in members},
            None,
        )

    def statistics(self) -> CodecStatistics:
        """Which decode path each class decoded so far takes (see ``CodecStatistics``)."""
        return self._compiled_paths.statistics()

    def _tagged_body(self, cls: type, discriminator: str) -> Callable[[dict[str, Any]], Any]:
        """Structure a class's fields from an object that also holds its discriminator."""
        found = self._tagged_bodies.get((cls, discriminator))
        if found is not None:
            return found
        body = self._body_structure(cls)
        if self.unknown_keys is UnknownKeys.FORBID:

            def structure(value: dict[str, Any]) -> Any:
                return body({k: v for k, v in value.items() if k != discriminator}, cls)

        else:

            def structure(value: dict[str, Any]) -> Any:
                return body(value, cls)

        self._tagged_bodies[(cls, discriminator)] = structure
        return structure

    def prepare(self, expected: object) -> None:
        """Check an expected type and build its hooks now rather than on first use.

        Unions of registered messages, at the top or in fields, are configured as cattrs
        tagged unions on the codec's discriminator.

        Args:
            expected: What ``decode`` takes as ``expected``.

        Raises:
            TypeError: ``expected`` is none of those, its annotations cannot be resolved, or a
                tagged class has a field named like its discriminator.
        """
        if expected in (str, bytes, dict):
            self._prepared.add(expected)
            return
        if isinstance(expected, Untagged):
            self._walk(expected.cls, set())
        elif is_plain_attrs(expected):
            self._walk(expected, set())
        else:
            union = expected.union if isinstance(expected, TaggedUnion) else expected
            members = registered_members(union)
            if members is None:
                raise TypeError(
                    f"cannot decode into {expected!r}: expected an attrs class, a registered "
                    "message class or a union of them, untagged(cls), tagged_union(...), str, "
                    "bytes or dict"
                )
            discriminator = (
                expected.discriminator if isinstance(expected, TaggedUnion) else self.discriminator
            )
            self._walk(union, set())
            for cls in members:
                self._check_clash(cls, discriminator)
        self._prepared.add(expected)

    def _walk(self, tp: Any, seen: set[object], *, nested: bool = False) -> None:
        """Resolve annotations and configure nested unions, through every field's type.

        Registered classes reached through a field are tagged on the codec's discriminator;
        the type at the top is checked by its caller, which knows how it is used.
        """
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
                self._walk(field.type, seen, nested=True)
            if nested and tp in _names:
                self._check_clash(tp, self.discriminator, nested=True)
            return
        args = typing.get_args(tp)
        if is_union(tp) and args and all(arg in _names for arg in args):
            for arg in args:
                self._walk(arg, seen, nested=nested)
            configure_tagged_union(
                tp, self.converter, tag_generator=_names.__getitem__, tag_name=self.discriminator
            )
            return
        for arg in args:
            self._walk(arg, seen, nested=nested)

    def _check_clash(self, cls: type, discriminator: str, *, nested: bool = False) -> None:
        names = {self._naming(cls).wire_name(field.name) for field in attrs.fields(cls)}
        if discriminator in names:
            where = "nested in a message, it is tagged: " if nested else ""
            raise TypeError(
                f"{cls.__qualname__} has a field written {discriminator!r}, the discriminator "
                f"it is tagged with; {where}use it untagged (untagged(cls), or leave it "
                "unregistered), or choose another discriminator"
            )

    # ---- per-class settings

    def _naming(self, cls: type) -> FieldNaming:
        return class_naming(cls) or self.field_naming

    def _by_name(self, tp: object) -> bool:
        return (
            isinstance(tp, type)
            and issubclass(tp, enum.Enum)
            and (self.enums_by_name or is_enum_by_name(tp))
        )

    def _renames(self, cls: type) -> dict[str, Any]:
        naming = self._naming(cls)
        if naming is FieldNaming.AS_WRITTEN:
            return {}
        return {
            field.name: override(rename=naming.wire_name(field.name))
            for field in attrs.fields(cls)
            if naming.wire_name(field.name) != field.name
        }

    # ---- hook factories

    def _body_structure(self, cls: type) -> Callable[[Any, type], Any]:
        """The structure hook of a class's fields alone, whatever its tag."""
        return cast(
            "Callable[[Any, type], Any]",
            make_dict_structure_fn(
                cls,
                self.converter,
                _cattrs_forbid_extra_keys=self.unknown_keys is UnknownKeys.FORBID,
                **self._renames(cls),
            ),
        )

    def _body_unstructure(self, cls: type) -> Callable[[Any], dict[str, Any]]:
        """The unstructure hook of a class's fields alone, built once per class."""
        found = self._unstructure_bodies.get(cls)
        if found is None:
            found = make_dict_unstructure_fn(cls, self.converter, **self._renames(cls))
            self._unstructure_bodies[cls] = found
        return found

    def _body_structure_hook(self, cls: type) -> Callable[[Any, type], Any]:
        body = self._body_structure(cls)

        def structure_object(value: Any, _: type) -> Any:
            if type(value) is not dict:
                raise TypeError(f"expected an object, got {json_kind(value)}")
            return body(value, cls)

        return structure_object

    def _body_unstructure_hook(self, cls: type) -> Callable[[Any], dict[str, Any]]:
        return self._body_unstructure(cls)

    def _message_structure_hook(self, cls: type) -> Callable[[Any, type], Any]:
        """A registered class nested in a field: tagged on the codec's discriminator."""
        name = _names[cls]
        discriminator = self.discriminator
        body = self._tagged_body(cls, discriminator)

        def structure_message(value: Any, _: type) -> Any:
            if type(value) is not dict:
                raise TypeError(f"expected an object for {name!r}, got {json_kind(value)}")
            if value.get(discriminator) != name:
                raise ValueError(f"expected type tag {name!r}, got {value.get(discriminator)!r}")
            return body(value)

        return structure_message

    def _message_unstructure_hook(self, cls: type) -> Callable[[Any], dict[str, Any]]:
        name = _names[cls]
        discriminator = self.discriminator
        body = self._body_unstructure(cls)

        def unstructure_message(value: Any) -> dict[str, Any]:
            return {discriminator: name, **body(value)}

        return unstructure_message

    def _enum_structure_hook(self, cls: type[enum.Enum]) -> Callable[[Any, type], Any]:
        members = cls.__members__

        def structure_enum(value: Any, _: type) -> Any:
            if type(value) is not str:
                raise TypeError(f"expected a name of {cls.__name__}, got {json_kind(value)}")
            try:
                return members[value]
            except KeyError:
                names = ", ".join(members)
                raise ValueError(f"{value[:64]!r} is not one of {names}") from None

        return structure_enum

    def _enum_unstructure_hook(self, cls: type[enum.Enum]) -> Callable[[Any], str]:
        def unstructure_enum(value: enum.Enum) -> str:
            return value.name

        return unstructure_enum


_Decoder = tuple[str | None, dict[str, Any], Any]


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


def _tag_reason(tag: object, discriminator: str, tags: tuple[str, ...]) -> str:
    if tag is None:
        return f"missing type tag {discriminator!r}"
    if type(tag) is not str:
        return f"type tag is {json_kind(tag)}, not a string"
    return f"unexpected type tag {tag[:128]!r}; expected {' or '.join(map(repr, tags))}"


CODEC: Final = Codec()
"""The process-wide default codec."""
