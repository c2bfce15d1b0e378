"""The observer's document: one bounded JSON snapshot of a server process, built synchronously.

Everything here reads snapshots the layers below already keep (``ActorRef.statistics``,
``Supervisor.which_children``, the brokers' and subscriptions' statistics, the gateway's
sessions) and awaits nothing, so building the document never waits on an actor, a lock or
Redis: a stuck actor shows up as a deep mailbox, it does not stall the page.

Every list is cut: the first ``Limits.children`` children of each supervisor, at most
``Limits.nodes`` tree nodes in all, ``Limits.depth`` levels, and so many subscriptions,
channels, sessions and rooms; each cut list says how many it left out (``more``), so the page
can show "and 1,203 more". Every string from outside (names, errors) is cut to
``Limits.text`` characters.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Final, Protocol

import attrs

from actors._errors import ActorsError
from actors.pubsub import ClusterPubSub, MemoryBroker, RedisPubSub
from actors.runtime import describe_exit
from actors.supervision import Supervisor

if TYPE_CHECKING:
    from collections.abc import Collection

    from actors.pubsub import PubSub
    from actors.redis import PubSubStatistics
    from actors.runtime import ActorRef, ActorSystem, ExitReason, MailboxStatistics
    from actors.supervision import ChildInfo, KeyedChildren

Document = dict[str, object]


class SessionFacts(Protocol):
    """What the observer reads of one gateway session (``actors.server.gateway.Session``)."""

    @property
    def session_id(self) -> str: ...
    @property
    def user_id(self) -> str: ...
    @property
    def rooms(self) -> Collection[str]: ...
    @property
    def queued(self) -> int: ...


class GatewayFacts(Protocol):
    """What the observer reads of a gateway (``actors.server.gateway.Gateway``): the gateway
    sits above this module, and hands itself in."""

    @property
    def sessions(self) -> Collection[SessionFacts]: ...
    @property
    def hubs(self) -> KeyedChildren[str]: ...


STATE_VERSION: Final = 1  # the document's shape; the page checks it


@attrs.frozen(kw_only=True)
class Limits:
    """The bounds of one document (see docs/observer.md, "Size")."""

    children: int = 50
    """Children shown per supervisor."""
    nodes: int = 500
    """Tree nodes shown in all."""
    depth: int = 8
    """Levels of the tree shown below the top-level actors."""
    subscriptions: int = 200
    """Typed subscriptions shown, and broker channels per connection."""
    sessions: int = 100
    """Gateway sessions shown."""
    rooms: int = 100
    """Gateway rooms shown."""
    text: int = 200
    """Characters kept of any name or error."""


DEFAULT_LIMITS: Final = Limits()


def observer_state(
    system: ActorSystem,
    pubsub: PubSub,
    gateway: GatewayFacts | None,
    *,
    server_name: str,
    limits: Limits = DEFAULT_LIMITS,
) -> Document:
    """The whole document: tree, subscriptions, broker connections and gateway.

    Args:
        system: Whose top-level actors are the roots of the tree.
        pubsub: The typed subscriptions and the broker (memory, Redis or a Redis cluster).
        gateway: The sessions and rooms; None while the gateway is starting.
        server_name: This process's name, as in live updates.
        limits: How much of each list to show.
    """
    tree = _Tree(limits)
    roots = system.top_level_actors()
    return {
        "version": STATE_VERSION,
        "server": _cut(server_name, limits),
        "limits": attrs.asdict(limits),
        "tree": tree.nodes(roots, depth=0),
        "tree_more": tree.left_out,
        "subscriptions": _subscriptions(pubsub, limits),
        "connections": _connections(pubsub, limits),
        "gateway": None if gateway is None else _gateway(gateway, limits),
    }


def _cut(text: str, limits: Limits) -> str:
    return text if len(text) <= limits.text else text[: limits.text - 1] + "…"


def _exit(reason: ExitReason | None, limits: Limits) -> str | None:
    return None if reason is None else _cut(describe_exit(reason), limits)


def _mailbox(mailbox: MailboxStatistics) -> Document:
    return {
        "depth": mailbox.size,
        "capacity": None if mailbox.capacity == float("inf") else int(mailbox.capacity),
        "high_water": mailbox.high_water,
        "dropped": mailbox.dropped,
    }


class _Tree:
    """Walks the supervision tree within the limits, counting what it leaves out."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.budget = limits.nodes
        self.left_out = 0
        """Nodes left out because the whole tree's budget ran out (children cut by the
        per-supervisor limit are counted in their supervisor's ``more``)."""

    def nodes(self, refs: list[ActorRef], *, depth: int) -> list[Document]:
        shown: list[Document] = []
        for ref in refs:
            if self.budget <= 0:
                self.left_out += len(refs) - len(shown)
                break
            shown.append(self.node(ref, None, depth=depth))
        return shown

    def node(self, ref: ActorRef, child: ChildInfo | None, *, depth: int) -> Document:
        self.budget -= 1
        statistics = ref.statistics()
        exit_reason = statistics.exit_reason or (child.last_exit if child else None)
        node: Document = {
            "actor_id": statistics.actor_id,
            "name": _cut(statistics.name or f"actor#{statistics.actor_id}", self.limits),
            "child_id": None if child is None else _cut(child.id, self.limits),
            "state": statistics.state.value,
            "status": None if child is None else child.status.value,
            "restarts": statistics.restarts,
            "last_exit": _exit(exit_reason, self.limits),
            "mailbox": _mailbox(statistics.mailbox),
            "supervisor": None,
            "children": [],
            "more": 0,
        }
        if child is not None and not child.is_supervisor:
            return node
        supervisor = Supervisor(ref)
        try:
            summary = supervisor.statistics()
            rows = supervisor.which_children(limit=self.limits.children)
        except ActorsError:  # a worker, or a supervisor between incarnations
            return node
        node["supervisor"] = {
            "strategy": summary.strategy.value,
            "children": summary.children.specs,
            "restarts": summary.restarts,
            "recent_restarts": summary.recent_restarts,
            "max_restarts": summary.max_restarts,
            "within": summary.within,
        }
        if depth >= self.limits.depth:
            node["more"] = summary.children.specs
            return node
        children = []
        for row in rows:
            if self.budget <= 0:
                break  # the budget is spent: the rest is counted in ``more``
            children.append(self.node(row.ref, row, depth=depth + 1))
        node["children"] = children
        node["more"] = summary.children.specs - len(children)
        return node


def _subscriptions(pubsub: PubSub, limits: Limits) -> Document:
    handles = pubsub.subscriptions()
    items = []
    for handle in handles[: limits.subscriptions]:
        statistics = handle.statistics()
        counters = statistics.counters
        items.append(
            {
                "name": _cut(statistics.name, limits),
                "pattern": statistics.pattern,
                "sharded": statistics.sharded,
                "received": counters.received,
                "handled": counters.handled,
                "decode_errors": counters.decode_errors,
                "skipped": counters.skipped,
                "gaps": counters.gaps,
                "depth": statistics.mailbox.size,
                "dropped": statistics.mailbox.dropped,
                "restarts": statistics.restarts,
            }
        )
    return {"count": len(handles), "items": items, "more": len(handles) - len(items)}


def _connections(pubsub: PubSub, limits: Limits) -> list[Document]:
    broker = pubsub.broker
    if isinstance(broker, RedisPubSub):
        statistics = broker.statistics()
        return [_hub("redis", statistics.hub, limits, statistics.connection_restarts)]
    if isinstance(broker, ClusterPubSub):
        cluster = broker.statistics()
        rows = [_hub(f"classic ({cluster.pinned or 'no node yet'})", cluster.classic, limits)]
        rows += [_hub(f"shards {label}", hub, limits) for label, hub in cluster.nodes.items()]
        return rows
    if isinstance(broker, MemoryBroker):
        return [_hub("memory", broker.statistics(), limits)]
    return []  # pragma: no cover - open_pubsub makes one of the three brokers above


def _hub(
    label: str, statistics: PubSubStatistics, limits: Limits, restarts: int | None = None
) -> Document:
    channels = statistics.subscriptions
    return {
        "label": _cut(label, limits),
        "connected": statistics.connected,
        "protocol": statistics.protocol,
        "reconnects": statistics.reconnects,
        "connection_restarts": restarts,
        "last_probe_age": statistics.last_probe_age,
        "last_message_age": statistics.last_message_age,
        "gap_age": statistics.gap_age,
        "last_error": None
        if statistics.last_error is None
        else _cut(statistics.last_error, limits),
        "failure": None if statistics.failure is None else _cut(statistics.failure, limits),
        "unroutable": statistics.unroutable,
        "server_unsubscribed": statistics.server_unsubscribed,
        "channels": [
            {
                "kind": channel.kind.value,
                "name": _cut(channel.name.decode(errors="replace"), limits),
                "sinks": channel.sinks,
                "delivered": channel.delivered,
                "dropped": channel.dropped,
                "acknowledged": channel.acknowledged,
            }
            for channel in channels[: limits.subscriptions]
        ],
        "channels_more": max(len(channels) - limits.subscriptions, 0),
    }


def _gateway(gateway: GatewayFacts, limits: Limits) -> Document:
    sessions = list(gateway.sessions)
    local: dict[str, int] = {}
    for session in sessions:
        for room in session.rooms:
            local[room] = local.get(room, 0) + 1
    shown = sorted(itertools.islice(sessions, limits.sessions), key=lambda s: s.session_id)
    rooms = sorted(gateway.hubs.keys())
    room_rows = []
    for room in rooms[: limits.rooms]:
        hub = gateway.hubs.get(room)
        room_rows.append(
            {
                "room": room,
                "sessions": local.get(room, 0),
                "hub_state": None if hub is None else hub.state.value,
                "hub_depth": None if hub is None else hub.statistics().mailbox.size,
            }
        )
    return {
        "sessions": {
            "count": len(sessions),
            "items": [
                {
                    "session_id": session.session_id,
                    "user_id": session.user_id,
                    "rooms": sorted(session.rooms),
                    "queued": session.queued,
                }
                for session in shown
            ],
            "more": len(sessions) - len(shown),
        },
        "rooms": {"count": len(rooms), "items": room_rows, "more": len(rooms) - len(room_rows)},
    }
