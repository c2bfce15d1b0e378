"""One node of a private Redis Cluster, and the blocking RESP2 calls the kit makes to nodes.

The kit talks to the nodes over short connections of its own, encoded and parsed with
``actors.redis``'s sans-IO RESP code, so that it works from any thread and without a trio loop.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Final

import attrs

from actors._errors import RedisReplyError
from actors.redis import RespParser, encode_command
from actors.testing._redis_server import HOST, START_TIMEOUT, RedisServer, free_port

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from actors.redis import Argument

__all__ = ["COMMAND_TIMEOUT", "NODE_TIMEOUT", "ClusterNodeEntry", "RedisClusterNode", "parse_info"]

NODE_TIMEOUT: Final = 1000  # milliseconds
"""``cluster-node-timeout``: a node silent this long is suspected, and a failover follows."""
COMMAND_TIMEOUT: Final = 5.0  # seconds
"""How long one command to one node may take: to connect, and for each piece of the reply."""


def _command(host: str, port: int, args: Sequence[Argument], timeout: float) -> object:
    """Send one command on a new connection and return the reply (RESP2, blocking)."""
    return _commands(host, port, [args], timeout)[0]


def _commands(
    host: str, port: int, commands: Sequence[Sequence[Argument]], timeout: float
) -> list[object]:
    """Send commands on one new connection and return their replies, in order (RESP2,
    blocking); the first error reply is raised."""
    parser = RespParser()
    replies: list[object] = []
    with socket.create_connection((host, port), timeout=timeout) as connection:
        connection.sendall(b"".join(encode_command(*args) for args in commands))
        while len(replies) < len(commands):
            data = connection.recv(65536)
            if not data:
                raise ConnectionError(f"{host}:{port} closed the connection before replying")
            replies.extend(parser.feed(data))
    for reply in replies:
        if isinstance(reply, RedisReplyError):
            raise reply
    return replies


def parse_info(text: str) -> dict[str, str]:
    """The ``field:value`` lines of an ``INFO`` or ``CLUSTER INFO`` reply, as a dict."""
    fields = (line.partition(":") for line in text.splitlines() if ":" in line)
    return {key: value.strip() for key, _, value in fields}


@attrs.frozen(kw_only=True)
class ClusterNodeEntry:
    """One line of ``CLUSTER NODES``: what one node knows of one node of the cluster."""

    node_id: str
    """The described node's id."""
    port: int
    """Its client port."""
    flags: frozenset[str]
    """Its flags, such as ``{"myself", "master"}``, ``{"slave"}`` or ``{"master", "fail?"}``."""
    master_id: str | None
    """The id of its master, for a replica; None for a master."""
    connected: bool
    """Whether the describing node's link to it over the cluster bus is up."""
    slots: tuple[tuple[int, int], ...]
    """The slots it serves, as sorted ``(first, last)`` ranges (both included)."""
    open_slots: bool
    """Whether a slot is half moved to or from it (``[slot->-id]`` or ``[slot-<-id]``)."""

    @property
    def is_master(self) -> bool:
        """Whether it is a master (flag ``master``), failed or not."""
        return "master" in self.flags

    @property
    def failing(self) -> bool:
        """Whether it is suspected (``fail?``) or known (``fail``) to have failed."""
        return bool(self.flags & {"fail", "fail?"})

    @classmethod
    def parse(cls, line: str) -> ClusterNodeEntry:
        """Read one line of ``CLUSTER NODES``."""
        # <id> <ip:port@cport[,hostname]> <flags> <master> <ping> <pong> <epoch> <link> <slot>...
        fields = line.split()
        address = fields[1].partition("@")[0]
        slots: list[tuple[int, int]] = []
        open_slots = False
        for word in fields[8:]:
            if word.startswith("["):
                open_slots = True
                continue
            first, _, last = word.partition("-")
            slots.append((int(first), int(last or first)))
        return cls(
            node_id=fields[0],
            port=int(address.rpartition(":")[2]),
            flags=frozenset(fields[2].split(",")),
            master_id=None if fields[3] == "-" else fields[3],
            connected=fields[7] == "connected",
            slots=tuple(sorted(slots)),
            open_slots=open_slots,
        )


class RedisClusterNode(RedisServer):
    """One node of a ``RedisCluster``: a ``RedisServer`` run with ``--cluster-enabled yes``.

    The node's cluster state (its id, its epoch, its view of the others) is kept in ``nodes.conf``
    in its directory, which ``kill()`` leaves in place: ``restart()`` brings the node back on the
    same port and bus port with the same id, and it rejoins the cluster. Keys are not persisted.

    Args:
        directory: Where the node works, logs and keeps ``nodes.conf``.
        node_timeout: ``cluster-node-timeout`` in milliseconds.
        extra_args: More ``redis-server`` arguments.
        start_timeout: Seconds a start may take.
    """

    def __init__(
        self,
        directory: Path | None = None,
        *,
        node_timeout: int = NODE_TIMEOUT,
        extra_args: Sequence[str] = (),
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        super().__init__(directory, extra_args=extra_args, start_timeout=start_timeout)
        self.node_timeout = node_timeout
        """``cluster-node-timeout`` in milliseconds."""
        self._bus_port = self._free_bus_port()
        self._node_id: str | None = None

    def _free_bus_port(self) -> int:
        port = free_port()
        while port == self._port:
            port = free_port()
        return port

    def _pick_new_ports(self) -> None:
        super()._pick_new_ports()
        self._bus_port = self._free_bus_port()

    @property
    def bus_port(self) -> int:
        """The cluster bus port, on which the nodes talk to each other (``--cluster-port``)."""
        return self._bus_port

    def _variant_args(self) -> list[str]:
        return [
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-port", str(self._bus_port),
            "--cluster-node-timeout", str(self.node_timeout),
            # A replica may always take over, however long it was cut off from its master.
            "--cluster-replica-validity-factor", "0",
            # A replica gets its first copy at once, not after the default 5 s of waiting for
            # more replicas to share it.
            "--repl-diskless-sync-delay", "0",
        ]  # fmt: skip

    @property
    def node_id(self) -> str:
        """The node's cluster id (``CLUSTER MYID``), the same across restarts."""
        if self._node_id is None:
            self._node_id = self.text("CLUSTER", "MYID")
        return self._node_id

    def command(self, *args: Argument, timeout: float = COMMAND_TIMEOUT) -> object:
        """Send one command to this node on a new connection and return its reply (blocking).

        The connection speaks RESP2: replies are ``bytes``, ``int``, ``list`` or ``None``.

        Args:
            *args: The command and its arguments.
            timeout: Seconds to connect, and to wait for each piece of the reply.

        Raises:
            RedisReplyError: The node answered with an error (``MOVED``, ``ASK``, ...).
            OSError: The node could not be reached, or did not answer in time.
        """
        return _command(HOST, self.port, args, timeout)

    def commands(
        self, *commands: Sequence[Argument], timeout: float = COMMAND_TIMEOUT
    ) -> list[object]:
        """Send several commands to this node on one new connection and return their replies.

        What ``command`` does, for commands that must share a connection: ``WAIT`` waits for
        the replicas to acknowledge the writes made on its own connection only.

        Raises:
            RedisReplyError: The node answered one of them with an error (the first one).
            OSError: The node could not be reached, or did not answer in time.
        """
        return _commands(HOST, self.port, commands, timeout)

    def text(self, *args: Argument) -> str:
        """Send a command whose reply is text (``CLUSTER INFO``, ``INFO``) and decode the reply."""
        reply = self.command(*args)
        if not isinstance(reply, bytes):
            raise TypeError(f"{args[0]!r} answered {reply!r}, not text")
        return reply.decode()

    def cluster_info(self) -> dict[str, str]:
        """``CLUSTER INFO`` as a dict, such as ``{"cluster_state": "ok", ...}``."""
        return parse_info(self.text("CLUSTER", "INFO"))

    def cluster_nodes(self) -> dict[str, ClusterNodeEntry]:
        """``CLUSTER NODES``: what this node knows of every node, by node id."""
        lines = self.text("CLUSTER", "NODES").splitlines()
        entries = map(ClusterNodeEntry.parse, lines)
        return {entry.node_id: entry for entry in entries}
