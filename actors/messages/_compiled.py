"""The compiled decode path: msgspec builds an attrs message straight from the payload's bytes.

cattrs structures a message in Python, one hook call per field (2.5 to 4 us for a small
message on our benchmark machine); msgspec's typed JSON decoder builds the same attrs class in
C, running its validators, default factories and ``__attrs_post_init__``, in about 1 us. The
codec takes this path for every class it can express exactly as the cattrs path does, and
keeps cattrs for the rest, saying why (``CodecStatistics.cattrs``).

Exactness rests on three rules. The compiled path only ever accepts: a payload it does not take
goes on to the cattrs path, which gives the documented reason (or, for the few spellings msgspec
does not read alike, such as a timestamp with an offset, the documented value). Before msgspec
runs, the codec's limits are checked on the bytes (size, valid UTF-8, brackets for the nesting
bound), so that they hold in keys the class ignores, which msgspec skips. And a type is compiled
only when every field is one whose reading msgspec and our cattrs hooks agree on; timestamps,
which msgspec rounds where Python truncates and keeps in their own offset, are compiled only as
top-level fields and only when a first pass finds them in the form both read alike.
"""

from __future__ import annotations

import enum
import operator
import typing
from datetime import datetime
from typing import Annotated, Any, Final

import attrs
import msgspec

from actors.messages._base import aware_timestamp
from actors.messages._types import is_union, optional_of
from actors.messages._wire import FieldNaming

if typing.TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "ClassDecoder",
    "CodecStatistics",
    "CompiledPaths",
    "compile_decoder",
    "fast_decode",
    "opening_brackets",
]

# The longest timestamp the compiled path reads: YYYY-MM-DDTHH:MM:SS.ffffffZ, microseconds.
_LONGEST_TIMESTAMP: Final = 27  # characters

_SCALARS: Final = (str, int, float, bool)

_OPENING_BRACKET: Final = ord("[")

# A timestamp's text as the first pass reads it: longer than the longest timestamp the compiled
# path takes is refused there, in C.
_TimestampText = Annotated[str, msgspec.Meta(max_length=_LONGEST_TIMESTAMP)]

# Hooks whose module is one of these are the codec's or cattrs' own; any other is a user's.
_OWN_HOOK_MODULES: Final = ("actors.messages", "cattrs")


@attrs.frozen
class ClassDecoder:
    """msgspec's typed decoder of one attrs class, and the names of its timestamp fields."""

    decode: Callable[[bytes], Any]
    timestamps: tuple[str, ...]


@attrs.frozen
class _Rules:
    """What the codec says about a class, as far as compiling goes."""

    structure_hook: Callable[[Any], Callable[..., Any]]
    naming: Callable[[type], FieldNaming]
    enum_by_name: Callable[[type], bool]
    tagged: Callable[[type], bool]


@attrs.frozen
class CodecStatistics:
    """Which decode path each class takes, and how often the compiled one handed over.

    Attributes:
        compiled: The classes decoded by msgspec's compiled decoder, by qualified name.
        cattrs: The classes that keep the cattrs path, each with the reason.
        handed_to_cattrs: Payloads the compiled path did not accept and passed to cattrs,
            which refused them with the documented reason or read a spelling msgspec does not
            (a timestamp with another offset, say).
    """

    compiled: tuple[str, ...]
    cattrs: dict[str, str]
    handed_to_cattrs: int


class CompiledPaths:
    """A codec's compiled decoders: one per class, and one entry point per expected type.

    Args:
        compile_class: Makes a class's decoder, or says why the class keeps the cattrs path.
        refusal: Why no class of this codec is compiled, or None.
        max_payload_size: The codec's payload limit, checked by every entry point.
        max_depth: The codec's nesting limit, likewise.
    """

    def __init__(
        self,
        compile_class: Callable[[type], ClassDecoder | str],
        *,
        refusal: str | None,
        max_payload_size: int,
        max_depth: int,
    ) -> None:
        self._compile = compile_class
        self._refusal = refusal
        self._max_payload_size = max_payload_size
        self._max_depth = max_depth
        self._classes: dict[type, ClassDecoder | str] = {}
        self.by_expected: dict[Any, Callable[[bytes], Any]] = {}
        """The entry point of each expected type that has one (see ``fast_decode``)."""
        self.handed_to_cattrs = 0
        """Payloads an entry point did not accept; the codec counts them."""

    def add(
        self,
        expected: object,
        discriminator: str | None,
        classes: dict[Any, type],
        cattrs_path: Callable[[bytes], Any],
    ) -> None:
        """Give ``expected`` an entry point over its classes (by tag; by None when untagged),
        if any of them compiles; a payload it does not accept goes on to ``cattrs_path``."""
        decoders = {}
        for tag, cls in classes.items():
            decoder = self._decoder(cls)
            if decoder is not None:
                decoders[tag] = decoder
        entry = fast_decode(
            discriminator,
            decoders,
            max_payload_size=self._max_payload_size,
            max_depth=self._max_depth,
            fallback=self.handing_over(cattrs_path),
        )
        if entry is not None:
            self.by_expected[expected] = entry

    def handing_over(self, cattrs_path: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
        """``cattrs_path``, counting each payload it is handed in ``handed_to_cattrs``."""

        def hand_over(payload: bytes) -> Any:
            self.handed_to_cattrs += 1
            return cattrs_path(payload)

        return hand_over

    def _decoder(self, cls: type) -> ClassDecoder | None:
        found = self._classes.get(cls)
        if found is None:
            found = self._refusal if self._refusal is not None else self._compile(cls)
            self._classes[cls] = found
        return None if isinstance(found, str) else found

    def statistics(self) -> CodecStatistics:
        """Which path each class takes so far, with the reasons, and the hand-overs."""
        ordered = sorted(self._classes.items(), key=lambda item: item[0].__qualname__)
        return CodecStatistics(
            compiled=tuple(
                cls.__qualname__ for cls, found in ordered if isinstance(found, ClassDecoder)
            ),
            cattrs={cls.__qualname__: found for cls, found in ordered if isinstance(found, str)},
            handed_to_cattrs=self.handed_to_cattrs,
        )


def compile_decoder(
    cls: type,
    *,
    structure_hook: Callable[[Any], Callable[..., Any]],
    naming: Callable[[type], FieldNaming],
    enum_by_name: Callable[[type], bool],
    tagged: Callable[[type], bool],
) -> ClassDecoder | str:
    """msgspec's decoder for ``cls``, or the reason the class keeps the cattrs path.

    Args:
        cls: An attrs class (a registered message's fields, or a plain attrs class).
        structure_hook: The codec converter's ``get_structure_hook``, to find user hooks.
        naming: The field naming that applies to a class.
        enum_by_name: Whether an enum is read by member name.
        tagged: Whether a class nested in a field carries a type tag (a registered message).
    """
    rules = _Rules(structure_hook, naming, enum_by_name, tagged)
    refusal = _class_refusal(cls, rules, top_level=True, seen=set())
    if refusal is not None:
        return refusal
    try:
        decode: Callable[[bytes], Any] = msgspec.json.Decoder(cls).decode
    except Exception as exc:  # a type msgspec cannot express, or annotations it cannot resolve
        return f"msgspec cannot decode it ({exc})"
    timestamps = tuple(
        field.name
        for field in attrs.fields(cls)
        if datetime in (field.type, optional_of(field.type))
    )
    return ClassDecoder(decode, timestamps)


def fast_decode(
    discriminator: str | None,
    decoders: Mapping[str | None, ClassDecoder],
    *,
    max_payload_size: int,
    max_depth: int,
    fallback: Callable[[bytes], Any],
) -> Callable[[bytes], Any] | None:
    """One function that decodes a payload into whichever class its tag names, or None.

    ``decoders`` holds the compiled classes by tag (by None when untagged). The payload must
    be at most ``max_payload_size`` bytes of valid UTF-8 with at most ``max_depth`` brackets
    (so the codec's limits hold whatever keys the class ignores and msgspec skips). A light
    first pass (a msgspec struct of the tag and the timestamp strings, skipping everything
    else) finds the class and checks the timestamps' spelling; then the class's decoder reads
    the payload. A payload the returned function does not take goes to ``fallback`` (the
    cattrs path), whose answer or error it passes on; no function at all means: ask cattrs.
    """
    if not decoders:
        return None
    fields: list[tuple[str, Any, Any]] = []
    rename: dict[str, str] = {}
    if discriminator is not None:
        fields.append(("tag", str | None, None))
        rename["tag"] = discriminator
    slots: dict[str, str] = {}
    for decoder in decoders.values():
        for name in decoder.timestamps:
            if name not in slots:
                slots[name] = f"timestamp_{len(slots)}"
                fields.append((slots[name], _TimestampText | None, None))
                rename[slots[name]] = name
    # Untagged and without timestamps, a class needs no first pass: msgspec reads it at once.
    view: Callable[[bytes], Any] | None = None
    if discriminator is not None or slots:
        view = msgspec.json.Decoder(
            msgspec.defstruct("View", fields, rename=rename, forbid_unknown_fields=False)
        ).decode
    by_tag = {tag: decoder.decode for tag, decoder in decoders.items()}
    only = by_tag[None] if view is None else None
    # Every timestamp text the first pass read is checked, whichever class the tag names: a
    # key that class ignores is checked too, and at worst sends its payload to cattrs.
    one_timestamp = len(slots) == 1
    texts_of = operator.attrgetter(*slots.values()) if len(slots) > 1 else None

    def decode_viewed(payload: bytes) -> Any:
        if (
            len(payload) > max_payload_size
            or not (payload.isascii() or _is_utf8(payload))
            or opening_brackets(payload) > max_depth
        ):
            return fallback(payload)
        try:
            if only is not None:
                return only(payload)
            assert view is not None
            seen: Any = view(payload)
            decode = by_tag[seen.tag if discriminator is not None else None]
            # The same instant and tzinfo for msgspec and datetime.fromisoformat: UTC as Z, T
            # between date and time, at most 6 fractional digits (the first pass checked the
            # length). msgspec rounds more digits (Python truncates), keeps another offset (the
            # codec converts to UTC) and takes a lowercase t or z: those go to cattrs.
            if one_timestamp:
                text = seen.timestamp_0
                if text is not None and not (text[-1] == "Z" and text[10] == "T"):
                    raise ValueError(text)
            elif texts_of is not None:
                for text in texts_of(seen):
                    if text is not None and not (text[-1] == "Z" and text[10] == "T"):
                        raise ValueError(text)
            return decode(payload)
        except Exception:  # the cattrs path gives the documented reason (or reads it alike)
            pass
        return fallback(payload)

    return decode_viewed


def _class_refusal(cls: type, rules: _Rules, *, top_level: bool, seen: set[type]) -> str | None:
    if cls in seen:
        return f"{cls.__qualname__} refers to itself"
    seen.add(cls)
    name = cls.__qualname__
    if rules.naming(cls) is not FieldNaming.AS_WRITTEN:
        return f"{name} renames its fields on the wire"
    if hasattr(cls, "__attrs_pre_init__"):
        return f"{name} has __attrs_pre_init__"
    for field in attrs.fields(cls):
        where = f"{name}.{field.name}"
        # Message.timestamp's converter only refuses naive datetimes, and the compiled path
        # reads a top-level timestamp only when it is written in UTC (see fast_decode).
        if field.converter is not None and field.converter is not aware_timestamp:
            return f"{where} has a converter"
        if not field.init:
            return f"{where} is not set by __init__"
        if field.alias != field.name:
            return f"{where} is set by __init__ as {field.alias}"
        if isinstance(field.default, attrs.Factory) and field.default.takes_self:  # type: ignore[arg-type]
            return f"{where} has a default that takes self"
        refusal = _type_refusal(field.type, rules, top_level=top_level, seen=seen)
        if refusal is not None:
            return f"{where}: {refusal}"
    return None


def _type_refusal(tp: Any, rules: _Rules, *, top_level: bool, seen: set[type]) -> str | None:
    if tp is type(None):
        return None
    if tp in _SCALARS:
        return _user_hook(tp, rules)
    if tp is datetime:
        if not top_level:
            return "a timestamp inside a collection or a nested class"
        return _user_hook(tp, rules)
    args = typing.get_args(tp)
    origin = typing.get_origin(tp)
    if is_union(tp):
        inner = optional_of(tp)
        if inner is None:
            return f"the union {tp!r}"
        return _type_refusal(inner, rules, top_level=top_level, seen=seen)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _enum_refusal(tp, rules)
    if isinstance(tp, type) and attrs.has(tp):
        if rules.tagged(tp):
            return f"the tagged message {tp.__qualname__} nested in a field"
        return _user_hook(tp, rules) or _class_refusal(tp, rules, top_level=False, seen=seen)
    if origin in (list, set, frozenset) and len(args) == 1:
        return _user_hook(tp, rules) or _type_refusal(args[0], rules, top_level=False, seen=seen)
    if origin is tuple and args:
        items = args[:1] if len(args) == 2 and args[1] is Ellipsis else args
        return _user_hook(tp, rules) or next(
            (
                refusal
                for item in items
                if (refusal := _type_refusal(item, rules, top_level=False, seen=seen))
            ),
            None,
        )
    if origin is dict and len(args) == 2 and args[0] is str:
        return _user_hook(tp, rules) or _type_refusal(args[1], rules, top_level=False, seen=seen)
    return f"the type {tp!r}"


def _enum_refusal(tp: type[enum.Enum], rules: _Rules) -> str | None:
    if rules.enum_by_name(tp):
        return f"the enum {tp.__qualname__} is read by name"
    kinds = {type(member.value) for member in tp}
    if kinds not in ({str}, {int}):
        return f"the enum {tp.__qualname__} has values that are not all strings or all integers"
    return _user_hook(tp, rules)


def _user_hook(tp: Any, rules: _Rules) -> str | None:
    hook = rules.structure_hook(tp)
    module = getattr(hook, "__module__", None) or ""
    if module.startswith(_OWN_HOOK_MODULES):
        return None
    return f"a structure hook is registered for {tp!r}"


def opening_brackets(payload: bytes) -> int:
    """How many ``{`` and ``[`` a payload holds: a bound on its JSON nesting, found in C."""
    # Counting a byte walks the whole payload, and the second count is needed only if there
    # is a bracket at all: testing for one (as an int, which is memchr) stops at the first.
    if _OPENING_BRACKET in payload:
        return payload.count(b"{") + payload.count(b"[")
    return payload.count(b"{")


def _is_utf8(payload: bytes) -> bool:
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
