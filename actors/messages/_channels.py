"""Channel names built safely from user input, and Redis glob helpers.

A channel built with ``channel_name`` is always an exact channel, never a pattern: its parts
may not contain glob characters, so ``subscribe(channel_name("chat:{room}", room=user_input))``
cannot be turned into a subscription to every room.

Parts are ASCII only: letters, digits and ``- _ . @``. Non-ASCII letters are refused on
purpose: Redis compares channel names as bytes, so ``"é"`` typed two ways (NFC, NFD) would be two
channels, and look-alike letters could impersonate another user's channel. Map such input to an
id first.
"""

from __future__ import annotations

import re
import string
from typing import Final

from actors._errors import InvalidChannelNameError

__all__ = [
    "GLOB_CHARACTERS",
    "MAX_CHANNEL_PART_LENGTH",
    "channel_name",
    "escape_glob",
    "is_pattern",
]

MAX_CHANNEL_PART_LENGTH: Final = 128  # characters
GLOB_CHARACTERS: Final = "*?[]\\"
"""Characters with a meaning in Redis glob patterns (``PSUBSCRIBE``)."""

_PART: Final = re.compile(r"[A-Za-z0-9_.@\-]+")
_GLOB: Final = re.compile(r"([*?\[\]\\])")
_FORMATTER: Final = string.Formatter()


def _check_part(key: str, value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidChannelNameError(repr(value), f"{key} must be a str or an int")
    text = str(value)
    if not text:
        raise InvalidChannelNameError(text, f"{key} is empty")
    if len(text) > MAX_CHANNEL_PART_LENGTH:
        raise InvalidChannelNameError(
            text, f"{key} is longer than {MAX_CHANNEL_PART_LENGTH} characters"
        )
    if not _PART.fullmatch(text):
        bad = next(char for char in text if not _PART.fullmatch(char))
        kind = "a glob character" if bad in GLOB_CHARACTERS else "not allowed"
        raise InvalidChannelNameError(
            text,
            f"{key} contains {bad!r} ({kind}); use ASCII letters, digits and - _ . @",
        )
    return text


def channel_name(template: str, *, hash_tag: str | None = None, **parts: str | int) -> str:
    """Build an exact channel name (or Redis key) from a template and validated parts.

    ``channel_name("user:{id}", id="42")`` is ``"user:42"``; ``channel_name("chat:{room}",
    room="*")`` raises, so user input can never widen a subscription into a pattern.

    ``hash_tag`` names the part that is the name's Redis Cluster hash tag: that part's value is
    put in braces where the field stands, and a cluster hashes only it. Every channel and key
    built with the same value in the tag is in one hash slot, so one Lua script or
    ``SPUBLISH`` may use them all: ``channel_name("presence:{scope}", scope="lobby",
    hash_tag="scope")`` is ``"presence:{lobby}"``, ``channel_name("presence:{scope}:members",
    scope="lobby", hash_tag="scope")`` is ``"presence:{lobby}:members"``, and both are in the
    slot of ``"lobby"``.

    Args:
        template: A ``str.format`` template with named fields only (no conversions or format
            specs); its literal text may not contain glob characters, nor braces when
            ``hash_tag`` is given (``{{`` would make another tag).
        hash_tag: The name of the field whose value becomes the hash tag, or None for a name
            without one.
        **parts: A value for each field: non-empty, at most 128 characters, ASCII letters,
            digits and ``- _ . @`` only (ints are formatted in decimal).

    Returns:
        The channel name.

    Raises:
        InvalidChannelNameError: A part is invalid, missing or unused, or the template is, or
            ``hash_tag`` names no field of the template.
    """
    fields: list[str] = []
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError as exc:
        raise InvalidChannelNameError(template, f"bad template: {exc}") from None
    for literal, field, spec, conversion in parsed:
        if any(char in GLOB_CHARACTERS for char in literal):
            raise InvalidChannelNameError(
                template, "the template contains a glob character; build patterns with escape_glob"
            )
        if hash_tag is not None and ("{" in literal or "}" in literal):
            raise InvalidChannelNameError(
                template, "the template contains a brace; with hash_tag, the tag is the only one"
            )
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            raise InvalidChannelNameError(
                template, f"template field {{{field}}} must be a plain name, such as {{id}}"
            )
        fields.append(field)
    missing = sorted(set(fields) - parts.keys())
    unused = sorted(parts.keys() - set(fields))
    if missing or unused:
        raise InvalidChannelNameError(template, f"missing parts {missing}, unused parts {unused}")
    if hash_tag is not None and hash_tag not in fields:
        raise InvalidChannelNameError(
            template, f"hash_tag {hash_tag!r} names no field of the template"
        )
    checked = {key: _check_part(key, value) for key, value in parts.items()}
    if hash_tag is not None:
        checked[hash_tag] = "{" + checked[hash_tag] + "}"
    name = template.format(**checked)
    if not name:
        raise InvalidChannelNameError(name, "the channel name is empty")
    return name


def escape_glob(text: str) -> str:
    """Escape Redis glob characters so that ``text`` matches only itself in a pattern.

    ``escape_glob("price[usd]") + ".*"`` is a pattern for every channel under that literal prefix.

    Args:
        text: Literal text.

    Returns:
        The text with each of ``* ? [ ] \\`` preceded by a backslash.
    """
    return _GLOB.sub(r"\\\1", text)


def is_pattern(name: str | bytes) -> bool:
    """Whether a channel name has unescaped glob characters, so that it is a pattern.

    Args:
        name: A channel name or pattern.

    Returns:
        True if Redis would treat it as a glob pattern (``*``, ``?`` or ``[`` not escaped with
        a backslash), False for a name that only matches itself.
    """
    text = name.decode("utf-8", "surrogateescape") if isinstance(name, bytes) else name
    escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in "*?[":
            return True
    return False
