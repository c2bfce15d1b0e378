"""A room's presence after its hub stopped: whoever joins next never sees the members who left.

The memory tests run on virtual time (``autojump_clock``) over in-memory WebSockets, and two
gateways on one ``memory://NAME`` stand for two processes sharing Redis; the Redis test runs
two gateways on a private redis-server, on real sockets and real time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
import pytest
import trio
import trio.testing
import trio_websocket
from gateway_helpers import TOKENS, Client, connected, connected_in_memory, running_gateway

from actors import ActorSystem
from actors.presence import PresenceDiff, PresenceLeave, PresenceSettings, presence_channel
from actors.pubsub import open_pubsub
from actors.server.gateway import Gateway, GatewaySettings, open_gateway

# Sweeps every 2.5 s: the next hub's tracker, started a second after she went, sweeps 3.5 and 6 s
# after it, so a leave 5 s after it comes from the sweep that her stopped hub handed over.
PRESENCE = PresenceSettings(ttl=60.0, heartbeat=20.0, sweep_interval=2.5, grace=5.0)
SETTINGS = GatewaySettings(presence=PRESENCE, stats_interval=3600)


@asynccontextmanager
async def gateway_on(system: ActorSystem, url: str) -> AsyncIterator[Gateway]:
    async with (
        open_pubsub(system, url) as pubsub,
        open_gateway(system, pubsub, tokens=TOKENS, settings=SETTINGS) as gateway,
    ):
        yield gateway


async def _go(client: Client, how: str) -> None:
    if how == "signs out":  # the page closes its socket with 1000
        await client.aclose()
    elif how == "closes the tab":  # no close frame: the connection just ends
        await client.drop()
    else:
        await client.send(type="leave", room="r1")
        await client.expect("left", room="r1")
        await client.aclose()


async def _room_frames_naming(client: Client, user: str, seconds: float) -> list[str]:
    """The presence frames of room ``r1`` naming ``user`` that ``client`` gets in ``seconds``."""
    naming = []
    with trio.move_on_after(seconds):
        while True:
            frame = orjson.loads(await client.connection.get_message())
            if frame["type"] == "presence_diff" and frame["scope"] == "r1":
                naming += [f"joined {user}"] * (user in frame["joined"])
                naming += [f"left {user}"] * (user in frame["left"])
            if frame["type"] == "presence_state" and frame["scope"] == "r1":
                naming += [f"listed {user}"] * (user in frame["users"])
    return naming


@pytest.mark.parametrize("how", ["signs out", "closes the tab", "leaves the room"])
async def test_the_next_joiner_of_a_room_never_sees_a_member_who_went(
    system: ActorSystem, autojump_clock: trio.testing.MockClock, how: str
) -> None:
    leaves: list[tuple[float, PresenceLeave]] = []

    async def record(diff: PresenceDiff) -> None:
        if isinstance(diff, PresenceLeave):
            leaves.append((trio.current_time(), diff))

    async with gateway_on(system, "memory://") as gateway:
        await gateway.pubsub.subscribe(
            presence_channel("r1"), record, message_type=PresenceDiff, sharded=True
        )
        async with connected_in_memory(gateway, "ada") as ada:
            await ada.send(type="join", room="r1")
            await ada.expect("joined", room="r1")
            hub = gateway.hubs.get("r1")
            assert hub is not None
            await trio.sleep(1)
            gone_at = trio.current_time()
            await _go(ada, how)
            await hub.wait_stopped()  # her session was the room's last here
        await trio.sleep(1)
        async with connected_in_memory(gateway, "bob") as bob:
            await bob.send(type="join", room="r1")
            await bob.expect("joined", room="r1")
            assert (await bob.expect("presence_state", scope="r1"))["users"] == ["bob"]
            assert await _room_frames_naming(bob, "ada", 3 * PRESENCE.grace) == []
        # Her leave went out once: at once if she asked for it, else when her window ended,
        # although the hub whose tracker had deferred it had stopped by then.
        due = gone_at if how == "leaves the room" else gone_at + PRESENCE.grace
        assert [(at, diff.user_id, diff.last_connection) for at, diff in leaves] == [
            (due, "ada", True)
        ]


async def test_a_tab_back_within_the_window_is_no_flap_for_another_process(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    """Her hub stops with her closed tab; her new tab starts a new one, which lists her."""
    url = "memory://room-presence-two"
    async with (
        gateway_on(system, url) as one,
        gateway_on(system, url) as two,
        connected_in_memory(two, "carol") as carol,
    ):
        await carol.send(type="join", room="r1")
        await carol.expect("joined", room="r1")
        async with connected_in_memory(one, "ada") as ada:
            await ada.send(type="join", room="r1")
            await ada.expect("joined", room="r1")
            await carol.expect_presence("r1", joined="ada")
            hub = one.hubs.get("r1")
            assert hub is not None
            await ada.drop()
            await hub.wait_stopped()
        await trio.sleep(1)
        async with connected_in_memory(one, "bob") as bob:
            await bob.send(type="join", room="r1")
            await bob.expect("joined", room="r1")
            assert (await bob.expect("presence_state", scope="r1"))["users"] == ["bob", "carol"]
            async with connected_in_memory(one, "ada") as ada_again:
                await ada_again.send(type="join", room="r1")
                await ada_again.expect("joined", room="r1")
                await bob.expect_presence("r1", joined="ada")
                assert await _room_frames_naming(carol, "ada", 3 * PRESENCE.grace) == []


async def test_a_joiner_on_another_server_never_sees_a_member_who_went_on_redis(
    system: ActorSystem, module_redis_url: str
) -> None:
    """Real sockets and time: the leave comes from the stopped hub, since nobody else sweeps."""
    presence = PresenceSettings(ttl=60.0, heartbeat=20.0, sweep_interval=3600.0, grace=0.5)
    settings = GatewaySettings(presence=presence, stats_interval=3600)
    leaves: list[tuple[float, PresenceLeave]] = []
    left = trio.Event()

    async def record(diff: PresenceDiff) -> None:
        if isinstance(diff, PresenceLeave):
            leaves.append((trio.current_time(), diff))
            left.set()

    async with (
        running_gateway(system, module_redis_url, settings) as one,
        running_gateway(system, module_redis_url, settings) as two,
    ):
        await one.gateway.pubsub.subscribe(
            presence_channel("r9"), record, message_type=PresenceDiff, sharded=True
        )
        async with connected(one, "ada") as ada:
            await ada.send(type="join", room="r9")
            await ada.expect("joined", room="r9")
            hub = one.gateway.hubs.get("r9")
            assert hub is not None
            gone_at = trio.current_time()
        with trio.fail_after(10):
            await hub.wait_stopped()
        async with connected(two, "bob") as bob:
            await bob.send(type="join", room="r9")
            await bob.expect("joined", room="r9")
            assert (await bob.expect("presence_state", scope="r9"))["users"] == ["bob"]
            with trio.fail_after(10):
                await left.wait()
            await trio.sleep(presence.grace)  # and no second one
            ((at, leave),) = leaves
            assert (leave.user_id, leave.last_connection, leave.expired) == ("ada", True, False)
            assert at - gone_at >= presence.grace


class _ClosedWithFramesInFlight:
    """A connection whose client sent ``frames`` and then closed before the server read them:
    every send meets the close, while the frames are still there to be read. An ``Event``
    among the frames holds the reading back until it is set."""

    def __init__(self, *frames: dict[str, str] | trio.Event) -> None:
        self.frames = list(frames)
        self.closed = trio_websocket.CloseReason(1000, "signed out")

    async def get_message(self) -> str:
        await trio.lowlevel.checkpoint()
        while self.frames:
            frame = self.frames.pop(0)
            if isinstance(frame, trio.Event):
                await frame.wait()
                continue
            return orjson.dumps(frame).decode()
        raise trio_websocket.ConnectionClosed(self.closed)

    async def send_message(self, message: str) -> None:
        await trio.lowlevel.checkpoint()
        raise trio_websocket.ConnectionClosed(self.closed)

    async def ping(self) -> None:
        await self.send_message("")

    async def aclose(self, code: int = 1000, reason: str | None = None) -> None:
        await trio.lowlevel.checkpoint()


async def test_frames_sent_before_a_close_are_handled_although_sends_fail(
    system: ActorSystem, autojump_clock: trio.testing.MockClock
) -> None:
    """A sign-out sends a leave per room, then closes. The server meets the close on its first
    send, but still handles every frame the client sent before it: carol, who stays in the
    room (so its hub runs on), sees ada join and then leave at once, not after the grace
    window."""
    async with (
        gateway_on(system, "memory://") as gateway,
        connected_in_memory(gateway, "carol") as carol,
    ):
        await carol.send(type="join", room="r2")
        await carol.expect("joined", room="r2")
        joined = trio.Event()
        connection = _ClosedWithFramesInFlight(
            {"type": "join", "room": "r2"}, joined, {"type": "leave", "room": "r2"}
        )
        codes: list[int] = []

        async def serve() -> None:
            codes.append(await gateway.serve_connection(connection, "ada"))  # type: ignore[arg-type]

        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve)
            await carol.expect_presence("r2", joined="ada")
            left_at = trio.current_time()
            joined.set()
            await carol.expect_presence("r2", left="ada")
            assert trio.current_time() - left_at < PRESENCE.grace
        assert codes == [1000]
