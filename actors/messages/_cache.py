"""Decoding a received payload at most once per expected type, however many subscriptions
share it."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar, overload

from actors._errors import MessageDecodeError
from actors.messages._codec import CODEC, Codec

__all__ = ["Decodable", "decode_cached"]

T = TypeVar("T")


class Decodable(Protocol):
    """Anything carrying a received payload and a ``decoded`` slot, such as ``RedisMessage``."""

    payload: bytes
    decoded: object


@overload
def decode_cached(message: Decodable, expected: type[T], codec: Codec = ...) -> T: ...
@overload
def decode_cached(message: Decodable, expected: object, codec: Codec = ...) -> Any: ...
def decode_cached(message: Decodable, expected: object, codec: Codec = CODEC) -> Any:
    """Decode a received message's payload at most once per expected type.

    The result, or the ``MessageDecodeError``, is kept in ``message.decoded`` (an
    ``(expected, result)`` pair, or a dict keyed by the expected type once a second type is
    asked for), so every local subscription of the same type shares one decoding.
    Messages are frozen, so sharing the decoded object is safe; a decoded ``dict`` is shared
    too, so treat it as read-only.

    Args:
        message: An object with ``payload`` bytes and a ``decoded`` attribute (None at first).
        expected: As for ``Codec.decode``.
        codec: The codec to decode with.

    Returns:
        The decoded message.

    Raises:
        MessageDecodeError: The payload is not a valid ``expected`` (the same error each time).
        TypeError: ``expected`` is not something the codec can decode into.
    """
    # One expected type per payload is the common case: a pair, not a dict, until a second.
    cache = message.decoded
    if type(cache) is tuple and (cache[0] is expected or cache[0] == expected):
        result = cache[1]
    elif type(cache) is dict and expected in cache:
        result = cache[expected]
    else:
        try:
            result = codec.decode(message.payload, expected)
        except MessageDecodeError as exc:
            result = exc
        if type(cache) is dict:
            cache[expected] = result
        elif type(cache) is tuple:
            message.decoded = {cache[0]: cache[1], expected: result}
        else:
            message.decoded = (expected, result)
    if isinstance(result, MessageDecodeError):
        raise result.with_traceback(None)
    return result
