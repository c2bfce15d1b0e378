"""``PresenceView``: one tracker incarnation's picture of a scope, from a snapshot and diffs.

Pure and synchronous: the tracker actor is its only user, so nothing here awaits or locks.
Diffs carry the scope's version after their change: a diff no newer than the snapshot, or than
the last change applied to its member, is dropped, so nothing is counted twice whatever the
order of snapshot and diffs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from actors.presence._messages import PresenceJoin

if TYPE_CHECKING:
    from collections.abc import Set

    from actors.presence._messages import PresenceDiff
    from actors.presence._store import Metadata, Snapshot


@attrs.frozen(kw_only=True)
class PresenceChange:
    """Users who came online or went offline in a tracker's local state.

    Given to the tracker's watchers after each diff that changes who is online, and after a
    snapshot (``resynced``) that does.
    """

    scope: str
    joined: frozenset[str] = frozenset()
    left: frozenset[str] = frozenset()
    resynced: bool = False
    online: frozenset[str] | None = None
    """After a snapshot (``resynced``): everyone online; None for a diff's change."""


class PresenceView:
    """The members of one scope as one tracker incarnation knows them.

    Args:
        scope: The scope.
        shown: The users a previous incarnation of the tracker showed online (empty for a new
            tracker). The first snapshot is compared with them, and keeps their connections
            in a grace window, so that a restart is no flap for the tracker's watchers.
    """

    def __init__(self, scope: str, shown: Set[str] = frozenset()) -> None:
        self.scope = scope
        self.members: dict[tuple[str, str], Metadata] = {}
        self.loaded = False
        """Whether a snapshot was loaded: diffs before the first one are not applied (the
        snapshot, taken after them, holds what they changed)."""
        self._shown = frozenset(shown)
        self._counts: dict[str, int] = {}
        self._seen: dict[tuple[str, str], int] = {}
        self._baseline = 0

    def online_users(self) -> set[str]:
        """Users with at least one connection."""
        return set(self._counts)

    def connections(self, user_id: str) -> dict[str, Metadata]:
        """A user's connections and their metadata."""
        return {
            connection_id: dict(metadata)
            for (user, connection_id), metadata in self.members.items()
            if user == user_id
        }

    def apply(self, diff: PresenceDiff) -> PresenceChange | None:
        """Apply one diff; returns the change of who is online, if any."""
        if diff.scope != self.scope or not self.loaded:
            return None
        key = (diff.user_id, diff.connection_id)
        if diff.version <= self._seen.get(key, self._baseline):
            return None
        self._seen[key] = diff.version
        user_id = diff.user_id
        if isinstance(diff, PresenceJoin):
            added = key not in self.members
            self.members[key] = dict(diff.metadata)
            if added:
                count = self._counts.get(user_id, 0)
                self._counts[user_id] = count + 1
                if count == 0:
                    return PresenceChange(scope=self.scope, joined=frozenset((user_id,)))
        elif self.members.pop(key, None) is not None:
            count = self._counts[user_id] - 1
            if count:
                self._counts[user_id] = count
            else:
                del self._counts[user_id]
                return PresenceChange(scope=self.scope, left=frozenset((user_id,)))
        return None

    def load(self, snapshot: Snapshot) -> PresenceChange | None:
        """Take a snapshot as the state; returns what it changed of who is online, if anything.

        A connection in its grace window has left: a view that did not list it (a new
        tracker's) does not start to, so whoever joins after a leave never sees it; one that
        did keeps it, so that a reconnect within the window is no flap. Its leave, or the join
        that ends the window, comes as a diff.
        """
        before = set(self._counts) if self.loaded else set(self._shown)
        self.members = {
            key: metadata
            for key, metadata in snapshot.members.items()
            if key not in snapshot.leaving or key in self.members or key[0] in self._shown
        }
        self._shown = frozenset()
        self._counts = {}
        for user_id, _ in self.members:
            self._counts[user_id] = self._counts.get(user_id, 0) + 1
        self._baseline = snapshot.version
        self._seen = {key: v for key, v in self._seen.items() if v > snapshot.version}
        self.loaded = True
        after = set(self._counts)
        if before == after:
            return None
        return PresenceChange(
            scope=self.scope,
            joined=frozenset(after - before),
            left=frozenset(before - after),
            resynced=True,
            online=frozenset(after),
        )
