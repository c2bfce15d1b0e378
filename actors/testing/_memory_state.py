"""The in-memory server's state that is not its data set: its configuration, which survives a
restart, and each client's connection state (protocol, database, name, subscriptions)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from actors.testing._resp_encoder import encode

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["ClientState", "CommandFailed", "ServerConfig"]


class CommandFailed(Exception):
    """Raised by a command to answer with an error reply (Redis's ``addReplyError``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@attrs.define(kw_only=True)
class ServerConfig:
    """What the server is configured with; it survives restarts."""

    username: str = "default"
    password: str | None = None
    authentication_refused: bool = False
    databases: int = 16
    version: str = "7.2.4"
    resp3: bool = True

    def default_user_open(self) -> bool:
        """Whether the ``default`` user has no password (Redis's ``nopass``), as out of the box."""
        return self.password is None and self.username == "default"

    def check_credentials(self, username: bytes, password: bytes) -> bool:
        if self.authentication_refused:
            return False
        if username.decode(errors="replace") != self.username:
            return False
        return self.password is None or password.decode(errors="replace") == self.password


class ClientState:
    """One connection as Redis sees it: protocol, name, database, credentials, subscriptions."""

    __slots__ = (
        "_send",
        "authenticated",
        "channels",
        "db",
        "id",
        "name",
        "patterns",
        "protocol",
        "quitting",
        "shard_channels",
    )

    def __init__(
        self, client_id: int, send: Callable[[bytes], object], authenticated: bool
    ) -> None:
        self._send = send
        self.id = client_id
        self.protocol = 2  # every connection starts in RESP2 until HELLO 3
        self.name: bytes | None = None
        self.db = 0
        self.authenticated = authenticated
        # Dicts as ordered sets: Redis answers UNSUBSCRIBE without arguments name by name.
        self.channels: dict[bytes, None] = {}
        self.patterns: dict[bytes, None] = {}
        self.shard_channels: dict[bytes, None] = {}
        self.quitting = False

    def reply(self, value: object) -> None:
        """Send one reply or push frame, encoded for this connection's protocol."""
        self._send(encode(value, self.protocol))

    def subscription_count(self) -> int:
        """Channels and patterns: the count in SUBSCRIBE and PSUBSCRIBE acknowledgements."""
        return len(self.channels) + len(self.patterns)

    def subscribed(self) -> bool:
        return bool(self.channels or self.patterns or self.shard_channels)
