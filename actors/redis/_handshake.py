"""The commands that set a new connection up: HELLO (or AUTH and CLIENT SETNAME), then SELECT."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

from actors._errors import RedisProtocolError, RedisReplyError

if TYPE_CHECKING:
    from actors.redis._config import RedisSettings
    from actors.redis._resp import Argument

__all__ = ["handshake"]

logger = logging.getLogger(__name__)


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
        RedisReplyError: The server refused another command.
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
                raise
            logger.info("%s does not speak RESP3 (%s); using RESP2", settings.describe(), exc)
            protocol = 2
            await _handshake_resp2(connection, settings)
        else:
            server_info = _decode_hello(reply)
            if server_info.get("server") == "fakeredis":
                logger.info("%s is fakeredis; using RESP2", settings.describe())
                await connection.execute("HELLO", 2)
                protocol = 2
    else:
        await _handshake_resp2(connection, settings)
    if settings.db != 0:
        await connection.execute("SELECT", settings.db)
    return protocol, server_info


async def _handshake_resp2(connection: _Executor, settings: RedisSettings) -> None:
    if settings.password is not None:
        if settings.username is not None:
            await connection.execute("AUTH", settings.username, settings.password)
        else:
            await connection.execute("AUTH", settings.password)
    if settings.client_name is not None:
        await connection.execute("CLIENT", "SETNAME", settings.client_name)


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
