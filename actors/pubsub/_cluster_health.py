"""The health checks of the Redis Cluster broker: its connections, and each node's view of it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import trio

from actors._errors import ActorsError
from actors.observability import HealthCheck
from actors.redis import Kind

if TYPE_CHECKING:
    from actors.pubsub._cluster import ClusterPubSub

__all__ = ["SERVER_CHECK_TIMEOUT", "cluster_health_checks"]

SERVER_CHECK_TIMEOUT: Final = 1.0  # seconds each node may take to answer the server check


async def cluster_health_checks(cluster: ClusterPubSub) -> dict[str, HealthCheck]:
    """``connection``: down without a map or the pinned node's connection, degraded while a
    master's connection is down, slots are uncovered, or a subscription waits for its new
    owner; each node's state in the details. ``server``: see ``server_check``."""
    await trio.lowlevel.checkpoint()
    statistics = cluster.statistics()
    nodes = {
        label: {
            "connected": hub.connected,
            "reconnects": hub.reconnects,
            "last_error": hub.last_error,
            "shard_subscriptions": sum(row.kind is Kind.SHARD for row in hub.subscriptions),
            "in_gap": sum(1 for row in hub.subscriptions if not row.acknowledged),
        }
        for label, hub in statistics.nodes.items()
    }
    detail = {
        "pinned": statistics.pinned,
        "refreshes": statistics.refreshes,
        "moves": statistics.moves,
        "uncovered_slots": statistics.uncovered_slots,
        "nodes": nodes,
    }
    failure = cluster.failure
    if failure is not None:
        return {"connection": HealthCheck.down(**detail, reason=f"failed for good: {failure}")}
    if cluster.slot_map is None or not cluster.classic_hub.connected:
        reason = cluster.last_refresh_error or cluster.classic_hub.last_error or "connecting"
        return {"connection": HealthCheck.down(**detail, reason=f"not connected: {reason}")}
    server = await server_check(cluster)
    if not cluster.healthy():
        return {
            "connection": HealthCheck.degraded(
                **detail, reason="a node is down, or subscriptions wait for their new owner"
            ),
            "server": server,
        }
    return {"connection": HealthCheck.up(**detail), "server": server}


async def server_check(cluster: ClusterPubSub) -> HealthCheck:
    """``server``: ``PUBSUB SHARDNUMSUB`` on each connected node for the shard channels our
    connection to it holds acknowledged, its probe's included; one that counts no subscriber
    is missing (other clients only add to the counts). Each node answers within
    ``SERVER_CHECK_TIMEOUT``."""
    nodes: dict[str, dict[str, object]] = {}
    missing_anywhere = False
    for label, hub in cluster.node_hubs().items():
        names = [
            row.name for row in hub.table.rows() if row.kind is Kind.SHARD and row.acknowledged
        ]
        if not names or not hub.connected:
            continue
        detail: dict[str, object] = {"shard_channels": len(names)}
        with trio.move_on_after(SERVER_CHECK_TIMEOUT) as scope:
            try:
                counts = await hub.connection().pubsub_shardnumsub(*names)
            except ActorsError as error:
                detail["error"] = str(error)
                counts = None
        if scope.cancelled_caught:
            detail["error"] = f"no answer within {SERVER_CHECK_TIMEOUT} s"
        elif counts is not None:
            missing = sorted(name for name, count in counts.items() if not count)
            detail["without_subscriber"] = missing[:20]
            missing_anywhere = missing_anywhere or bool(missing)
        nodes[label] = detail
    if any("error" in detail for detail in nodes.values()):
        return HealthCheck.degraded(nodes=nodes, reason="a node did not answer")
    if missing_anywhere:
        return HealthCheck.degraded(
            nodes=nodes, reason="a node lacks some of our shard subscriptions"
        )
    return HealthCheck.up(nodes=nodes)
