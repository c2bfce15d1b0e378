"""An in-memory Redis server with scripted faults, for testing the Redis layer in virtual time.

Its ``connect`` method is an ``actors.redis.Connector``: give it to ``open_redis_connection`` or to
``ConnectionOptions(connector=...)`` and the real client speaks RESP2 or RESP3 to it over a byte
stream in memory. Nothing touches a socket, so the Redis layer's timing (connect timeouts,
liveness probes, reconnect backoff, acknowledgement timeouts) runs under trio's ``MockClock``
and ``autojump_clock``, and a test can assert exact virtual times.

Faults come in two groups. New connections can be refused, made to hang (a black-holed SYN) or
accepted and never answered (a stalled handshake). Live connections can be stalled and resumed
(a black hole: bytes wait in both directions and flow again in order), dropped (the client reads
EOF), reset (the client's next read or write fails) or lost to a restart (every connection
dropped and every subscription and key gone). Subscriptions can be ended from the server's side,
as a cluster does to shard channels whose hash slot moves. Each connection records what it was
sent, and the server records when every connection attempt was made, on trio's clock.
"""

from __future__ import annotations

import enum
import errno
import itertools
import os
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final

import attrs
import trio

from actors._errors import RedisConnectionError
from actors.redis import Kind, Transport, key_slot
from actors.testing._memory_commands import Dataset
from actors.testing._memory_connection import CommandHook, MemoryRedisConnection
from actors.testing._memory_state import ServerConfig

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from actors.redis import RedisSettings

__all__ = ["AttemptOutcome", "ConnectionAttempt", "MemoryRedisServer", "open_memory_redis_server"]

DEFAULT_VERSION: Final = "7.2.4"
DEFAULT_DATABASES: Final = 16


class AttemptOutcome(enum.Enum):
    """What became of one connection attempt."""

    ACCEPTED = "accepted"
    """The connection was made (it may still have been stalled)."""
    REFUSED = "refused"
    """The connector raised ``RedisConnectionError`` (connection refused)."""
    HANGING = "hanging"
    """The connect is waiting, as behind a black-holed SYN."""
    ABANDONED = "abandoned"
    """The client gave up (its connect timeout) while the connect hung."""


@attrs.define(eq=False)
class ConnectionAttempt:
    """One call of the server's ``connect``; the server updates ``outcome`` as it proceeds."""

    at: float
    """``trio.current_time()`` when the client tried to connect."""
    outcome: AttemptOutcome
    """What became of it (so far)."""
    connection: MemoryRedisConnection | None = None
    """The connection, once accepted (it stays here after it closed)."""


class _Admission(enum.Enum):
    ACCEPT = "accept"
    REFUSE = "refuse"
    HANG = "hang"
    STALL = "stall"  # accept, then never answer


class MemoryRedisServer:
    """A Redis 7 server in memory, speaking RESP3 and RESP2, with scripted faults.

    Run it with ``open_memory_redis_server`` (or ``await nursery.start(server.serve)``) and give
    its ``connect`` to the client. It answers the commands the client uses: the handshake (HELLO,
    AUTH, SELECT, CLIENT SETNAME/GETNAME/ID), PING, ECHO, QUIT, Pub/Sub (PUBLISH, SPUBLISH,
    [P|S]SUBSCRIBE, [P|S]UNSUBSCRIBE, PUBSUB CHANNELS/NUMSUB/NUMPAT/SHARDCHANNELS/SHARDNUMSUB),
    INFO, and GET, SET, DEL, EXISTS; anything else gets Redis's unknown-command error.

    Args:
        username: The user that ``password`` belongs to; any other user name is refused.
        password: Required before any command when set, as Redis's ``requirepass``.
        databases: How many databases ``SELECT`` accepts.
        version: The version the server reports in HELLO and INFO.
        resp3: False for a server that predates RESP3: HELLO is an unknown command.
    """

    def __init__(
        self,
        *,
        username: str = "default",
        password: str | None = None,
        databases: int = DEFAULT_DATABASES,
        version: str = DEFAULT_VERSION,
        resp3: bool = True,
    ) -> None:
        if databases < 1:
            raise ValueError(f"a Redis server has at least one database, not {databases}")
        self._config = ServerConfig(
            username=username,
            password=password,
            databases=databases,
            version=version,
            resp3=resp3,
        )
        self._dataset = Dataset(self._config, started_at=0.0)
        self._nursery: trio.Nursery | None = None
        self._client_ids = itertools.count(1)
        self._attempts: list[ConnectionAttempt] = []
        self._connections: dict[MemoryRedisConnection, None] = {}
        self._admission = _Admission.ACCEPT
        self._admission_changed = trio.lowlevel.ParkingLot()
        self._stalled = False
        # Commands each new connection may send before it is closed, and whether by a reset.
        self._lifetime: tuple[int, bool] | None = None
        self._command_hook: CommandHook | None = None
        self._changed = trio.Event()
        self._restarts = 0

    # -- running ---------------------------------------------------------------------------------

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve connections until cancelled; then every connection is dropped.

        Start it with ``await nursery.start(server.serve)``: connections are accepted once it
        has started, and refused before it starts and after it ends.

        Raises:
            RuntimeError: The server is already serving.
        """
        if self._nursery is not None:
            raise RuntimeError("this server is already serving")
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._dataset = Dataset(self._config, started_at=trio.current_time())
                task_status.started()
                await trio.sleep_forever()
        finally:
            # The connections' tasks have dropped their connections on the way out.
            self._nursery = None
            self._admission_changed.unpark_all()
            self._notify()

    async def connect(self, settings: RedisSettings) -> Transport:
        """Open a connection to this server: an ``actors.redis.Connector``.

        The address in ``settings`` is ignored; the client's connect timeout applies as usual.

        Args:
            settings: The client's settings.

        Returns:
            The client's end of a new connection.

        Raises:
            RedisConnectionError: The server refuses connections (``refuse_connections``), or is
                not serving: "connection refused", as ``open_transport`` reports it.
        """
        await trio.lowlevel.checkpoint()
        attempt = ConnectionAttempt(at=trio.current_time(), outcome=AttemptOutcome.HANGING)
        self._attempts.append(attempt)
        self._notify()
        try:
            while self._admission is _Admission.HANG and self._nursery is not None:
                await self._admission_changed.park()
        except BaseException:
            attempt.outcome = AttemptOutcome.ABANDONED
            self._notify()
            raise
        if self._nursery is None or self._admission is _Admission.REFUSE:
            attempt.outcome = AttemptOutcome.REFUSED
            self._notify()
            refusal = ConnectionRefusedError(errno.ECONNREFUSED, os.strerror(errno.ECONNREFUSED))
            # Worded as open_transport words a refused TCP connect.
            raise RedisConnectionError(
                f"cannot connect to {settings.describe()}: connection refused"
            ) from refusal
        connection = self._accept(stalled=self._stalled or self._admission is _Admission.STALL)
        attempt.outcome = AttemptOutcome.ACCEPTED
        attempt.connection = connection
        self._notify()
        return Transport(stream=connection.client_stream)

    def _accept(self, *, stalled: bool) -> MemoryRedisConnection:
        assert self._nursery is not None
        connection = MemoryRedisConnection(
            next(self._client_ids),
            self._dataset,
            self._nursery,
            stalled=stalled,
            lifetime=self._lifetime,
            command_hook=lambda: self._command_hook,
            on_command=self._notify,
            on_closed=self._connection_closed,
        )
        self._connections[connection] = None
        return connection

    def _connection_closed(self, connection: MemoryRedisConnection) -> None:
        self._connections.pop(connection, None)
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    # -- introspection ---------------------------------------------------------------------------

    @property
    def serving(self) -> bool:
        """Whether the server is running (between ``serve``'s start and its end)."""
        return self._nursery is not None

    @property
    def attempts(self) -> list[ConnectionAttempt]:
        """Every connection attempt, refused and abandoned ones included, in order."""
        return list(self._attempts)

    def attempt_times(self) -> list[float]:
        """When each connection attempt was made, on trio's clock."""
        return [attempt.at for attempt in self._attempts]

    @property
    def connections(self) -> list[MemoryRedisConnection]:
        """The live connections, oldest first."""
        return list(self._connections)

    @property
    def restarts(self) -> int:
        """How many times ``restart`` was called."""
        return self._restarts

    def numsub(self, channel: bytes | str) -> int:
        """How many connections are subscribed to a channel (``PUBSUB NUMSUB``)."""
        return len(self._dataset.channels.get(_bytes(channel), {}))

    def shard_numsub(self, channel: bytes | str) -> int:
        """How many connections are subscribed to a shard channel (``PUBSUB SHARDNUMSUB``)."""
        return len(self._dataset.shard_channels.get(_bytes(channel), {}))

    def numpat(self) -> int:
        """How many distinct patterns are subscribed to (``PUBSUB NUMPAT``)."""
        return len(self._dataset.patterns)

    def channels(self, pattern: bytes | str | None = None) -> list[bytes]:
        """The channels with subscribers, optionally only those matching a glob pattern."""
        return self._dataset.active_channels(None if pattern is None else _bytes(pattern))

    async def publish(self, channel: bytes | str, payload: bytes | str) -> int:
        """Publish as another client would; returns the receiver count ``PUBLISH`` returns.

        Stalled connections count as receivers; their messages wait in the black hole.
        """
        await trio.lowlevel.checkpoint()
        return self._dataset.publish(_bytes(channel), _bytes(payload))

    async def spublish(self, channel: bytes | str, payload: bytes | str) -> int:
        """Publish to a shard channel as another client would (``SPUBLISH``)."""
        await trio.lowlevel.checkpoint()
        return self._dataset.spublish(_bytes(channel), _bytes(payload))

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        """Wait until ``condition()`` holds, checking it after every change the server sees
        (a connection attempt, a command, a connection closing). A checkpoint.

        The wait has no deadline of its own: put it under the test's ``trio.fail_after``.
        """
        await trio.lowlevel.checkpoint()
        while not condition():
            await self._changed.wait()

    # -- authentication --------------------------------------------------------------------------

    def set_password(self, password: str | None, *, username: str = "default") -> None:
        """Change the credentials, as a credential rotation would.

        Connections already authenticated stay so; new ones must use the new password.
        ``None`` makes the ``default`` user open again (no AUTH needed).
        """
        self._config.username = username
        self._config.password = password

    def refuse_authentication(self) -> None:
        """Refuse every AUTH and HELLO AUTH with ``WRONGPASS``, right password or not."""
        self._config.authentication_refused = True

    def accept_authentication(self) -> None:
        """Check AUTH and HELLO AUTH against the password again."""
        self._config.authentication_refused = False

    # -- faults of new connections ---------------------------------------------------------------

    def refuse_connections(self) -> None:
        """Refuse new connections: ``connect`` raises ``RedisConnectionError``."""
        self._set_admission(_Admission.REFUSE)

    def hang_connections(self) -> None:
        """Make new connections hang, as behind a black-holed SYN: ``connect`` waits until
        connections are accepted or refused again, or the client's connect timeout fires."""
        self._set_admission(_Admission.HANG)

    def stall_handshakes(self) -> None:
        """Accept new connections but never answer them (they are stalled from the start;
        ``resume`` lifts it)."""
        self._set_admission(_Admission.STALL)

    def accept_connections(self) -> None:
        """Accept new connections normally again (hanging connects go ahead)."""
        self._set_admission(_Admission.ACCEPT)

    def _set_admission(self, admission: _Admission) -> None:
        self._admission = admission
        self._admission_changed.unpark_all()

    # -- faults of live connections --------------------------------------------------------------

    def stall(self) -> None:
        """Black-hole every connection, and each new one, until ``resume`` (see
        ``MemoryRedisConnection.stall``). Publishing from ``publish`` still works."""
        self._stalled = True
        for connection in self._connections:
            connection.stall()

    def resume(self) -> None:
        """Lift every black hole, the stalled handshakes' too; what was held flows in order."""
        self._stalled = False
        for connection in list(self._connections):
            connection.resume()

    def drop_connections(self) -> None:
        """Close every connection in order: each client reads EOF."""
        for connection in list(self._connections):
            connection.drop()

    def reset_connections(self) -> None:
        """Reset every connection: each client's next read or write fails."""
        for connection in list(self._connections):
            connection.reset()

    def restart(self) -> None:
        """Restart, as a ``kill -9`` and a fresh start would: every connection is dropped and
        every subscription and key is gone. Credentials and fault settings stay."""
        self.drop_connections()
        self._dataset = Dataset(self._config, started_at=trio.current_time())
        self._restarts += 1
        self._notify()

    def end_subscriptions(self, kind: Kind, *names: bytes | str) -> int:
        """End subscriptions from the server's side: every connection holding one of ``names``
        loses it and gets the push it would get for its own unsubscribe (``unsubscribe``,
        ``punsubscribe`` or ``sunsubscribe``), which nobody asked for.

        Redis does this to shard channels when their hash slot leaves the node (see
        ``move_slots``); it never does it to channels or patterns, but a client must not take
        such a push for an acknowledgement either.

        Args:
            kind: The kind of subscription.
            *names: The channels or patterns.

        Returns:
            How many subscriptions ended (one per connection and name).
        """
        push = kind.unsubscribe_command.lower()
        ended = self._dataset.end_subscriptions(push, [_bytes(name) for name in names])
        self._notify()
        return ended

    def move_slots(self, *slots: int) -> int:
        """Move hash slots away, as ``CLUSTER DELSLOTS`` or a ``CLUSTER SETSLOT ... NODE`` to
        another node does in a cluster: every shard channel of those slots is unsubscribed from
        every connection, each with a ``sunsubscribe`` push.

        The server keeps answering ``SSUBSCRIBE`` for any channel (it is no cluster), so a
        client that subscribes again gets its subscription back at once; a command hook can
        answer ``MOVED`` instead.

        Returns:
            How many subscriptions ended.
        """
        moved = set(slots)
        names = [name for name in self._dataset.shard_channels if key_slot(name) in moved]
        return self.end_subscriptions(Kind.SHARD, *names)

    def drop_after(self, commands: int | None, *, reset: bool = False) -> None:
        """Close each connection opened from now on once it has sent ``commands`` commands
        (the handshake's included), right after answering the last one: a flapping server.

        Args:
            commands: The number of commands each new connection may send; None for no limit
                (connections opened before keep the limit they had).
            reset: Reset the connections instead of closing them in order.
        """
        if commands is not None and commands < 1:
            raise ValueError(f"drop_after needs at least one command, not {commands}")
        self._lifetime = None if commands is None else (commands, reset)

    def set_command_hook(self, hook: CommandHook | None) -> None:
        """Call ``hook`` with each command before it runs (see ``CommandHook``); None removes it."""
        self._command_hook = hook


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


@asynccontextmanager
async def open_memory_redis_server(
    *,
    username: str = "default",
    password: str | None = None,
    databases: int = DEFAULT_DATABASES,
    version: str = DEFAULT_VERSION,
    resp3: bool = True,
) -> AsyncIterator[MemoryRedisServer]:
    """Run a ``MemoryRedisServer`` for the duration of a block.

    On leaving the block every connection is dropped and nothing of the server keeps running.
    The arguments are ``MemoryRedisServer``'s.

    Yields:
        The serving server; pass ``server.connect`` as the client's connector.
    """
    server = MemoryRedisServer(
        username=username, password=password, databases=databases, version=version, resp3=resp3
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        try:
            yield server
        finally:
            nursery.cancel_scope.cancel(reason="the memory Redis server's block ended")
