"""The presence tracker actor: one per scope, the only owner of that scope's local state.

The store (Redis, or memory for ``memory://``) is the truth; each change is made by one atomic
store operation, and whoever made it publishes the diff, so every change goes out exactly once.
The tracker mirrors the scope in a ``PresenceView``: it loads a snapshot when it starts (and
after every restart and ``Resubscribed`` gap), then applies diffs.

Everything the tracker does happens in its own task, one message at a time: requests (join,
leave, heartbeat, who is online, watch, sweep, resync, close) arrive as asks, diffs from its
subscription to ``presence:{scope}`` and gaps as tells, and its heartbeat and sweep timers are
deadlines of its mailbox wait. Nothing else touches its state, so nothing needs a lock.

A connection in its grace window has left, so a tracker that starts (or resyncs) does not list
it unless it already did; and the sweeps that end the windows a tracker opened outlive it, so
a scope whose last tracker here closed (a room hub that stopped) still gets its leaves on time.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
from typing import TYPE_CHECKING, Final

import attrs
import trio

from actors._errors import ActorCrashedError, ActorsError, ActorStoppedError
from actors.presence._messages import (
    PRESENCE_SHARDED,
    PresenceDiff,
    PresenceJoin,
    PresenceLeave,
)
from actors.presence._view import PresenceView
from actors.redis import Resubscribed
from actors.runtime import Ask
from actors.supervision import ChildSpec, Restart

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from actors.presence._store import JoinResult, Metadata, PresenceStore, Removal, Snapshot
    from actors.presence._tracker import PresenceSettings
    from actors.presence._view import PresenceChange
    from actors.pubsub import PubSub
    from actors.redis import ConnectionLost
    from actors.runtime import ActorContext

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT: Final = 5.0  # seconds the leaves of a closing tracker may take
_hand_over_numbers = itertools.count(1)
_SETTLED: Final = object()

Key = tuple[str, str]
"""``(user_id, connection_id)``."""


# --- the tracker's messages ------------------------------------------------------------------


@attrs.frozen
class Join:
    """Add a connection of this process (answered with whether its user went online)."""

    key: Key
    metadata: Metadata


@attrs.frozen
class Leave:
    """Remove a connection (answered with whether its user goes offline)."""

    key: Key
    grace: float | None


@attrs.frozen
class Heartbeat:
    """Refresh a connection now, with new metadata if given."""

    key: Key
    metadata: Metadata | None


@attrs.frozen
class OnlineUsers:
    """Who is online (answered with a set of user ids)."""


@attrs.frozen
class Connections:
    """A user's connections (answered with connection id to metadata)."""

    user_id: str


@attrs.frozen
class Watch:
    """Call ``watcher`` with every change of who is online."""

    watcher: Callable[[PresenceChange], object]


@attrs.frozen
class Unwatch:
    """Stop calling ``watcher``."""

    watcher: Callable[[PresenceChange], object]


@attrs.frozen
class Sweep:
    """Expire members now (answered with the removals)."""


@attrs.frozen
class Resync:
    """Load the store's snapshot now."""


@attrs.frozen
class Close:
    """Leave this process's connections and hand the grace windows' sweeps over."""


@attrs.frozen
class Gap:
    """The subscription was resubscribed after a gap: diffs may have been missed."""


# --- what outlives an incarnation ------------------------------------------------------------


@attrs.frozen(kw_only=True)
class TrackerConfig:
    """What a tracker is: its scope, where it publishes and what it keeps its truth in."""

    pubsub: PubSub
    scope: str
    channel: str
    store: PresenceStore
    settings: PresenceSettings


@attrs.define(eq=False)
class TrackerLedger:
    """What one tracker owes its scope and its callers, across its incarnations.

    The runtime builds the tracker's state afresh on every restart, and most of it comes back
    from the store. This does not: the store cannot say which connections are this process's
    (they are the ones to heartbeat, and to announce again after a crash), which leaves were
    asked for or which diffs may not have gone out when an incarnation died, when the grace
    windows it opened end (each needs a sweep), nor who is watching and what they were shown.
    So the ledger is made once, by ``open_presence_tracker``, and handed to every incarnation in
    the child spec's arguments. Only the tracker's actor changes it.
    """

    connections: dict[Key, Metadata] = attrs.field(factory=dict)
    """This process's connections, with their metadata."""
    unsettled: dict[Key, float | None] = attrs.field(factory=dict)
    """Connections whose store change was under way, and whose diff so may not have gone out:
    to a leave's grace, a leave to finish; to None, a change to announce again."""
    window_ends: list[float] = attrs.field(factory=list)
    """When the grace windows this tracker opened end (trio time), until a sweep of it passes
    them: each end needs a sweep, even once the tracker is closed."""
    watchers: list[Callable[[PresenceChange], object]] = attrs.field(factory=list)
    online: set[str] = attrs.field(factory=set)
    """Who is online as the watchers were last told."""
    resyncs: int = 0
    """Snapshots loaded so far."""


# --- the actor -------------------------------------------------------------------------------


async def run_presence_tracker(
    context: ActorContext, config: TrackerConfig, ledger: TrackerLedger
) -> None:
    """The tracker's actor: one incarnation, from its snapshot to its end."""
    await _Incarnation(context, config, ledger).run()


class _Incarnation:
    """One life of a tracker actor, between a (re)start and a stop or crash."""

    def __init__(self, context: ActorContext, config: TrackerConfig, ledger: TrackerLedger) -> None:
        self.context = context
        self.config = config
        self.scope = config.scope
        self.store = config.store
        self.settings = config.settings
        self.ledger = ledger
        self.view = PresenceView(config.scope, ledger.online)

    async def run(self) -> None:
        """Subscribe, recover, then serve messages and timers until stopped."""
        ref = self.context.ref

        async def on_diff(diff: PresenceDiff) -> None:
            with contextlib.suppress(ActorStoppedError):  # stopping: the diff is moot
                await ref.tell(diff)

        async def on_gap(event: ConnectionLost | Resubscribed) -> None:
            if isinstance(event, Resubscribed):
                with contextlib.suppress(ActorStoppedError):
                    await ref.tell(Gap())

        # Subscribed first, then the snapshot: no diff falls between the two.
        subscription = await self.config.pubsub.subscribe(
            self.config.channel,
            on_diff,
            message_type=PresenceDiff,
            on_gap=on_gap,
            sharded=PRESENCE_SHARDED,
        )
        try:
            await self.recover()
            # Healthy again: a crash from now on is restarted after the backoff's first delay,
            # while one that cannot recover (Redis out of reach) waits longer each time.
            self.context.reset_backoff()
            await self.serve()
        finally:
            with trio.CancelScope(shield=True):
                await subscription.close()

    async def serve(self) -> None:
        """Messages one at a time; heartbeats and sweeps when their deadline comes."""
        settings = self.settings
        next_beat = trio.current_time() + settings.heartbeat
        next_sweep = trio.current_time() + settings.sweep_interval
        while True:
            message: object = None
            # A deadline that has passed cancels the wait at its first checkpoint, before it
            # takes a message: a busy mailbox never starves the timers.
            with trio.move_on_at(min(next_beat, next_sweep)):
                message = await self.context.receive()
            if message is not None:
                await self.handle(message)
                continue
            if trio.current_time() >= next_sweep:
                await self.sweep_logged()
                next_sweep = trio.current_time() + settings.sweep_interval
            if trio.current_time() >= next_beat:
                await self.beat_connections()
                next_beat = trio.current_time() + settings.heartbeat

    async def handle(self, message: object) -> None:
        match message:
            case Ask(message=request):
                try:
                    reply = await self.answer(request)
                except ActorsError as error:
                    message.fail(error)
                except Exception as error:
                    crashed = ActorCrashedError(
                        f"the presence tracker of {self.scope!r} crashed handling "
                        f"{type(request).__name__}"
                    )
                    crashed.__cause__ = error
                    message.fail(crashed)
                    raise
                except BaseException:
                    message.fail(
                        ActorStoppedError(
                            f"the presence tracker of {self.scope!r} was stopped while "
                            f"handling {type(request).__name__}"
                        )
                    )
                    raise
                else:
                    message.reply(reply)
            case PresenceJoin() | PresenceLeave():
                self.apply(message)
            case Gap():
                # A restarted Redis may have lost the scope: this process's connections are put
                # back first, so that the snapshot does not show them offline until their next
                # heartbeat. A failure crashes the tracker, whose restart recovers the same way.
                await self.recover()
            case _:
                try:
                    await self.answer(message)
                except ActorsError as error:
                    logger.warning("presence of %r: %r failed: %s", self.scope, message, error)

    async def answer(self, request: object) -> object:
        match request:
            case Join(key=key, metadata=metadata):
                return await self.join(key, metadata)
            case Leave(key=key, grace=grace):
                self.ledger.connections.pop(key, None)
                return await self.leave(key, grace)
            case Heartbeat(key=key, metadata=metadata):
                if metadata is not None:
                    self.ledger.connections[key] = metadata
                await self.beat(key, self.ledger.connections.get(key, {}))
                return None
            case OnlineUsers():
                return self.view.online_users()
            case Connections(user_id=user_id):
                return self.view.connections(user_id)
            case Watch(watcher=watcher):
                self.ledger.watchers.append(watcher)
                return None
            case Unwatch(watcher=watcher):
                if watcher in self.ledger.watchers:
                    self.ledger.watchers.remove(watcher)
                return None
            case Sweep():
                return await self.sweep()
            case Resync():
                await self.resync()
                return None
            case Close():
                await self.close()
                return None
        raise TypeError(f"the presence tracker of {self.scope!r} got {request!r}")

    # --- changes, each one store operation and its diff ----------------------------------

    @contextlib.contextmanager
    def step(self, key: Key, grace: float | None = None) -> Iterator[None]:
        """A store change of one connection and the publish of its diff, as one step.

        Shielded, so that stopping or killing the tracker waits for the diff of a change that
        was made (each is bounded: a store operation or a publish waits up to about 5 s while
        Redis reconnects). Until the step is done, the connection is in ``ledger.unsettled``
        (with ``grace`` for a leave), and it stays there if the step fails, for the next
        recovery (a restart, or a gap) to settle. A step that publishes nothing leaves a
        connection that was unsettled before it unsettled: whatever was not announced still
        is not.
        """
        unsettled = self.ledger.unsettled
        before = unsettled.get(key, _SETTLED)
        unsettled[key] = grace
        with trio.CancelScope(shield=True):
            yield
        if key in unsettled:  # (publishing a diff of the connection settles it)
            if before is _SETTLED:
                del unsettled[key]
            else:
                unsettled[key] = None

    async def join(self, key: Key, metadata: Metadata) -> bool:
        self.ledger.connections[key] = metadata
        with self.step(key):
            result = await self.store.join(self.scope, *key, metadata, self.settings.ttl)
            if result.added:
                await self.publish(self.join_diff(key, metadata, result))
        return result.user_online

    async def beat(self, key: Key, metadata: Metadata) -> None:
        """Refresh a connection; one that had expired (or was lost) is added and announced."""
        with self.step(key):
            result = await self.store.heartbeat(self.scope, *key, metadata, self.settings.ttl)
            if result.added:
                await self.publish(self.join_diff(key, metadata, result))

    async def leave(self, key: Key, grace: float | None = None) -> bool:
        grace = self.settings.grace if grace is None else grace
        with self.step(key, grace):
            removal = await self.store.leave(self.scope, *key, grace)
            if removal is None:
                return False
            if removal.deferred:
                self.ledger.window_ends.append(trio.current_time() + grace)
                if removal.replaced is not None:
                    replaced = removal.replaced
                    self.ledger.unsettled[(replaced.user_id, replaced.connection_id)] = None
                    await self.publish(leave_diff(self.scope, replaced, expired=False))
            else:
                await self.publish(leave_diff(self.scope, removal, expired=False))
        return removal.user_offline

    async def sweep(self) -> list[Removal]:
        """Expire members and publish their leaves; ends the grace windows that passed."""
        now = trio.current_time()
        with trio.CancelScope(shield=True):
            removals = await self.store.expire(self.scope)
            self.ledger.window_ends = [end for end in self.ledger.window_ends if end > now]
            for removal in removals:
                self.ledger.unsettled[(removal.user_id, removal.connection_id)] = None
            for removal in removals:
                await self.publish(leave_diff(self.scope, removal, expired=not removal.left))
        return removals

    async def sweep_logged(self) -> None:
        try:
            await self.sweep()
        except ActorsError as error:
            logger.warning("presence sweep of %r failed: %s", self.scope, error)

    def join_diff(self, key: Key, metadata: Metadata, result: JoinResult) -> PresenceJoin:
        return PresenceJoin(
            scope=self.scope,
            user_id=key[0],
            connection_id=key[1],
            metadata=metadata,
            version=result.version,
            first_connection=result.user_online,
        )

    async def publish(self, diff: PresenceDiff) -> None:
        """Apply a diff of this tracker's own, publish it, and settle its connection."""
        self.apply(diff)
        await self.config.pubsub.publish(
            self.config.channel, diff, group="presence:*", sharded=PRESENCE_SHARDED
        )
        self.ledger.unsettled.pop((diff.user_id, diff.connection_id), None)

    # --- the local view ------------------------------------------------------------------

    def apply(self, diff: PresenceDiff) -> None:
        self.notify(self.view.apply(diff))

    def notify(self, change: PresenceChange | None) -> None:
        if change is None:
            return
        self.ledger.online -= change.left
        self.ledger.online |= change.joined
        for watcher in list(self.ledger.watchers):
            try:
                watcher(change)
            except Exception:
                logger.exception("presence watcher %r failed on %r", watcher, change)

    async def resync(self) -> Snapshot:
        """Load the store's snapshot. Diffs that arrive meanwhile wait in the mailbox, and
        those it already holds are dropped by their version when they come."""
        snapshot = await self.store.snapshot(self.scope)
        self.notify(self.view.load(snapshot))
        self.ledger.resyncs += 1
        return snapshot

    async def recover(self) -> None:
        """Put this process's part of the scope back, then load the snapshot.

        Runs when an incarnation starts, and after a gap. The connections of this process are
        heartbeated (one missing from the store, which a restarted Redis may have lost, is added
        and announced). Then what a previous incarnation left unsettled when it died (or what
        failed with the store or the broker) is settled: a leave that was asked for is made
        again, and every other such connection is announced as the snapshot has it, a join if
        it is a member and a leave if not, at the snapshot's version. A diff may so go out
        twice; its version makes the second one a no-op for every tracker.
        """
        await self.beat_connections()
        for key, grace in list(self.ledger.unsettled.items()):
            if grace is not None and key not in self.ledger.connections:
                await self.leave(key, grace)
        snapshot = await self.resync()
        for key in list(self.ledger.unsettled):
            await self.announce(key, snapshot)

    async def announce(self, key: Key, snapshot: Snapshot) -> None:
        """Publish what the snapshot says of one connection, at its version."""
        users = [user_id for user_id, _ in snapshot.members]
        diff: PresenceDiff | None = None
        if key not in snapshot.members:
            diff = PresenceLeave(
                scope=self.scope,
                user_id=key[0],
                connection_id=key[1],
                version=snapshot.version,
                last_connection=key[0] not in users,
            )
        elif key not in snapshot.leaving:
            diff = PresenceJoin(
                scope=self.scope,
                user_id=key[0],
                connection_id=key[1],
                metadata=snapshot.members[key],
                version=snapshot.version,
                first_connection=users.count(key[0]) == 1,
            )
        if diff is not None:
            await self.publish(diff)
        self.ledger.unsettled.pop(key, None)

    async def beat_connections(self) -> None:
        for key in list(self.ledger.connections):
            metadata = self.ledger.connections.get(key)
            if metadata is None:  # left meanwhile: a beat would add it back
                continue
            try:
                await self.beat(key, metadata)
            except ActorsError as error:
                logger.warning("presence heartbeat of %s failed: %s", key, error)

    # --- closing -------------------------------------------------------------------------

    async def close(self) -> None:
        """Leave this process's connections (with the grace window), then hand over the sweeps
        its grace windows still need. Without ``leave_on_close``, it leaves nothing, as if its
        process had died."""
        keys = list(self.ledger.connections)
        self.ledger.connections.clear()
        if self.settings.leave_on_close:
            with trio.move_on_after(CLOSE_TIMEOUT):
                for key in keys:
                    try:
                        await self.leave(key)
                    except ActorsError as error:
                        logger.warning("presence leave of %s on close failed: %s", key, error)
        self.ledger.watchers.clear()  # a closed tracker tells nobody: its scope may have a new one
        if self.ledger.window_ends and self.settings.leave_on_close:
            await self.hand_over_windows()

    async def hand_over_windows(self) -> None:
        """Start an actor for the sweeps this closing tracker still owes its grace windows."""
        spec = ChildSpec(
            id=f"presence-windows-{next(_hand_over_numbers)}:{self.scope}",
            start=sweep_when_windows_end,
            args=(self.config, sorted(self.ledger.window_ends)),
            restart=Restart.TEMPORARY,
            shutdown=0,
        )
        try:
            await self.config.pubsub.supervisor.start_child(spec)
        except ActorsError as error:  # the PubSub is closing: any other tracker sweeps
            logger.warning(
                "presence of %r: the windows' sweeps not handed over: %s", self.scope, error
            )
        else:
            self.ledger.window_ends.clear()


def leave_diff(scope: str, removal: Removal, *, expired: bool) -> PresenceLeave:
    """The diff that announces a removal."""
    return PresenceLeave(
        scope=scope,
        user_id=removal.user_id,
        connection_id=removal.connection_id,
        version=removal.version,
        last_connection=removal.user_offline,
        expired=expired,
    )


async def sweep_when_windows_end(
    context: ActorContext, config: TrackerConfig, window_ends: list[float]
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
        await trio.sleep_until(max(end, swept_at + config.settings.sweep_interval))
        swept_at = trio.current_time()
        try:
            for removal in await config.store.expire(config.scope):
                diff = leave_diff(config.scope, removal, expired=not removal.left)
                await config.pubsub.publish(
                    config.channel, diff, group="presence:*", sharded=PRESENCE_SHARDED
                )
        except ActorsError as error:
            logger.warning("presence sweep of %r failed: %s", config.scope, error)
