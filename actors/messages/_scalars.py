"""Strict hooks for the scalars of a message, and the bound on JSON nesting.

cattrs' defaults call ``str()`` and ``int()``, which would take ``1`` for ``"1"``; these take
exactly the JSON type the annotation names. Datetimes are ISO-8601 with an offset, kept in
UTC; bytes are standard base64.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Final

__all__ = [
    "json_kind",
    "max_depth_exceeded",
    "structure_bool",
    "structure_bytes",
    "structure_datetime",
    "structure_float",
    "structure_int",
    "structure_str",
    "unstructure_bytes",
    "unstructure_datetime",
]

_MAX_DATETIME_LENGTH: Final = 64  # characters


def json_kind(value: object) -> str:
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


def structure_str(value: object, _: type) -> str:
    if type(value) is not str:
        raise TypeError(f"expected a string, got {json_kind(value)}")
    return value


def structure_int(value: object, _: type) -> int:
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {json_kind(value)}")
    return value


def structure_float(value: object, _: type) -> float:
    if type(value) is float:
        return value
    if type(value) is int:
        return float(value)
    raise TypeError(f"expected a number, got {json_kind(value)}")


def structure_bool(value: object, _: type) -> bool:
    if type(value) is not bool:
        raise TypeError(f"expected a boolean, got {json_kind(value)}")
    return value


def structure_bytes(value: object, _: type) -> bytes:
    if type(value) is not str:
        raise TypeError(f"expected a base64 string, got {json_kind(value)}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("invalid base64") from None


def unstructure_bytes(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def structure_datetime(value: object, _: type) -> datetime:
    if type(value) is not str:
        raise TypeError(f"expected an ISO-8601 string, got {json_kind(value)}")
    if len(value) > _MAX_DATETIME_LENGTH:
        raise ValueError("datetime string too long")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("datetime without a UTC offset: add Z or +00:00")
    return parsed if parsed.tzinfo is UTC else parsed.astimezone(UTC)


def unstructure_datetime(value: datetime) -> datetime:
    # orjson writes the string (with OPT_UTC_Z, "...Z"); we only normalize to UTC.
    if value.tzinfo is UTC:
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"cannot encode the naive datetime {value!r}: attach tzinfo=UTC")
    return value.astimezone(UTC)


def max_depth_exceeded(value: object, limit: int) -> bool:
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
