"""Presence on ``memory://``: trackers sharing a broker and an in-process store."""

from __future__ import annotations

import pytest
import trio

from actors import ActorSystem, InvalidIdentifierError
from actors.presence import (
    MemoryPresenceStore,
    PresenceChange,
    PresenceDiff,
    PresenceLeave,
    PresenceSettings,
    open_presence_tracker,
    presence_channel,
)
from actors.pubsub import open_pubsub

FAST = PresenceSettings(ttl=6.0, heartbeat=2.0, sweep_interval=1.0, grace=0.0)


async def _settle() -> None:
    await trio.testing.wait_all_tasks_blocked()


async def test_join_leave_across_two_trackers(system: ActorSystem) -> None:
    store = MemoryPresenceStore()
    async with (
        open_pubsub(system, "memory://presence-a") as one,
        open_pubsub(system, "memory://presence-a") as two,
        open_presence_tracker(one, "room1", store=store, settings=FAST) as a,
        open_presence_tracker(two, "room1", store=store, settings=FAST) as b,
    ):
        assert await a.join("ada", "c1", {"device": "phone"})
        await _settle()
        assert await b.online_users() == {"ada"}
        assert await b.connections("ada") == {"c1": {"device": "phone"}}
        assert await a.leave("ada", "c1")
        await _settle()
        assert await a.online_users() == await b.online_users() == set()
        assert not await a.leave("ada", "c1")


async def test_last_connection_keeps_the_user_online(system: ActorSystem) -> None:
    store = MemoryPresenceStore()
    async with (
        open_pubsub(system, "memory://presence-b") as one,
        open_pubsub(system, "memory://presence-b") as two,
        open_presence_tracker(one, "global", store=store, settings=FAST) as a,
        open_presence_tracker(two, "global", store=store, settings=FAST) as b,
    ):
        assert await a.join("ada", "phone")
        assert not await b.join("ada", "laptop")
        await _settle()
        assert not await a.leave("ada", "phone")
        await _settle()
        assert await a.online_users() == await b.online_users() == {"ada"}
        assert await b.leave("ada", "laptop")
        await _settle()
        assert await a.online_users() == await b.online_users() == set()


async def test_a_late_tracker_loads_the_snapshot(system: ActorSystem) -> None:
    async with (
        open_pubsub(system, "memory://") as pubsub,
        open_presence_tracker(pubsub, "s", settings=FAST) as a,
    ):
        await a.join("ada", "c1")
        await a.join("bob", "c1")
        async with open_presence_tracker(pubsub, "s", settings=FAST) as b:
            assert await b.online_users() == {"ada", "bob"}
            await b.resync()  # again: nothing is counted twice
            await _settle()
            assert await b.online_users() == {"ada", "bob"}
            assert a.statistics().resyncs == 1
            assert b.statistics().resyncs == 2


async def test_heartbeats_keep_members_and_closing_leaves(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    store = MemoryPresenceStore()
    async with open_pubsub(system, "memory://presence-c") as pubsub:
        async with open_presence_tracker(pubsub, "s", store=store, settings=FAST) as a:
            await a.join("ada", "c1")
            await trio.sleep(60)
            assert await a.online_users() == {"ada"}
        async with open_presence_tracker(pubsub, "s", store=store, settings=FAST) as b:
            assert await b.online_users() == set()


async def test_a_dead_process_gives_exactly_one_leave_per_user(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    store = MemoryPresenceStore()
    dying = PresenceSettings(ttl=6.0, heartbeat=2.0, sweep_interval=1.0, leave_on_close=False)
    seen: list[PresenceDiff] = []

    async def record(diff: PresenceDiff) -> None:
        seen.append(diff)

    async with (
        open_pubsub(system, "memory://presence-d") as watcher,
        open_pubsub(system, "memory://presence-d") as one,
        open_pubsub(system, "memory://presence-d") as two,
        open_presence_tracker(one, "s", store=store, settings=FAST) as b,
        open_presence_tracker(two, "s", store=store, settings=FAST) as c,
    ):
        await watcher.subscribe(
            presence_channel("s"), record, message_type=PresenceDiff, sharded=True
        )
        async with (
            open_pubsub(system, "memory://presence-d") as doomed,
            open_presence_tracker(doomed, "s", store=store, settings=dying) as a,
        ):
            await a.join("ada", "phone")
            await a.join("ada", "laptop")
            await a.join("bob", "c1")
            await b.join("cyd", "c1")
            await trio.sleep(1)
        assert await b.online_users() == {"ada", "bob", "cyd"}
        start = trio.current_time()
        await trio.sleep(FAST.ttl + FAST.sweep_interval + 1)
        assert trio.current_time() - start <= FAST.ttl + 2 * FAST.sweep_interval + 1
        assert await b.online_users() == await c.online_users() == {"cyd"}
        leaves = [diff for diff in seen if isinstance(diff, PresenceLeave)]
        assert sorted((d.user_id, d.connection_id) for d in leaves) == [
            ("ada", "laptop"),
            ("ada", "phone"),
            ("bob", "c1"),
        ]
        assert sorted(d.user_id for d in leaves if d.last_connection) == ["ada", "bob"]
        assert all(d.expired for d in leaves)


async def test_bad_ids_and_settings_are_refused(system: ActorSystem) -> None:
    with pytest.raises(ValueError, match="heartbeat"):
        PresenceSettings(ttl=1.0, heartbeat=2.0)
    with pytest.raises(ValueError, match="request_timeout"):
        PresenceSettings(request_timeout=0.0)
    async with (
        open_pubsub(system, "memory://") as pubsub,
        open_presence_tracker(pubsub, "s") as tracker,
    ):
        with pytest.raises(ValueError, match="':'"):
            await tracker.join("ada", "a:b")
        with pytest.raises(ValueError, match="empty"):
            await tracker.heartbeat("ada", "")
        for bad in ("", "ada lovelace", "*", "x" * 65):  # the one rule of user ids
            with pytest.raises(InvalidIdentifierError, match="invalid user id"):
                await tracker.heartbeat(bad, "c1")
        with pytest.raises(InvalidIdentifierError, match="invalid presence scope"):
            async with open_presence_tracker(pubsub, "room:1"):
                pass  # pragma: no cover
        assert await tracker.online_users() == set()  # refused by the handle: no crash
        assert tracker.statistics().restarts == 0


async def test_watchers_see_users_come_and_go_once(system: ActorSystem) -> None:
    store = MemoryPresenceStore()
    changes: list[PresenceChange] = []
    async with (
        open_pubsub(system, "memory://presence-watch") as one,
        open_pubsub(system, "memory://presence-watch") as two,
        open_presence_tracker(one, "lobby", store=store, settings=FAST) as a,
        open_presence_tracker(two, "lobby", store=store, settings=FAST) as b,
    ):
        await b.watch(changes.append)
        await a.join("ada", "phone")
        await a.join("ada", "laptop")  # the second connection: no change of who is online
        await _settle()
        await a.leave("ada", "phone")
        await _settle()
        assert changes == [PresenceChange(scope="lobby", joined=frozenset({"ada"}))]
        await a.leave("ada", "laptop")
        await _settle()
        assert changes[1:] == [PresenceChange(scope="lobby", left=frozenset({"ada"}))]
        await b.unwatch(changes.append)
        await a.join("bob", "c1")
        await _settle()
        assert len(changes) == 2


async def test_a_resync_reports_what_the_snapshot_changed(system: ActorSystem) -> None:
    store = MemoryPresenceStore()
    changes: list[PresenceChange] = []
    async with (
        open_pubsub(system, "memory://") as pubsub,
        open_presence_tracker(pubsub, "s", store=store, settings=FAST) as tracker,
    ):
        await tracker.join("ada", "c1")
        await tracker.watch(changes.append)
        # Changes the tracker missed (made straight in the store, as during a gap).
        await store.join("s", "bob", "c1", {}, FAST.ttl)
        await store.leave("s", "ada", "c1", 0.0)
        await tracker.resync()
        assert changes == [
            PresenceChange(
                scope="s",
                joined=frozenset({"bob"}),
                left=frozenset({"ada"}),
                resynced=True,
                online=frozenset({"bob"}),
            )
        ]
        assert await tracker.online_users() == {"bob"}


async def test_a_failing_watcher_does_not_stop_the_tracker(system: ActorSystem) -> None:
    def broken(change: PresenceChange) -> None:
        raise RuntimeError("watcher bug")

    async with (
        open_pubsub(system, "memory://") as pubsub,
        open_presence_tracker(pubsub, "s", settings=FAST) as tracker,
    ):
        await tracker.watch(broken)
        await tracker.join("ada", "c1")
        await tracker.join("bob", "c1")
        assert await tracker.online_users() == {"ada", "bob"}


async def test_a_heartbeat_puts_back_a_lost_connection_and_a_sweep_can_be_asked_for(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    store = MemoryPresenceStore()
    rare_sweeps = PresenceSettings(ttl=6.0, heartbeat=2.0, sweep_interval=100.0, grace=0.0)
    async with open_pubsub(system, "memory://") as pubsub:
        tracker_cm = open_presence_tracker(pubsub, "s", store=store, settings=rare_sweeps)
        async with tracker_cm as tracker:
            await tracker.join("ada", "c1", {"device": "phone"})
            await store.leave("s", "ada", "c1")  # lost, as by a Redis restarted empty
            await tracker.resync()
            assert await tracker.online_users() == set()
            await tracker.heartbeat("ada", "c1", {"device": "laptop"})  # new metadata
            assert await tracker.connections("ada") == {"c1": {"device": "laptop"}}
            await store.join("s", "bob", "c9", {}, 0.5)  # another process's, which dies
            await trio.sleep(1)
            removals = await tracker.sweep()
            assert [(r.user_id, r.connection_id, r.user_offline) for r in removals] == [
                ("bob", "c9", True)
            ]
            await tracker.unwatch(print)  # not watching: nothing happens
            assert (await store.snapshot("s")).members == {("ada", "c1"): {"device": "laptop"}}
