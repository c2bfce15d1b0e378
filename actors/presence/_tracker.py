"""``PresenceTracker``: who is online in one scope, kept true by a store, heartbeats and diffs.

The store (Redis, or memory for ``memory://``) is the truth; each change is made by one atomic
store operation, and whoever made it publishes the diff, so every change goes out exactly once.
Each tracker mirrors the scope in local state: it loads a snapshot on start and after every
``Resubscribed`` gap, then applies diffs. Diffs carry the scope's version after their change:
a diff no newer than the snapshot, or than the last change applied to its member, is dropped,
so nothing is counted twice whatever the order of snapshot and diffs.

A connection in its grace window has left, so a tracker that starts (or resyncs) does not list
it unless it already did; and the sweeps that end the windows a tracker opened outlive it, so
a scope whose last tracker here closed (a room hub that stopped) still gets its leaves on time.
"""

from __future__ import annotations

import itertools
import logging
import math
import weakref
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final

import attrs
import trio

from actors._errors import ActorsError
from actors.presence._messages import PresenceDiff, PresenceJoin, PresenceLeave, presence_channel
from actors.presence._redis_store import RedisPresenceStore
from actors.presence._store import MemoryPresenceStore, Metadata, check_ids
from actors.pubsub import MemoryBroker, RedisPubSub
from actors.redis import Resubscribed
from actors.supervision import ChildSpec, Restart, SupervisorSpec, open_supervisor

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from actors.presence._store import PresenceStore, Removal
    from actors.pubsub import PubSub
    from actors.redis import ConnectionLost
    from actors.runtime import ActorContext, ActorSystem

logger = logging.getLogger(__name__)

DEFAULT_TTL: Final = 60.0
DEFAULT_HEARTBEAT: Final = 25.0
DEFAULT_SWEEP_INTERVAL: Final = 5.0
DEFAULT_GRACE: Final = 5.0
LOOPS_CHILD_ID: Final = "presence-loops"
_hand_over_numbers = itertools.count(1)


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


@attrs.frozen(kw_only=True)
class PresenceSettings:
    """Timing of one tracker.

    Attributes:
        ttl: Seconds a connection stays without a heartbeat before a sweep removes it.
        heartbeat: Seconds between heartbeats of this tracker's connections (below ``ttl``).
        sweep_interval: Seconds between expiry sweeps; a dead process's users go offline within
            ``ttl + sweep_interval``.
        leave_on_close: Whether closing the tracker makes its connections leave (False
            leaves them to expire, as if the process died).
        grace: Reconnect grace window, in seconds: when a user's last connection leaves, the
            user goes offline only once it passes (at the first sweep after it), and a join of
            the user within it publishes no leave/join pair. 0 removes at once.
    """

    ttl: float = DEFAULT_TTL
    heartbeat: float = DEFAULT_HEARTBEAT
    sweep_interval: float = DEFAULT_SWEEP_INTERVAL
    leave_on_close: bool = True
    grace: float = DEFAULT_GRACE

    def __attrs_post_init__(self) -> None:
        if not 0 < self.heartbeat < self.ttl:
            raise ValueError(f"heartbeat must be positive and below ttl: {self!r}")
        if self.sweep_interval <= 0:
            raise ValueError(f"sweep_interval must be positive: {self!r}")
        if self.grace < 0:
            raise ValueError(f"grace must not be negative: {self!r}")


_named_memory_stores: dict[str, MemoryPresenceStore] = {}
_private_memory_stores: weakref.WeakKeyDictionary[MemoryBroker, MemoryPresenceStore] = (
    weakref.WeakKeyDictionary()
)


def default_store(pubsub: PubSub) -> PresenceStore:
    """The store matching a ``PubSub``'s broker.

    Redis for ``redis://``-family URLs; for ``memory://NAME`` one in-process store per name
    (shared like the broker), for a private ``memory://`` one per broker.

    Raises:
        TypeError: The broker is neither.
    """
    broker = pubsub.broker
    if isinstance(broker, RedisPubSub):
        return RedisPresenceStore(broker.ready_connection)
    if isinstance(broker, MemoryBroker):
        if broker.name is not None:
            return _named_memory_stores.setdefault(broker.name, MemoryPresenceStore())
        return _private_memory_stores.setdefault(broker, MemoryPresenceStore())
    raise TypeError(f"no presence store for broker {broker!r}: pass store=")


class PresenceTracker:
    """One scope's presence. Open it with ``open_presence_tracker``."""

    def __init__(
        self, pubsub: PubSub, scope: str, store: PresenceStore, settings: PresenceSettings
    ) -> None:
        self.pubsub = pubsub
        self.scope = scope
        self.channel = presence_channel(scope)
        self.store = store
        self.settings = settings
        self._members: dict[tuple[str, str], Metadata] = {}
        self._connection_counts: dict[str, int] = {}
        self._watchers: list[Callable[[PresenceChange], object]] = []
        self._local: dict[tuple[str, str], Metadata] = {}
        self._seen: dict[tuple[str, str], int] = {}
        self._baseline = 0
        self._pending: list[PresenceDiff] | None = None
        self._resync_lock = trio.Lock()
        self._window_ends: list[float] = []
        """When the grace windows this tracker opened end (trio time), until a sweep of it
        passes them: each end needs a sweep, even once the tracker is closed."""
        self.resyncs = 0
        """Snapshots loaded so far."""

    # --- the API -------------------------------------------------------------------------

    async def join(
        self, user_id: str, connection_id: str, metadata: Metadata | None = None
    ) -> bool:
        """Add a connection of this process; returns whether the user went online with it.

        The connection is then heartbeated by this tracker until it leaves.

        Raises:
            ValueError: An id is empty, or the connection id contains ``:``.
            RedisConnectionError: The store or the publish failed.
        """
        check_ids(user_id, connection_id)
        metadata = dict(metadata or {})
        self._local[(user_id, connection_id)] = metadata
        result = await self.store.join(
            self.scope, user_id, connection_id, metadata, self.settings.ttl
        )
        if result.added:
            await self._publish(
                PresenceJoin(
                    scope=self.scope,
                    user_id=user_id,
                    connection_id=connection_id,
                    metadata=metadata,
                    version=result.version,
                    first_connection=result.user_online,
                )
            )
        return result.user_online

    async def heartbeat(
        self, user_id: str, connection_id: str, metadata: Metadata | None = None
    ) -> None:
        """Refresh one connection now (the tracker also does it every ``settings.heartbeat``).

        A connection that had expired is added again, and its join published.
        """
        key = (user_id, connection_id)
        if metadata is not None:
            self._local[key] = dict(metadata)
        await self._beat(key, self._local.get(key, {}))

    async def leave(self, user_id: str, connection_id: str, *, grace: float | None = None) -> bool:
        """Remove a connection; returns whether the user went offline with it.

        With a grace window (``settings.grace``, or ``grace`` if given) the user's last
        connection is only marked leaving, and True means the user goes offline when the window
        passes unless they join again: a sweep then removes it and publishes the leave (this
        tracker sweeps when the window ends even if it is closed by then). Trackers that start
        within the window do not list the connection. Pass ``grace=0`` for a leave the user
        asked for, which no reconnect will follow.
        """
        self._local.pop((user_id, connection_id), None)
        return await self._leave(user_id, connection_id, grace)

    async def _leave(self, user_id: str, connection_id: str, grace: float | None = None) -> bool:
        grace = self.settings.grace if grace is None else grace
        removal = await self.store.leave(self.scope, user_id, connection_id, grace)
        if removal is None:
            return False
        if removal.deferred:
            self._window_ends.append(trio.current_time() + grace)
            if removal.replaced is not None:
                await self._publish_leave(removal.replaced, expired=False)
        else:
            await self._publish_leave(removal, expired=False)
        return removal.user_offline

    def online_users(self) -> set[str]:
        """Users with at least one connection, from local state (no round trip)."""
        return set(self._connection_counts)

    def watch(self, watcher: Callable[[PresenceChange], object]) -> Callable[[], None]:
        """Call ``watcher`` with every change of who is online; returns a function to stop.

        The watcher is called synchronously from the task that applied the change, so it must
        not block: hand the change on (``tell_nowait``, a channel's ``send_nowait``). An
        exception it raises is logged and does not stop the tracker.
        """
        self._watchers.append(watcher)

        def unwatch() -> None:
            if watcher in self._watchers:
                self._watchers.remove(watcher)

        return unwatch

    def connections(self, user_id: str) -> dict[str, Metadata]:
        """A user's connections and their metadata, from local state."""
        return {
            connection_id: dict(metadata)
            for (user, connection_id), metadata in self._members.items()
            if user == user_id
        }

    async def sweep(self) -> list[Removal]:
        """Expire members now and publish their leaves (also done every ``sweep_interval``).

        Also removes leaving connections whose grace window has passed.
        """
        now = trio.current_time()
        removals = await self.store.expire(self.scope)
        self._window_ends = [end for end in self._window_ends if end > now]
        for removal in removals:
            await self._publish_leave(removal, expired=not removal.left)
        return removals

    async def resync(self) -> None:
        """Load the store's snapshot, then apply the diffs that arrived meanwhile."""
        async with self._resync_lock:
            self._pending = []
            try:
                snapshot = await self.store.snapshot(self.scope)
            except BaseException:
                pending, self._pending = self._pending, None
                for diff in pending:
                    self._apply(diff)
                raise
            pending, self._pending = self._pending, None
            before = set(self._connection_counts)
            # A connection in its grace window has left: a tracker that did not list it (a new
            # one) does not start to, so whoever joins after a leave never sees it; one that
            # did keeps it, so that a reconnect within the window is no flap. Its leave, or the
            # join that ends the window, comes as a diff.
            self._members = {
                key: metadata
                for key, metadata in snapshot.members.items()
                if key not in snapshot.leaving or key in self._members
            }
            self._connection_counts = {}
            for user_id, _ in self._members:
                self._connection_counts[user_id] = self._connection_counts.get(user_id, 0) + 1
            after = set(self._connection_counts)
            if before != after:
                self._notify(
                    PresenceChange(
                        scope=self.scope,
                        joined=frozenset(after - before),
                        left=frozenset(before - after),
                        resynced=True,
                    )
                )
            self._baseline = snapshot.version
            self._seen = {key: v for key, v in self._seen.items() if v > snapshot.version}
            for diff in pending:
                self._apply(diff)
            self.resyncs += 1

    # --- internals -----------------------------------------------------------------------

    async def _publish(self, diff: PresenceDiff) -> None:
        self._apply(diff)
        await self.pubsub.publish(self.channel, diff, group="presence:*")

    async def _publish_leave(self, removal: Removal, *, expired: bool) -> None:
        await self._publish(
            PresenceLeave(
                scope=self.scope,
                user_id=removal.user_id,
                connection_id=removal.connection_id,
                version=removal.version,
                last_connection=removal.user_offline,
                expired=expired,
            )
        )

    async def _beat(self, key: tuple[str, str], metadata: Metadata) -> None:
        user_id, connection_id = key
        result = await self.store.heartbeat(
            self.scope, user_id, connection_id, metadata, self.settings.ttl
        )
        if result.added:
            await self._publish(
                PresenceJoin(
                    scope=self.scope,
                    user_id=user_id,
                    connection_id=connection_id,
                    metadata=metadata,
                    version=result.version,
                    first_connection=result.user_online,
                )
            )

    def _apply(self, diff: PresenceDiff) -> None:
        if diff.scope != self.scope:
            return
        if self._pending is not None:
            self._pending.append(diff)
            return
        key = (diff.user_id, diff.connection_id)
        if diff.version <= self._seen.get(key, self._baseline):
            return
        self._seen[key] = diff.version
        user_id = diff.user_id
        if isinstance(diff, PresenceJoin):
            if key not in self._members:
                count = self._connection_counts.get(user_id, 0)
                self._connection_counts[user_id] = count + 1
                if count == 0:
                    self._notify(PresenceChange(scope=self.scope, joined=frozenset((user_id,))))
            self._members[key] = dict(diff.metadata)
        elif self._members.pop(key, None) is not None:
            count = self._connection_counts[user_id] - 1
            if count:
                self._connection_counts[user_id] = count
            else:
                del self._connection_counts[user_id]
                self._notify(PresenceChange(scope=self.scope, left=frozenset((user_id,))))

    def _notify(self, change: PresenceChange) -> None:
        for watcher in list(self._watchers):
            try:
                watcher(change)
            except Exception:
                logger.exception("presence watcher %r failed on %r", watcher, change)

    async def _on_diff(self, diff: PresenceDiff) -> None:
        self._apply(diff)

    async def _on_gap(self, event: ConnectionLost | Resubscribed) -> None:
        if isinstance(event, Resubscribed):
            # A restarted Redis may have lost the scope: this process's connections are put
            # back first (a beat re-adds a missing one and publishes its join), so that the
            # snapshot after the gap does not show them offline until their next heartbeat.
            await self._beat_local_connections()
            await self.resync()

    async def _beat_local_connections(self) -> None:
        for key in list(self._local):
            metadata = self._local.get(key)
            if metadata is None:  # left meanwhile: a beat would add it back
                continue
            try:
                await self._beat(key, metadata)
            except ActorsError as error:
                logger.warning("presence heartbeat of %s failed: %s", key, error)

    async def _heartbeat_loop(self) -> None:
        while True:
            await trio.sleep(self.settings.heartbeat)
            await self._beat_local_connections()

    async def _sweep_loop(self) -> None:
        while True:
            await trio.sleep(self.settings.sweep_interval)
            try:
                await self.sweep()
            except ActorsError as error:
                logger.warning("presence sweep of %r failed: %s", self.scope, error)

    async def _close(self) -> None:
        local, self._local = list(self._local), {}
        if not self.settings.leave_on_close:
            return
        for user_id, connection_id in local:
            try:
                await self._leave(user_id, connection_id)
            except ActorsError as error:
                logger.warning("presence leave of %s on close failed: %s", user_id, error)

    async def _hand_over_windows(self) -> None:
        """Start an actor for the sweeps this closed tracker still owes its grace windows."""
        self._watchers.clear()  # a closed tracker tells nobody: its scope may have a new one
        if not self._window_ends or not self.settings.leave_on_close:
            return  # (without leave_on_close, it closes as if its process had died)
        spec = ChildSpec(
            id=f"presence-windows-{next(_hand_over_numbers)}:{self.scope}",
            start=_sweep_when_windows_end,
            args=(self, sorted(self._window_ends)),
            restart=Restart.TEMPORARY,
            shutdown=0,
        )
        try:
            await self.pubsub.supervisor.start_child(spec)
        except ActorsError as error:  # the PubSub is closing: any other tracker sweeps
            logger.warning(
                "presence of %r: the windows' sweeps not handed over: %s", self.scope, error
            )


async def _sweep_when_windows_end(
    context: ActorContext, tracker: PresenceTracker, window_ends: list[float]
) -> None:
    """A closed tracker's last duty: sweep its scope as the grace windows it opened end.

    No tracker of the scope may be left here to sweep it (a room hub stops with its last
    session), and the leaves must still go out on time: a sweep at the end of each window, but
    no more often than the tracker swept (so at most ``sweep_interval`` late, as it would be).
    It runs under the ``PubSub``'s supervisor, as the sweeps need its broker, and so stops with
    it. A window ended by a join, or swept by another tracker, costs one empty sweep.
    """
    swept_at = -math.inf
    for end in window_ends:
        if end <= swept_at:
            continue  # removed by the last sweep
        await trio.sleep_until(max(end, swept_at + tracker.settings.sweep_interval))
        swept_at = trio.current_time()
        try:
            await tracker.sweep()
        except ActorsError as error:
            logger.warning("presence sweep of %r failed: %s", tracker.scope, error)


async def _run_loops(context: ActorContext, tracker: PresenceTracker) -> None:
    """The tracker's actor: heartbeats its connections and sweeps expired members."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(tracker._heartbeat_loop)
        nursery.start_soon(tracker._sweep_loop)


@asynccontextmanager
async def open_presence_tracker(
    system: ActorSystem,
    pubsub: PubSub,
    scope: str,
    *,
    store: PresenceStore | None = None,
    settings: PresenceSettings | None = None,
) -> AsyncIterator[PresenceTracker]:
    """Track one scope's presence for the duration of a block.

    Subscribes to ``presence:{scope}``, loads the snapshot, and runs the heartbeat and sweep
    loops in a supervised actor. Leaving the block makes this tracker's connections leave
    (with the grace window; not at all if ``settings.leave_on_close`` is False) and stops it;
    the sweeps due when the grace windows it opened end go on in a temporary actor under the
    ``PubSub``'s supervisor, so those leaves go out on time with no tracker of the scope left.

    Args:
        system: The actor system the tracker's actor runs in.
        pubsub: Where diffs are published and received.
        scope: The scope, such as ``"global"`` or a room (ASCII letters, digits, ``-_.@``).
        store: Where state lives; default ``default_store(pubsub)``.
        settings: TTL, heartbeat, sweep interval and grace window.
    """
    tracker = PresenceTracker(
        pubsub, scope, store or default_store(pubsub), settings or PresenceSettings()
    )
    handle = await pubsub.subscribe(
        tracker.channel, tracker._on_diff, message_type=PresenceDiff, on_gap=tracker._on_gap
    )
    try:
        await tracker.resync()
        spec = SupervisorSpec(
            children=[
                ChildSpec(
                    id=LOOPS_CHILD_ID,
                    start=_run_loops,
                    args=(tracker,),
                    restart=Restart.PERMANENT,
                    shutdown=0,
                )
            ]
        )
        async with open_supervisor(system, spec):
            try:
                yield tracker
            finally:
                with trio.CancelScope(shield=True), trio.move_on_after(5):
                    await tracker._close()
    finally:
        with trio.CancelScope(shield=True):
            await handle.close()
            await tracker._hand_over_windows()
