"""The server's side of RESP: replies and pushes encoded in RESP3 or RESP2, as Redis 7 sends them.

The client in ``actors.redis`` only ever encodes commands (arrays of bulk strings), so the
in-memory server needs an encoder of its own for everything else. A reply is built from plain
Python values plus four marker types for what Python's types cannot tell apart:

* ``bytes`` and ``str`` are bulk strings, ``int`` an integer, ``None`` a null, ``float`` a double,
  ``bool`` a boolean, ``list`` and ``tuple`` arrays, ``dict`` a map;
* ``Status`` is a simple string (``+OK``), ``ErrorReply`` an error (``-ERR ...``), ``Push`` a push
  frame (``>``) and ``Verbatim`` a verbatim string (``=``, such as INFO's text).

In RESP2 the RESP3-only types fall back the way Redis falls back: a map becomes a flat array of
keys and values, a push a plain array, a double and a verbatim string a bulk string, a boolean the
integer 1 or 0, and a null the null bulk string.
"""

from __future__ import annotations

from typing import Final

__all__ = ["ErrorReply", "Push", "Status", "Verbatim", "encode"]

_CRLF: Final = b"\r\n"


class Status(bytes):
    """A simple string reply, such as ``+OK`` or ``+PONG``."""

    __slots__ = ()


class ErrorReply(str):
    """An error reply: the whole message, its code first (``"ERR unknown command ..."``)."""

    __slots__ = ()


class Push(list[object]):
    """A RESP3 push frame (``>``): subscription acknowledgements and messages."""

    __slots__ = ()


class Verbatim(bytes):
    """A verbatim text string (``=`` with the ``txt`` format in RESP3, bulk in RESP2)."""

    __slots__ = ()


def encode(value: object, protocol: int) -> bytes:
    """Encode one reply or push frame.

    Args:
        value: The value (see the module docstring for the types).
        protocol: 2 or 3: the connection's RESP version.

    Returns:
        The bytes Redis would send.

    Raises:
        TypeError: A value of no RESP type.
    """
    parts: list[bytes] = []
    _encode_into(parts, value, protocol == 3)
    return b"".join(parts)


def _line(text: str | bytes) -> bytes:
    """One line of a simple string or an error: Redis turns line breaks into spaces."""
    data = text.encode() if isinstance(text, str) else bytes(text)
    return data.replace(b"\r", b" ").replace(b"\n", b" ")


def _encode_into(parts: list[bytes], value: object, resp3: bool) -> None:
    # The marker types come first: each is also an instance of the plain type it extends.
    if isinstance(value, Status):
        parts += (b"+", _line(value), _CRLF)
    elif isinstance(value, ErrorReply):
        parts += (b"-", _line(value), _CRLF)
    elif isinstance(value, Verbatim):
        if resp3:
            parts += (b"=%d\r\ntxt:" % (len(value) + 4), bytes(value), _CRLF)
        else:
            parts += (b"$%d\r\n" % len(value), bytes(value), _CRLF)
    elif isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        parts += (b"$%d\r\n" % len(data), data, _CRLF)
    elif isinstance(value, str):
        data = value.encode()
        parts += (b"$%d\r\n" % len(data), data, _CRLF)
    elif value is None:
        parts.append(b"_\r\n" if resp3 else b"$-1\r\n")
    elif isinstance(value, bool):  # before int: bool is an int
        if resp3:
            parts.append(b"#t\r\n" if value else b"#f\r\n")
        else:
            parts.append(b":1\r\n" if value else b":0\r\n")
    elif isinstance(value, int):
        parts.append(b":%d\r\n" % value)
    elif isinstance(value, float):
        text = _double(value)
        if resp3:
            parts += (b",", text, _CRLF)
        else:
            parts += (b"$%d\r\n" % len(text), text, _CRLF)
    elif isinstance(value, Push):
        parts.append((b">%d\r\n" if resp3 else b"*%d\r\n") % len(value))
        for item in value:
            _encode_into(parts, item, resp3)
    elif isinstance(value, list | tuple):
        parts.append(b"*%d\r\n" % len(value))
        for item in value:
            _encode_into(parts, item, resp3)
    elif isinstance(value, dict):
        parts.append((b"%%%d\r\n" if resp3 else b"*%d\r\n") % (len(value) * (1 if resp3 else 2)))
        for key, item in value.items():
            _encode_into(parts, key, resp3)
            _encode_into(parts, item, resp3)
    else:
        raise TypeError(f"no RESP type for {type(value).__name__}: {value!r:.100}")


def _double(value: float) -> bytes:
    if value != value:
        return b"nan"
    if value in (float("inf"), float("-inf")):
        return b"inf" if value > 0 else b"-inf"
    return repr(value).encode()
