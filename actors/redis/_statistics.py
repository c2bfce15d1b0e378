"""What a connection reports about itself."""

from __future__ import annotations

import enum

import attrs

__all__ = ["RedisConnectionState", "RedisConnectionStatistics"]


class RedisConnectionState(enum.Enum):
    """Where a connection is in its life."""

    CONNECTING = "connecting"
    """Handshaking: HELLO, AUTH, SELECT."""
    OPEN = "open"
    """Ready for commands."""
    CLOSED = "closed"
    """Closed by its owner or broken; see ``RedisConnection.close_cause``."""


@attrs.frozen(kw_only=True)
class RedisConnectionStatistics:
    """A snapshot of one connection's counters."""

    state: RedisConnectionState
    """The connection's state."""
    protocol: int
    """The RESP version in use (2 or 3)."""
    pending_commands: int
    """Commands sent or queued whose reply has not arrived (abandoned ones included)."""
    commands_sent: int
    """Commands queued for writing since the connection opened (subscription commands included)."""
    writes: int
    """Socket writes; fewer than ``commands_sent`` when commands were pipelined."""
    writes_coalesced: int
    """Writes that carried more than one command."""
    bytes_written: int
    """Bytes written to the socket."""
    bytes_read: int
    """Bytes read from the socket."""
    frames_read: int
    """Frames parsed: replies and pushes."""
    pushes_received: int
    """Push frames handed to the push handler (or dropped when there is none)."""
    replies_discarded: int
    """Replies read and thrown away because their caller was cancelled."""
