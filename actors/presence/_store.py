"""The presence store interface, its results, and the in-process store for ``memory://``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import attrs
import trio

from actors.messages import check_user_id

if TYPE_CHECKING:
    from collections.abc import Callable

Metadata = dict[str, str]


def check_ids(user_id: str, connection_id: str) -> None:
    """Refuse ids the stores cannot keep apart (members are ``user_id:connection_id``).

    Raises:
        InvalidIdentifierError: The user id breaks the rule of user ids.
        ValueError: The connection id is empty or contains ``:``.
    """
    check_user_id(user_id)
    if not connection_id:
        raise ValueError("connection_id must not be empty")
    if ":" in connection_id:
        raise ValueError(f"a connection id may not contain ':': {connection_id!r}")


def member_key(user_id: str, connection_id: str) -> str:
    """The member name of one connection: ``user_id:connection_id``."""
    return f"{user_id}:{connection_id}"


@attrs.frozen(kw_only=True)
class JoinResult:
    """What a join or heartbeat changed."""

    added: bool
    """Whether a join diff is due: the connection was not a member before, or a join ended its
    grace window (trackers started within the window do not list it)."""
    user_online: bool
    """Whether it is the user's first connection (the user went online)."""
    version: int
    """The scope's version after the change (unchanged when nothing was added)."""


@attrs.frozen(kw_only=True)
class Removal:
    """One connection removed by a leave or an expiry sweep."""

    user_id: str
    connection_id: str
    user_offline: bool
    """Whether it was the user's last connection (the user went offline)."""
    version: int
    """The scope's version after this removal (for a deferred leave, which removes nothing yet,
    the version it left the scope at)."""
    deferred: bool = False
    """Nothing was removed yet: the user's last connection lingers for the grace window (no
    diff is due now; a sweep removes it, and publishes the leave, once the window passes)."""
    left: bool = False
    """A sweep removed a connection that had left explicitly (its grace window passed)."""
    replaced: Removal | None = None
    """For a deferred leave: the user's connection that was in its grace window until now,
    removed by this leave (whose window takes over): its leave diff is due now."""


@attrs.frozen(kw_only=True)
class Snapshot:
    """The live members of a scope at one version."""

    version: int
    members: dict[tuple[str, str], Metadata]
    """``(user_id, connection_id)`` to metadata."""
    leaving: frozenset[tuple[str, str]] = frozenset()
    """The members in their grace window: they have left, and are not removed yet."""


class PresenceStore(Protocol):
    """Where presence state lives: Redis (``RedisPresenceStore``) or memory.

    Every operation is atomic, so exactly one caller sees each member added or removed, and the
    caller that sees it is the one that publishes the diff.
    """

    async def join(
        self, scope: str, user_id: str, connection_id: str, metadata: Metadata, ttl: float
    ) -> JoinResult:
        """Add or refresh a connection, expiring ``ttl`` seconds from now."""
        ...

    async def heartbeat(
        self, scope: str, user_id: str, connection_id: str, metadata: Metadata, ttl: float
    ) -> JoinResult:
        """Refresh a connection's expiry; re-adds it (``added``) if it had expired.

        A leaving connection is left alone (only a join cancels a leave).
        """
        ...

    async def leave(
        self, scope: str, user_id: str, connection_id: str, grace: float = 0.0
    ) -> Removal | None:
        """Remove a connection; None if it was not a member, or is already leaving.

        With ``grace > 0``, the user's last live connection is not removed but marked leaving,
        expiring ``grace`` seconds from now (a ``deferred`` removal, no diff due): a join of
        that connection within the window cancels the leave, a join of another one keeps the
        user online, and otherwise a sweep removes it. A user has one leaving connection at
        most: when their last live connection leaves while another one of theirs is leaving,
        the new one takes over the window (``grace`` from now) and the older one is removed at
        once (``replaced``), so the user never flaps, even for a tracker that started within
        the older window and so never listed that connection.
        """
        ...

    async def expire(self, scope: str) -> list[Removal]:
        """Remove every member whose expiry has passed; each is returned to one caller only."""
        ...

    async def snapshot(self, scope: str) -> Snapshot:
        """The members, the version they are at, and which of them are leaving.

        A member is listed until a sweep removes it and publishes its leave, so a snapshot
        agrees with the diffs: one past its expiry is still listed (and a heartbeat may still
        save it). Members in their grace window are listed too, and named in ``leaving``.
        """
        ...


@attrs.define
class _Scope:
    version: int = 0
    members: dict[tuple[str, str], Metadata] = attrs.field(factory=dict)
    expiry: dict[tuple[str, str], float] = attrs.field(factory=dict)
    connections: dict[str, int] = attrs.field(factory=dict)
    leaving: dict[str, str] = attrs.field(factory=dict)
    """``user_id`` to its one leaving connection (in its grace window)."""


class MemoryPresenceStore:
    """``PresenceStore`` in process memory, with the Redis store's semantics.

    Args:
        clock: The time source, ``trio.current_time`` by default (so ``autojump_clock`` works).
    """

    def __init__(self, clock: Callable[[], float] = trio.current_time) -> None:
        self._clock = clock
        self._scopes: dict[str, _Scope] = {}

    def _scope(self, scope: str) -> _Scope:
        return self._scopes.setdefault(scope, _Scope())

    async def join(
        self, scope: str, user_id: str, connection_id: str, metadata: Metadata, ttl: float
    ) -> JoinResult:
        """Add or refresh a connection (see ``PresenceStore.join``)."""
        await trio.lowlevel.checkpoint()
        return self._join(scope, user_id, connection_id, metadata, ttl, heartbeat=False)

    def _join(
        self,
        scope: str,
        user_id: str,
        connection_id: str,
        metadata: Metadata,
        ttl: float,
        *,
        heartbeat: bool,
    ) -> JoinResult:
        check_ids(user_id, connection_id)
        state = self._scope(scope)
        key = (user_id, connection_id)
        returned = state.leaving.get(user_id) == connection_id
        if returned:
            if heartbeat:
                return JoinResult(added=False, user_online=False, version=state.version)
            del state.leaving[user_id]
        added = key not in state.members
        state.members[key] = dict(metadata)
        state.expiry[key] = self._clock() + ttl
        online = False
        if added:
            count = state.connections.get(user_id, 0)
            state.connections[user_id] = count + 1
            online = count == 0
        if added or returned:
            state.version += 1
        return JoinResult(added=added or returned, user_online=online, version=state.version)

    async def heartbeat(
        self, scope: str, user_id: str, connection_id: str, metadata: Metadata, ttl: float
    ) -> JoinResult:
        """Refresh a connection (see ``PresenceStore.heartbeat``)."""
        # The change comes before the checkpoint, so that it happens in the same step as the
        # caller's check that the connection is still its own.
        result = self._join(scope, user_id, connection_id, metadata, ttl, heartbeat=True)
        await trio.lowlevel.checkpoint()
        return result

    def _remove(self, state: _Scope, key: tuple[str, str]) -> Removal:
        user_id, connection_id = key
        del state.members[key]
        del state.expiry[key]
        left = state.leaving.get(user_id) == connection_id
        if left:
            del state.leaving[user_id]
        count = state.connections[user_id] - 1
        if count:
            state.connections[user_id] = count
        else:
            del state.connections[user_id]
        state.version += 1
        return Removal(
            user_id=user_id,
            connection_id=connection_id,
            user_offline=count == 0,
            version=state.version,
            left=left,
        )

    async def leave(
        self, scope: str, user_id: str, connection_id: str, grace: float = 0.0
    ) -> Removal | None:
        """Remove a connection (see ``PresenceStore.leave``)."""
        await trio.lowlevel.checkpoint()
        state = self._scope(scope)
        key = (user_id, connection_id)
        leaving = state.leaving.get(user_id)
        if key not in state.members or leaving == connection_id:
            return None
        if grace > 0 and state.connections[user_id] - (leaving is not None) <= 1:
            replaced = None if leaving is None else self._remove(state, (user_id, leaving))
            state.leaving[user_id] = connection_id
            state.expiry[key] = self._clock() + grace
            return Removal(
                user_id=user_id,
                connection_id=connection_id,
                user_offline=True,
                version=state.version,
                deferred=True,
                replaced=replaced,
            )
        return self._remove(state, key)

    async def expire(self, scope: str) -> list[Removal]:
        """Remove expired members (see ``PresenceStore.expire``)."""
        await trio.lowlevel.checkpoint()
        state = self._scope(scope)
        now = self._clock()
        due = sorted((at, key) for key, at in state.expiry.items() if at <= now)
        return [self._remove(state, key) for _, key in due]

    async def snapshot(self, scope: str) -> Snapshot:
        """Members and leaving ones (see ``PresenceStore.snapshot``)."""
        await trio.lowlevel.checkpoint()
        state = self._scope(scope)
        members = {key: dict(metadata) for key, metadata in state.members.items()}
        leaving = frozenset(state.leaving.items())
        return Snapshot(version=state.version, members=members, leaving=leaving)
