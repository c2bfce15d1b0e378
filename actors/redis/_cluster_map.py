"""A Redis Cluster's shape: its nodes, its shards and which shard owns each hash slot.

``SlotMap.from_shards`` reads the reply of ``CLUSTER SHARDS`` (Redis 7.0+; ``CLUSTER SLOTS`` is
deprecated), in RESP3 (maps) or RESP2 (flat key-value arrays). A reply that does not have the
documented shape raises ``RedisProtocolError`` naming what is wrong; nothing here talks to a
server, so the topology actor that does can refresh, compare and replace maps freely.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

import attrs

from actors._errors import RedisProtocolError
from actors.redis._slots import HASH_SLOTS

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

__all__ = ["ClusterNode", "NodeRole", "Shard", "SlotMap"]


class NodeRole(enum.Enum):
    """A node's part in its shard."""

    MASTER = "master"
    REPLICA = "replica"


@attrs.frozen
class ClusterNode:
    """One node of a cluster, as ``CLUSTER SHARDS`` describes it."""

    id: str
    """The node's 40-character id, stable across restarts (kept in its ``nodes.conf``)."""
    host: str
    """Where to connect: the node's preferred endpoint, else its IP, else the host the map was
    read from (an empty endpoint means "the address you asked")."""
    port: int
    """Its port: the TLS port on a cluster that speaks TLS."""
    role: NodeRole
    health: str
    """``online``, ``failed`` or ``loading``: only an online node is connected to."""

    @property
    def online(self) -> bool:
        """Whether the node serves (``health`` is ``online``)."""
        return self.health == "online"

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)``."""
        return (self.host, self.port)


@attrs.frozen
class Shard:
    """A master, its replicas, and the slot ranges they serve."""

    ranges: tuple[tuple[int, int], ...]
    """Inclusive ``(first, last)`` slot ranges, in the order the server gave them."""
    master: ClusterNode | None
    """The master; None while a failover has no winner yet."""
    replicas: tuple[ClusterNode, ...]

    def slots(self) -> Iterator[int]:
        """Every slot the shard owns."""
        for first, last in self.ranges:
            yield from range(first, last + 1)


@attrs.frozen
class SlotMap:
    """Which shard owns each slot, read from one ``CLUSTER SHARDS`` reply.

    Immutable: a refresh builds a new map, and ``moved`` makes a copy with one slot given to
    another master (what a ``MOVED`` reply says before the next refresh).
    """

    shards: tuple[Shard, ...]
    owners: tuple[int, ...] = attrs.field(repr=False)
    """Per slot, the index of its shard in ``shards``, or -1 when no shard serves it."""

    @classmethod
    def from_shards(cls, reply: object, *, asked_host: str, tls: bool = False) -> SlotMap:
        """Read a ``CLUSTER SHARDS`` reply.

        Args:
            reply: The reply as the client parsed it (a list of maps, or of flat arrays).
            asked_host: The host the command was sent to, for nodes with no endpoint or IP.
            tls: Whether the cluster speaks TLS: then a node's ``tls-port`` is its port.

        Raises:
            RedisProtocolError: The reply does not have the documented shape, or two shards
                claim one slot.
        """
        if not isinstance(reply, list):
            raise RedisProtocolError(f"CLUSTER SHARDS: not a list of shards: {reply!r:.200}")
        shards = tuple(_shard(entry, asked_host, tls) for entry in reply)
        owners = [-1] * HASH_SLOTS
        for index, shard in enumerate(shards):
            for slot in shard.slots():
                if owners[slot] != -1:
                    raise RedisProtocolError(f"CLUSTER SHARDS: slot {slot} is in two shards")
                owners[slot] = index
        return cls(shards=shards, owners=tuple(owners))

    def shard_of(self, slot: int) -> Shard | None:
        """The shard that owns ``slot``, or None if none does."""
        index = self.owners[slot]
        return None if index < 0 else self.shards[index]

    def master_of(self, slot: int) -> ClusterNode | None:
        """The master that owns ``slot``, or None if no master serves it now."""
        shard = self.shard_of(slot)
        return None if shard is None else shard.master

    def masters(self) -> list[ClusterNode]:
        """Every shard's master, in the order of ``shards``."""
        return [shard.master for shard in self.shards if shard.master is not None]

    def subscriber_of(self, slot: int, *, replicas: bool = False) -> ClusterNode | None:
        """The node that carries the shard subscriptions of ``slot``: its master, or with
        ``replicas`` its shard's first online replica (by address, so every refresh picks the
        same one) if it has any; None if no master serves the slot now."""
        shard = self.shard_of(slot)
        if shard is None or shard.master is None:
            return None
        if replicas:
            online = sorted(
                (replica for replica in shard.replicas if replica.online),
                key=lambda replica: replica.address,
            )
            if online:
                return online[0]
        return shard.master

    def slots_of(self, address: tuple[str, int]) -> frozenset[int]:
        """The slots of the shard whose master or replica is at ``address`` (empty if none)."""
        indexes = {
            index
            for index, shard in enumerate(self.shards)
            if (shard.master is not None and shard.master.address == address)
            or any(replica.address == address for replica in shard.replicas)
        }
        return frozenset(slot for slot, index in enumerate(self.owners) if index in indexes)

    def uncovered(self) -> int:
        """How many slots no online master serves (0 when the cluster is whole)."""
        return sum(
            1
            for index in self.owners
            if index < 0 or (master := self.shards[index].master) is None or not master.online
        )

    def moved(self, slot: int, host: str, port: int) -> SlotMap:
        """A copy in which ``slot`` belongs to the master at ``host:port``, as a ``MOVED`` reply
        says; if no shard has that master yet, a shard of its own is added for it."""
        index = next(
            (
                index
                for index, shard in enumerate(self.shards)
                if shard.master is not None and shard.master.address == (host, port)
            ),
            None,
        )
        if index is not None:
            return SlotMap(shards=self.shards, owners=_with_owner(self.owners, slot, index))
        master = ClusterNode(id="", host=host, port=port, role=NodeRole.MASTER, health="online")
        return SlotMap(
            shards=(*self.shards, Shard(ranges=(), master=master, replicas=())),
            owners=_with_owner(self.owners, slot, len(self.shards)),
        )


def _with_owner(owners: tuple[int, ...], slot: int, index: int) -> tuple[int, ...]:
    changed = list(owners)
    changed[slot] = index
    return tuple(changed)


def _fields(entry: object, what: str) -> Mapping[object, object]:
    """A RESP3 map as it is, or a RESP2 flat ``[key, value, ...]`` array as a dict."""
    if isinstance(entry, dict):
        return entry
    if isinstance(entry, list) and len(entry) % 2 == 0:
        return dict(zip(entry[::2], entry[1::2], strict=True))
    raise RedisProtocolError(f"CLUSTER SHARDS: {what} is not a map: {entry!r:.200}")


def _text(fields: Mapping[object, object], key: bytes, what: str) -> str:
    value = fields.get(key)
    if not isinstance(value, bytes):
        raise RedisProtocolError(f"CLUSTER SHARDS: {what} has no {key.decode()}: {fields!r:.200}")
    return value.decode("utf-8", "replace")


def _shard(entry: object, asked_host: str, tls: bool) -> Shard:
    fields = _fields(entry, "a shard")
    bounds = fields.get(b"slots")
    nodes = fields.get(b"nodes")
    if not isinstance(bounds, list) or len(bounds) % 2 or not isinstance(nodes, list):
        raise RedisProtocolError(f"CLUSTER SHARDS: a shard without slots or nodes: {entry!r:.200}")
    ranges = tuple(
        _range(first, last) for first, last in zip(bounds[::2], bounds[1::2], strict=True)
    )
    members = [_node(node, asked_host, tls) for node in nodes]
    masters = [node for node in members if node.role is NodeRole.MASTER]
    if len(masters) > 1:
        raise RedisProtocolError(f"CLUSTER SHARDS: a shard with two masters: {entry!r:.200}")
    replicas = tuple(node for node in members if node.role is NodeRole.REPLICA)
    return Shard(ranges=ranges, master=masters[0] if masters else None, replicas=replicas)


def _range(first: object, last: object) -> tuple[int, int]:
    if type(first) is not int or type(last) is not int or not 0 <= first <= last < HASH_SLOTS:
        raise RedisProtocolError(f"CLUSTER SHARDS: not a slot range: {first!r}-{last!r}")
    return (first, last)


def _node(entry: object, asked_host: str, tls: bool) -> ClusterNode:
    fields = _fields(entry, "a node")
    port = fields.get(b"tls-port" if tls else b"port")
    if type(port) is not int or not 0 < port < 65_536:
        raise RedisProtocolError(f"CLUSTER SHARDS: a node without a usable port: {entry!r:.200}")
    role = _text(fields, b"role", "a node")
    if role not in ("master", "replica"):
        raise RedisProtocolError(f"CLUSTER SHARDS: a node of role {role!r}")
    return ClusterNode(
        id=_text(fields, b"id", "a node"),
        host=_host(fields) or asked_host,
        port=port,
        role=NodeRole(role),
        health=_text(fields, b"health", "a node"),
    )


def _host(fields: Mapping[object, object]) -> str:
    """The preferred endpoint, else the IP; empty when neither is known (``?`` is unknown)."""
    for key in (b"endpoint", b"ip"):
        value = fields.get(key)
        if isinstance(value, bytes) and value not in (b"", b"?"):
            return value.decode("ascii", "replace")
    return ""
