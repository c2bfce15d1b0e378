"""Decoding a received payload at most once per expected type, however many subscriptions
share it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload

from actors._errors import MessageDecodeError
from actors.messages._codec import CODEC, Codec

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Decodable", "decode_cached"]

T = TypeVar("T")


class Decodable(Protocol):
    """Anything carrying a received payload and a ``decoded`` slot, such as ``RedisMessage``."""

    payload: bytes
    decoded: object


@overload
def decode_cached(
    message: Decodable,
    expected: type[T],
    codec: Codec = ...,
    *,
    decoder: Callable[[bytes], Any] | None = ...,
) -> T: ...
@overload
def decode_cached(
    message: Decodable,
    expected: object,
    codec: Codec = ...,
    *,
    decoder: Callable[[bytes], Any] | None = ...,
) -> Any: ...
def decode_cached(
    message: Decodable,
    expected: object,
    codec: Codec = CODEC,
    *,
    decoder: Callable[[bytes], Any] | None = None,
) -> Any:
    """Decode a received message's payload at most once per expected type.

    The result, or the ``MessageDecodeError``, is kept in ``message.decoded`` (the message
    itself when it is of the expected class, else an ``(expected, result)`` pair; a dict keyed
    by the expected type once a second type is asked for), so every local subscription of the
    same type shares one decoding.
    Messages are frozen, so sharing the decoded object is safe; a decoded ``dict`` is shared
    too, so treat it as read-only.

    Args:
        message: An object with ``payload`` bytes and a ``decoded`` attribute (None at first).
        expected: As for ``Codec.decode``.
        codec: The codec to decode with.
        decoder: ``codec.decoder(expected)``, kept by a caller that decodes many payloads of
            one type (a subscription): it saves looking the type up for each payload.

    Returns:
        The decoded message.

    Raises:
        MessageDecodeError: The payload is not a valid ``expected`` (the same error each time).
        TypeError: ``expected`` is not something the codec can decode into.
    """
    # One expected class per payload is the common case: the decoded message itself is kept
    # (no pair to allocate per message); then a pair (a union, a dict, an error), then a dict.
    # A payload's first decoding, the commonest case, passes one test before it decodes.
    cache = message.decoded
    if cache is not None:
        if type(cache) is expected and expected is not dict:
            return cache
        if type(cache) is tuple and (cache[0] is expected or cache[0] == expected):
            return _kept(cache[1])
        if type(cache) is dict and expected in cache:
            return _kept(cache[expected])
    if decoder is None:
        decoder = codec.decoder(expected)
    try:
        result = decoder(message.payload)
    except MessageDecodeError as exc:
        result = exc
    if cache is None:
        direct = type(result) is expected and expected is not dict
        message.decoded = result if direct else (expected, result)
    elif type(cache) is dict:
        cache[expected] = result
    elif type(cache) is tuple:
        message.decoded = {cache[0]: cache[1], expected: result}
    else:
        message.decoded = {type(cache): cache, expected: result}
    if isinstance(result, MessageDecodeError):
        raise result.with_traceback(None)
    return result


def _kept(result: object) -> Any:
    """A kept decoding: the message, or its error raised again."""
    if isinstance(result, MessageDecodeError):
        raise result.with_traceback(None)
    return result
