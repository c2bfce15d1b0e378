"""The presence diffs published on the shard channel ``presence:{scope}`` (the scope in braces)."""

from __future__ import annotations

from typing import Final

import attrs

from actors.messages import Message, channel_name, check_scope, message_type

PRESENCE_CHANNEL: Final = "presence:{scope}"
PRESENCE_SHARDED: Final = True
"""Presence diffs travel on shard channels (``SPUBLISH``/``SSUBSCRIBE``): on a cluster a scope's
diffs stay on the master that owns its slot, where its keys are; subscribe to
``presence_channel(scope)`` with ``sharded=True`` to watch them."""


def presence_channel(scope: str) -> str:
    """The shard channel a scope's diffs go out on, ``presence:{scope}`` with the scope as its
    hash tag (``presence:{lobby}``): the slot of the scope's keys (``presence_keys``).

    Raises:
        InvalidIdentifierError: The scope breaks the rule of presence scopes.
    """
    return channel_name(PRESENCE_CHANNEL, scope=check_scope(scope), hash_tag="scope")


@message_type("presence.join")
@attrs.frozen(kw_only=True)
class PresenceJoin(Message):
    """A connection joined a scope (published once, by whoever added it to the store)."""

    scope: str
    user_id: str
    connection_id: str
    metadata: dict[str, str] = attrs.field(factory=dict)
    version: int = 0
    """The scope's store version after this change; orders diffs against snapshots."""
    first_connection: bool = False
    """Whether the user went online with it (it is the user's only connection)."""


@message_type("presence.leave")
@attrs.frozen(kw_only=True)
class PresenceLeave(Message):
    """A connection left a scope or expired (published once: the store decides who removed it)."""

    scope: str
    user_id: str
    connection_id: str
    version: int = 0
    """The scope's store version after this change."""
    last_connection: bool = False
    """Whether the user went offline with it (no connection of theirs is left)."""
    expired: bool = False
    """Whether its heartbeats stopped (True), rather than an explicit leave."""


PresenceDiff = PresenceJoin | PresenceLeave
