"""The project's own pieces of the Redis test harness, beside the kit in ``actors.testing``.

``FakeRedisTcpServer`` runs fakeredis (a development dependency, not the kit's) over TCP: the
zero-install server of the tests that must run everywhere. ``encode_command`` is a hand-written
RESP encoder, so that the harness's own tests check the servers without any Redis client.
"""

from __future__ import annotations

import threading
from typing import ClassVar, Self

import fakeredis

from actors.redis import RedisConnection, open_redis_connection
from actors.testing import RedisServer, free_port, wait_until

HOST = "127.0.0.1"


def encode_command(*args: str | bytes | int) -> bytes:
    """One command as a RESP array of bulk strings, as every client sends it."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class FakeRedisTcpServer:
    """fakeredis's ``TcpFakeServer`` in a thread on a free port: the zero-install server.

    It answers ``HELLO 3`` but sends pub/sub pushes as plain arrays, so clients must use their
    RESP2 mode with it (``protocol`` says 2).
    """

    scheme: ClassVar[str] = "redis"
    protocol: ClassVar[int] = 2

    def __init__(self) -> None:
        self._server = fakeredis.TcpFakeServer((HOST, 0))
        self.host = HOST
        self.port: int = self._server.server_address[1]
        self.url = f"redis://{HOST}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fakeredis-tcp-{self.port}",
            daemon=True,
        )

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, end every client thread and close the listening socket."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()


def cluster_node_args() -> tuple[str, ...]:
    """``redis-server`` arguments for a lone cluster-enabled node (with no slot until told).

    It answers ``CLUSTER KEYSLOT`` as it is; ``CLUSTER ADDSLOTSRANGE 0 16383`` makes it serve
    the whole key space. The cluster bus port is chosen here: by default it is the client port
    plus 10000, and Redis refuses to start on a client port above 55535, which most of the
    kernel's free ports are.
    """
    return (
        "--cluster-enabled", "yes",
        "--cluster-config-file", "nodes.conf",
        "--cluster-port", str(free_port()),
    )  # fmt: skip


async def cluster_ok(redis: RedisConnection) -> bool:
    """Whether the node serves its slots (``cluster_state:ok``)."""
    info: bytes = await redis.execute("CLUSTER", "INFO")
    return b"cluster_state:ok" in info


async def own_every_slot(server: RedisServer) -> None:
    """Assign every slot to the lone node and wait until it serves them (``cluster_state:ok``,
    which a master reaches about two seconds after it started)."""
    async with open_redis_connection(server.url) as redis:
        assert await redis.execute("CLUSTER", "ADDSLOTSRANGE", 0, 16383) == b"OK"
        await wait_until(lambda: cluster_ok(redis), what="cluster_state:ok", interval=0.05)
