"""``redis+cluster://``: Pub/Sub and commands over a Redis Cluster.

A topology actor reads the slot map (``CLUSTER SHARDS``) and supervises one connection actor per
master (``run_connection``), each with a ``PubSubHub`` of its own: a shard channel's
subscription lives in the hub of the master that owns its hash slot, so that hub's replay,
reference counts, probe and gap events serve it. When a slot moves (a ``sunsubscribe`` nobody
asked for, ``MOVED``, a refresh that finds another owner, a failover) the topology hands the
subscription over to the new owner's hub (``PubSubHub.hand_over``/``take_over``): its
subscribers receive ``ConnectionLost`` and then ``Resubscribed`` naming it.

Classic channels and patterns are not slot-bound (a cluster forwards ``PUBLISH`` to every node):
they live in one more hub, pinned to one node (the master of slot 0 when its connection starts),
which moves to another node when that connection is lost.

The slot map is refreshed at start, when an event asks for it (a moved subscription, ``MOVED``,
a node's connection lost or its probe unanswered), periodically (``refresh_interval``, ±20 %),
and every ``DEGRADED_REFRESH_INTERVAL`` at most while something waits for a new owner. Refreshes
run one at a time in the topology actor, at least ``MIN_REFRESH_INTERVAL`` apart; an event-driven
refresh that finds the map unchanged doubles that spacing (up to ``refresh_interval``), so a
stale map never makes a loop.
"""

from __future__ import annotations

import logging
import math
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final

import attrs
import trio

from actors._errors import (
    ActorShutdown,
    RedisConfigurationError,
    RedisConnectionError,
    RedisError,
    RedisRedirectError,
    RedisReplyError,
    RedisTimeoutError,
)
from actors.pubsub._broker import within
from actors.pubsub._cluster_health import cluster_health_checks
from actors.pubsub._cluster_probe import probe_channel_for
from actors.pubsub._connection_actor import ConnectionOptions, run_connection
from actors.pubsub._redis import BlockObserver, ForwardingObserver
from actors.redis import (
    ClusterSettings,
    HubObserver,
    Kind,
    PubSubHub,
    RedisCommands,
    SlotMap,
    command_key,
    key_slot,
    open_redis_connection,
    unique_probe_channel,
)
from actors.supervision import ChildSpec, Restart, SupervisorSpec, open_supervisor

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

    from actors.observability import HealthCheck
    from actors.redis import Argument, MessageSink, PubSubStatistics
    from actors.runtime import ActorContext, ActorSystem
    from actors.supervision import Supervisor

logger = logging.getLogger(__name__)

MIN_REFRESH_INTERVAL: Final = 0.25  # seconds between two refreshes, whatever asks for them
DEGRADED_REFRESH_INTERVAL: Final = 1.0  # seconds, at most, between refreshes while degraded
REFRESH_JITTER: Final = 0.2  # ± fraction of the periodic refresh interval
MAX_REDIRECTS: Final = 3  # MOVED/ASK redirections one command or subscribe follows
TRYAGAIN_DELAY: Final = 0.01  # seconds before the first retry of a TRYAGAIN; doubled up to 0.1
TOPOLOGY_CHILD_ID: Final = "cluster-topology"
CLASSIC_CHILD_ID: Final = "cluster-classic"

Address = tuple[str, int]


def _name(name: bytes | str) -> bytes:
    return name.encode() if isinstance(name, str) else name


@attrs.frozen(kw_only=True)
class ClusterPubSubStatistics:
    """A cluster broker's state: the slot map's refreshes, and each connection's hub."""

    classic: PubSubStatistics
    """The hub of classic channels and patterns, on the pinned node."""
    pinned: str | None
    """``host:port`` of the node classic subscriptions are on, or None before the first map."""
    nodes: dict[str, PubSubStatistics]
    """Each master's hub (shard subscriptions), by ``host:port``."""
    refreshes: int
    """Slot-map refreshes that read a map."""
    failed_refreshes: int
    """Refreshes that found no node to answer."""
    moves: int
    """Shard subscriptions moved from one node's hub to another's."""
    redirects: int
    """``MOVED`` and ``ASK`` replies followed."""
    uncovered_slots: int | None
    """Slots no online master serves in the current map (None before the first map)."""


class ClusterSubscription:
    """A handle on one local subscription of a ``ClusterPubSub``; ``await close()`` to leave."""

    __slots__ = ("_cluster", "kind", "name", "sink")

    def __init__(self, cluster: ClusterPubSub, kind: Kind, name: bytes, sink: MessageSink) -> None:
        self._cluster = cluster
        self.kind = kind
        self.name = name
        self.sink = sink

    async def close(self) -> None:
        """Unsubscribe this sink, on whichever node the subscription is now."""
        await self._cluster._hub_holding(self.kind, self.name, self.sink).unsubscribe(
            self.kind, self.name, self.sink
        )


class ClusterCommands(RedisCommands):
    """Commands routed by their key's hash slot to the master that owns it.

    ``MOVED`` updates the slot map (a refresh follows) and sends the command to the new owner;
    ``ASK`` sends ``ASKING`` and the command to the node named, once; at most ``MAX_REDIRECTS``
    redirections per command. ``TRYAGAIN`` (a command on several keys of a slot that is being
    migrated, some moved and some not) is sent again after 10 ms, then up to 100 ms apart,
    within ``reconnect_wait``. Keys of one command must share a slot (a hash tag).
    """

    def __init__(self, cluster: ClusterPubSub) -> None:
        self._cluster = cluster

    async def execute(self, *args: Argument) -> Any:
        """Run one command on the node that serves its first key (any node if it has none).

        Waits up to ``reconnect_wait`` for that node's connection.

        Raises:
            RedisConnectionError: The node is not connected within ``reconnect_wait``.
            RedisReplyError: The node refused the command (``RedisRedirectError`` after too
                many redirections).
        """
        return await self._cluster._routed(command_key(args), args)


class _NodeObserver(ForwardingObserver):
    """A node's hub: a lost connection asks for a refresh; every hook goes to the block's."""

    def __init__(self, cluster: ClusterPubSub) -> None:
        super().__init__(cluster.observer)
        self.cluster = cluster

    def lost(self, reason: str) -> None:
        super().lost(reason)
        self.cluster.request_refresh()


@attrs.define
class _Node:
    address: Address
    hub: PubSubHub
    child_id: str
    probe_prefix: bytes

    def shard_names(self) -> list[bytes]:
        """The shard channels subscribed on this node, but for its probe's."""
        probe = self.hub.probe_channel
        return [name for name in self.hub.table.names(Kind.SHARD) if name != probe]

    @property
    def label(self) -> str:
        return f"{self.address[0]}:{self.address[1]}"


class ClusterPubSub:
    """One process's Pub/Sub and commands on a Redis Cluster. Open it with ``open_broker`` (or
    ``open_pubsub``) on a ``redis+cluster://`` URL, or with ``open_cluster_pubsub``.

    Shard channels (``ssubscribe``, ``spublish``) go to the master that owns their slot;
    channels and patterns (``subscribe``, ``psubscribe``, ``publish``) to the pinned node.
    """

    def __init__(
        self, settings: ClusterSettings, options: ConnectionOptions, observer: HubObserver
    ) -> None:
        self.settings = settings
        self.options = options
        self.observer = observer
        self.classic_hub = PubSubHub(
            ack_timeout=options.ack_timeout,
            probe_channel=options.probe_channel,
            observer=observer,
        )
        self._node_observer = _NodeObserver(self)
        self._nodes: dict[Address, _Node] = {}
        self._map: SlotMap | None = None
        self._map_known = trio.Event()
        self._refresh_wanted = trio.Event()
        self._supervisor: Supervisor | None = None
        self._supervisor_set = trio.Event()
        self._pinned: Address | None = None
        self._repin = trio.CancelScope()
        self._repins = 0
        self._refreshes = 0
        self._failed_refreshes = 0
        self._moves = 0
        self._redirects = 0
        self.last_refresh_error: str | None = None
        """Why the last refresh failed, or None if it read a map."""

    # -- the slot map ----------------------------------------------------------------------------

    @property
    def slot_map(self) -> SlotMap | None:
        """The current slot map, or None before the first refresh."""
        return self._map

    def request_refresh(self) -> None:
        """Ask the topology actor for a refresh (debounced: at most one in flight, at least
        ``MIN_REFRESH_INTERVAL`` apart)."""
        self._refresh_wanted.set()

    def _redirected(self, sender: Address, error: RedisRedirectError) -> None:
        """A ``MOVED``: the slot is the named node's now, until the next refresh says more."""
        self._redirects += 1
        if self._map is not None:
            self._map = self._map.moved(error.slot, error.host or sender[0], error.port)
        self.request_refresh()

    def _not_served(
        self, sender: Address, kind: Kind, name: bytes, error: RedisReplyError | None
    ) -> None:
        """A node's hub: the server ended a shard subscription, or refused it (see
        ``PubSubHub``'s ``not_served``). The next refresh moves it."""
        if isinstance(error, RedisRedirectError) and error.moved:
            self._redirected(sender, error)
        self.request_refresh()

    async def _wait_map(self, bound: float) -> SlotMap:
        with trio.move_on_after(bound):
            await self._map_known.wait()
        if self._map is None:
            cause = f": {self.last_refresh_error}" if self.last_refresh_error else ""
            raise RedisTimeoutError(
                f"no slot map of the cluster within {bound} s{cause}", seconds=bound
            )
        return self._map

    async def run_topology(self, context: ActorContext) -> None:
        """The topology actor's body: refresh, apply, wait for a reason to refresh again."""
        await self._supervisor_set.wait()
        spacing = MIN_REFRESH_INTERVAL
        degraded_wait = MIN_REFRESH_INTERVAL
        requested = False
        while True:
            started = trio.current_time()
            changed = await self.refresh()
            if requested and not changed:
                spacing = min(spacing * 2, self.settings.refresh_interval)
            else:
                spacing = MIN_REFRESH_INTERVAL
            if self.healthy():
                degraded_wait = MIN_REFRESH_INTERVAL
                jitter = 1.0 + REFRESH_JITTER * (2 * context.system.random.random() - 1)
                wait = self.settings.refresh_interval * jitter
            else:
                wait = degraded_wait
                degraded_wait = min(degraded_wait * 2, DEGRADED_REFRESH_INTERVAL)
            with trio.move_on_after(wait):
                await self._refresh_wanted.wait()
            requested = self._refresh_wanted.is_set()
            await trio.sleep_until(started + spacing)
            self._refresh_wanted = trio.Event()

    async def refresh(self) -> bool:
        """Read the slot map from any node, then follow it: a connection actor for each new
        master, subscriptions moved to their slots' owners, nodes no longer masters stopped.

        Returns:
            Whether the map changed.

        Raises:
            RedisConfigurationError: A node refused our credentials or TLS (after failing every
                waiter with it).
        """
        try:
            reply, host = await self._read_shards()
            fresh = SlotMap.from_shards(reply, asked_host=host, tls=self.settings.node.tls)
        except RedisConfigurationError as error:
            self.classic_hub.fail(error)
            raise
        except (RedisError, trio.TooSlowError, OSError) as error:
            self._failed_refreshes += 1
            self.last_refresh_error = str(error)
            logger.warning("refreshing the cluster's slot map failed: %s", error)
            return False
        changed = fresh != self._map
        if changed:
            logger.info(
                "cluster slot map: %d masters, %d slots uncovered",
                len(fresh.masters()),
                fresh.uncovered(),
            )
        self._map = fresh
        self._refreshes += 1
        self.last_refresh_error = None
        self._map_known.set()
        await self._apply()
        return changed

    async def _read_shards(self) -> tuple[object, str]:
        """``CLUSTER SHARDS`` from a connected node, else from a new connection to a known
        node or a seed, in turn."""
        for node in list(self._nodes.values()):
            if node.hub.connected:
                with trio.move_on_after(self.options.probe_timeout):
                    try:
                        reply = await node.hub.connection().execute("CLUSTER", "SHARDS")
                    except RedisConfigurationError:
                        raise
                    except RedisError:
                        continue
                    return reply, node.address[0]
        known = [master.address for master in self._map.masters()] if self._map else []
        failure: BaseException | None = None
        for address in dict.fromkeys([*known, *self.settings.seeds]):
            settings = self.settings.for_node(*address)
            try:
                with trio.fail_after(settings.connect_timeout + self.options.probe_timeout):
                    async with open_redis_connection(
                        settings, connector=self.options.connector
                    ) as connection:
                        return await connection.execute("CLUSTER", "SHARDS"), address[0]
            except RedisConfigurationError:
                raise
            except (RedisError, trio.TooSlowError, OSError) as error:
                failure = error
        raise RedisConnectionError(f"no cluster node answered CLUSTER SHARDS: {failure}")

    async def _apply(self) -> None:
        slot_map = self._map
        assert slot_map is not None
        replicas = self.settings.replica_subscriptions
        # The masters that serve slots (a failed master replaced by its replica stays in the
        # map for a while, as a master without slots), and with ``replica_subscriptions`` the
        # replica of each shard that carries its subscriptions.
        masters: dict[Address, None] = {}
        subscribers: dict[Address, None] = {}
        for index in sorted(set(slot_map.owners) - {-1}):
            shard = slot_map.shards[index]
            if shard.master is None:
                continue
            masters[shard.master.address] = None
            first = next(shard.slots(), None)
            subscriber = None if first is None else slot_map.subscriber_of(first, replicas=replicas)
            if subscriber is not None:
                subscribers[subscriber.address] = None
        for address in [*masters, *subscribers]:
            await self._ensure_node(address)
        self._rehome(slot_map)
        self._rehome_probes(slot_map)
        for address, node in list(self._nodes.items()):
            if address not in masters and address not in subscribers and not node.shard_names():
                await self._stop_node(node)
        pinned = self._pinned
        online = {master.address for master in slot_map.masters() if master.online}
        if pinned is not None and (pinned not in masters or pinned not in online):
            logger.info("the pinned node %s:%d serves no slots now: re-pinning", *pinned)
            self._repin.cancel()

    def _subscriber_of(self, slot_map: SlotMap, slot: int) -> Address | None:
        node = slot_map.subscriber_of(slot, replicas=self.settings.replica_subscriptions)
        return None if node is None else node.address

    def _rehome(self, slot_map: SlotMap) -> None:
        """Move every shard subscription to its slot's subscriber node (the owner, or its
        replica); subscribe again, once per refresh, one the server ended on a node that still
        serves its slot."""
        for node in list(self._nodes.values()):
            for name in node.shard_names():
                owner = self._subscriber_of(slot_map, key_slot(name))
                if owner is None:
                    continue
                if owner == node.address:
                    row = node.hub.table.get(Kind.SHARD, name)
                    if row is not None and row.gap_start is not None and node.hub.connected:
                        node.hub.resubscribe(Kind.SHARD, name)
                    continue
                target = self._nodes.get(owner)
                if target is None:
                    continue
                moved = node.hub.hand_over(Kind.SHARD, name)
                if moved is not None:
                    self._moves += 1
                    logger.info(
                        "shard channel %r moves from %s to %s", name, node.label, target.label
                    )
                    target.hub.take_over(Kind.SHARD, name, moved)

    def _rehome_probes(self, slot_map: SlotMap) -> None:
        """Give each node's probe a shard channel of a slot it serves now: a new one if its
        slots changed, the same one subscribed again if the server ended it meanwhile."""
        for node in self._nodes.values():
            hub = node.hub
            channel = probe_channel_for(
                node.probe_prefix, slot_map.slots_of(node.address), current=hub.probe_channel
            )
            if channel != hub.probe_channel:
                logger.info("the probe of %s moves to %r", node.label, channel)
                hub.rehome_probe(channel)
                continue
            row = hub.table.get(Kind.SHARD, channel)
            if row is not None and not row.acknowledged and hub.connected:
                hub.resubscribe(Kind.SHARD, channel)

    def healthy(self) -> bool:
        """Whether the map covers every slot and every node's connection is up with no
        subscription in a gap (waiting for its new owner, say)."""
        slot_map = self._map
        if slot_map is None or slot_map.uncovered():
            return False
        for node in self._nodes.values():
            if not node.hub.connected:
                return False
            if any(row.gap_start is not None for row in node.hub.table.rows()):
                return False
        return True

    # -- nodes -----------------------------------------------------------------------------------

    async def _ensure_node(self, address: Address) -> _Node:
        node = self._nodes.get(address)
        if node is not None:
            return node
        host, port = address
        base = self.options.probe_channel
        prefix = (unique_probe_channel() if base is None else base) + f":{host}:{port}:".encode()
        slots = self._map.slots_of(address) if self._map is not None else frozenset[int]()

        async def publish_probe(channel: bytes, token: bytes) -> None:
            await self._publish_probe(address, channel, token)

        hub = PubSubHub(
            ack_timeout=self.options.ack_timeout,
            probe_channel=probe_channel_for(prefix, slots),
            probe_kind=Kind.SHARD,
            probe_publish=publish_probe,
            observer=self._node_observer,
            not_served=lambda kind, name, error: self._not_served(address, kind, name, error),
        )
        node = self._nodes[address] = _Node(
            address=address,
            hub=hub,
            child_id=f"cluster-node:{host}:{port}",
            probe_prefix=prefix,
        )
        await self._supervisor_set.wait()
        assert self._supervisor is not None
        await self._supervisor.start_child(
            ChildSpec(
                id=node.child_id,
                start=run_connection,
                args=(hub, self.settings.for_node(*address), self.options),
                restart=Restart.TRANSIENT,
                backoff=self.options.reconnect,
                shutdown=1.0,
                crash_log_level=logging.WARNING,
            )
        )
        return node

    async def _publish_probe(self, address: Address, channel: bytes, token: bytes) -> None:
        """A node's probe: ``SPUBLISH`` on its own connection while the map says it is the
        channel's master (``MOVED`` there is a topology event for its hub), else on the
        master's (a replica's probe: the master's message must reach the replica)."""
        slot_map = self._map
        owner = None if slot_map is None else slot_map.master_of(key_slot(channel))
        node = self._nodes.get(address)
        if node is None:
            raise RedisConnectionError(f"the cluster node {address[0]}:{address[1]} was left")
        if owner is None or owner.address == address:
            await node.hub.connection().spublish(channel, token)
            return
        await self._routed(channel, ("SPUBLISH", channel, token))

    async def _stop_node(self, node: _Node) -> None:
        logger.info("the cluster node %s is no master any more: disconnecting", node.label)
        del self._nodes[node.address]
        assert self._supervisor is not None
        await self._supervisor.terminate_child(node.child_id)
        await self._supervisor.delete_child(node.child_id)

    async def _node_of(self, key: bytes, bound: float) -> _Node:
        slot_map = await self._wait_map(bound)
        owner = slot_map.master_of(key_slot(key))
        if owner is None:
            self.request_refresh()
            raise RedisConnectionError(f"no master serves the hash slot {key_slot(key)} now")
        return await self._ensure_node(owner.address)

    async def _subscriber_node(self, key: bytes, bound: float) -> _Node:
        slot_map = await self._wait_map(bound)
        address = self._subscriber_of(slot_map, key_slot(key))
        if address is None:
            self.request_refresh()
            raise RedisConnectionError(f"no master serves the hash slot {key_slot(key)} now")
        return await self._ensure_node(address)

    def _hub_holding(self, kind: Kind, name: bytes, sink: MessageSink) -> PubSubHub:
        if kind is Kind.SHARD:
            for node in self._nodes.values():
                row = node.hub.table.get(kind, name)
                if row is not None and sink in row.sinks:
                    return node.hub
        return self.classic_hub

    def pinned_node(self) -> Address | None:
        """Where classic channels and patterns are subscribed and published, or None before
        the classic connection's first start."""
        return self._pinned

    async def run_classic(self, context: ActorContext) -> None:
        """The classic connection actor's body: pin a node, then serve the classic hub on it;
        pin again when a refresh finds the pinned node serving no slots."""
        while True:
            slot_map = await self._wait_map(self.options.reconnect_wait)
            owner = slot_map.master_of(0)
            online = [master for master in slot_map.masters() if master.online]
            if owner is not None and owner.online:
                self._pinned = owner.address
            elif online:
                self._pinned = online[0].address
            else:
                self._pinned = self.settings.seeds[0]
            self._repin = trio.CancelScope()
            with self._repin:
                await run_connection(
                    context, self.classic_hub, self.settings.for_node(*self._pinned), self.options
                )
            self._repins += 1

    # -- the broker interface --------------------------------------------------------------------

    async def subscribe(self, channel: bytes | str, sink: MessageSink) -> ClusterSubscription:
        """Subscribe a sink to a channel, on the pinned node (a cluster forwards every
        ``PUBLISH`` to every node)."""
        name = _name(channel)
        await self.classic_hub.subscribe(Kind.CHANNEL, name, sink)
        return ClusterSubscription(self, Kind.CHANNEL, name, sink)

    async def psubscribe(self, pattern: bytes | str, sink: MessageSink) -> ClusterSubscription:
        """Subscribe a sink to a glob pattern, on the pinned node."""
        name = _name(pattern)
        await self.classic_hub.subscribe(Kind.PATTERN, name, sink)
        return ClusterSubscription(self, Kind.PATTERN, name, sink)

    async def ssubscribe(self, channel: bytes | str, sink: MessageSink) -> ClusterSubscription:
        """Subscribe a sink to a shard channel, on the master that owns its hash slot.

        ``MOVED`` updates the map and subscribes on the node named, at most
        ``MAX_REDIRECTS`` times. Each attempt waits up to ``ack_timeout``.

        Raises:
            RedisTimeoutError: No slot map, or no acknowledgement, within ``ack_timeout``.
            RedisConnectionError: No master serves the slot now.
            RedisReplyError: The node refused the subscription.
        """
        name = _name(channel)
        if not name:
            raise ValueError("a channel name must not be empty")
        failure: RedisRedirectError | None = None
        for _ in range(MAX_REDIRECTS + 1):
            node = await self._subscriber_node(name, self.options.ack_timeout)
            try:
                here = await node.hub.subscribe(Kind.SHARD, name, sink)
                # A refresh handed it over to its new owner meanwhile: wait for that one.
                for _ in range(MAX_REDIRECTS):
                    if here:
                        break
                    holder = self._hub_holding(Kind.SHARD, name, sink)
                    if holder is self.classic_hub:
                        raise RedisConnectionError(f"the subscription to {name!r} was lost")
                    here = await holder.wait_subscribed(Kind.SHARD, name, sink)
            except RedisRedirectError as error:
                failure = error
                self._redirected(node.address, error)
                continue
            return ClusterSubscription(self, Kind.SHARD, name, sink)
        assert failure is not None
        raise failure

    async def publish(
        self, channel: bytes | str, payload: bytes | str, deadline: float = math.inf
    ) -> int:
        """``PUBLISH`` on the pinned node's connection; the cluster forwards it to every node,
        and the count is of that node's subscribers only.

        Raises:
            RedisConnectionError: Not connected to the pinned node.
        """
        return await self.classic_hub.publish(channel, payload, deadline)

    async def spublish(
        self, channel: bytes | str, payload: bytes | str, deadline: float = math.inf
    ) -> int:
        """``SPUBLISH`` on the connection of the master that owns the channel's slot, following
        ``MOVED`` and ``ASK``; returns that node's count of receivers.

        Raises:
            RedisConnectionError: That node is not connected within ``reconnect_wait``.
            RedisReplyError: The node refused it.
        """
        name = _name(channel)
        return int(await within(deadline, self._routed(name, ("SPUBLISH", name, payload))))

    async def _routed(self, key: bytes | None, args: Sequence[Argument]) -> Any:
        """Run a command where its key's slot is served, following redirections; a
        ``TRYAGAIN`` is sent again, a little later, until ``reconnect_wait`` has passed."""
        bound = self.options.reconnect_wait
        deadline = trio.current_time() + bound
        delay = TRYAGAIN_DELAY
        while True:
            try:
                return await self._redirected_command(key, args, bound)
            except RedisReplyError as error:
                if error.code != "TRYAGAIN" or trio.current_time() + delay > deadline:
                    raise
            await trio.sleep(delay)
            delay = min(delay * 2, 10 * TRYAGAIN_DELAY)

    async def _redirected_command(
        self, key: bytes | None, args: Sequence[Argument], bound: float
    ) -> Any:
        asked: Address | None = None
        failure: RedisRedirectError | None = None
        for _ in range(MAX_REDIRECTS + 1):
            if asked is not None:
                hub = (await self._ensure_node(asked)).hub
            elif key is not None:
                hub = (await self._node_of(key, bound)).hub
            else:
                hub = self.classic_hub
            with trio.move_on_after(bound):
                await hub.wait_connected()
            connection = hub.connection()
            try:
                if asked is not None:
                    return await connection.execute_asking(*args)
                return await connection.execute(*args)
            except RedisRedirectError as error:
                failure = error
                sender = (connection.settings.host, connection.settings.port)
                if error.moved:
                    self._redirected(sender, error)
                    asked = None
                else:
                    self._redirects += 1
                    asked = (error.host or sender[0], error.port)
        assert failure is not None
        raise failure

    async def wait_connected(self) -> None:
        """Wait until the slot map is known and every master's connection, and the pinned
        node's, is up with its subscriptions replayed. Unbounded: bound it with a cancel scope.

        Raises:
            RedisConfigurationError: A connection stopped for good.
        """
        await self._map_known.wait()
        while not self.connected:
            await self.classic_hub.wait_connected()
            for node in list(self._nodes.values()):
                await node.hub.wait_connected()
        await trio.lowlevel.checkpoint()

    @property
    def connected(self) -> bool:
        """Whether the map is known and every connection is up with its subscriptions."""
        return (
            self._map is not None
            and self.classic_hub.connected
            and all(node.hub.connected for node in self._nodes.values())
        )

    @property
    def failure(self) -> RedisConfigurationError | None:
        """The error that stopped a connection for good, or None."""
        for hub in (self.classic_hub, *(node.hub for node in self._nodes.values())):
            if hub.failure is not None:
                return hub.failure
        return None

    async def health_checks(self) -> dict[str, HealthCheck]:
        """``connection`` and ``server``: see ``actors.pubsub._cluster_health``."""
        return await cluster_health_checks(self)

    def node_hubs(self) -> dict[str, PubSubHub]:
        """Each node's hub (its connection and subscriptions), by ``host:port``."""
        return {node.label: node.hub for node in self._nodes.values()}

    def command_connection(self) -> Callable[[], Awaitable[RedisCommands]]:
        """Stores keep their state in the cluster: their commands are routed by key slot (a
        scope's keys share a hash tag, so its scripts stay on one node)."""
        return self._commands

    async def _commands(self) -> RedisCommands:
        await self._wait_map(self.options.reconnect_wait)
        return ClusterCommands(self)

    @property
    def shared_state_key(self) -> object:
        """This broker: its state is in the cluster, shared with every process already."""
        return self

    def statistics(self) -> ClusterPubSubStatistics:
        """The map's refreshes and every hub's statistics."""
        slot_map = self._map
        pinned = self._pinned
        return ClusterPubSubStatistics(
            classic=self.classic_hub.statistics(),
            pinned=None if pinned is None else f"{pinned[0]}:{pinned[1]}",
            nodes={node.label: node.hub.statistics() for node in self._nodes.values()},
            refreshes=self._refreshes,
            failed_refreshes=self._failed_refreshes,
            moves=self._moves,
            redirects=self._redirects,
            uncovered_slots=None if slot_map is None else slot_map.uncovered(),
        )


async def _run_topology(context: ActorContext, cluster: ClusterPubSub) -> None:
    try:
        await cluster.run_topology(context)
    except RedisConfigurationError as error:
        raise ActorShutdown(f"the cluster cannot be reached as configured: {error}") from None


async def _run_classic(context: ActorContext, cluster: ClusterPubSub) -> None:
    await cluster.run_classic(context)


@asynccontextmanager
async def open_cluster_pubsub(
    system: ActorSystem,
    settings_or_url: ClusterSettings | str,
    *,
    options: ConnectionOptions | None = None,
    name: str | None = None,
    observer: HubObserver | None = None,
) -> AsyncIterator[ClusterPubSub]:
    """Run the topology actor and the connection actors of a Redis Cluster for a block.

    The block starts at once; ``wait_connected`` waits for the map and every connection.
    A failure that cannot heal (refused credentials, TLS) cancels the block and leaves it.

    Args:
        system: The actor system to run in.
        settings_or_url: ``ClusterSettings``, or a ``redis+cluster://`` or ``rediss+cluster://``
            URL naming one or more seed nodes.
        options: Reconnect backoff, probes and timeouts of every node's connection.
        name: A registered name for the cluster's supervisor.
        observer: Told about every connection's attachments, losses, gaps and a failure.

    Raises:
        RedisUrlError: The URL is invalid.
        RedisConfigurationError: The cluster cannot be reached as configured.
    """
    if isinstance(settings_or_url, str):
        settings = ClusterSettings.from_url(settings_or_url)
    else:
        settings = settings_or_url
    options = options if options is not None else ConnectionOptions()
    body = trio.CancelScope()
    cluster = ClusterPubSub(settings, options, BlockObserver(body, observer))
    spec = SupervisorSpec(
        # Every node's reconnects count here: room for each of a few nodes failing at once.
        max_restarts=options.max_restarts * 4,
        within=options.within,
        children=[
            ChildSpec(
                id=child_id,
                start=start,
                args=(cluster,),
                restart=Restart.TRANSIENT,
                backoff=options.reconnect,
                shutdown=1.0,
                crash_log_level=logging.WARNING,
            )
            for child_id, start in (
                (TOPOLOGY_CHILD_ID, _run_topology),
                (CLASSIC_CHILD_ID, _run_classic),
            )
        ],
    )
    async with open_supervisor(system, spec, name=name) as supervisor:
        cluster._supervisor = supervisor
        cluster._supervisor_set.set()
        with body:
            yield cluster
    if cluster.failure is not None:
        raise cluster.failure
