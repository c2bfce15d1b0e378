"""``PresenceTracker``: who is online in one scope, kept true by a store, heartbeats and diffs.

The store (Redis, or memory for ``memory://``) is the truth; each change is made by one atomic
store operation, and whoever made it publishes the diff, so every change goes out exactly once.
Each scope has one tracker, a supervised actor (``actors.presence._actor``) that mirrors the
scope in local state: it loads a snapshot on start, after every restart and after every
``Resubscribed`` gap, then applies diffs. ``PresenceTracker`` is the handle callers keep on it:
its methods ask the actor.

A connection in its grace window has left, so a tracker that starts (or resyncs) does not list
it unless it already did; and the sweeps that end the windows a tracker opened outlive it, so
a scope whose last tracker here closed (a room hub that stopped) still gets its leaves on time.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final

import attrs
import trio

from actors._errors import ActorsError
from actors.presence._actor import (
    CLOSE_TIMEOUT,
    Close,
    Connections,
    Heartbeat,
    Join,
    Leave,
    OnlineUsers,
    Resync,
    Sweep,
    TrackerConfig,
    TrackerLedger,
    Unwatch,
    Watch,
    run_presence_tracker,
)
from actors.presence._messages import presence_channel
from actors.presence._redis_store import RedisPresenceStore
from actors.presence._store import MemoryPresenceStore, check_ids
from actors.pubsub import LocalState
from actors.supervision import ChildSpec, Restart

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from actors.presence._store import Metadata, PresenceStore, Removal
    from actors.presence._view import PresenceChange
    from actors.pubsub import PubSub
    from actors.runtime import ActorRef
    from actors.supervision import Supervisor

logger = logging.getLogger(__name__)

DEFAULT_TTL: Final = 60.0
DEFAULT_HEARTBEAT: Final = 25.0
DEFAULT_SWEEP_INTERVAL: Final = 5.0
DEFAULT_GRACE: Final = 5.0
DEFAULT_REQUEST_TIMEOUT: Final = 15.0  # seconds
_tracker_numbers = itertools.count(1)


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
        request_timeout: Seconds a request to the tracker (a join, a leave, who is online...)
            waits for its answer, the requests ahead of it included. A store operation and a
            publish each wait up to about 5 s while Redis reconnects.
    """

    ttl: float = DEFAULT_TTL
    heartbeat: float = DEFAULT_HEARTBEAT
    sweep_interval: float = DEFAULT_SWEEP_INTERVAL
    leave_on_close: bool = True
    grace: float = DEFAULT_GRACE
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT

    def __attrs_post_init__(self) -> None:
        if not 0 < self.heartbeat < self.ttl:
            raise ValueError(f"heartbeat must be positive and below ttl: {self!r}")
        if self.sweep_interval <= 0:
            raise ValueError(f"sweep_interval must be positive: {self!r}")
        if self.grace < 0:
            raise ValueError(f"grace must not be negative: {self!r}")
        if not self.request_timeout > 0:
            raise ValueError(f"request_timeout must be positive: {self!r}")


_memory_stores: Final = LocalState(MemoryPresenceStore)


def default_store(pubsub: PubSub) -> PresenceStore:
    """The store matching a ``PubSub``'s broker.

    Redis when the broker has it; otherwise one in-process store per broker state (shared by
    every broker of one ``memory://NAME``, private to a ``memory://`` broker).
    """
    broker = pubsub.broker
    connection = broker.command_connection()
    if connection is not None:
        return RedisPresenceStore(connection)
    return _memory_stores.of(broker)


@attrs.frozen(kw_only=True)
class PresenceStatistics:
    """A snapshot of one tracker."""

    scope: str
    """The scope it tracks."""
    connections: int
    """This process's connections in it (heartbeated by the tracker)."""
    resyncs: int
    """Snapshots loaded so far: at its start, after each restart and gap, and on request."""
    restarts: int
    """Restarts of its actor by its supervisor."""
    grace_windows: int
    """Grace windows it opened that no sweep of it has ended yet."""


class PresenceTracker:
    """The handle on one scope's tracker actor. Open it with ``open_presence_tracker``.

    Every method but ``statistics`` is a request to the actor, answered in turn with the
    others; each waits up to ``settings.request_timeout`` (``AskTimeoutError``), and raises what
    the store or the publish raised (``RedisConnectionError``...), or ``ActorCrashedError``
    when the tracker crashed on it (its supervisor restarts it: retry), or
    ``ActorStoppedError`` once the tracker is closed.

    Attributes:
        ref: The tracker actor (stable across its restarts).
        pubsub: Where its diffs go out and come in.
        scope: The scope it tracks.
        channel: ``presence:{scope}``.
        store: Where the scope's truth lives.
        settings: Its timing.
    """

    def __init__(self, ref: ActorRef, config: TrackerConfig, ledger: TrackerLedger) -> None:
        self.ref = ref
        self.pubsub = config.pubsub
        self.scope = config.scope
        self.channel = config.channel
        self.store = config.store
        self.settings = config.settings
        self._ledger = ledger

    async def _ask(self, request: object) -> object:
        return await self.ref.ask(request, timeout=self.settings.request_timeout)

    async def join(
        self, user_id: str, connection_id: str, metadata: Metadata | None = None
    ) -> bool:
        """Add a connection of this process; returns whether the user went online with it.

        The connection is then heartbeated by the tracker until it leaves, and announced again
        by the tracker if it restarts.

        Raises:
            ValueError: An id is empty, or the connection id contains ``:``.
        """
        check_ids(user_id, connection_id)
        return bool(await self._ask(Join((user_id, connection_id), dict(metadata or {}))))

    async def heartbeat(
        self, user_id: str, connection_id: str, metadata: Metadata | None = None
    ) -> None:
        """Refresh one connection now (the tracker also does it every ``settings.heartbeat``).

        A connection that had expired is added again, and its join published.

        Raises:
            ValueError: An id is empty, or the connection id contains ``:``.
        """
        check_ids(user_id, connection_id)
        metadata = None if metadata is None else dict(metadata)
        await self._ask(Heartbeat((user_id, connection_id), metadata))

    async def leave(self, user_id: str, connection_id: str, *, grace: float | None = None) -> bool:
        """Remove a connection; returns whether the user went offline with it.

        With a grace window (``settings.grace``, or ``grace`` if given) the user's last
        connection is only marked leaving, and True means the user goes offline when the window
        passes unless they join again: a sweep then removes it and publishes the leave (this
        tracker sweeps when the window ends even if it is closed by then). Trackers that start
        within the window do not list the connection. Pass ``grace=0`` for a leave the user
        asked for, which no reconnect will follow. The tracker stops heartbeating the
        connection whatever the outcome.
        """
        return bool(await self._ask(Leave((user_id, connection_id), grace)))

    async def online_users(self) -> set[str]:
        """Users with at least one connection, from the tracker's local state (no store trip)."""
        users = await self._ask(OnlineUsers())
        assert isinstance(users, set)
        return users

    async def connections(self, user_id: str) -> dict[str, Metadata]:
        """A user's connections and their metadata, from the tracker's local state."""
        connections = await self._ask(Connections(user_id))
        assert isinstance(connections, dict)
        return connections

    async def watch(self, watcher: Callable[[PresenceChange], object]) -> None:
        """Call ``watcher`` with every change of who is online from now on.

        The watcher is called synchronously from the tracker's task, so it must not block:
        hand the change on (``tell_nowait``, a channel's ``send_nowait``). An exception it
        raises is logged and does not stop the tracker. A restart of the tracker keeps its
        watchers: they get a ``resynced`` change if its snapshot differs from what they were
        shown.
        """
        await self._ask(Watch(watcher))

    async def unwatch(self, watcher: Callable[[PresenceChange], object]) -> None:
        """Stop calling ``watcher`` (nothing if it was not watching)."""
        await self._ask(Unwatch(watcher))

    async def sweep(self) -> list[Removal]:
        """Expire members now and publish their leaves (also done every ``sweep_interval``).

        Also removes leaving connections whose grace window has passed.
        """
        removals = await self._ask(Sweep())
        assert isinstance(removals, list)
        return removals

    async def resync(self) -> None:
        """Load the store's snapshot now (also done after every gap and restart)."""
        await self._ask(Resync())

    def statistics(self) -> PresenceStatistics:
        """Figures of the tracker, as its actor last left them."""
        return PresenceStatistics(
            scope=self.scope,
            connections=len(self._ledger.connections),
            resyncs=self._ledger.resyncs,
            restarts=self.ref.statistics().restarts,
            grace_windows=len(self._ledger.window_ends),
        )


@asynccontextmanager
async def open_presence_tracker(
    pubsub: PubSub,
    scope: str,
    *,
    supervisor: Supervisor | None = None,
    store: PresenceStore | None = None,
    settings: PresenceSettings | None = None,
) -> AsyncIterator[PresenceTracker]:
    """Track one scope's presence for the duration of a block.

    Starts the scope's tracker actor under ``supervisor`` (a permanent child: a crash restarts
    it, and the restart reloads the snapshot and announces this process's connections again),
    and returns once it has subscribed to ``presence:{scope}`` and loaded its snapshot. Leaving
    the block makes the tracker's connections leave (with the grace window; not at all if
    ``settings.leave_on_close`` is False) and stops it; the sweeps due when the grace windows
    it opened end go on in a temporary actor under the ``PubSub``'s supervisor, so those leaves
    go out on time with no tracker of the scope left.

    Args:
        pubsub: Where diffs are published and received.
        scope: The scope, such as ``"global"`` or a room (see ``check_scope``).
        supervisor: Where the tracker actor runs: a supervisor of the caller's tree that takes
            ``start_child`` (not ``simple_one_for_one``); default the ``PubSub``'s.
        store: Where state lives; default ``default_store(pubsub)``.
        settings: TTL, heartbeat, sweep interval, grace window and request timeout.

    Raises:
        AskTimeoutError: The tracker was not ready within the Pub/Sub's ``ack_timeout`` plus
            ``settings.request_timeout`` (it is stopped).
        InvalidIdentifierError: The scope breaks the rule of presence scopes.
    """
    settings = settings or PresenceSettings()
    config = TrackerConfig(
        pubsub=pubsub,
        scope=scope,
        channel=presence_channel(scope),
        store=store or default_store(pubsub),
        settings=settings,
    )
    supervisor = supervisor or pubsub.supervisor
    # Made once, and given to every incarnation of the actor: see TrackerLedger.
    ledger = TrackerLedger()
    spec = ChildSpec(
        id=f"presence-tracker-{next(_tracker_numbers)}:{scope}",
        start=run_presence_tracker,
        args=(config, ledger),
        restart=Restart.PERMANENT,
    )
    ref = await supervisor.start_child(spec)

    async def stop() -> None:
        with trio.CancelScope(shield=True), contextlib.suppress(ActorsError):
            await supervisor.terminate_child(spec.id)  # (or its supervisor stopped it already)
            await supervisor.delete_child(spec.id)

    try:
        # Its first answer comes after its snapshot.
        await ref.ask(OnlineUsers(), timeout=pubsub.settings.ack_timeout + settings.request_timeout)
    except BaseException:
        await stop()
        raise
    try:
        yield PresenceTracker(ref, config, ledger)
    finally:
        with trio.CancelScope(shield=True):
            try:
                await ref.ask(Close(), timeout=CLOSE_TIMEOUT + settings.request_timeout)
            except ActorsError as error:
                logger.warning("presence tracker of %r did not close in order: %s", scope, error)
        await stop()
