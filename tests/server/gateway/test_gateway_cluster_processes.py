"""Two server processes on one real Redis Cluster (issue 11, requirements 5 and 6).

``serve --redis-url redis+cluster://...``: rooms whose slots are on different masters, and the
global presence scope, are shared by both processes; each room's messages, typing notices and
presence diffs travel on shard channels of the master that owns the room's slot.
"""

from __future__ import annotations

import json
import urllib.request

import trio
from gateway_helpers import Client
from server_process import ServerProcess, server_process
from test_gateway_processes import PRESENCE, _client, _presence

from actors.pubsub._history import history_keys
from actors.redis import key_slot
from actors.server.chat import room_channel
from actors.server.gateway import typing_channel
from actors.testing import RedisCluster, RedisClusterNode

TIMEOUT = 30.0


def _cluster_url(cluster: RedisCluster) -> str:
    return "redis+cluster://" + ",".join(f"{node.host}:{node.port}" for node in cluster.nodes[:2])


def _rooms_by_master(cluster: RedisCluster) -> dict[RedisClusterNode, str]:
    masters = cluster.masters()
    ranges = {master: master.cluster_nodes()[master.node_id].slots for master in masters}
    found: dict[RedisClusterNode, str] = {}
    for index in range(1000):
        room = f"room{index}"
        for master, owned in ranges.items():
            slot = key_slot(room)
            if master not in found and any(first <= slot <= last for first, last in owned):
                found[master] = room
    assert len(found) == len(masters)
    return found


def _health(server: ServerProcess) -> dict[str, object]:
    with urllib.request.urlopen(f"{server.url}/health", timeout=10) as response:
        body: dict[str, object] = json.loads(response.read())
        return body


def _metrics(server: ServerProcess) -> str:
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
        return str(response.read().decode())


async def _sees(client: Client, scope: str, user: str) -> None:
    """Wait until ``client`` is told that ``user`` is in ``scope`` (a state or a diff)."""
    frames = [await client.receive()]
    while not (
        (
            frames[-1]["type"] == "presence_state"
            and frames[-1]["scope"] == scope
            and user in frames[-1]["users"]
        )
        or "joined" in _presence(frames, scope, user)
    ):
        frames.append(await client.receive())


async def test_two_processes_share_rooms_of_every_master_and_presence_on_a_cluster(
    redis_cluster: RedisCluster,
) -> None:
    url = _cluster_url(redis_cluster)
    rooms = _rooms_by_master(redis_cluster)
    with (
        server_process(url, *PRESENCE, "--server-name", "one") as one,
        server_process(url, *PRESENCE, "--server-name", "two") as two,
    ):
        for server in (one, two):
            health = await trio.to_thread.run_sync(_health, server)
            assert health["status"] == "up", health
        async with trio.open_nursery() as nursery:
            with trio.fail_after(TIMEOUT):
                ada = await _client(one, "ada", nursery)
                bob = await _client(two, "bob", nursery)
                await _sees(bob, "global", "ada")
                await _sees(ada, "global", "bob")
                for room in rooms.values():
                    for client in (ada, bob):
                        await client.send(type="join", room=room)
                        await client.expect("joined", room=room)
                    await _sees(bob, room, "ada")
                    await _sees(ada, room, "bob")
                for master, room in rooms.items():
                    await ada.send(type="say", room=room, text=f"hello {room}", ref=room)
                    message = await bob.expect("message")
                    assert (message["room"], message["user_id"], message["text"]) == (
                        room,
                        "ada",
                        f"hello {room}",
                    )
                    await bob.send(type="typing", room=room)
                    typing = await ada.expect("typing")
                    assert (typing["room"], typing["user_id"]) == (room, "bob")
                    # The room's history is in its channel's slot, its typing channel in its own.
                    keys = history_keys(room_channel(room))
                    owner = redis_cluster.master_of_slot(key_slot(keys.stream))
                    assert owner.command("XLEN", keys.stream) == 1
                    channel = typing_channel(room)
                    assert master.command("PUBSUB", "SHARDNUMSUB", channel) == [
                        channel.encode(),
                        2,
                    ]
            metrics = await trio.to_thread.run_sync(_metrics, one)
            assert 'actors_pubsub_messages_published_total{channel_group="chat:*"' in metrics
            for client in (ada, bob):
                await client.aclose()
            nursery.cancel_scope.cancel()
    for server in (one, two):
        assert "Traceback" not in "".join(server.output), "".join(server.output)
