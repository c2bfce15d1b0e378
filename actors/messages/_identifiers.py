"""The names people and code choose, each with one rule: user ids, room names, presence scopes.

Tokens, chat, presence and the gateway all check these names here and nowhere else. The rule
is deliberately narrow: 1 to 64 ASCII letters, digits, ``-``, ``_`` and ``.``, so that a name
is safe in a channel name (no glob character, no ``:`` separator), in a Redis key, in a URL and
in a log line, and an ``@mention`` of it can be found in text.
"""

from __future__ import annotations

import re
from typing import Final

from actors._errors import InvalidIdentifierError

__all__ = [
    "IDENTIFIER_PATTERN",
    "IDENTIFIER_RULE",
    "MAX_IDENTIFIER_LENGTH",
    "check_room_name",
    "check_scope",
    "check_user_id",
]

MAX_IDENTIFIER_LENGTH: Final = 64  # characters
IDENTIFIER_RULE: Final = "1 to 64 characters: ASCII letters, digits, '-', '_' and '.'"
"""The rule in words, for error messages and docs."""

IDENTIFIER_PATTERN: Final = r"[A-Za-z0-9_.\-]{1,64}"
"""The rule as a regular expression (to match whole), for clients that check names too."""
_IDENTIFIER: Final = re.compile(IDENTIFIER_PATTERN)


def _check(kind: str, value: object) -> str:
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        raise InvalidIdentifierError(kind, value, IDENTIFIER_RULE)
    return value


def check_user_id(value: object) -> str:
    """Return ``value`` if it may be a user id.

    Raises:
        InvalidIdentifierError: It is not a str of 1 to 64 ASCII letters, digits, ``-_.``.
    """
    return _check("user id", value)


def check_room_name(value: object) -> str:
    """Return ``value`` if it may name a chat room.

    Raises:
        InvalidIdentifierError: It is not a str of 1 to 64 ASCII letters, digits, ``-_.``.
    """
    return _check("room name", value)


def check_scope(value: object) -> str:
    """Return ``value`` if it may name a presence scope (a room, or ``global``).

    Raises:
        InvalidIdentifierError: It is not a str of 1 to 64 ASCII letters, digits, ``-_.``.
    """
    return _check("presence scope", value)
