"""How a type looks on the wire, beyond its fields: the discriminator, field names and enums.

These are the options a service in another language needs from us. kotlinx.serialization, the
one our users' guide is written for, writes a discriminator only for a value encoded through
its sealed base class, under a key its ``Json`` configures (``classDiscriminator``, ``"type"``
by default); it writes a class's own properties by their Kotlin names (camelCase) and enum
constants by name. Each of those has its switch here, codec-wide (``Codec`` arguments) or per
type (the decorators and markers below); a per-type setting wins.
"""

from __future__ import annotations

import enum
import re
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

import attrs

from actors.messages._base import TYPE_FIELD

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "FieldNaming",
    "TaggedUnion",
    "UnknownKeys",
    "Untagged",
    "enum_by_name",
    "field_naming",
    "tagged_union",
    "untagged",
]

T = TypeVar("T", bound=type)

_DISCRIMINATOR: Final = re.compile(r"[A-Za-z_@$][A-Za-z0-9_@$.\-]{0,63}")


class FieldNaming(enum.Enum):
    """How a class's field names are written on the wire."""

    AS_WRITTEN = "as_written"
    """As in the Python class: ``user_id`` (the default)."""
    CAMEL_CASE = "camel_case"
    """``user_id`` as ``userId``: what Kotlin, Java and JavaScript services write."""

    def wire_name(self, name: str) -> str:
        """The key a field called ``name`` has on the wire."""
        if self is FieldNaming.AS_WRITTEN:
            return name
        head, *rest = name.split("_")
        return head + "".join(part[:1].upper() + part[1:] for part in rest)


class UnknownKeys(enum.Enum):
    """What decoding does with an object key the class does not declare."""

    IGNORE = "ignore"
    """Skip it: a sender may add fields before its receivers know them (the default)."""
    FORBID = "forbid"
    """Refuse the payload, as kotlinx.serialization's default ``Json`` does."""


_naming: dict[type, FieldNaming] = {}
_enums_by_name: set[type] = set()


def field_naming(naming: FieldNaming) -> Callable[[T], T]:
    """Write the fields of one attrs class (a message or a class nested in one) this way,
    whatever the codec's ``field_naming`` says.

    Use it as a class decorator, outside ``@attrs.frozen``.

    Args:
        naming: How the class's field names go on the wire.

    Returns:
        A decorator that records the naming and returns the class unchanged.

    Raises:
        TypeError: The class is not an attrs class.
    """

    def record(cls: T) -> T:
        if not attrs.has(cast("type", cls)):
            raise TypeError(f"{cls.__qualname__} is not an attrs class")
        _naming[cls] = naming
        return cls

    return record


def enum_by_name(cls: T) -> T:
    """Write this enum's members by name (``"ONLINE"``), as Kotlin writes enum constants,
    instead of by value; decoding then takes names only.

    Raises:
        TypeError: The class is not an ``enum.Enum``.
    """
    if not (isinstance(cls, type) and issubclass(cls, enum.Enum)):
        raise TypeError(f"{cls!r} is not an enum")
    _enums_by_name.add(cls)
    return cls


def class_naming(cls: type) -> FieldNaming | None:
    """The naming ``@field_naming`` gave ``cls``, if any."""
    return _naming.get(cls)


def is_enum_by_name(cls: type) -> bool:
    """Whether ``@enum_by_name`` marked ``cls``."""
    return cls in _enums_by_name


def check_discriminator(key: str) -> str:
    """``key`` if it can be a discriminator; raises ``ValueError`` otherwise."""
    if not isinstance(key, str) or not _DISCRIMINATOR.fullmatch(key):
        raise ValueError(
            f"invalid discriminator {key!r}: 1 to 64 letters, digits and _ @ $ . -, "
            "not starting with a digit"
        )
    return key


@attrs.frozen
class Untagged:
    """One attrs class written and read with no discriminator: what kotlinx does for a value
    encoded through its own class rather than its sealed base. Make one with ``untagged``."""

    cls: type


def untagged(cls: type) -> Untagged:
    """Use ``cls`` without a discriminator, whether or not it is a registered message.

    An attrs class that is not registered is always untagged; this is for a registered class
    used on its own (a Kotlin sealed subclass published through its own serializer). As a
    subscription's ``message_type`` or a publish's, payloads carry only the class's fields,
    and the class may have a field named ``type``.

    Raises:
        TypeError: ``cls`` is not an attrs class.
    """
    if not attrs.has(cls):
        raise TypeError(f"untagged() takes an attrs class, not {cls!r}")
    return Untagged(cls)


@attrs.frozen
class TaggedUnion:
    """A union of registered message classes with a discriminator of its own (kotlinx's
    ``@JsonClassDiscriminator``). Make one with ``tagged_union``."""

    union: Any
    discriminator: str


def tagged_union(union: Any, *, discriminator: str = TYPE_FIELD) -> TaggedUnion:
    """The registered classes of ``union`` (or one of them), told apart by ``discriminator``.

    Args:
        union: A registered message class or a union of them, such as
            ``UserOnline | UserOffline``.
        discriminator: The key that holds the type name.

    Raises:
        ValueError: The discriminator is not a plausible JSON key.
    """
    return TaggedUnion(union, check_discriminator(discriminator))
