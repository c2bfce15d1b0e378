"""Rooms, typing, presence per room, notifications and live updates through the gateway."""

from __future__ import annotations

import attrs
import pytest
import trio
from gateway_helpers import connected, post_json, running_gateway

from actors import ActorSystem, message_type
from actors.messages import MAX_IDENTIFIER_LENGTH
from actors.server.gateway._session import MENTION_BODY_LENGTH
from actors.server.notifications import LiveUpdate, publish_update
from actors.testing import RedisServer


async def test_two_users_chat_in_a_room(system: ActorSystem) -> None:
    async with (
        running_gateway(system) as server,
        connected(server, "ada") as ada,
        connected(server, "bob") as bob,
    ):
        await ada.send(type="join", room="lobby")
        joined = await ada.expect("joined", room="lobby")
        assert joined["history"] == []
        assert (await ada.expect("presence_state", scope="lobby"))["users"] == ["ada"]
        await bob.send(type="join", room="lobby")
        await bob.expect("joined", room="lobby")
        assert (await bob.expect("presence_state", scope="lobby"))["users"] == ["ada", "bob"]
        await ada.expect_presence("lobby", joined="bob")

        await ada.send(type="say", room="lobby", text="hello bob", ref="m1")
        first, second = (
            await ada.expect_any(("ack", "message")),
            await ada.expect_any(("ack", "message")),
        )
        ack = first if first["type"] == "ack" else second
        assert ack["ref"] == "m1"
        own = second if first is ack else first
        for message in (own, await bob.expect("message")):
            assert message == {
                "type": "message",
                "room": "lobby",
                "user_id": "ada",
                "text": "hello bob",
                "sent_at": ack["sent_at"],
                "epoch": joined["epoch"] or message["epoch"],
                "offset": 1,
            }

        await bob.send(type="typing", room="lobby")
        assert await ada.expect("typing") == {"type": "typing", "room": "lobby", "user_id": "bob"}

        await bob.send(type="history", room="lobby", limit=5)
        history = await bob.expect("history", room="lobby")
        assert [m["text"] for m in history["messages"]] == ["hello bob"]

        await bob.send(type="leave", room="lobby")
        await bob.expect("left", room="lobby")
        await ada.expect_presence("lobby", left="bob")


async def test_a_joiner_gets_the_history(system: ActorSystem) -> None:
    async with running_gateway(system) as server:
        async with connected(server, "ada") as ada:
            await ada.send(type="join", room="r1")
            await ada.expect("joined")
            for number in range(3):
                await ada.send(type="say", room="r1", text=f"m{number}", ref=str(number))
                await ada.expect("ack")
        async with connected(server, "bob") as bob:
            await bob.send(type="join", room="r1")
            joined = await bob.expect("joined", room="r1")
            assert [m["text"] for m in joined["history"]] == ["m0", "m1", "m2"]
            assert all(m["user_id"] == "ada" for m in joined["history"])


async def test_one_hub_per_room_and_it_stops_with_its_last_session(system: ActorSystem) -> None:
    async with (
        running_gateway(system) as server,
        connected(server, "ada") as ada,
        connected(server, "bob") as bob,
    ):
        for client in (ada, bob):
            await client.send(type="join", room="r2")
            await client.expect("joined")
        assert server.gateway.hubs.keys() == {"r2"}
        hub = server.gateway.hubs.get("r2")
        assert hub is not None
        await ada.send(type="leave", room="r2")
        await ada.expect("left")
        assert hub.alive
        await bob.send(type="leave", room="r2")
        await bob.expect("left")
        await hub.wait_stopped()
        assert server.gateway.hubs.keys() == set()


async def test_mentions_notify_the_user_once(system: ActorSystem) -> None:
    async with (
        running_gateway(system) as server,
        connected(server, "ada") as ada,
        connected(server, "bob") as bob,
    ):
        await ada.send(type="join", room="lobby")
        await ada.expect("joined")
        await ada.send(type="say", room="lobby", text="@bob and @bob again, @ada, @nobody.")
        notification = await bob.expect("notification")
        assert notification["user_id"] == "bob"
        assert notification["kind"] == "mention"
        assert notification["title"] == "ada mentioned you in lobby"
        assert notification["body"] == "@bob and @bob again, @ada, @nobody."
        await bob.send(type="ping", ref="after")
        assert (await bob.expect_any(("notification", "pong")))["type"] == "pong"


async def test_broadcast_notifications_reach_every_session(system: ActorSystem) -> None:
    async with (
        running_gateway(system) as server,
        connected(server, "ada") as ada,
        connected(server, "bob") as bob,
    ):
        await server.gateway.notifier.broadcast(kind="announcement", title="Maintenance at 6")
        for client in (ada, bob):
            notification = await client.expect("notification")
            assert notification["user_id"] is None
            assert notification["title"] == "Maintenance at 6"


@message_type("test.gateway.score")
@attrs.frozen(kw_only=True)
class GatewayTestScore(LiveUpdate):
    home: int
    away: int


async def test_live_updates_are_forwarded_with_their_type(system: ActorSystem) -> None:
    async with running_gateway(system) as server, connected(server, "ada") as ada:
        await publish_update(server.gateway.pubsub, GatewayTestScore(home=2, away=1))
        update = await ada.expect("update")
        assert update["event"] == {"type": "test.gateway.score", "home": 2, "away": 1}


@pytest.mark.parametrize("name", ["*", "a b", "", "x" * 65, "chat:all"])
async def test_the_token_endpoint_refuses_bad_names(system: ActorSystem, name: str) -> None:
    async with running_gateway(system) as server:
        status, document = await post_json(server.port, "/token", {"name": name})
        assert status == 400
        assert "invalid user id" in document["error"]


async def test_leaving_a_room_is_seen_at_once_despite_the_grace_window(
    system: ActorSystem,
) -> None:
    from actors.presence import PresenceSettings
    from actors.server.gateway import GatewaySettings

    presence = PresenceSettings(ttl=60.0, heartbeat=20.0, sweep_interval=0.2, grace=3600.0)
    async with (
        running_gateway(system, settings=GatewaySettings(presence=presence)) as server,
        connected(server, "ada") as ada,
        connected(server, "bob") as bob,
    ):
        for client in (ada, bob):
            await client.send(type="join", room="r3")
            await client.expect("joined")
        await bob.send(type="leave", room="r3")
        await ada.expect_presence("r3", left="bob")


async def test_a_resync_sends_the_whole_state_again(system: ActorSystem) -> None:
    async with running_gateway(system) as server, connected(server, "ada") as ada:
        await ada.send(type="join", room="r4")
        await ada.expect("joined")
        await ada.expect("presence_state", scope="r4")
        # Changes the trackers missed (made straight in the store, as during a Redis gap).
        presence = server.gateway.presence
        await presence.store.join("global", "ghost", "c1", {}, 60.0)
        await presence.store.join("r4", "ghost", "c1", {}, 60.0)
        await presence.resync()
        state = await ada.expect("presence_state", scope="global")
        assert state["users"] == ["ada", "ghost"]
        await server.gateway.resync_room_presence("r4")
        state = await ada.expect("presence_state", scope="r4")
        assert state["users"] == ["ada", "ghost"]


async def test_a_user_with_two_tabs_stays_online_until_the_last_closes(
    system: ActorSystem,
) -> None:
    async with (
        running_gateway(system) as server,
        connected(server, "bob") as bob,
    ):
        async with connected(server, "ada", headers=[(b"User-Agent", b"phone")]):
            async with connected(server, "ada", headers=[(b"User-Agent", b"laptop")]):
                await bob.expect_presence("global", joined="ada")
                connections = await server.gateway.presence.connections("ada")
                assert sorted(m["agent"] for m in connections.values()) == ["laptop", "phone"]
                assert all(
                    m["server"] == server.gateway.settings.server_name for m in connections.values()
                )
                sessions = server.gateway.sessions
                (laptop,) = [s for s in sessions if s.metadata["agent"] == "laptop"]
            # One tab closed: once the server has ended its session, ada is still online...
            with trio.fail_after(10):
                await laptop.stopped.wait()
            assert await server.gateway.presence.online_users() == {"ada", "bob"}
            # ... and bob is told nothing of her for several presence intervals.
            with trio.move_on_after(5 * server.gateway.settings.presence_interval):
                while True:
                    frame = await bob.receive()
                    assert frame["type"] != "presence_diff" or "ada" not in frame["left"]
        await bob.expect_presence("global", left="ada")


async def test_sessions_survive_a_redis_restart_and_get_the_state_again(
    system: ActorSystem, redis_server: RedisServer
) -> None:
    async with (
        running_gateway(system, url=redis_server.url) as server,
        connected(server, "ada") as ada,
        connected(server, "bob") as bob,
    ):
        for client in (ada, bob):
            await client.send(type="join", room="r5")
            await client.expect("joined", room="r5")
        await ada.expect_presence("r5", joined="bob")  # what ada was told before the restart
        await trio.to_thread.run_sync(redis_server.restart)
        await bob.send(type="say", room="r5", text="still here?", ref="after")
        reply = await bob.expect_any(("ack", "error"))
        while reply["type"] == "error":  # "unavailable" until the command connection is back
            assert reply["code"] == "unavailable", reply
            await bob.send(type="say", room="r5", text="still here?", ref="after")
            reply = await bob.expect_any(("ack", "error"))
        # Nobody went offline on the way: the trackers put their connections back into the
        # restarted (empty) server before loading its snapshot.
        told = [await ada.expect_any(("message", "presence_diff", "presence_state"))]
        while told[-1]["type"] != "message":
            told.append(await ada.expect_any(("message", "presence_diff", "presence_state")))
        assert (told[-1]["user_id"], told[-1]["text"]) == ("bob", "still here?")
        for frame in told[:-1]:
            assert frame["type"] != "presence_diff" or not frame["left"], frame
            assert frame["type"] != "presence_state" or len(frame["users"]) == 2, frame
        for session in server.gateway.sessions:
            attached = await server.gateway.attach("r5", session)  # already in: only answers
            assert attached.online == {"ada", "bob"}
        assert await server.gateway.presence.online_users() == {"ada", "bob"}


async def test_mentions_follow_the_user_id_rule(system: ActorSystem) -> None:
    """A 64-character user id is mentioned like any other; a longer name is no user's."""
    longest = "b" * MAX_IDENTIFIER_LENGTH
    async with (
        running_gateway(system) as server,
        connected(server, "ada") as ada,
        connected(server, longest) as bob,
    ):
        await ada.send(type="join", room="lobby")
        await ada.expect("joined")
        text = f"@{longest}b is no one, @{longest} is bob: " + "x" * 300
        await ada.send(type="say", room="lobby", text=text)
        notification = await bob.expect("notification")
        assert notification["user_id"] == longest
        assert notification["body"] == text[:MENTION_BODY_LENGTH]
        await bob.send(type="ping", ref="after")
        assert (await bob.expect_any(("notification", "pong")))["type"] == "pong"
