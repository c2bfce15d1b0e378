"""Sans-IO RESP2/RESP3: command encoding and a frame parser on ``hiredis.Reader``.

Nothing here does I/O or awaits: bytes go in, frames come out, so the same code serves the
trio connection, tests fed at every byte boundary, and any other transport.

Frames are the values hiredis builds, unchanged, so the hot path allocates nothing extra:
bulk and simple strings are ``bytes``, integers ``int``, doubles ``float``, booleans ``bool``,
nulls ``None``, arrays and sets ``list``, maps ``dict``, big numbers and verbatim strings ``bytes``
(verbatim strings without their ``txt:`` prefix).
A RESP3 push frame is a ``hiredis.PushNotification``, a ``list`` subclass: push frames are told
apart from replies by that frame type alone, never by their content (see ``is_push``).
An error reply is a ``RedisReplyError`` *value*, never raised here: the connection hands it to the
command that is waiting for it, which raises it.
"""

from __future__ import annotations

import logging
from typing import Final, TypeAlias

import hiredis

from actors._errors import (
    RedisAuthenticationError,
    RedisPermissionError,
    RedisProtocolError,
    RedisRedirectError,
    RedisReplyError,
)
from actors.redis._slots import HASH_SLOTS

__all__ = [
    "MAX_FEED_SIZE",
    "Argument",
    "Frame",
    "RespParser",
    "encode_command",
    "is_push",
    "reply_error",
]

logger = logging.getLogger(__name__)

MAX_FEED_SIZE: Final = 64 * 1024  # bytes
"""The largest piece fed to ``hiredis.Reader`` at once: it compacts its buffer about every KiB, so
the cost of one feed grows with the square of its size (anchor figures a0.1 to a0.4)."""

Argument: TypeAlias = str | bytes | int | float
"""A command argument: ``str`` is sent as UTF-8, numbers in their decimal form."""

Frame: TypeAlias = object
"""One parsed RESP value (see the module docstring for the Python type of each RESP type)."""

_ERROR_CLASSES: Final[dict[str, type[RedisReplyError]]] = {
    "NOPERM": RedisPermissionError,
    "WRONGPASS": RedisAuthenticationError,
    "NOAUTH": RedisAuthenticationError,
}

_NOT_ENOUGH_DATA: Final = object()


def reply_error(message: str) -> RedisReplyError:
    """Build the typed exception for a server error reply.

    Args:
        message: The error reply's text, such as ``"NOPERM this user has no permissions"``.

    Returns:
        A ``RedisPermissionError`` for ``NOPERM``, a ``RedisAuthenticationError`` for ``WRONGPASS``
        and ``NOAUTH``, otherwise a plain ``RedisReplyError``; its ``code`` is the first word.
    """
    code = message.split(" ", 1)[0]
    if code in ("MOVED", "ASK"):
        return _redirect(message, moved=code == "MOVED")
    return _ERROR_CLASSES.get(code, RedisReplyError)(message)


def _redirect(message: str, *, moved: bool) -> RedisReplyError:
    """``MOVED 3999 127.0.0.1:6381`` as a ``RedisRedirectError``; a plain ``RedisReplyError``
    if it is not of that shape."""
    words = message.split(" ")
    if len(words) == 3:
        host, colon, port = words[2].rpartition(":")  # an IPv6 host holds colons too
        if colon and port.isdigit() and words[1].isdigit():
            slot = int(words[1])
            if slot < HASH_SLOTS and 0 < int(port) < 65_536:
                host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
                return RedisRedirectError(
                    message, moved=moved, slot=slot, host=host, port=int(port)
                )
    return RedisReplyError(message)


def encode_command(*args: Argument) -> bytes:
    """Encode one command as a RESP array of bulk strings.

    Args:
        *args: The command name and its arguments.

    Returns:
        The bytes to write to the server.

    Raises:
        ValueError: No arguments were given.
        TypeError: An argument is not ``str``, ``bytes``, ``int`` or ``float`` (``bool`` and
            ``None`` are refused: Redis has no such types, and guessing hides bugs).
    """
    if not args:
        raise ValueError("a Redis command needs at least its name")
    try:
        return hiredis.pack_command(args)  # type: ignore[arg-type, no-any-return]
    except TypeError:
        for position, argument in enumerate(args):
            if type(argument) is bool or not isinstance(argument, str | bytes | int | float):
                raise TypeError(
                    f"Redis command argument {position} is a {type(argument).__name__}; "
                    "expected str, bytes, int or float"
                ) from None
        raise


def is_push(frame: Frame) -> bool:
    """Tell whether a frame is a RESP3 push frame (``>``) rather than a reply.

    Args:
        frame: A frame returned by ``RespParser.feed``.

    Returns:
        ``True`` for a push frame. The test is on the frame's type only.
    """
    return type(frame) is hiredis.PushNotification


class RespParser:
    """Turn bytes from a Redis server into frames, without doing any I/O.

    The parser copies what it is fed, so the caller may reuse its receive buffer at once.
    After a ``RedisProtocolError`` the stream cannot be trusted and the parser must be dropped.
    """

    def __init__(self) -> None:
        self._reader = hiredis.Reader(
            protocolError=RedisProtocolError,
            replyError=reply_error,
            notEnoughData=_NOT_ENOUGH_DATA,
        )
        self._broken: RedisProtocolError | None = None

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Parse more bytes and return every frame they complete, in order.

        The data is fed to hiredis in pieces of at most ``MAX_FEED_SIZE`` bytes, taking the
        finished frames out between pieces, so a large read costs linear time.

        Args:
            data: The next bytes received from the server; any size, possibly empty.

        Returns:
            The frames completed by these bytes (possibly none). Error replies are
            ``RedisReplyError`` values in this list, at their place in the stream.

        Raises:
            RedisProtocolError: The bytes are not valid RESP; every later call raises it again.
        """
        if self._broken is not None:
            raise self._broken
        frames: list[Frame] = []
        reader = self._reader
        size = len(data)
        offset = 0
        try:
            while offset < size:
                piece = min(MAX_FEED_SIZE, size - offset)
                reader.feed(data, offset, piece)  # type: ignore[arg-type]
                offset += piece
                frame = reader.gets()
                while frame is not _NOT_ENOUGH_DATA:
                    frames.append(frame)
                    frame = reader.gets()
        except RedisProtocolError as exc:
            self._broken = exc
            logger.debug("RESP protocol error: %s", exc)
            raise
        return frames
