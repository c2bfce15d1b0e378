"""A tracker actor killed while joins and leaves flow: its supervisor restarts it, the restart
rebuilds its state from the store and announces its connections again, and afterwards every
tracker and the store agree with the connections that really are there.

Killed two ways, both from outside through the public API: crashed by a linked actor (a
cancellation that lands wherever the tracker is waiting), and crashed by a bug just after a
store change (so that the change's diff is never published by that incarnation).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import TypeVar

import pytest
import trio
import trio.testing

from actors import ActorRef, ActorSystem
from actors._errors import (
    ActorCrashedError,
    ActorStoppedError,
    AskTimeoutError,
    RedisConnectionError,
)
from actors.presence import (
    JoinResult,
    MemoryPresenceStore,
    Metadata,
    PresenceChange,
    PresenceSettings,
    PresenceStore,
    PresenceTracker,
    Removal,
    Snapshot,
    open_presence_tracker,
)
from actors.pubsub import open_pubsub
from actors.runtime import ActorContext, ActorState

T = TypeVar("T")
Key = tuple[str, str]

SETTINGS = PresenceSettings(ttl=6.0, heartbeat=2.0, sweep_interval=1.0, grace=2.0)
USERS = [f"u{number}" for number in range(6)]


class SabotagedStore:
    """A store whose operations take a little time, so that a kill can land in one, which can
    be made to crash its caller just after its next join or leave has changed the store, whose
    leaves and snapshots can be held at a gate, and which can fail every operation."""

    def __init__(self, store: PresenceStore, delay: float) -> None:
        self.store = store
        self.delay = delay
        self.armed = False
        self.crashes = 0
        self.crashed = trio.Event()
        self.gate: trio.Event | None = None
        self.at_gate = trio.Event()
        self.failure: Exception | None = None

    async def _before(self) -> None:
        await trio.sleep(self.delay)
        if self.failure is not None:
            raise self.failure

    async def _at_gate(self) -> None:
        await self._before()
        if self.gate is not None:
            self.at_gate.set()
            await self.gate.wait()

    async def _after_change(self, result: T) -> T:
        await trio.sleep(self.delay)
        if self.armed:
            self.armed = False
            self.crashes += 1
            self.crashed.set()
            raise RuntimeError("a bug, just after a change of the store")
        return result

    async def join(
        self, scope: str, user_id: str, connection_id: str, metadata: Metadata, ttl: float
    ) -> JoinResult:
        await self._before()
        result = await self.store.join(scope, user_id, connection_id, metadata, ttl)
        return await self._after_change(result)

    async def heartbeat(
        self, scope: str, user_id: str, connection_id: str, metadata: Metadata, ttl: float
    ) -> JoinResult:
        await self._before()
        return await self.store.heartbeat(scope, user_id, connection_id, metadata, ttl)

    async def leave(
        self, scope: str, user_id: str, connection_id: str, grace: float = 0.0
    ) -> Removal | None:
        await self._at_gate()
        result = await self.store.leave(scope, user_id, connection_id, grace)
        return await self._after_change(result)

    async def expire(self, scope: str) -> list[Removal]:
        await self._before()
        return await self.store.expire(scope)

    async def snapshot(self, scope: str) -> Snapshot:
        await self._at_gate()
        return await self.store.snapshot(scope)


async def crash_linked(context: ActorContext, target: ActorRef) -> None:
    """Link to ``target``, then crash: the link crashes ``target`` too, wherever it is."""
    context.link(target)
    raise RuntimeError("killing the tracker")


async def kill(system: ActorSystem, tracker: PresenceTracker) -> None:
    """Crash a running tracker from outside, through a link."""
    # Not while it waits out its restart's backoff: there is no incarnation to crash then.
    while tracker.ref.state is not ActorState.RUNNING:  # noqa: ASYNC110 - another actor's state
        await trio.sleep(0.01)
    await system.spawn(crash_linked, tracker.ref)


async def retrying(request: Callable[[], Awaitable[T]]) -> T:
    """Ask again when the tracker died on the request: it is restarted, and every request to
    it is idempotent."""
    for _ in range(20):
        try:
            return await request()
        except (ActorCrashedError, ActorStoppedError):
            await trio.lowlevel.checkpoint()
    raise AssertionError("the tracker never answered")


class Traffic:
    """Clients joining and leaving through trackers; ``connected`` is what really is there."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.connected: set[Key] = set()

    async def client(
        self,
        tracker: PresenceTracker,
        name: str,
        rounds: int,
        pause: float = 1.5,
        graces: Sequence[float | None] = (0.0, None),
    ) -> None:
        """Join a connection per round and stay up to ``pause`` seconds; leave with a grace
        out of ``graces`` (at once, or the settings' grace window) 7 times out of 10."""
        for round_number in range(rounds):
            user = self.random.choice(USERS)
            key = (user, f"{name}-{round_number}")
            metadata = {"round": str(round_number)}
            await retrying(partial(tracker.join, *key, metadata))
            self.connected.add(key)
            await trio.sleep(self.random.uniform(0.0, pause))
            if self.random.random() < 0.7:
                grace = self.random.choice(graces)
                await retrying(partial(tracker.leave, *key, grace=grace))
                self.connected.discard(key)

    def users(self) -> set[str]:
        return {user for user, _ in self.connected}

    def connections(self, user: str) -> set[str]:
        return {connection for who, connection in self.connected if who == user}


async def assert_presence_is(
    traffic: Traffic, store: PresenceStore, *trackers: PresenceTracker
) -> None:
    """Every tracker and the store show exactly the connections that are there."""
    snapshot = await store.snapshot("k")
    assert snapshot.members.keys() == traffic.connected
    assert snapshot.leaving == frozenset()
    for tracker in trackers:
        assert await tracker.online_users() == traffic.users()
        for user in USERS:
            assert (await tracker.connections(user)).keys() == traffic.connections(user)


def mirror(online: set[str]) -> Callable[[PresenceChange], None]:
    """A watcher that keeps ``online`` up to date from the changes alone."""

    def watcher(change: PresenceChange) -> None:
        if change.online is not None:
            online.clear()
            online.update(change.online)
        online.difference_update(change.left)
        online.update(change.joined)

    return watcher


@asynccontextmanager
async def two_processes(
    system: ActorSystem,
    url: str,
    *,
    settings: PresenceSettings = SETTINGS,
    doomed_store: PresenceStore | None = None,
    store: PresenceStore | None = None,
) -> AsyncIterator[tuple[PresenceTracker, PresenceTracker]]:
    """A tracker of the scope ``k`` in each of two processes (two ``PubSub`` on one broker);
    the first one, to be killed, on ``doomed_store`` if given."""
    async with (
        open_pubsub(system, url) as one,
        open_pubsub(system, url) as two,
        open_presence_tracker(one, "k", store=doomed_store or store, settings=settings) as doomed,
        open_presence_tracker(two, "k", store=store, settings=settings) as other,
    ):
        yield doomed, other


async def test_a_tracker_killed_mid_traffic_comes_back_and_presence_is_right(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    store = MemoryPresenceStore()
    sabotaged = SabotagedStore(store, delay=0.01)
    traffic = Traffic(seed=7)
    watched: set[str] = set()
    kills = 6
    async with two_processes(
        system, "memory://presence-kill", doomed_store=sabotaged, store=store
    ) as (doomed, other):
        await doomed.watch(mirror(watched))

        async def killer() -> None:
            for number in range(kills):
                await trio.sleep(traffic.random.uniform(0.3, 1.5))
                if number % 2:
                    await kill(system, doomed)
                else:
                    sabotaged.crashed = trio.Event()
                    sabotaged.armed = True
                    await sabotaged.crashed.wait()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(killer)
            for number in range(6):
                nursery.start_soon(traffic.client, doomed, f"d{number}", 12)
            for number in range(3):
                nursery.start_soon(traffic.client, other, f"o{number}", 12)
        assert doomed.statistics().restarts == kills
        assert sabotaged.crashes == kills // 2
        # The grace windows opened last end, and their sweeps remove the connections.
        await trio.sleep(SETTINGS.grace + 2 * SETTINGS.sweep_interval)
        async with open_presence_tracker(
            other.pubsub, "k", store=store, settings=SETTINGS
        ) as newcomer:
            await assert_presence_is(traffic, store, doomed, other, newcomer)
        assert watched == traffic.users()
        # Its connections are still heartbeated by the last incarnation.
        await trio.sleep(3 * SETTINGS.ttl)
        await assert_presence_is(traffic, store, doomed, other)
        assert doomed.statistics().connections == len(
            {key for key in traffic.connected if key[1].startswith("d")}
        )


async def test_a_crash_between_a_change_and_its_diff_is_announced_after_the_restart(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    """The restart settles what its predecessor left undone: the other tracker learns of the
    join and of the leave whose diffs died with it, without any resync of its own."""
    store = MemoryPresenceStore()
    sabotaged = SabotagedStore(store, delay=0.0)
    async with two_processes(
        system, "memory://presence-unsettled", doomed_store=sabotaged, store=store
    ) as (doomed, other):
        await doomed.join("bob", "c1")
        sabotaged.armed = True
        with pytest.raises(ActorCrashedError) as crashed:
            await doomed.join("ada", "c1")
        assert isinstance(crashed.value.__cause__, RuntimeError)
        assert await doomed.online_users() == {"ada", "bob"}  # answered by the next incarnation
        await trio.testing.wait_all_tasks_blocked()
        assert await other.online_users() == {"ada", "bob"}
        sabotaged.armed = True
        with pytest.raises(ActorCrashedError):
            await doomed.leave("bob", "c1", grace=0)
        assert await doomed.online_users() == {"ada"}
        await trio.testing.wait_all_tasks_blocked()
        assert await other.online_users() == {"ada"}
        assert other.statistics().resyncs == 1  # its first snapshot only: the diffs did it
        assert doomed.statistics().restarts == 2


async def test_a_kill_during_a_change_waits_for_its_diff(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    """A change and its diff are one step: the kill takes effect once the diff is out, so the
    caller gets its answer and nobody misses the change."""
    store = MemoryPresenceStore()
    sabotaged = SabotagedStore(store, delay=0.0)
    answers: list[bool] = []
    async with two_processes(
        system, "memory://presence-step", doomed_store=sabotaged, store=store
    ) as (doomed, other):
        await doomed.join("ada", "c1")
        sabotaged.gate = trio.Event()

        async def leave() -> None:
            answers.append(await doomed.leave("ada", "c1", grace=0))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(leave)
            await sabotaged.at_gate.wait()
            await kill(system, doomed)  # while its store operation is under way
            await trio.testing.wait_all_tasks_blocked()
            assert doomed.ref.state is ActorState.RUNNING
            assert doomed.statistics().restarts == 0
            sabotaged.gate.set()
        assert answers == [True]
        await trio.testing.wait_all_tasks_blocked()
        assert await other.online_users() == set()
        assert other.statistics().resyncs == 1
        assert await doomed.online_users() == set()  # answered by the next incarnation
        assert doomed.statistics().restarts == 1


async def test_a_request_the_tracker_died_on_fails_and_may_be_sent_again(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    """A snapshot is no change: a kill cancels it at once, and the asker hears of it."""
    sabotaged = SabotagedStore(MemoryPresenceStore(), delay=0.0)
    async with (
        open_pubsub(system, "memory://") as pubsub,
        open_presence_tracker(pubsub, "k", store=sabotaged, settings=SETTINGS) as tracker,
    ):
        await tracker.join("ada", "c1")
        sabotaged.gate = trio.Event()

        async def resync() -> None:
            with pytest.raises(ActorStoppedError, match="while handling Resync"):
                await tracker.resync()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(resync)
            await sabotaged.at_gate.wait()
            await kill(system, tracker)
            await trio.testing.wait_all_tasks_blocked()
            sabotaged.gate.set()
        await tracker.resync()
        assert await tracker.online_users() == {"ada"}
        tracker.ref.tell_nowait("not a request")  # a bug in the sender: it crashes too
        assert await tracker.online_users() == {"ada"}
        assert tracker.statistics().restarts == 2


async def test_a_failing_store_fails_the_request_and_the_tracker_goes_on(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    store = MemoryPresenceStore()
    sabotaged = SabotagedStore(store, delay=0.0)
    async with two_processes(
        system, "memory://presence-failing", doomed_store=sabotaged, store=store
    ) as (doomed, other):
        sabotaged.failure = RedisConnectionError("Redis is out of reach")
        with pytest.raises(RedisConnectionError):
            await doomed.join("ada", "c1")
        sabotaged.failure = None
        assert await doomed.join("ada", "c1")
        await trio.testing.wait_all_tasks_blocked()
        assert await other.online_users() == {"ada"}
        assert doomed.statistics().restarts == 0


async def test_a_tracker_that_cannot_start_is_not_kept(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    """Its supervisor restarts it with a growing backoff; the caller gives up at its bound."""
    sabotaged = SabotagedStore(MemoryPresenceStore(), delay=0.0)
    sabotaged.failure = RuntimeError("no snapshot today")
    async with open_pubsub(system, "memory://") as pubsub:
        started = trio.current_time()
        with pytest.raises(AskTimeoutError):
            async with open_presence_tracker(pubsub, "k", store=sabotaged, settings=SETTINGS):
                raise AssertionError("the tracker started")
        bound = pubsub.settings.ack_timeout + SETTINGS.request_timeout
        assert trio.current_time() - started == bound
        assert not [child for child in pubsub.supervisor.which_children() if "presence" in child.id]


async def test_a_tracker_killed_mid_traffic_on_redis(
    system: ActorSystem, module_redis_url: str
) -> None:
    """Real sockets and time: two processes' trackers on a private redis-server."""
    settings = PresenceSettings(ttl=2.0, heartbeat=0.3, sweep_interval=0.2, grace=0.3)
    traffic = Traffic(seed=11)
    async with two_processes(system, module_redis_url, settings=settings) as (doomed, other):

        async def killer() -> None:
            for _ in range(3):
                await trio.sleep(traffic.random.uniform(0.1, 0.4))
                await kill(system, doomed)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(killer)
            for number in range(4):
                nursery.start_soon(traffic.client, doomed, f"d{number}", 12, 0.2, (0.0,))
            nursery.start_soon(traffic.client, other, "o0", 12, 0.2, (0.0,))
        # Diffs travel through Redis: wait until both trackers agree with the store.
        with trio.fail_after(5):
            while True:
                try:
                    await assert_presence_is(traffic, doomed.store, doomed, other)
                    break
                except AssertionError:
                    await trio.sleep(0.05)
        assert doomed.statistics().restarts == 3
