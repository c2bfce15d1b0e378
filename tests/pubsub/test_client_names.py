"""Every Redis connection is named in ``CLIENT LIST``: ``actors:<host>:<pid>`` unless the URL
says otherwise, on its first connection, after a reconnect, and on every node of a cluster."""

from __future__ import annotations

import trio

from actors import ActorSystem
from actors.pubsub import ConnectionOptions, PubSubSettings, open_pubsub
from actors.redis import default_client_name, open_redis_connection
from actors.supervision import Backoff
from actors.testing import RedisCluster, RedisServer

TIMEOUT = 20.0  # seconds for a connection or a reconnect: far above what either takes
FAST = Backoff(initial=0.05, multiplier=2.0, maximum=0.5, jitter=0.0, reset_after=0.0)
SETTINGS = PubSubSettings(connection=ConnectionOptions(reconnect=FAST))


async def client_names(url: str) -> list[str]:
    """The names in the server's ``CLIENT LIST`` of normal clients (not a replica's link), but
    that of the connection asking."""
    async with open_redis_connection(f"{url}?client_name=observer") as redis:
        listing = (await redis.execute("CLIENT", "LIST")).decode()
    clients = [
        dict(field.split("=", 1) for field in line.split(" ") if "=" in field)
        for line in listing.splitlines()
    ]
    # flags S: a replica's replication link, which no client of ours names.
    return [
        client["name"]
        for client in clients
        if "S" not in client["flags"] and client["name"] != "observer"
    ]


async def test_a_connection_is_named_by_default_and_again_after_a_reconnect(
    actor_system: ActorSystem, redis_server: RedisServer
) -> None:
    expected = default_client_name()
    assert expected.startswith("actors:")
    with trio.fail_after(TIMEOUT):
        async with open_pubsub(actor_system, redis_server.url, settings=SETTINGS) as pubsub:
            await pubsub.broker.wait_connected()
            assert await client_names(redis_server.url) == [expected]
            redis_server.kill()
            await redis_server.restart_async()
            # A fresh server process: only a connection made since can be listed (nameless for
            # the moment between its accept and its HELLO).
            while (names := await client_names(redis_server.url)) != [expected]:
                assert set(names) <= {"", expected}, names
                await trio.sleep(0.05)
            await pubsub.broker.wait_connected()
            assert await client_names(redis_server.url) == [expected]


async def test_the_url_names_the_connection_instead(
    actor_system: ActorSystem, redis_server: RedisServer
) -> None:
    url = f"{redis_server.url}?client_name=edge-7"
    with trio.fail_after(TIMEOUT):
        async with open_pubsub(actor_system, url, settings=SETTINGS) as pubsub:
            await pubsub.broker.wait_connected()
            assert await client_names(redis_server.url) == ["edge-7"]


async def test_every_cluster_node_connection_is_named(
    actor_system: ActorSystem, redis_cluster: RedisCluster
) -> None:
    seeds = ",".join(f"{node.host}:{node.port}" for node in redis_cluster.nodes[:2])
    url = f"redis+cluster://{seeds}?client_name=edge-cluster"
    with trio.fail_after(TIMEOUT):
        async with open_pubsub(actor_system, url, settings=SETTINGS) as pubsub:
            await pubsub.broker.wait_connected()
            for master in redis_cluster.masters():
                names = await client_names(f"redis://{master.host}:{master.port}")
                assert names, f"no connection to {master}"
                assert set(names) == {"edge-cluster"}, (master, names)
