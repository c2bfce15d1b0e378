"""The reconnect grace window on ``memory://``, with exact times under ``autojump_clock``."""

from __future__ import annotations

import trio
import trio.testing

from actors import ActorSystem
from actors.presence import (
    MemoryPresenceStore,
    PresenceChange,
    PresenceDiff,
    PresenceJoin,
    PresenceLeave,
    PresenceSettings,
    open_presence_tracker,
    presence_channel,
)
from actors.pubsub import open_pubsub

GRACE = PresenceSettings(ttl=6.0, heartbeat=2.0, sweep_interval=1.0, grace=5.0)


def _user_flips(seen: list[PresenceDiff]) -> list[str]:
    """What subscribers see of the user: ``online`` and ``offline`` events, in order."""
    flips = []
    for diff in seen:
        if isinstance(diff, PresenceJoin) and diff.first_connection:
            flips.append(f"online {diff.user_id}")
        if isinstance(diff, PresenceLeave) and diff.last_connection:
            flips.append(f"offline {diff.user_id}")
    return flips


async def test_grace_window_on_memory(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    store = MemoryPresenceStore()
    seen: list[PresenceDiff] = []

    async def record(diff: PresenceDiff) -> None:
        seen.append(diff)

    async with (
        open_pubsub(system, "memory://presence-grace") as watcher,
        open_pubsub(system, "memory://presence-grace") as one,
        open_pubsub(system, "memory://presence-grace") as two,
        open_presence_tracker(one, "g", store=store, settings=GRACE) as a,
        open_presence_tracker(two, "g", store=store, settings=GRACE) as b,
    ):
        await watcher.subscribe(
            presence_channel("g"), record, message_type=PresenceDiff, sharded=True
        )
        assert await a.join("ada", "phone")
        await trio.testing.wait_all_tasks_blocked()
        assert _user_flips(seen) == ["online ada"]

        # The same connection comes back within the window: only a connection-level join is
        # published (for trackers started within the window, which do not list it).
        assert await a.leave("ada", "phone")  # offline once the window passes, unless back
        assert not await a.leave("ada", "phone")  # already leaving
        await trio.sleep(4.5)
        assert await b.online_users() == {"ada"}
        assert not await a.join("ada", "phone")
        await trio.sleep(20)  # heartbeats keep it; the cancelled leave never fires
        assert await a.online_users() == await b.online_users() == {"ada"}
        assert [(type(d), d.connection_id) for d in seen] == [(PresenceJoin, "phone")] * 2
        assert _user_flips(seen) == ["online ada"]

        # Another connection comes back within the window: a connection-level join, and the
        # old connection's leave when its window passes, but the user never goes offline.
        assert await a.leave("ada", "phone")
        await trio.sleep(2)
        assert not await b.join("ada", "laptop")
        await trio.sleep(GRACE.grace + GRACE.sweep_interval)
        assert (await b.connections("ada")).keys() == {"laptop"}
        assert await a.online_users() == await b.online_users() == {"ada"}
        phone_leave = seen[-1]
        assert isinstance(phone_leave, PresenceLeave)
        assert (phone_leave.connection_id, phone_leave.last_connection) == ("phone", False)
        assert not phone_leave.expired

        # The last live connection leaves while another is leaving: it takes over the window
        # and the other goes now, so the user stays online for the whole window after the last
        # leave.
        assert await b.leave("ada", "laptop")
        await trio.sleep(3)
        assert not await b.join("ada", "tablet")
        left_at = trio.current_time()
        assert await b.leave("ada", "tablet")  # laptop is leaving: it goes now
        await trio.testing.wait_all_tasks_blocked()
        assert (
            (await a.connections("ada")).keys() == (await b.connections("ada")).keys() == {"tablet"}
        )
        await trio.sleep(GRACE.grace - 0.01)
        assert await a.online_users() == await b.online_users() == {"ada"}

        # No rejoin: offline at the first sweep after the window, exactly once.
        await trio.sleep(GRACE.sweep_interval + 0.02)
        assert trio.current_time() - left_at < GRACE.grace + GRACE.sweep_interval + 0.02
        assert await a.online_users() == await b.online_users() == set()
        await trio.sleep(10)
        assert _user_flips(seen) == ["online ada", "offline ada"]
        last = seen[-1]
        assert isinstance(last, PresenceLeave)
        assert (last.connection_id, last.expired) == ("tablet", False)


async def test_closing_a_tracker_leaves_with_grace(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    store = MemoryPresenceStore()
    async with (
        open_pubsub(system, "memory://presence-grace-close") as pubsub,
        open_presence_tracker(pubsub, "g", store=store, settings=GRACE) as b,
    ):
        async with open_presence_tracker(pubsub, "g", store=store, settings=GRACE) as a:
            await a.join("ada", "c1")
        await trio.sleep(GRACE.grace - 1)
        assert await b.online_users() == {"ada"}
        # A restart within the window: the user never went offline.
        async with open_presence_tracker(pubsub, "g", store=store, settings=GRACE) as again:
            assert not await again.join("ada", "c1")
            await trio.sleep(GRACE.grace + GRACE.sweep_interval)
            assert await b.online_users() == {"ada"}
        await trio.sleep(GRACE.grace + GRACE.sweep_interval)
        assert await b.online_users() == set()


async def test_a_tracker_started_in_a_grace_window_does_not_list_the_connection(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    """A newcomer never sees a tab that closed; one who saw it sees no flap if it comes back."""
    store = MemoryPresenceStore()
    async with (
        open_pubsub(system, "memory://presence-grace-newcomer") as pubsub,
        open_presence_tracker(pubsub, "g", store=store, settings=GRACE) as old,
    ):
        old_changes: list[PresenceChange] = []
        await old.watch(old_changes.append)
        async with open_presence_tracker(pubsub, "g", store=store, settings=GRACE) as a:
            await a.join("ada", "tab")
            await trio.testing.wait_all_tasks_blocked()
            assert await a.leave("ada", "tab")  # the tab closed: its grace window begins
        await trio.sleep(1)
        async with open_presence_tracker(pubsub, "g", store=store, settings=GRACE) as new:
            assert await new.online_users() == set()
            assert await old.online_users() == {"ada"}  # it listed her: no flap within the window
            # The same connection comes back within the window: the newcomer learns it.
            assert not await old.join("ada", "tab")
            await trio.testing.wait_all_tasks_blocked()
            assert await new.online_users() == await old.online_users() == {"ada"}
            assert await new.connections("ada") == {"tab": {}}
        assert [(change.joined, change.left) for change in old_changes] == [
            (frozenset({"ada"}), frozenset())
        ]


async def test_a_closed_tracker_publishes_the_leave_it_owes_when_the_window_ends(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    """No tracker of the scope is left to sweep it, and the leave still goes out on time."""
    store = MemoryPresenceStore()
    seen: list[tuple[float, PresenceDiff]] = []

    async def record(diff: PresenceDiff) -> None:
        seen.append((trio.current_time(), diff))

    async with (
        open_pubsub(system, "memory://presence-grace-owed") as watcher,
        open_pubsub(system, "memory://presence-grace-owed") as pubsub,
    ):
        await watcher.subscribe(
            presence_channel("g"), record, message_type=PresenceDiff, sharded=True
        )
        async with open_presence_tracker(pubsub, "g", store=store, settings=GRACE) as a:
            await a.join("ada", "tab")
            await a.join("bob", "tab")
            await trio.sleep(1)
            left_at = trio.current_time()
            assert await a.leave("ada", "tab")
            await trio.sleep(2)
        closed_at = trio.current_time()  # bob's leave, on close, opens his window
        await trio.sleep(3 * GRACE.grace)
        leaves = [(at, diff) for at, diff in seen if isinstance(diff, PresenceLeave)]
        assert [(at, diff.user_id, diff.last_connection) for at, diff in leaves] == [
            (left_at + GRACE.grace, "ada", True),
            (closed_at + GRACE.grace, "bob", True),
        ]
        assert (await store.snapshot("g")).members == {}


async def test_a_second_leave_within_the_window_keeps_the_user_listed_by_every_tracker(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    """A tracker that never listed the first connection keeps the user until the new window."""
    store = MemoryPresenceStore()
    async with (
        open_pubsub(system, "memory://presence-grace-second") as pubsub,
        open_presence_tracker(pubsub, "g", store=store, settings=GRACE) as old,
    ):
        await old.join("ada", "phone")
        assert await old.leave("ada", "phone")
        await trio.sleep(1)
        async with open_presence_tracker(pubsub, "g", store=store, settings=GRACE) as new:
            changes: list[PresenceChange] = []
            await new.watch(changes.append)
            assert not await new.join("ada", "laptop")  # back, on another connection
            await trio.sleep(1)
            left_at = trio.current_time()
            going = await new.leave("ada", "laptop")  # and gone again, within phone's window
            await trio.sleep(GRACE.grace - 0.01)
            assert await new.online_users() == await old.online_users() == {"ada"}
            assert going  # offline once the window passes, unless she comes back
            await trio.sleep(GRACE.sweep_interval + 0.02)
            assert await new.online_users() == await old.online_users() == set()
            assert trio.current_time() - left_at < GRACE.grace + GRACE.sweep_interval + 0.02
            assert [(change.joined, change.left) for change in changes] == [
                (frozenset({"ada"}), frozenset()),
                (frozenset(), frozenset({"ada"})),
            ]


async def test_a_resync_keeps_a_connection_in_its_window_only_where_it_was_listed(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    store = MemoryPresenceStore()
    async with (
        open_pubsub(system, "memory://presence-grace-resync") as pubsub,
        open_presence_tracker(pubsub, "g", store=store, settings=GRACE) as a,
    ):
        await a.join("ada", "tab")
        assert await a.leave("ada", "tab")
        await a.resync()  # after a gap, say
        assert await a.online_users() == {"ada"}
        async with open_presence_tracker(pubsub, "g", store=store, settings=GRACE) as b:
            await b.resync()
            assert await b.online_users() == set()
