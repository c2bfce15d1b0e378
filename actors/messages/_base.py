"""The message base class and the registry of message type names.

A message is an ``@attrs.frozen`` class registered under a type name with ``@message_type``.
The name is what goes on the wire in the ``"type"`` field, so it must stay stable when the
class is renamed or moved, exactly like kotlinx.serialization's ``@SerialName``.
"""

from __future__ import annotations

import contextlib
import re
import sys
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

import attrs

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "TYPE_FIELD",
    "Message",
    "message_class",
    "message_type",
    "message_type_name",
    "registered_message_types",
]

T = TypeVar("T", bound=type)

TYPE_FIELD: Final = "type"
"""The discriminator field on the wire (kotlinx.serialization's default class discriminator)."""

MAX_TYPE_NAME_LENGTH: Final = 128  # characters

# Letters, digits and ``_ . - :``, starting with a letter: enough for Kotlin's qualified
# names (``com.example.PubSubMessage.Notification``) and for short names like ``user-online``.
_TYPE_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_.:\-]*")

_classes: dict[str, type] = {}
_names: dict[type, str] = {}


def _new_id() -> str:
    return uuid.uuid4().hex


def _now() -> datetime:
    return datetime.now(UTC)


def aware_timestamp(value: datetime) -> datetime:
    """``Message.timestamp``'s converter: the datetime as it is, unless it is naive.

    A converter rather than a validator: msgspec's compiled decoder runs a class's validators
    (a Python call per decoded message, a third of its time) but not its converters, and the
    compiled path takes only timestamps written in UTC (docs/wire-format.md), so nothing it
    builds could fail this check.

    Raises:
        ValueError: ``value`` is naive.
    """
    # UTC first: it is what every decoded timestamp holds, and utcoffset() costs a timedelta.
    if value.tzinfo is not UTC and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(
            "timestamp must be timezone-aware (naive datetimes are ambiguous); "
            "use datetime.now(UTC) or attach tzinfo=UTC"
        )
    return value


@attrs.frozen(kw_only=True)
class Message:
    """Base class of typed messages: an id and a timestamp, both filled in by default.

    Subclasses are ``@attrs.frozen`` classes too, registered with ``@message_type``. Both fields
    are keyword-only, so subclasses may add fields without defaults.

    Attributes:
        id: A unique id, by default a new UUID4 as 32 hex digits.
        timestamp: When the message was made: timezone-aware, by default now in UTC.
            A naive datetime is refused with ``ValueError``.
    """

    id: str = attrs.field(factory=_new_id)
    timestamp: datetime = attrs.field(factory=_now, converter=aware_timestamp)


def message_type(name: str) -> Callable[[T], T]:
    """Register an attrs class as a message under a wire type name.

    Use it as a class decorator, outside ``@attrs.frozen``::

        @message_type("notification")
        @attrs.frozen(kw_only=True)
        class NotificationMessage(Message): ...

    The class's postponed annotations are resolved here, with the caller's local names, so
    message classes may be defined inside functions.

    Args:
        name: The value of the ``"type"`` field on the wire: a letter followed by letters,
            digits and ``_ . - :``, at most 128 characters.

    Returns:
        A decorator that registers the class and returns it unchanged.

    Raises:
        ValueError: The name is invalid or already registered, or the class is registered
            under another name, or it has a field named ``type`` (the discriminator).
        TypeError: The class is not an attrs class.
    """
    if not isinstance(name, str) or not _TYPE_NAME.fullmatch(name):
        raise ValueError(
            f"invalid message type name {name!r}: use a letter followed by letters, digits "
            "and _ . - :"
        )
    if len(name) > MAX_TYPE_NAME_LENGTH:
        raise ValueError(f"message type name longer than {MAX_TYPE_NAME_LENGTH} characters")
    caller_locals: dict[str, Any] = dict(sys._getframe(1).f_locals)

    def register(cls: T) -> T:
        if not attrs.has(cast("type", cls)):
            raise TypeError(
                f"{cls.__qualname__} is not an attrs class; decorate it with @attrs.frozen"
            )
        if name in _classes:
            raise ValueError(
                f"message type name {name!r} is already registered by "
                f"{_classes[name].__module__}.{_classes[name].__qualname__}"
            )
        if cls in _names:
            raise ValueError(f"{cls.__qualname__} is already registered as {_names[cls]!r}")
        # A forward reference to a class defined later fails here; the codec retries on first use.
        with contextlib.suppress(NameError):
            attrs.resolve_types(cls, localns={**caller_locals, cls.__name__: cls})
        _classes[name] = cls
        _names[cls] = name
        return cls

    return register


def message_type_name(cls: type) -> str | None:
    """The wire type name a class was registered under.

    Args:
        cls: A class.

    Returns:
        The name given to ``@message_type``, or None if the class is not registered.
    """
    return _names.get(cls)


def message_class(name: str) -> type | None:
    """The class registered under a wire type name.

    Args:
        name: A type name, as found in the ``"type"`` field.

    Returns:
        The registered class, or None if no class has that name.
    """
    return _classes.get(name)


def registered_message_types() -> dict[str, type]:
    """Every class registered so far, by wire type name (a new dict, in registration order).

    Classes register when their module is imported, so this lists the imported ones.
    """
    return dict(_classes)
