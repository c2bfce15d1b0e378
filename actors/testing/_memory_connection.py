"""One client connection of the in-memory Redis server, as the server sees it.

A connection owns its Redis state (``ClientState``, registered in the server's ``Dataset``), the
two pipes of its byte stream, the record of every command it sent, and the task that reads and
runs those commands; its faults (stall, resume, drop, reset) act on the pipes. The server
(``_memory_redis``) creates it and hears from it through callbacks only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, TypeAlias

import hiredis
import trio

from actors.testing._memory_state import ClientState
from actors.testing._memory_stream import ClientStream, Pipe
from actors.testing._resp_encoder import ErrorReply

if TYPE_CHECKING:
    from collections.abc import Callable

    from actors.testing._memory_commands import Dataset

__all__ = ["CommandHook", "MemoryRedisConnection"]

READ_SIZE: Final = 65536  # bytes the server takes from a connection per read
_INCOMPLETE: Final = object()  # hiredis's "no whole frame yet": False would be RESP3's #f

CommandHook: TypeAlias = "Callable[[MemoryRedisConnection, tuple[bytes, ...]], str | None]"
"""Called with each command before it runs. It may return an error message (``"NOPERM ..."``)
to answer instead of running the command, and it may drop, reset or stall the connection:
a dropped or reset connection runs nothing more, a stalled one runs the command once resumed."""


class MemoryRedisConnection:
    """One client connection as the server sees it: its state, what it sent, and its faults.

    Get them from ``MemoryRedisServer.connections`` (the live ones) or from the ``connection`` of
    a ``ConnectionAttempt`` (closed ones too).
    """

    def __init__(
        self,
        client_id: int,
        dataset: Dataset,
        nursery: trio.Nursery,
        *,
        stalled: bool,
        lifetime: tuple[int, bool] | None,
        command_hook: Callable[[], CommandHook | None],
        on_command: Callable[[], object],
        on_closed: Callable[[MemoryRedisConnection], object],
    ) -> None:
        self._dataset = dataset
        self._opened_at = trio.current_time()
        # Commands this connection may send before it is closed, and whether by a reset.
        self._lifetime = lifetime
        self._command_hook = command_hook
        self._on_command = on_command
        self._on_closed = on_closed
        self._to_server = Pipe()
        self._to_client = Pipe()
        self._state = ClientState(
            client_id, self._to_client.write, dataset.config.default_user_open()
        )
        self._commands: list[tuple[bytes, ...]] = []
        self._closed = False
        self._stalled = False
        self._closed_event = trio.Event()
        self.client_stream = ClientStream(self._to_client, self._to_server)
        """The client's end of the connection (what ``connect`` hands the client)."""
        dataset.add_client(self._state)
        if stalled:
            self.stall()
        nursery.start_soon(self._serve, name=f"memory redis client {client_id}")

    def __repr__(self) -> str:
        state = "closed" if self._closed else "stalled" if self._stalled else "open"
        return f"<MemoryRedisConnection id={self.id} RESP{self.protocol} {state}>"

    # -- introspection ---------------------------------------------------------------------------

    @property
    def id(self) -> int:
        """The client id (``CLIENT ID``, and ``id`` in the HELLO reply)."""
        return self._state.id

    @property
    def opened_at(self) -> float:
        """``trio.current_time()`` when the connection was accepted."""
        return self._opened_at

    @property
    def protocol(self) -> int:
        """The RESP version the connection speaks: 2 until a ``HELLO 3``."""
        return self._state.protocol

    @property
    def name(self) -> bytes | None:
        """The name set by ``CLIENT SETNAME`` or ``HELLO ... SETNAME``."""
        return self._state.name

    @property
    def db(self) -> int:
        """The selected database."""
        return self._state.db

    @property
    def authenticated(self) -> bool:
        """Whether the connection may run commands (always, on a server without a password)."""
        return self._state.authenticated

    @property
    def commands(self) -> list[tuple[bytes, ...]]:
        """Every command the server took from this connection, in order, arguments included."""
        return list(self._commands)

    def command_names(self) -> list[str]:
        """The names of ``commands``, upper case: ``["HELLO", "SUBSCRIBE", "PING", ...]``."""
        return [command[0].decode(errors="replace").upper() for command in self._commands]

    @property
    def channels(self) -> tuple[bytes, ...]:
        """The channels it is subscribed to, in the order it subscribed."""
        return tuple(self._state.channels)

    @property
    def patterns(self) -> tuple[bytes, ...]:
        """The patterns it is subscribed to."""
        return tuple(self._state.patterns)

    @property
    def shard_channels(self) -> tuple[bytes, ...]:
        """The shard channels it is subscribed to (``SSUBSCRIBE``)."""
        return tuple(self._state.shard_channels)

    @property
    def closed(self) -> bool:
        """Whether the connection is closed, by either side."""
        return self._closed

    @property
    def stalled(self) -> bool:
        """Whether the connection is black-holed (see ``stall``)."""
        return self._stalled

    async def wait_closed(self) -> None:
        """Wait until the connection is closed, by either side."""
        await self._closed_event.wait()

    # -- faults ----------------------------------------------------------------------------------

    def stall(self) -> None:
        """Black-hole the connection: nothing it sends reaches the server and nothing reaches it.

        Both sides' writes still succeed; the bytes wait and flow again, in order, on
        ``resume``. The client's own close waits too, as a FIN behind a black hole would.
        """
        if self._closed:
            return
        self._stalled = True
        self._to_server.hold()
        self._to_client.hold()

    def resume(self) -> None:
        """Lift the black hole: what was held is delivered, and processed, in order."""
        self._stalled = False
        self._to_server.release()
        self._to_client.release()

    def drop(self) -> None:
        """Close the connection in order: the client reads what was sent, then EOF.

        The server forgets the connection's subscriptions at once. Idempotent.
        """
        self._close(reset=False)

    def reset(self) -> None:
        """Reset the connection: the client's next read or write raises
        ``trio.BrokenResourceError``, and whatever was still in flight is lost. Idempotent.
        """
        self._close(reset=True)

    # -- internals -------------------------------------------------------------------------------

    async def _serve(self) -> None:
        reader = hiredis.Reader(notEnoughData=_INCOMPLETE)
        try:
            while True:
                command = await self._next_command(reader)
                if command is None:
                    return
                await self._run(command)
        finally:
            self.drop()  # the client closed, the bytes were garbage, or the server stopped

    async def _run(self, command: list[bytes]) -> None:
        self._commands.append(tuple(command))
        refusal: str | None = None
        hook = self._command_hook()
        if hook is not None:
            refusal = hook(self, tuple(command))
            await self._wait_resumed()
            if self._closed:
                return
        if refusal is not None:
            self._state.reply(ErrorReply(refusal))
        else:
            self._dataset.execute(self._state, command)
        if self._state.quitting:
            self.drop()
        elif self._lifetime is not None and len(self._commands) >= self._lifetime[0]:
            self._close(reset=self._lifetime[1])
        self._on_command()

    def _close(self, *, reset: bool) -> None:
        if self._closed:
            return
        self._closed = True
        self._stalled = False
        self._to_server.close_reader()
        if reset:
            self._to_client.reset()
        else:
            self._to_client.finish()
            self._to_client.release()
        self._dataset.remove_client(self._state)
        self._on_closed(self)
        self._closed_event.set()

    async def _next_command(self, reader: hiredis.Reader) -> list[bytes] | None:
        """The next complete command, reading more when needed; None once the connection ends."""
        while not self._closed:
            try:
                frame = reader.gets()
            except hiredis.ProtocolError as error:
                self._protocol_error(str(error))
                return None
            if frame is _INCOMPLETE:
                if not self._to_server.readable():
                    await self._to_server.wait()
                    continue
                data = self._to_server.take(READ_SIZE)
                if not data:  # the client closed its end
                    return None
                reader.feed(data)
                continue
            if isinstance(frame, list) and all(type(item) is bytes for item in frame):
                if frame:  # Redis skips an empty array
                    return frame
                continue
            self._protocol_error(f"expected an array of bulk strings, got {frame!r:.60}")
            return None
        return None

    def _protocol_error(self, detail: str) -> None:
        # Redis answers bytes it cannot parse with an error, then closes the connection.
        self._state.reply(ErrorReply(f"ERR Protocol error: {detail}"))
        self.drop()

    async def _wait_resumed(self) -> None:
        while self._stalled and not self._closed:
            await self._to_server.wait()
