"""A few words for an operator on why a connection failed."""

from __future__ import annotations

import errno
import os

import trio

from actors._errors import (
    RedisAuthenticationError,
    RedisConfigurationError,
    RedisConnectionError,
    RedisConnectionLostError,
    RedisHandshakeError,
    RedisPermissionError,
    RedisReplyError,
    RedisTimeoutError,
    RedisTlsError,
    RedisUrlError,
)
from actors.redis._handshake import TRANSIENT_CODES

__all__ = ["failure_cause", "heals"]


def heals(error: BaseException) -> bool:
    """Whether trying again later may succeed: a lost or refused connection, a timeout, or a
    refusal that says "not now" (``TRANSIENT_CODES``); not a refusal for good (``NOPERM``, a
    script error, bad credentials or TLS)."""
    if isinstance(error, RedisConfigurationError):
        return False
    if isinstance(error, RedisReplyError):
        return error.code in TRANSIENT_CODES
    return isinstance(error, RedisConnectionError | RedisTimeoutError)


def failure_cause(error: BaseException) -> str:
    """Name the cause of a connection failure in a few words.

    ``"authentication failed"``, ``"connection refused"``, ``"timed out after 5 s"``,
    ``"SELECT refused"``, ``"TLS failed"``, and so on: what ``actors health`` and the health
    reports show next to the full message.

    Args:
        error: What a connection attempt raised, or what ended a connection.

    Returns:
        The cause; the error's type name for an error it does not know.
    """
    if isinstance(error, RedisAuthenticationError):
        return "authentication failed"
    if isinstance(error, RedisHandshakeError):
        return f"{error.command} refused"
    if isinstance(error, RedisPermissionError):
        return "permission denied"
    if isinstance(error, RedisTlsError):
        return "TLS failed"
    if isinstance(error, RedisUrlError):
        return "invalid URL"
    if isinstance(error, RedisTimeoutError) and error.seconds is not None:
        return f"timed out after {error.seconds:g} s"
    if isinstance(error, RedisTimeoutError | trio.TooSlowError):
        return "timed out"
    current: BaseException | None = error
    while current is not None:
        code = current.errno if isinstance(current, OSError) else None
        if code is not None and code in errno.errorcode:
            return os.strerror(code).lower()
        current = current.__cause__
    if isinstance(error, RedisConnectionLostError):
        return "connection lost"
    if isinstance(error, RedisConnectionError):
        return "connection failed"
    return type(error).__name__
