"""What an expected type stands for: its name in errors, its registered members, its shape.

Shared by the codec and its compiled path, so that both read a union or an ``X | None`` alike.
"""

from __future__ import annotations

import types
import typing
from typing import Any, cast

import attrs

from actors.messages._base import _names, message_type_name
from actors.messages._wire import TaggedUnion, Untagged

__all__ = [
    "describe",
    "is_message",
    "is_plain_attrs",
    "is_union",
    "optional_of",
    "registered_members",
]


def describe(expected: object) -> str:
    """A short name for an expected type: its wire name, class name, or ``A | B``."""
    if isinstance(expected, Untagged):
        return describe(expected.cls)
    if isinstance(expected, TaggedUnion):
        return describe(expected.union)
    if isinstance(expected, type):
        return message_type_name(expected) or expected.__qualname__
    args = typing.get_args(expected)
    if args and is_union(expected):
        return " | ".join(describe(arg) for arg in args)
    return repr(expected)


def is_union(tp: object) -> bool:
    """Whether ``tp`` is a union (``A | B`` or ``typing.Union[A, B]``)."""
    return isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union


def optional_of(tp: object) -> Any:
    """``X`` for ``X | None``; None for any other type."""
    if not is_union(tp):
        return None
    args = typing.get_args(tp)
    others = [arg for arg in args if arg is not type(None)]
    return others[0] if len(args) == 2 and len(others) == 1 else None


def registered_members(expected: object) -> tuple[type, ...] | None:
    """The registered classes a tagged expected type stands for, or None if it is not one."""
    if isinstance(expected, type):
        return (expected,) if expected in _names else None
    args = typing.get_args(expected)
    if is_union(expected) and args and all(arg in _names for arg in args):
        return cast("tuple[type, ...]", args)
    return None


def is_message(tp: object) -> bool:
    """Whether ``tp`` is a registered message class (tagged on the wire)."""
    return isinstance(tp, type) and tp in _names


def is_plain_attrs(tp: object) -> bool:
    """Whether ``tp`` is an attrs class that is not registered (untagged on the wire)."""
    return isinstance(tp, type) and attrs.has(tp) and tp not in _names
