"""Two server processes on one private redis-server: rooms and presence cross between them, and
the users of a SIGKILLed process go offline on the other within the TTL, exactly once."""

from __future__ import annotations

from typing import Any

import trio
import trio_websocket
from gateway_helpers import Client
from server_process import SECRET, ServerProcess, server_process

from actors.server.gateway import DemoLogin, TokenVerifier

TTL = 3.0
SWEEP = 0.5
PRESENCE = (
    "--presence-ttl",
    str(TTL),
    "--presence-heartbeat",
    "1",
    "--presence-sweep",
    str(SWEEP),
    "--presence-grace",
    "0.5",
)
SIGNER = DemoLogin(TokenVerifier.from_secret(SECRET.encode()))


async def _client(server: ServerProcess, name: str, nursery: trio.Nursery) -> Client:
    connection = await trio_websocket.connect_websocket(
        nursery, "127.0.0.1", server.port, "/ws", use_ssl=False
    )
    client = Client(connection)
    await client.send(type="hello", token=SIGNER.issue(name)[0])
    assert (await client.receive())["type"] == "welcome"
    return client


def _presence(frames: list[dict[str, Any]], scope: str, user: str) -> list[str]:
    """What ``frames`` said of ``user`` in ``scope``: "joined"/"left" in order."""
    said = []
    for frame in frames:
        if frame["type"] == "presence_diff" and frame["scope"] == scope:
            said += ["joined"] * frame["joined"].count(user) + ["left"] * frame["left"].count(user)
    return said


async def test_rooms_and_presence_cross_processes_and_a_killed_process_leaves_once(
    module_redis_url: str,
) -> None:
    with (
        server_process(module_redis_url, *PRESENCE, "--server-name", "one") as one,
        server_process(module_redis_url, *PRESENCE, "--server-name", "two") as two,
    ):
        async with trio.open_nursery() as nursery:
            ada = await _client(one, "ada", nursery)
            bob = await _client(two, "bob", nursery)
            await bob.expect("presence_state", scope="global")
            for client in (ada, bob):
                await client.send(type="join", room="lobby")
                await client.expect("joined", room="lobby")
            # bob sees ada in the room: in the state if she was first, else by a diff.
            frames = [await bob.receive()]
            while not (
                (frames[-1]["type"] == "presence_state" and "ada" in frames[-1]["users"])
                or _presence(frames, "lobby", "ada")
            ):
                frames.append(await bob.receive())

            await ada.send(type="say", room="lobby", text="hello from one", ref="m")
            message = await bob.expect("message")
            assert (message["user_id"], message["text"]) == ("ada", "hello from one")
            await ada.send(type="typing", room="lobby")
            assert (await bob.expect("typing"))["user_id"] == "ada"
            await bob.send(type="say", room="lobby", text="@ada hi from two")
            assert (await ada.expect("notification"))["title"] == "bob mentioned you in lobby"

            # Diffs may repeat what a state said (ada's join): everything bob was told of ada
            # since he joined counts, and it must end in exactly one leave per scope.
            told = list(frames)
            one.kill()
            # Offline within the TTL plus a sweep, with a margin for a loaded machine.
            with trio.fail_after(TTL + SWEEP + 10):
                while "left" not in _presence(told, "global", "ada") or "left" not in _presence(
                    told, "lobby", "ada"
                ):
                    told.append(await bob.receive())
            # Several sweeps later, still exactly one leave per scope, and no join after it.
            with trio.move_on_after(4 * SWEEP):
                while True:
                    told.append(await bob.receive())
            for scope in ("global", "lobby"):
                said = _presence(told, scope, "ada")
                assert said.count("left") == 1, (scope, said)
                assert said[-1] == "left", (scope, said)
            await bob.send(type="ping", ref="alive")
            assert (await bob.expect("pong"))["ref"] == "alive"
            for client in (ada, bob):
                await client.aclose()
            nursery.cancel_scope.cancel()
    assert "Traceback" not in "".join(two.output), "".join(two.output)


async def test_the_server_stops_in_order_on_sigterm(module_redis_url: str) -> None:
    with server_process(module_redis_url, *PRESENCE) as server:
        async with trio.open_nursery() as nursery:
            ada = await _client(server, "ada", nursery)
            server.process.terminate()
            assert await ada.closed() == 1001
            await ada.aclose()
            nursery.cancel_scope.cancel()
        assert await trio.to_thread.run_sync(server.process.wait) == 0
    assert "Traceback" not in "".join(server.output), "".join(server.output)
