"""Presence on a private real redis-server: Lua scripts, snapshots, expiry across processes.

Real sockets: no autojump clock; a short TTL and waits with deadlines.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio

from actors import ActorSystem
from actors.presence import (
    PresenceDiff,
    PresenceJoin,
    PresenceLeave,
    PresenceSettings,
    PresenceTracker,
    RedisPresenceStore,
    open_presence_tracker,
    presence_channel,
    presence_keys,
)
from actors.pubsub import RedisPubSub, open_pubsub

# TTLs several heartbeats long, so that a loaded machine delaying a heartbeat expires nobody.
FAST = PresenceSettings(ttl=1.0, heartbeat=0.15, sweep_interval=0.1, grace=0.0)
WORKER = Path(__file__).parent / "presence_worker.py"


@pytest.fixture(scope="module")
def presence_redis(module_redis_url: str) -> str:
    return module_redis_url


async def _until(condition: Callable[[], bool | Awaitable[bool]], seconds: float = 5.0) -> None:
    """Poll ``condition`` until it holds; fail after ``seconds``."""
    with trio.fail_after(seconds):
        while True:
            held = condition()
            if held if isinstance(held, bool) else await held:
                return
            await trio.sleep(0.02)


async def _online_is(users: set[str], *trackers: PresenceTracker) -> bool:
    """Whether each tracker shows exactly ``users`` online."""
    return [await tracker.online_users() for tracker in trackers] == [users] * len(trackers)


async def _connections_are(tracker: PresenceTracker, user_id: str, connections: set[str]) -> bool:
    """Whether the tracker shows exactly ``connections`` of the user."""
    return (await tracker.connections(user_id)).keys() == connections


async def test_join_leave_and_connections_on_redis(
    system: ActorSystem, presence_redis: str
) -> None:
    async with (
        open_pubsub(system, presence_redis) as one,
        open_pubsub(system, presence_redis) as two,
        open_presence_tracker(one, "room-r1", settings=FAST) as a,
        open_presence_tracker(two, "room-r1", settings=FAST) as b,
    ):
        assert isinstance(a.store, RedisPresenceStore)
        assert await a.join("ada", "phone", {"device": "phone"})
        assert not await b.join("ada", "laptop")
        await _until(lambda: _connections_are(b, "ada", {"phone", "laptop"}))
        assert (await b.connections("ada"))["phone"] == {"device": "phone"}
        assert not await a.leave("ada", "phone")
        await _until(lambda: _connections_are(b, "ada", {"laptop"}))
        assert await a.online_users() == await b.online_users() == {"ada"}
        assert await b.leave("ada", "laptop")
        await _until(lambda: _online_is(set(), a, b))
        assert not await b.leave("ada", "laptop")
        snapshot = await a.store.snapshot("room-r1")
        assert snapshot.members == {}
        assert snapshot.version == 4


async def test_snapshot_then_diffs_on_redis(system: ActorSystem, presence_redis: str) -> None:
    async with (
        open_pubsub(system, presence_redis) as pubsub,
        open_presence_tracker(pubsub, "room-r2", settings=FAST) as a,
    ):
        await a.join("ada", "c1")
        await a.join("bob", "c1")
        async with open_presence_tracker(pubsub, "room-r2", settings=FAST) as b:
            assert await b.online_users() == {"ada", "bob"}
            await b.resync()
            await a.leave("bob", "c1")
            await _until(lambda: _online_is({"ada"}, b))


async def test_a_dead_process_gives_exactly_one_leave_per_user_on_redis(
    system: ActorSystem, presence_redis: str
) -> None:
    dying = PresenceSettings(ttl=1.0, heartbeat=0.15, sweep_interval=0.1, leave_on_close=False)
    seen: list[PresenceDiff] = []

    async def record(diff: PresenceDiff) -> None:
        seen.append(diff)

    async with (
        open_pubsub(system, presence_redis) as watcher,
        open_pubsub(system, presence_redis) as one,
        open_pubsub(system, presence_redis) as two,
        open_presence_tracker(one, "room-r3", settings=FAST) as b,
        open_presence_tracker(two, "room-r3", settings=FAST) as c,
    ):
        assert isinstance(watcher.broker, RedisPubSub)
        await watcher.subscribe(
            presence_channel("room-r3"), record, message_type=PresenceDiff, sharded=True
        )
        async with (
            open_pubsub(system, presence_redis) as doomed,
            open_presence_tracker(doomed, "room-r3", settings=dying) as a,
        ):
            await a.join("ada", "phone")
            await a.join("ada", "laptop")
            await a.join("bob", "c1")
            await b.join("cyd", "c1")
            await _until(lambda: _online_is({"ada", "bob", "cyd"}, c))
        started = trio.current_time()
        await _until(lambda: _online_is({"cyd"}, b, c), seconds=3.0)
        assert trio.current_time() - started < 3.0
        await trio.sleep(0.5)  # more sweeps by both trackers: still no second leave
        leaves = [diff for diff in seen if isinstance(diff, PresenceLeave)]
        assert sorted((d.user_id, d.connection_id) for d in leaves) == [
            ("ada", "laptop"),
            ("ada", "phone"),
            ("bob", "c1"),
        ]
        assert sorted(d.user_id for d in leaves if d.last_connection) == ["ada", "bob"]
        assert await b.online_users() == await c.online_users() == {"cyd"}


async def test_grace_window_on_redis(system: ActorSystem, presence_redis: str) -> None:
    grace = PresenceSettings(ttl=1.0, heartbeat=0.15, sweep_interval=0.1, grace=0.3)
    seen: list[PresenceDiff] = []

    async def record(diff: PresenceDiff) -> None:
        seen.append(diff)

    async with (
        open_pubsub(system, presence_redis) as watcher,
        open_pubsub(system, presence_redis) as one,
        open_pubsub(system, presence_redis) as two,
        open_presence_tracker(one, "room-r4", settings=grace) as a,
        open_presence_tracker(two, "room-r4", settings=grace) as b,
    ):
        await watcher.subscribe(
            presence_channel("room-r4"), record, message_type=PresenceDiff, sharded=True
        )
        assert await a.join("ada", "phone")
        await _until(lambda: _online_is({"ada"}, b))
        await _until(lambda: len(seen) == 1)

        # Back within the window, on the same connection and then on another: no flap.
        assert await a.leave("ada", "phone")
        await trio.sleep(0.1)
        assert not await a.join("ada", "phone")
        assert await a.leave("ada", "phone")
        await trio.sleep(0.1)
        assert not await b.join("ada", "laptop")
        await _until(lambda: _connections_are(b, "ada", {"laptop"}), seconds=3.0)
        await trio.sleep(1.2)  # past TTL: the cancelled leave stays cancelled
        assert await a.online_users() == await b.online_users() == {"ada"}
        assert [(type(d), d.connection_id) for d in seen] == [
            (PresenceJoin, "phone"),
            (PresenceJoin, "phone"),  # back: trackers started meanwhile did not list it
            (PresenceJoin, "laptop"),
            (PresenceLeave, "phone"),
        ]
        assert not any(isinstance(d, PresenceJoin) and d.first_connection for d in seen[1:])
        assert not any(isinstance(d, PresenceLeave) and d.last_connection for d in seen)

        # No rejoin: offline after the window, exactly once, as an explicit leave.
        assert await b.leave("ada", "laptop")
        await trio.sleep(0.1)
        assert await a.online_users() == await b.online_users() == {"ada"}
        await _until(lambda: _online_is(set(), a, b), seconds=3.0)
        await trio.sleep(0.3)
        offline = [d for d in seen if isinstance(d, PresenceLeave) and d.last_connection]
        assert [(d.connection_id, d.expired) for d in offline] == [("laptop", False)]
        snapshot = await a.store.snapshot("room-r4")
        assert snapshot.members == {}


async def test_trackers_started_within_a_grace_window_on_redis(
    system: ActorSystem, presence_redis: str
) -> None:
    """A tracker started within a window does not list the connection that left, and sees no
    flap when it comes back or leaves again; a closed tracker still ends its window."""
    grace = PresenceSettings(ttl=30.0, heartbeat=10.0, sweep_interval=3600.0, grace=2.0)
    seen: list[PresenceDiff] = []

    async def record(diff: PresenceDiff) -> None:
        seen.append(diff)

    async with (
        open_pubsub(system, presence_redis) as watcher,
        open_pubsub(system, presence_redis) as one,
        open_pubsub(system, presence_redis) as two,
    ):
        await watcher.subscribe(
            presence_channel("room-r6"), record, message_type=PresenceDiff, sharded=True
        )
        async with open_presence_tracker(one, "room-r6", settings=grace) as old:
            await old.join("ada", "phone")
            assert await old.leave("ada", "phone")
            async with open_presence_tracker(two, "room-r6", settings=grace) as new:
                assert await new.online_users() == set()
                assert await old.online_users() == {"ada"}
                assert not await old.join("ada", "phone")  # back within the window
                await _until(lambda: _connections_are(new, "ada", {"phone"}))
                assert await old.leave("ada", "phone")
            async with open_presence_tracker(two, "room-r6", settings=grace) as newer:
                assert await newer.online_users() == set()
                assert not await newer.join("ada", "laptop")
                # Gone again within phone's window: laptop takes it over, phone goes now.
                assert await newer.leave("ada", "laptop")
                await _until(lambda: _connections_are(old, "ada", {"laptop"}))
                assert (await newer.connections("ada")).keys() == {"laptop"}
                snapshot = await newer.store.snapshot("room-r6")
                assert snapshot.leaving == {("ada", "laptop")}
                assert snapshot.members.keys() == {("ada", "laptop")}
        # Both trackers closed, and nobody else sweeps: the one that opened the window does.
        closed_at = trio.current_time()
        await _until(lambda: any(isinstance(d, PresenceLeave) and d.last_connection for d in seen))
        assert trio.current_time() - closed_at < grace.grace + 1.0
        offline = [d for d in seen if isinstance(d, PresenceLeave) and d.last_connection]
        assert [(d.connection_id, d.expired) for d in offline] == [("laptop", False)]
        assert [d for d in seen if isinstance(d, PresenceJoin) and d.first_connection] == seen[:1]
        assert (await newer.store.snapshot("room-r6")).members == {}


async def test_a_killed_process_gives_exactly_one_leave_per_user(
    system: ActorSystem, presence_redis: str
) -> None:
    """A real child process joins users and is SIGKILLed; its users expire exactly once."""
    # The same timing as the worker's (tests/presence/presence_worker.py).
    settings = PresenceSettings(ttl=2.0, heartbeat=0.3, sweep_interval=0.2, grace=0.3)
    scope = "room-mp"
    seen: list[PresenceDiff] = []

    async def record(diff: PresenceDiff) -> None:
        seen.append(diff)

    async with (
        open_pubsub(system, presence_redis) as watcher,
        open_pubsub(system, presence_redis) as pubsub,
        open_presence_tracker(pubsub, scope, settings=settings) as tracker,
    ):
        await watcher.subscribe(
            presence_channel(scope), record, message_type=PresenceDiff, sharded=True
        )
        child = await trio.lowlevel.open_process(
            [sys.executable, str(WORKER), presence_redis, scope], stdout=subprocess.PIPE
        )
        try:
            assert child.stdout is not None
            output = b""
            with trio.fail_after(20):
                while b"ready\n" not in output:
                    chunk = await child.stdout.receive_some()
                    assert chunk, f"the worker exited: {output!r}"
                    output += chunk
            # "ready" follows the joins, but their diffs reach this tracker through Redis later.
            await _until(lambda: _connections_are(tracker, "u1", {"c1", "c2"}))
            await _until(lambda: _connections_are(tracker, "u2", {"c1", "c2"}))
            assert await tracker.online_users() == {"u1", "u2"}
            await trio.sleep(settings.ttl)  # heartbeats keep the child's users online
            assert await tracker.online_users() == {"u1", "u2"}
        finally:
            child.send_signal(signal.SIGKILL)
            with trio.CancelScope(shield=True):
                await child.wait()
                if child.stdout is not None:
                    await child.stdout.aclose()
        assert child.returncode == -signal.SIGKILL
        killed = trio.current_time()
        deadline = settings.ttl + settings.sweep_interval + 1.0
        await _until(lambda: _online_is(set(), tracker), seconds=deadline)
        assert trio.current_time() - killed < deadline
        await trio.sleep(0.5)  # more sweeps: still no second leave
        leaves = [d for d in seen if isinstance(d, PresenceLeave)]
        assert sorted(d.user_id for d in leaves if d.last_connection) == ["u1", "u2"]
        assert sorted((d.user_id, d.connection_id) for d in leaves) == [
            ("u1", "c1"),
            ("u1", "c2"),
            ("u2", "c1"),
            ("u2", "c2"),
        ]
        assert all(d.expired for d in leaves)
        assert not await tracker.online_users()


async def test_a_scope_keeps_its_keys_while_tracked_and_not_after(
    system: ActorSystem, presence_redis: str
) -> None:
    async with open_pubsub(system, presence_redis) as pubsub:
        broker = pubsub.broker
        assert isinstance(broker, RedisPubSub)
        store = RedisPresenceStore(broker.ready_connection, keep=600.0)
        redis = await broker.ready_connection()
        keys = presence_keys("kept")
        await store.join("kept", "ada", "c1", {}, 60.0)
        for key in keys[:4]:  # members, expiry, users, version (nobody is leaving)
            assert 590_000 < await redis.execute("PTTL", key) <= 600_000, key
        # A scope nobody touched for a while ...
        for key in keys[:4]:
            await redis.execute("PEXPIRE", key, 5_000)
        # ... is kept again by any tracker's sweep, even one that removes nothing.
        assert await store.expire("kept") == []
        for key in keys[:4]:
            assert await redis.execute("PTTL", key) > 590_000, key
        await store.leave("kept", "ada", "c1")
        assert await redis.execute("PTTL", keys[3]) > 590_000  # the version survives the leave
        # Nobody tracks it any more: Redis drops the keys once ``keep`` passes (here at once:
        # an expiry time in the past).
        await redis.execute("PEXPIREAT", keys[3], 1)
        assert await redis.execute("EXISTS", *keys) == 0
        # A new tracker starts the scope afresh.
        async with open_presence_tracker(pubsub, "kept", store=store, settings=FAST) as tracker:
            assert await tracker.join("bob", "c1")
            assert await tracker.online_users() == {"bob"}


def test_keep_must_be_positive() -> None:
    async def never() -> object:
        raise AssertionError

    with pytest.raises(ValueError, match="keep must be positive"):
        RedisPresenceStore(never, keep=0)  # type: ignore[arg-type]
