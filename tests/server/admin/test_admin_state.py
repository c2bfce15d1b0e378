"""The observer's document, built in process: the tree, subscriptions, connections, gateway."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import trio
import trio.testing
from gateway_helpers import connected, running_gateway

from actors import ActorContext, ActorSystem, ChildSpec, Strategy, SupervisorSpec
from actors.pubsub import PubSubSettings, open_pubsub
from actors.server.admin import Limits, observer_state
from actors.supervision import NO_BACKOFF, start_supervisor
from actors.testing import RedisCluster, RedisServer, wait_until


class Boom(Exception):
    """What the crashing child raises."""


async def crash_on_message(context: ActorContext) -> None:
    """A worker that crashes on its first message."""
    await context.receive()
    raise Boom("told to crash")


async def idle(context: ActorContext, *args: object) -> None:
    await trio.sleep_forever()


def walk(nodes: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for node in nodes:
        yield node
        yield from walk(node["children"])


def named(document: dict[str, Any], name: str) -> dict[str, Any]:
    """The tree node of the actor registered as ``name``, or of the child with that id."""
    found = [n for n in walk(document["tree"]) if name in (n["name"], n["child_id"])]
    assert len(found) == 1, [n["name"] for n in walk(document["tree"])]
    return found[0]


def state(system: ActorSystem, *args: Any, **options: Any) -> dict[str, Any]:
    """The document as the page gets it: through JSON."""
    document = observer_state(system, *args, server_name="here", **options)
    parsed = orjson.loads(orjson.dumps(document))
    assert isinstance(parsed, dict)
    return parsed


async def test_a_crashed_child_shows_its_restart_and_last_exit(system: ActorSystem) -> None:
    async with open_pubsub(system) as pubsub:
        spec = SupervisorSpec(
            children=[
                ChildSpec(id="steady", start=idle),
                ChildSpec(id="crashy", start=crash_on_message, backoff=NO_BACKOFF),
            ]
        )
        supervisor = await start_supervisor(system, spec, name="workers")
        before = named(state(system, pubsub, None), "workers")
        assert before["supervisor"]["strategy"] == "one_for_one"
        assert before["supervisor"]["restarts"] == 0
        assert [child["child_id"] for child in before["children"]] == ["steady", "crashy"]
        assert named(state(system, pubsub, None), "crashy")["last_exit"] is None

        supervisor.child("crashy").tell_nowait("crash")
        await trio.testing.wait_all_tasks_blocked()
        after = state(system, pubsub, None)
        crashy = named(after, "crashy")
        assert crashy["restarts"] == 1
        assert crashy["state"] == "running"
        assert crashy["status"] == "running"
        assert crashy["last_exit"] == "crashed: Boom('told to crash')"
        assert named(after, "steady")["restarts"] == 0
        assert named(after, "workers")["supervisor"]["restarts"] == 1
        assert after["server"] == "here"
        assert after["gateway"] is None
        [memory] = after["connections"]
        assert memory["label"] == "memory"
        assert memory["connected"] is True


async def test_every_list_is_cut_and_says_how_much_it_left_out(system: ActorSystem) -> None:
    async with open_pubsub(system) as pubsub:
        template = SupervisorSpec(
            strategy=Strategy.SIMPLE_ONE_FOR_ONE, children=[ChildSpec(id="w", start=idle)]
        )
        many = await start_supervisor(system, template, name="many")
        for _ in range(7):
            await many.spawn()
        nested = SupervisorSpec(
            children=[
                ChildSpec(
                    id="middle",
                    start=SupervisorSpec(children=[ChildSpec(id="leaf", start=idle)]),
                )
            ]
        )
        await start_supervisor(system, nested, name="deep")
        for name in ("a", "b", "c"):
            await pubsub.subscribe(f"channel-{name}", _ignore, message_type=str)

        limits = Limits(children=3, depth=1, subscriptions=2)
        document = state(system, pubsub, None, limits=limits)
        node = named(document, "many")
        assert len(node["children"]) == 3
        assert node["more"] == 4
        middle = named(document, "middle")
        assert middle["children"] == []  # below the depth limit: counted, not shown
        assert middle["more"] == 1
        assert document["subscriptions"]["count"] == 3
        assert [s["name"] for s in document["subscriptions"]["items"]] == [
            "channel-a",
            "channel-b",
        ]
        assert document["subscriptions"]["more"] == 1
        [memory] = document["connections"]
        assert len(memory["channels"]) == 2
        assert memory["channels_more"] == 1

        # The whole tree's budget: what it leaves out is counted where it is cut, among the
        # top-level actors or among a supervisor's children.
        budget = state(system, pubsub, None, limits=Limits(nodes=4))
        shown = list(walk(budget["tree"]))
        assert len(shown) == 4
        roots = len(system.top_level_actors())
        assert budget["tree_more"] == roots - len(budget["tree"]) > 0
        for node in shown:
            if node["supervisor"] is not None:
                assert node["more"] == node["supervisor"]["children"] - len(node["children"])

        long_name = "x" * 300
        await system.spawn(idle, name=long_name)
        cut = named(state(system, pubsub, None, limits=Limits(text=10)), "x" * 9 + "…")
        assert cut["name"] == "x" * 9 + "…"


async def _ignore(message: str) -> None:
    """A subscription handler that does nothing."""


async def test_deliveries_and_drops_per_subscription_and_channel(system: ActorSystem) -> None:
    async with open_pubsub(system, settings=PubSubSettings(buffer_size=2)) as pubsub:
        gate = trio.Event()

        async def stuck(message: str) -> None:
            await gate.wait()

        await pubsub.subscribe("busy", stuck, message_type=str)
        for number in range(6):
            await pubsub.publish("busy", f"message {number}")
        await trio.testing.wait_all_tasks_blocked()
        document = state(system, pubsub, None)
        [row] = document["subscriptions"]["items"]
        assert row["name"] == "busy"
        assert row["received"] == 1  # the first, which the handler holds
        assert row["depth"] == 2
        assert row["dropped"] == 3
        [channel] = document["connections"][0]["channels"]
        assert channel == {
            "kind": "channel",
            "name": "busy",
            "sinks": 1,
            "delivered": 3,
            "dropped": 3,
            "acknowledged": True,
        }
        gate.set()


async def test_the_gateway_sessions_and_rooms(system: ActorSystem) -> None:
    async with running_gateway(system) as server:
        async with connected(server, "ada") as ada, connected(server, "bob") as bob:
            await ada.send(type="join", room="ops")
            await ada.expect("joined", room="ops")
            await bob.send(type="join", room="ops")
            await bob.expect("joined", room="ops")
            document = state(system, server.gateway.pubsub, server.gateway)
            gateway = document["gateway"]
            sessions = gateway["sessions"]
            assert sessions["count"] == 2
            assert sorted(s["user_id"] for s in sessions["items"]) == ["ada", "bob"]
            assert all(s["rooms"] == ["ops"] for s in sessions["items"])
            assert all(s["queued"] >= 0 for s in sessions["items"])
            [ops] = [room for room in gateway["rooms"]["items"] if room["room"] == "ops"]
            assert ops["sessions"] == 2
            assert ops["hub_state"] == "running"
            # The sessions are in the tree too, under the gateway's sessions supervisor.
            assert named(document, "sessions")["supervisor"]["children"] == 2
            assert len(named(document, "sessions")["children"]) == 2
        await wait_until(lambda: not server.gateway.sessions)
        assert state(system, server.gateway.pubsub, server.gateway)["gateway"]["sessions"] == {
            "count": 0,
            "items": [],
            "more": 0,
        }


async def test_a_lost_redis_shows_in_the_tree_and_the_connection(
    system: ActorSystem, redis_server: RedisServer
) -> None:
    """Killing the server crashes the connection actor: its restart and exit show, the
    connection is down with a gap open; once the server is back, one reconnect."""
    async with open_pubsub(system, redis_server.url) as pubsub:
        await pubsub.subscribe("news", _ignore, message_type=str)
        await pubsub.publish("news", "hello")
        first = state(system, pubsub, None)
        [redis] = first["connections"]
        assert redis["label"] == "redis"
        assert redis["connected"] is True
        assert redis["reconnects"] == 0
        assert redis["gap_age"] is None
        assert named(first, "redis-connection")["restarts"] == 0

        redis_server.kill()
        await wait_until(lambda: named(state(system, pubsub, None), "redis-connection")["restarts"])
        lost = state(system, pubsub, None)
        [redis] = lost["connections"]
        assert redis["connected"] is False
        assert redis["gap_age"] is not None
        assert redis["last_error"]
        assert redis["connection_restarts"] >= 1
        assert named(lost, "redis-connection")["last_exit"].startswith("crashed: ")

        await trio.to_thread.run_sync(redis_server.restart)
        await wait_until(lambda: state(system, pubsub, None)["connections"][0]["connected"])
        [redis] = state(system, pubsub, None)["connections"]
        assert redis["reconnects"] == 1
        assert redis["gap_age"] is None


async def test_a_redis_cluster_shows_the_classic_node_and_a_row_per_master(
    system: ActorSystem, redis_cluster: RedisCluster
) -> None:
    seeds = ",".join(f"{node.host}:{node.port}" for node in redis_cluster.nodes[:2])
    async with open_pubsub(system, f"redis+cluster://{seeds}") as pubsub:
        with trio.fail_after(30):
            await pubsub.broker.wait_connected()
        await pubsub.subscribe("plain", _ignore, message_type=str)
        await pubsub.subscribe("{room}.chat", _ignore, message_type=str, sharded=True)
        rows = state(system, pubsub, None)["connections"]
        masters = {f"{master.host}:{master.port}" for master in redis_cluster.masters()}
        classic, *shards = rows
        assert classic["label"].startswith("classic (")
        assert classic["label"][len("classic (") : -1] in masters
        assert {row["label"] for row in shards} <= {f"shards {master}" for master in masters}
        assert all(row["connected"] for row in rows)
        assert [c["name"] for c in classic["channels"] if c["kind"] == "channel"] == ["plain"]
        shard_rows = [c for row in shards for c in row["channels"] if c["kind"] == "shard"]
        assert [c["name"] for c in shard_rows] == ["{room}.chat"]
