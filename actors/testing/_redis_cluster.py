"""A private Redis Cluster for tests: masters and replicas on free ports of 127.0.0.1.

Each node is a ``RedisClusterNode`` (a ``RedisServer`` run with ``--cluster-enabled yes``) in its
own directory; the nodes are joined with ``redis-cli --cluster create``, and the cluster counts as
ready once every running node says ``cluster_state:ok`` and all of them see the same masters,
replicas and slots. The fault methods (``kill``, ``restart``, ``failover``, ``migrate_slot``)
act on the real processes and wait, with a deadline, until the cluster has settled again.

As ``RedisServer``, the class is synchronous, so that a session-wide pytest fixture can hold one;
the methods that wait have ``*_async`` twins that run in a worker thread.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final, Self

import trio

from actors._errors import RedisReplyError
from actors.testing._redis_cluster_node import (
    COMMAND_TIMEOUT,
    NODE_TIMEOUT,
    RedisClusterNode,
    parse_info,
)
from actors.testing._redis_server import HOST, REDIS_CLI, RedisServerError, missing_tooling

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import TracebackType

    from actors.testing._redis_cluster_node import ClusterNodeEntry

__all__ = ["CLUSTER_READY_TIMEOUT", "CLUSTER_SLOTS", "RESET_TIMEOUT", "RedisCluster"]

CLUSTER_SLOTS: Final = 16384
"""The number of hash slots of every Redis Cluster."""
CLUSTER_READY_TIMEOUT: Final = 30.0  # seconds
"""How long the cluster may take to form, or to settle after a fault, before the wait fails."""
RESET_TIMEOUT: Final = 10.0  # seconds
"""How long ``reset()`` waits for a cluster to heal before it forms a new one instead."""
_POLL_INTERVAL: Final = 0.05  # seconds between two looks at the cluster
_MIGRATE_BATCH: Final = 100  # keys per MIGRATE
_FLUSH_WAIT: Final = 2500  # milliseconds a FLUSHALL waits for the replicas to follow
_ANSI_ESCAPE: Final = re.compile(r"\x1b\[[0-9;]*m")


class RedisCluster:
    """A private Redis Cluster on 127.0.0.1: ``masters`` masters, each with its replicas.

    ``start()`` (or ``with RedisCluster() as cluster:``) starts every node, joins them with
    ``redis-cli --cluster create`` and returns once the cluster is ok (see ``wait_ok``); ``stop()``
    kills every node by its pid. Which node becomes a master is ``redis-cli``'s choice: ask
    ``masters()``, ``replicas()`` and ``master_of_slot()``, which read the cluster's own view.

    Args:
        directory: Where the nodes work, one directory each; ``None`` makes a temporary directory
            that ``stop()`` removes.
        masters: How many masters share the slots; ``redis-cli`` needs at least 3.
        replicas_per_master: How many replicas each master gets.
        node_timeout: ``cluster-node-timeout`` in milliseconds: a killed master is replaced by
            its replica about two node timeouts later.
        extra_args: More ``redis-server`` arguments for every node.
        ready_timeout: Seconds the cluster may take to form, or to settle after a fault.

    Raises:
        ValueError: Fewer than 3 masters, or a negative number of replicas.
    """

    def __init__(
        self,
        directory: Path | None = None,
        *,
        masters: int = 3,
        replicas_per_master: int = 1,
        node_timeout: int = NODE_TIMEOUT,
        extra_args: Sequence[str] = (),
        ready_timeout: float = CLUSTER_READY_TIMEOUT,
    ) -> None:
        if masters < 3:
            raise ValueError(f"a Redis Cluster needs at least 3 masters, not {masters}")
        if replicas_per_master < 0:
            raise ValueError(f"replicas_per_master must not be negative: {replicas_per_master}")
        self._owns_directory = directory is None
        self.directory = (
            Path(tempfile.mkdtemp(prefix="actors-cluster-")) if directory is None else directory
        )
        """Where the nodes work: one subdirectory per node."""
        self.replicas_per_master = replicas_per_master
        """How many replicas ``redis-cli`` gives each master."""
        self.ready_timeout = ready_timeout
        """Seconds the cluster may take to form or to settle."""
        self._size = masters * (1 + replicas_per_master)
        self._node_timeout = node_timeout
        self._extra_args = tuple(extra_args)
        self._generation = 0
        self._nodes = self._new_nodes()
        self._by_id: dict[str, RedisClusterNode] = {}
        self._lock = threading.RLock()

    def _new_nodes(self) -> tuple[RedisClusterNode, ...]:
        prefix = "" if self._generation == 0 else f"rebuilt-{self._generation}-"
        return tuple(
            RedisClusterNode(
                self.directory / f"{prefix}node-{number}",
                node_timeout=self._node_timeout,
                extra_args=self._extra_args,
            )
            for number in range(self._size)
        )

    # -- what the tests see

    @property
    def nodes(self) -> tuple[RedisClusterNode, ...]:
        """Every node, running or not, in the order they were given to ``redis-cli``."""
        return self._nodes

    @property
    def urls(self) -> list[str]:
        """The URL of every node."""
        return [node.url for node in self._nodes]

    @property
    def pids(self) -> list[int]:
        """The process ids of the nodes that run now."""
        return [pid for node in self._nodes if (pid := node.pid) is not None]

    def seed_url(self) -> str:
        """The URL of a running node (the first), from which a client learns the slot map.

        Raises:
            RedisServerError: No node is running.
        """
        return self._running()[0].url

    def __repr__(self) -> str:
        running = sum(node.running for node in self._nodes)
        return f"<RedisCluster {running}/{len(self._nodes)} nodes running in {self.directory}>"

    def _running(self) -> list[RedisClusterNode]:
        running = [node for node in self._nodes if node.running]
        if not running:
            raise RedisServerError(f"{self!r}: no node is running")
        return running

    def _node(self, node_id: str) -> RedisClusterNode:
        try:
            return self._by_id[node_id]
        except KeyError:  # pragma: no cover - a node the kit did not start
            raise RedisServerError(f"{self!r} has no node {node_id}") from None

    def _check_member(self, node: RedisClusterNode) -> None:
        if not any(node is member for member in self._nodes):
            raise ValueError(f"{node!r} is not a node of {self!r}")

    def _view(self) -> dict[str, ClusterNodeEntry]:
        """The cluster as the first running node that answers sees it."""
        errors: list[str] = []
        for node in self._running():
            try:
                return node.cluster_nodes()
            except OSError as error:
                errors.append(f"{node!r}: {error!r}")
        raise RedisServerError(f"no running node answered CLUSTER NODES: {'; '.join(errors)}")

    def masters(self) -> list[RedisClusterNode]:
        """The running nodes the cluster sees as masters, in the order of their first slot.

        Read from the cluster (the view of the first running node): after a failover the
        promoted replica is listed, once the nodes know of it (``failover`` waits for that).
        """
        entries = [
            entry
            for entry in self._view().values()
            if entry.is_master and self._node(entry.node_id).running
        ]
        entries.sort(key=lambda entry: (entry.slots or ((CLUSTER_SLOTS, 0),), entry.port))
        return [self._node(entry.node_id) for entry in entries]

    def replicas(self, master: RedisClusterNode | None = None) -> list[RedisClusterNode]:
        """The running nodes the cluster sees as replicas (of ``master``, when given), by port."""
        master_id = None if master is None else master.node_id
        entries = [
            entry
            for entry in self._view().values()
            if not entry.is_master
            and self._node(entry.node_id).running
            and (master_id is None or entry.master_id == master_id)
        ]
        entries.sort(key=lambda entry: entry.port)
        return [self._node(entry.node_id) for entry in entries]

    def master_of_slot(self, slot: int) -> RedisClusterNode:
        """The node the cluster sees as serving ``slot`` (0 to 16383).

        Raises:
            LookupError: No master serves the slot.
        """
        for entry in self._view().values():
            if entry.is_master and any(first <= slot <= last for first, last in entry.slots):
                return self._node(entry.node_id)
        raise LookupError(f"no master of {self!r} serves slot {slot}")

    def key_slot(self, key: str | bytes) -> int:
        """The hash slot of ``key`` (``CLUSTER KEYSLOT``; ``{tag}`` hash tags count)."""
        reply = self._running()[0].command("CLUSTER", "KEYSLOT", key)
        assert isinstance(reply, int)
        return reply

    # -- life cycle

    def start(self) -> Self:
        """Start every node, join them into one cluster, and wait until it is ok.

        Returns:
            The cluster itself.

        Raises:
            RedisServerError: ``redis-server`` or ``redis-cli`` is missing, a node did not start,
                ``redis-cli --cluster create`` failed, or the cluster was not ok within
                ``ready_timeout`` seconds. Every node started is stopped first.
            RuntimeError: A node of the cluster is running already.
        """
        with self._lock:
            if any(node.running for node in self._nodes):
                raise RuntimeError(f"{self!r} is already running")
            reason = missing_tooling(cluster=True)
            if reason is not None:
                raise RedisServerError(reason)
            try:
                for node in self._nodes:
                    node.start()
                # Asked once: an id stays the same across restarts (it is in nodes.conf).
                self._by_id = {node.node_id: node for node in self._nodes}
                self._create()
                self.wait_ok()
            except BaseException:
                self._kill_all()
                raise
            return self

    def _create(self) -> None:
        executable = shutil.which(REDIS_CLI) or REDIS_CLI
        command = [
            executable,
            "--cluster", "create",
            *(f"{HOST}:{node.port}" for node in self._nodes),
            "--cluster-replicas", str(self.replicas_per_master),
            "--cluster-yes",
        ]  # fmt: skip
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=self.ready_timeout, check=False
            )
        except subprocess.TimeoutExpired as error:
            raise RedisServerError(
                f"redis-cli --cluster create took more than {self.ready_timeout} s"
            ) from error
        if result.returncode != 0:
            output = _ANSI_ESCAPE.sub("", result.stdout + result.stderr)
            raise RedisServerError(
                f"redis-cli --cluster create failed with code {result.returncode}:\n{output}"
            )

    def _kill_all(self) -> None:
        for node in self._nodes:
            node.kill()

    def stop(self) -> None:
        """SIGKILL every node by its pid, reap it, and remove a temporary directory.

        Raises:
            ExceptionGroup: Stopping one or more nodes failed (the others are stopped all the same).
        """
        with self._lock:
            errors: list[Exception] = []
            for node in self._nodes:
                try:
                    node.stop()
                except Exception as error:  # pragma: no cover - reported below
                    errors.append(error)
            if self._owns_directory:
                shutil.rmtree(self.directory, ignore_errors=True)
            if errors:  # pragma: no cover
                raise ExceptionGroup("stopping the cluster's redis-server processes failed", errors)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def reset(self, *, timeout: float = RESET_TIMEOUT) -> None:
        """Make the cluster fit for the next test: every node running, the cluster ok, no keys.

        Starts every node that is not running, waits up to ``timeout`` seconds for the cluster to
        be ok, and flushes every master (waiting for its replicas to follow). A cluster that does
        not heal in time (a slot left half migrated, a node told to forget another) is replaced:
        every node is killed and a new cluster formed on new nodes. Roles and the slot map are
        not restored: after a failover or a migration, read them from the cluster again.

        Raises:
            RedisServerError: A new cluster was needed and could not be formed.
        """
        with self._lock:
            try:
                for node in self._nodes:
                    if not node.running:
                        node.start()
                self.wait_ok(timeout)
            except RedisServerError:
                self._kill_all()
                self._generation += 1
                self._nodes = self._new_nodes()
                self.start()
            for master in self.masters():
                self._flush(master)

    def _flush(self, master: RedisClusterNode) -> None:
        """Flush ``master`` and wait until every replica of it has acknowledged the flush, up
        to ``ready_timeout``. ``WAIT`` goes on the flush's own connection (it waits for that
        connection's writes only) and gives up after ``_FLUSH_WAIT`` with fewer
        acknowledgements (a replica that has just restarted may still be syncing), so the
        flush and the wait are sent again until they succeed."""
        replicas = len(self.replicas(master))

        def unacknowledged() -> str | None:
            _, answer = master.commands(("FLUSHALL",), ("WAIT", replicas, _FLUSH_WAIT))
            acknowledged = _acknowledged(answer)
            if acknowledged >= replicas:
                return None
            return (
                f"{acknowledged} of the {replicas} replicas of the master on port "
                f"{master.port} acknowledged its FLUSHALL"
            )

        self._wait(unacknowledged, None)

    async def reset_async(self) -> None:
        """``reset()`` in a worker thread, so that the trio loop keeps running meanwhile."""
        await trio.to_thread.run_sync(self.reset)

    # -- waiting for the cluster to settle

    def wait_ok(self, timeout: float | None = None) -> None:
        """Wait until the cluster is ok and every running node sees it the same way.

        That is: each running node says ``cluster_state:ok``; each knows every running node and
        suspects none of them; all see the same masters, replicas and slots; the running masters
        serve all 16384 slots, with no slot half migrated; and each running replica's link to its
        master is up.

        Args:
            timeout: Seconds to wait; ``None`` means ``ready_timeout``.

        Raises:
            RedisServerError: Still not ok at the deadline; the message names the node that is
                not ok, why, and its last ``CLUSTER INFO``.
        """
        self._wait(self._not_ok, timeout)

    def _wait(self, problem: Callable[[], str | None], timeout: float | None) -> None:
        limit = self.ready_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while True:
            found = problem()
            if found is None:
                return
            if time.monotonic() >= deadline:
                raise RedisServerError(f"{self!r} is not ok after {limit} s: {found}")
            time.sleep(_POLL_INTERVAL)

    def _not_ok(self) -> str | None:
        """Why the cluster is not ok and settled, or None when it is."""
        running = self._running()
        running_ids = {node.node_id for node in running}
        agreed: tuple[RedisClusterNode, frozenset[tuple[object, ...]]] | None = None
        for node in running:
            info = "(no answer)"
            try:
                info = node.text("CLUSTER", "INFO")
                problem, seen = self._node_problem(node, info, running_ids)
            except (OSError, RedisReplyError) as error:
                problem, seen = f"no answer: {error!r}", frozenset()
            if problem is None and agreed is not None and seen != agreed[1]:
                problem = f"it sees other masters, replicas or slots than {agreed[0]!r}"
            if problem is not None:
                return f"{node!r} (id {node.node_id}): {problem}\n--- its CLUSTER INFO ---\n{info}"
            agreed = agreed or (node, seen)
        return None

    def _node_problem(
        self, node: RedisClusterNode, info: str, running_ids: set[str]
    ) -> tuple[str | None, frozenset[tuple[object, ...]]]:
        """What is wrong in one node's view, and what it sees of the running nodes' roles."""
        nothing: frozenset[tuple[object, ...]] = frozenset()
        state = parse_info(info).get("cluster_state")
        if state != "ok":
            return f"cluster_state:{state}", nothing
        view = node.cluster_nodes()
        for node_id in sorted(running_ids):
            entry = view.get(node_id)
            if entry is None:
                return f"it does not know node {node_id} yet", nothing
            if entry.failing or not entry.connected:
                flags = ",".join(sorted(entry.flags))
                link = "connected" if entry.connected else "disconnected"
                return f"it sees node {self._node(node_id)!r} as {flags} ({link})", nothing
        if any(entry.open_slots for entry in view.values()):
            return "a slot is being migrated", nothing
        live = [entry for entry in view.values() if entry.node_id in running_ids]
        served = sum(last - first + 1 for e in live if e.is_master for first, last in e.slots)
        if served != CLUSTER_SLOTS:
            return f"the running masters serve {served} of {CLUSTER_SLOTS} slots", nothing
        for entry in live:
            if not entry.is_master and entry.master_id not in running_ids:
                return f"it sees {self._node(entry.node_id)!r} replicate no running master", nothing
        if not view[node.node_id].is_master:
            status = parse_info(node.text("INFO", "replication")).get("master_link_status")
            if status != "up":
                return f"its link to its master is {status}", nothing
        seen = frozenset((e.node_id, e.is_master, e.master_id, e.slots) for e in live)
        return None, seen

    async def wait_ok_async(self) -> None:
        """``wait_ok()`` in a worker thread, so that the trio loop keeps running meanwhile."""
        await trio.to_thread.run_sync(self.wait_ok)

    # -- faults

    def kill(self, node: RedisClusterNode) -> None:
        """SIGKILL one node, as a crash would; its replica takes over if it was a master.

        Returns at once: ``wait_ok()`` waits for the cluster to settle (a failover takes about
        two ``node_timeout`` s). ``restart(node)`` brings the node back.

        Raises:
            ValueError: The node is not one of this cluster's.
        """
        self._check_member(node)
        node.kill()

    def restart(self, node: RedisClusterNode) -> None:
        """Start a node again (SIGTERM first if it runs) and wait until the cluster is ok.

        The node keeps its port, bus port and id (its ``nodes.conf``), and rejoins: a master that
        was replaced meanwhile comes back as a replica of the node that replaced it. It comes
        back without keys; a master that comes back before it was replaced keeps its slots,
        empty, and its replicas copy that.

        Raises:
            ValueError: The node is not one of this cluster's.
            RedisServerError: The node did not start, or the cluster was not ok in time.
        """
        self._check_member(node)
        with self._lock:
            node.restart()
            self.wait_ok()

    async def restart_async(self, node: RedisClusterNode) -> None:
        """``restart()`` in a worker thread, so that the trio loop keeps running meanwhile."""
        await trio.to_thread.run_sync(self.restart, node)

    def failover(self, replica: RedisClusterNode, *, force: bool = False) -> None:
        """Promote a replica with ``CLUSTER FAILOVER`` and wait until the roles have changed.

        Its master (when running) becomes its replica. Returns once every running node sees the
        new roles and the cluster is ok.

        Args:
            replica: The replica to promote.
            force: Send ``CLUSTER FAILOVER FORCE``: no handshake with the master, which is needed
                when the master is down and the cluster has not replaced it yet.

        Raises:
            ValueError: The node is not one of this cluster's, or not a replica.
            RedisReplyError: The replica refused, such as a failover without ``force`` while its
                master is down.
            RedisServerError: The roles did not change, or the cluster was not ok, in time.
        """
        self._check_member(replica)
        with self._lock:
            old_master_id = replica.cluster_nodes()[replica.node_id].master_id
            if old_master_id is None:
                raise ValueError(f"{replica!r} is a master, not a replica")
            old_master = self._node(old_master_id)
            replica.command("CLUSTER", "FAILOVER", *(["FORCE"] if force else []))

            def roles_not_swapped() -> str | None:
                if not replica.cluster_nodes()[replica.node_id].is_master:
                    return f"{replica!r} is not a master yet"
                if old_master.running:
                    entry = old_master.cluster_nodes()[old_master.node_id]
                    if entry.master_id != replica.node_id:
                        return f"{old_master!r} does not replicate {replica!r} yet"
                return None

            deadline = time.monotonic() + self.ready_timeout
            self._wait(roles_not_swapped, None)
            self.wait_ok(max(0.0, deadline - time.monotonic()))

    async def failover_async(self, replica: RedisClusterNode, *, force: bool = False) -> None:
        """``failover()`` in a worker thread, so that the trio loop keeps running meanwhile."""
        await trio.to_thread.run_sync(lambda: self.failover(replica, force=force))

    def migrate_slot(self, slot: int, source: RedisClusterNode, target: RedisClusterNode) -> int:
        """Move one slot and its keys from one master to another, as ``redis-cli`` resharding does.

        The steps of the cluster specification: ``CLUSTER SETSLOT slot IMPORTING`` on the target,
        ``MIGRATING`` on the source, ``CLUSTER GETKEYSINSLOT`` and ``MIGRATE ... KEYS`` until the
        source holds none of the slot's keys, then ``CLUSTER SETSLOT slot NODE target`` on the
        target, the source and every other running master. Returns once the cluster is ok and
        every node sees the new owner; the source then answers ``MOVED`` for the slot's keys.

        Returns:
            How many keys were moved.

        Raises:
            ValueError: A node is not one of this cluster's, ``source`` does not serve the slot,
                or ``target`` is ``source`` or not a master.
            RedisServerError: The cluster was not ok in time.
        """
        self._check_member(source)
        self._check_member(target)
        with self._lock:
            if self.master_of_slot(slot) is not source:
                raise ValueError(f"{source!r} does not serve slot {slot}")
            if target is source or target not in self.masters():
                raise ValueError(f"{target!r} is not another master than {source!r}")
            target.command("CLUSTER", "SETSLOT", slot, "IMPORTING", source.node_id)
            source.command("CLUSTER", "SETSLOT", slot, "MIGRATING", target.node_id)
            moved = 0
            timeout_ms = int(COMMAND_TIMEOUT * 1000)
            while keys := source.command("CLUSTER", "GETKEYSINSLOT", slot, _MIGRATE_BATCH):
                assert isinstance(keys, list)
                source.command("MIGRATE", HOST, target.port, "", 0, timeout_ms, "KEYS", *keys)
                moved += len(keys)
            others = [node for node in self.masters() if node is not source and node is not target]
            for node in [target, source, *others]:
                node.command("CLUSTER", "SETSLOT", slot, "NODE", target.node_id)
            self.wait_ok()
            return moved

    async def migrate_slot_async(
        self, slot: int, source: RedisClusterNode, target: RedisClusterNode
    ) -> int:
        """``migrate_slot()`` in a worker thread, so that the trio loop keeps running meanwhile."""
        return await trio.to_thread.run_sync(self.migrate_slot, slot, source, target)

    async def start_async(self) -> Self:
        """``start()`` in a worker thread, so that the trio loop keeps running meanwhile."""
        return await trio.to_thread.run_sync(self.start)

    async def stop_async(self) -> None:
        """``stop()`` in a worker thread, so that the trio loop keeps running meanwhile."""
        await trio.to_thread.run_sync(self.stop)


def _acknowledged(reply: object) -> int:
    """``WAIT``'s reply: how many replicas acknowledged."""
    if not isinstance(reply, int):
        raise RedisServerError(f"WAIT answered {reply!r}")
    return reply
