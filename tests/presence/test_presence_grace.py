"""The reconnect grace window on ``memory://``, with exact times under ``autojump_clock``."""

from __future__ import annotations

import trio
import trio.testing

from actors import ActorSystem
from actors.presence import (
    MemoryPresenceStore,
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
        open_presence_tracker(system, one, "g", store=store, settings=GRACE) as a,
        open_presence_tracker(system, two, "g", store=store, settings=GRACE) as b,
    ):
        await watcher.subscribe(presence_channel("g"), record, message_type=PresenceDiff)
        assert await a.join("ada", "phone")
        await trio.testing.wait_all_tasks_blocked()
        assert _user_flips(seen) == ["online ada"]

        # The same connection comes back within the window: nothing is published.
        assert await a.leave("ada", "phone")  # offline once the window passes, unless back
        assert not await a.leave("ada", "phone")  # already leaving
        await trio.sleep(4.5)
        assert b.online_users() == {"ada"}
        assert not await a.join("ada", "phone")
        await trio.sleep(20)  # heartbeats keep it; the cancelled leave never fires
        assert a.online_users() == b.online_users() == {"ada"}
        assert len(seen) == 1

        # Another connection comes back within the window: a connection-level join, and the
        # old connection's leave when its window passes, but the user never goes offline.
        assert await a.leave("ada", "phone")
        await trio.sleep(2)
        assert not await b.join("ada", "laptop")
        await trio.sleep(GRACE.grace + GRACE.sweep_interval)
        assert b.connections("ada").keys() == {"laptop"}
        assert a.online_users() == b.online_users() == {"ada"}
        phone_leave = seen[-1]
        assert isinstance(phone_leave, PresenceLeave)
        assert (phone_leave.connection_id, phone_leave.last_connection) == ("phone", False)
        assert not phone_leave.expired

        # The last live connection leaves while another is leaving: that one's window is
        # pushed back, so the user stays online for the whole window after the last leave.
        assert await b.leave("ada", "laptop")
        await trio.sleep(3)
        assert not await b.join("ada", "tablet")
        left_at = trio.current_time()
        assert not await b.leave("ada", "tablet")  # laptop is leaving: tablet goes now
        await trio.sleep(GRACE.grace - 0.01)
        assert a.online_users() == b.online_users() == {"ada"}
        assert b.connections("ada").keys() == {"laptop"}

        # No rejoin: offline at the first sweep after the window, exactly once.
        await trio.sleep(GRACE.sweep_interval + 0.02)
        assert trio.current_time() - left_at < GRACE.grace + GRACE.sweep_interval + 0.02
        assert a.online_users() == b.online_users() == set()
        await trio.sleep(10)
        assert _user_flips(seen) == ["online ada", "offline ada"]
        last = seen[-1]
        assert isinstance(last, PresenceLeave)
        assert (last.connection_id, last.expired) == ("laptop", False)


async def test_closing_a_tracker_leaves_with_grace(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    store = MemoryPresenceStore()
    async with (
        open_pubsub(system, "memory://presence-grace-close") as pubsub,
        open_presence_tracker(system, pubsub, "g", store=store, settings=GRACE) as b,
    ):
        async with open_presence_tracker(system, pubsub, "g", store=store, settings=GRACE) as a:
            await a.join("ada", "c1")
        await trio.sleep(GRACE.grace - 1)
        assert b.online_users() == {"ada"}
        # A restart within the window: the user never went offline.
        async with open_presence_tracker(system, pubsub, "g", store=store, settings=GRACE) as again:
            assert not await again.join("ada", "c1")
            await trio.sleep(GRACE.grace + GRACE.sweep_interval)
            assert b.online_users() == {"ada"}
        await trio.sleep(GRACE.grace + GRACE.sweep_interval)
        assert b.online_users() == set()
