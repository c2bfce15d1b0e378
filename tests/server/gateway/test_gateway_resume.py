"""A client that reconnects gets exactly what it missed (issue 12, requirement 4).

Every room message and every notification carries its position in its channel's history; a
client sends the last one back when it joins again (``join`` with ``epoch`` and ``offset``) or
says hello again (``notifications_epoch``, ``notifications_offset``), and gets what came
meanwhile, once and in order, then the live ones. Real sockets on ``memory://``; the same path
runs on Redis in the browser test and the cluster processes test.
"""

from __future__ import annotations

from typing import Any

import pytest
from gateway_helpers import Client, connected, running_gateway

from actors import ActorSystem
from actors.pubsub import Position
from actors.server.gateway._room_feeds import JoinBacklogFullError, RoomFeeds


async def say(client: Client, room: str, text: str) -> None:
    await client.send(type="say", room=room, text=text, ref=text)
    await client.expect("ack", ref=text)


async def test_a_client_that_reconnects_gets_exactly_what_it_missed(system: ActorSystem) -> None:
    async with running_gateway(system) as server, connected(server, "ada") as ada:
        await ada.send(type="join", room="r1")
        await ada.expect("joined", room="r1")
        async with connected(server, "bob") as bob:
            await bob.send(type="join", room="r1")
            await bob.expect("joined", room="r1")
            for text in ("m1", "m2"):
                await say(ada, "r1", text)
            seen = [await bob.expect("message", room="r1") for _ in range(2)]
        assert [(m["text"], m["offset"]) for m in seen] == [("m1", 1), ("m2", 2)]
        for text in ("m3", "m4"):
            await say(ada, "r1", text)  # while bob is away
        last = seen[-1]
        async with connected(server, "bob") as bob:
            await bob.send(type="join", room="r1", epoch=last["epoch"], offset=last["offset"])
            joined = await bob.expect("joined", room="r1")
            await say(ada, "r1", "m5")
            live = await bob.expect("message", room="r1")
            await bob.send(type="ping", ref="end")
            rest = await bob.expect_any(("message", "pong"))
    assert joined["resumed"] is True
    assert [(m["text"], m["offset"]) for m in joined["history"]] == [("m3", 3), ("m4", 4)]
    assert (joined["epoch"], joined["offset"]) == (last["epoch"], 4)
    assert (live["text"], live["offset"]) == ("m5", 5)
    assert rest["type"] == "pong"  # nothing twice


@pytest.mark.parametrize(
    "position",
    [{"epoch": "another", "offset": 1}, {"epoch": None, "offset": None}],
    ids=["another epoch", "none"],
)
async def test_without_a_usable_position_the_client_gets_the_newest_to_replace(
    system: ActorSystem, position: dict[str, Any]
) -> None:
    async with running_gateway(system) as server, connected(server, "ada") as ada:
        await ada.send(type="join", room="r2")
        await ada.expect("joined", room="r2")
        for text in ("a", "b", "c"):
            await say(ada, "r2", text)
        async with connected(server, "bob") as bob:
            fields = {key: value for key, value in position.items() if value is not None}
            await bob.send(type="join", room="r2", **fields)
            joined = await bob.expect("joined", room="r2")
    assert joined["resumed"] is False
    assert [(m["text"], m["offset"]) for m in joined["history"]] == [("a", 1), ("b", 2), ("c", 3)]
    assert joined["offset"] == 3


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"epoch": "abc"}, "as an epoch and an offset"),
        ({"offset": 3}, "as an epoch and an offset"),
        ({"epoch": "a b", "offset": 3}, "letters or digits"),
        ({"epoch": "x" * 65, "offset": 3}, "letters or digits"),
        ({"epoch": "abc", "offset": -1}, "a whole number from 0"),
        ({"epoch": "abc", "offset": "3"}, "must be a integer"),
    ],
)
async def test_a_bad_position_is_refused(
    system: ActorSystem, fields: dict[str, Any], reason: str
) -> None:
    async with running_gateway(system) as server, connected(server, "ada") as ada:
        await ada.send(type="join", room="r3", ref="j", **fields)
        error = await ada.expect("error", ref="j")
    assert error["code"] == "bad_frame"
    assert reason in error["message"]


async def test_notifications_sent_while_away_come_when_the_client_says_hello_again(
    system: ActorSystem,
) -> None:
    async with running_gateway(system) as server:
        notifier = server.gateway.notifier
        async with connected(server, "bob") as bob:
            await notifier.notify("bob", kind="info", title="first")
            first = await bob.expect("notification")
        await notifier.notify("bob", kind="info", title="second")  # while bob is away
        await notifier.notify("bob", kind="info", title="third")
        since = {"notifications_epoch": first["epoch"], "notifications_offset": first["offset"]}
        async with connected(server, "bob", hello_fields=since) as bob:
            missed = [await bob.expect("notification") for _ in range(2)]
            await notifier.notify("bob", kind="info", title="fourth")
            live = await bob.expect("notification")
    assert first["offset"] == 1
    assert [(n["title"], n["offset"]) for n in missed] == [("second", 2), ("third", 3)]
    assert (live["title"], live["offset"]) == ("fourth", 4)


def test_live_frames_wait_for_the_join_and_each_goes_out_once() -> None:
    feeds = RoomFeeds[str](backlog=3)
    at = [Position("e", offset) for offset in range(6)]
    assert feeds.live("r", at[1], "m1") == ["m1"]  # not joining: through, and remembered
    assert feeds.live("r", at[1], "m1 again") == []
    feeds.start_join("r")
    assert feeds.live("r", at[3], "m3") == []
    assert feeds.live("r", at[4], "m4") == []
    # The history read during the join held up to 3: only m4 follows ``joined``.
    assert feeds.joined("r", at[3]) == ["m4"]
    assert feeds.position("r") == at[4]
    assert feeds.live("r", Position("new", 1), "n1") == ["n1"]  # a new epoch starts over
    assert feeds.live("r", None, "unplaced") == ["unplaced"]
    feeds.start_join("r")
    for offset in (2, 3, 4):
        feeds.live("r", Position("new", offset), f"n{offset}")
    with pytest.raises(JoinBacklogFullError):
        feeds.live("r", Position("new", 5), "n5")
    feeds.forget("r")
    assert feeds.position("r") is None
    assert feeds.live("r", at[2], "m2") == ["m2"]
