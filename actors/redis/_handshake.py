"""The commands that set a new connection up: HELLO (or AUTH and CLIENT SETNAME), then SELECT."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final, Protocol

from actors._errors import (
    RedisConfigurationError,
    RedisHandshakeError,
    RedisProtocolError,
    RedisReplyError,
)

if TYPE_CHECKING:
    from actors.redis._config import RedisSettings
    from actors.redis._resp import Argument

__all__ = ["handshake"]

logger = logging.getLogger(__name__)

# Refusals that say "not now" rather than "never": a server loading its data set, busy with a
# script, or a replica that lost its master. Every other refusal of a setup command is
# configuration, so retrying it cannot help.
TRANSIENT_CODES: Final = frozenset({"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN"})


class _Executor(Protocol):
    async def execute(self, *args: Argument) -> Any: ...


async def handshake(connection: _Executor, settings: RedisSettings) -> tuple[int, dict[str, Any]]:
    """Authenticate, name the connection and select its database.

    With ``protocol=3``, one ``HELLO 3 [AUTH user password] [SETNAME name]`` does it all. A server
    without RESP3 (``HELLO`` unknown, or ``NOPROTO``) is driven in RESP2; so is fakeredis, which
    accepts ``HELLO 3`` but sends pushes as plain arrays: it gets ``HELLO 2``.

    Args:
        connection: The new connection.
        settings: What to send.

    Returns:
        The protocol in use and the server's HELLO reply (keys decoded; empty in RESP2).

    Raises:
        RedisAuthenticationError: The credentials were refused.
        RedisHandshakeError: The server refused a setup command for good (``NOPERM``, ``ERR DB
            index is out of range``, ...).
        RedisReplyError: The server refused a command for now (``LOADING``, ``BUSY``, ...).
    """
    protocol = settings.protocol
    server_info: dict[str, Any] = {}
    if protocol == 3:
        command: list[Argument] = ["HELLO", 3]
        if settings.password is not None:
            command += ["AUTH", settings.username or "default", settings.password]
        if settings.client_name is not None:
            command += ["SETNAME", settings.client_name]
        try:
            reply = await connection.execute(*command)
        except RedisReplyError as exc:
            if exc.code != "NOPROTO" and "unknown command" not in exc.message.lower():
                raise _classified(exc, "HELLO") from None
            logger.info("%s does not speak RESP3 (%s); using RESP2", settings.describe(), exc)
            protocol = 2
            await _handshake_resp2(connection, settings)
        else:
            server_info = _decode_hello(reply)
            if server_info.get("server") == "fakeredis":
                logger.info("%s is fakeredis; using RESP2", settings.describe())
                await _setup(connection, "HELLO", "HELLO", 2)
                protocol = 2
    else:
        await _handshake_resp2(connection, settings)
    if settings.db != 0:
        await _setup(connection, "SELECT", "SELECT", settings.db)
    if protocol == 3:
        # A server loading its data set runs HELLO but refuses most commands with LOADING: the
        # connection is not ready until a PING is answered (LOADING fails the attempt, which is
        # retried with the reconnect backoff).
        await _setup(connection, "PING", "PING")
    return protocol, server_info


async def _handshake_resp2(connection: _Executor, settings: RedisSettings) -> None:
    if settings.password is not None:
        if settings.username is not None:
            await _setup(connection, "AUTH", "AUTH", settings.username, settings.password)
        else:
            await _setup(connection, "AUTH", "AUTH", settings.password)
    if settings.client_name is not None:
        await _setup(connection, "CLIENT SETNAME", "CLIENT", "SETNAME", settings.client_name)
    elif settings.password is None:
        # Otherwise nothing here would meet a server that wants a password; a PING does
        # (NOAUTH), so the connection fails at its setup as in RESP3, not at its first command.
        await _setup(connection, "PING", "PING")


async def _setup(connection: _Executor, name: str, *command: Argument) -> Any:
    """Run one setup command; a refusal for good becomes a ``RedisHandshakeError``."""
    try:
        return await connection.execute(*command)
    except RedisReplyError as exc:
        raise _classified(exc, name) from None


def _classified(error: RedisReplyError, command: str) -> RedisReplyError:
    """``error`` as it is when it is already fatal or only says "not now"; otherwise the
    ``RedisHandshakeError`` it amounts to (the server's message kept; its arguments, which may
    hold the password, never shown)."""
    if isinstance(error, RedisConfigurationError) or error.code in TRANSIENT_CODES:
        return error
    return RedisHandshakeError(error.message, command=command)


def _decode_hello(reply: object) -> dict[str, Any]:
    if isinstance(reply, list):  # the map as a flat array, from a server that stayed in RESP2
        reply = dict(zip(reply[::2], reply[1::2], strict=True))
    if not isinstance(reply, dict):
        raise RedisProtocolError(f"unexpected HELLO reply: {reply!r:.200}")
    return {
        key.decode(errors="replace") if isinstance(key, bytes) else str(key): (
            value.decode(errors="replace") if isinstance(value, bytes) else value
        )
        for key, value in reply.items()
    }
