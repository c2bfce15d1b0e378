"""Presence changes gathered per scope: one frame per interval, the last change of a user wins."""

from __future__ import annotations

import orjson
import trio
from gateway_helpers import connected, running_gateway

from actors import ActorSystem
from actors.presence import PresenceChange, PresenceSettings
from actors.server.gateway import GatewaySettings
from actors.server.gateway._presence_batch import PresenceBatcher


def _change(scope: str = "s", joined: set[str] = set(), left: set[str] = set()) -> PresenceChange:  # noqa: B006
    return PresenceChange(scope=scope, joined=frozenset(joined), left=frozenset(left))


def test_the_last_change_of_each_user_wins() -> None:
    sent: list[object] = []
    batcher = PresenceBatcher()
    push = sent.append
    for change in [
        _change(joined={"ada"}),
        _change(joined={"bob"}),
        _change(left={"ada"}),
        _change(left={"cy"}),
        _change(joined={"cy"}),
        _change(scope="t", joined={"ada"}),
    ]:
        batcher.add(change, lambda frame: push(orjson.loads(frame)))
    batcher.flush()
    assert sent == [
        {"type": "presence_diff", "scope": "s", "joined": ["bob", "cy"], "left": ["ada"]},
        {"type": "presence_diff", "scope": "t", "joined": ["ada"], "left": []},
    ]
    batcher.flush()
    assert len(sent) == 2  # nothing pending, nothing sent


def test_a_resync_sends_the_state() -> None:
    sent: list[object] = []
    batcher = PresenceBatcher()
    batcher.add(_change(joined={"ada"}), lambda f: sent.append(orjson.loads(f)))
    resync = PresenceChange(
        scope="s", joined=frozenset({"bob"}), resynced=True, online=frozenset({"bob", "ada"})
    )
    batcher.add(resync, lambda f: sent.append(orjson.loads(f)))
    batcher.flush()
    assert sent == [{"type": "presence_state", "scope": "s", "users": ["ada", "bob"]}]


def test_changes_after_a_resync_are_applied_to_its_state() -> None:
    sent: list[object] = []
    batcher = PresenceBatcher()

    def push(frame: str) -> None:
        sent.append(orjson.loads(frame))

    resync = PresenceChange(
        scope="s", joined=frozenset({"bob"}), resynced=True, online=frozenset({"ada", "bob"})
    )
    for change in [resync, _change(left={"ada"}), _change(joined={"cy"})]:
        batcher.add(change, push)
    batcher.flush()
    assert sent == [{"type": "presence_state", "scope": "s", "users": ["bob", "cy"]}]


async def test_flushes_wait_for_the_interval(autojump_clock: trio.testing.MockClock) -> None:
    sent: list[float] = []
    batcher = PresenceBatcher(interval=0.5)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(batcher.run)
        await trio.sleep(1)
        start = trio.current_time()
        for user in ["a", "b", "c"]:
            batcher.add(_change(joined={user}), lambda f: sent.append(trio.current_time()))
            await trio.sleep(0.1)
        await trio.sleep(2)
        assert sent == [start + 0.5]  # one frame for the three, half a second after the first
        nursery.cancel_scope.cancel()


async def test_a_storm_of_joins_does_not_close_a_watcher_as_slow(system: ActorSystem) -> None:
    presence = PresenceSettings(ttl=60.0, heartbeat=20.0, sweep_interval=1.0, grace=0.0)
    settings = GatewaySettings(send_queue_size=8, presence=presence)
    async with (
        running_gateway(system, settings=settings) as server,
        connected(server, "ada") as ada,
    ):
        names = [f"user{number}" for number in range(40)]
        async with trio.open_nursery() as nursery:
            for name in names:  # 40 users join at once: far more changes than ada's queue holds

                async def join(name: str = name) -> None:
                    async with connected(server, name) as client:
                        await client.expect("presence_state")
                        await trio.sleep_forever()

                nursery.start_soon(join)
            online = {"ada"}
            while online != {"ada", *names}:
                diff = await ada.expect("presence_diff", scope="global")
                online = (online | set(diff["joined"])) - set(diff["left"])
            (session,) = [s for s in server.gateway.sessions if s.user_id == "ada"]
            assert session.close_code is None
            nursery.cancel_scope.cancel()
