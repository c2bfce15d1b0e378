"""A connection in memory with the ways a TCP connection fails: close, reset, black hole.

``trio.testing.memory_stream_pair`` buffers like a socket but can only end with EOF; the Redis
tests also need a reset (the peer's next read or write fails) and a black hole (bytes wait,
unseen, until it lifts). So a connection here is two ``Pipe`` objects, one per direction, and the
client's end is a ``trio.abc.Stream`` over them; the server reads and writes the pipes directly.

The buffers are unbounded, like kernel buffers that never fill: a write never waits, as a
write to a healthy or black-holed socket returns at once until megabytes are queued.
"""

from __future__ import annotations

from typing import Final

import trio

__all__ = ["ClientStream", "Pipe"]

DEFAULT_RECEIVE_SIZE: Final = 65536  # bytes, when receive_some is called without a size


class Pipe:
    """One direction of a connection: what one end writes the other reads, in order."""

    __slots__ = ("_buffer", "_lot", "broken", "finished", "held", "reader_gone")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._lot = trio.lowlevel.ParkingLot()
        self.held = False
        """Black-holed: written bytes wait, unseen by the reader, until released."""
        self.finished = False
        """The writer closed its end: the reader gets EOF once the buffer is read."""
        self.broken = False
        """Reset: the reader fails at once and what was buffered is lost."""
        self.reader_gone = False
        """The reading end is closed: nothing written now can ever be read."""

    def write(self, data: bytes) -> None:
        """Append bytes for the reader; dropped if the reader is gone or the pipe is reset."""
        if self.reader_gone or self.broken or self.finished:
            return
        self._buffer += data
        self._lot.unpark_all()

    def readable(self) -> bool:
        """Whether a read would return (bytes, EOF or the reset) without waiting."""
        return self.broken or (not self.held and (bool(self._buffer) or self.finished))

    def take(self, max_bytes: int) -> bytes:
        """Take up to ``max_bytes`` buffered bytes; ``b""`` at EOF. Call when readable."""
        data = bytes(self._buffer[:max_bytes])
        del self._buffer[:max_bytes]
        return data

    async def wait(self) -> None:
        """Wait for the next change of this pipe (bytes, EOF, reset, release, a close)."""
        await self._lot.park()

    def wake(self) -> None:
        """Wake every task waiting on this pipe, to look at its state again."""
        self._lot.unpark_all()

    def hold(self) -> None:
        """Black-hole the pipe: what is written from now on (and what is buffered) waits."""
        self.held = True

    def release(self) -> None:
        """Lift the black hole: the reader sees what waited, in order."""
        self.held = False
        self._lot.unpark_all()

    def finish(self) -> None:
        """The writer closes its end (a FIN): EOF for the reader after what is buffered."""
        self.finished = True
        self._lot.unpark_all()

    def reset(self) -> None:
        """The connection is reset (an RST): the reader fails at once, the buffer is lost."""
        self.broken = True
        self._buffer.clear()
        self._lot.unpark_all()

    def close_reader(self) -> None:
        """The reading end closes: what is buffered is lost and later writes vanish."""
        self.reader_gone = True
        self._buffer.clear()
        self._lot.unpark_all()


class ClientStream(trio.abc.Stream):
    """The client's end of an in-memory connection, read and written like a socket stream.

    Reading raises ``trio.BrokenResourceError`` once the server reset the connection and
    returns ``b""`` after the server closed it; writing raises ``trio.BrokenResourceError``
    once the server's end is closed or reset, as a write after a peer's RST does.
    """

    def __init__(self, incoming: Pipe, outgoing: Pipe) -> None:
        self._incoming = incoming
        self._outgoing = outgoing
        self._closed = False
        self._receiving = False
        self._sending = False

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self._sending:
            raise trio.BusyResourceError("another task is already sending on this stream")
        self._sending = True
        try:
            await trio.lowlevel.checkpoint()
            if self._closed:
                raise trio.ClosedResourceError("this stream was closed")
            if self._outgoing.reader_gone or self._outgoing.broken:
                raise trio.BrokenResourceError("the server closed or reset the connection")
            self._outgoing.write(bytes(data))
        finally:
            self._sending = False

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()
        if self._closed:
            raise trio.ClosedResourceError("this stream was closed")

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._receiving:
            raise trio.BusyResourceError("another task is already receiving on this stream")
        if max_bytes is not None and max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        self._receiving = True
        try:
            await trio.lowlevel.checkpoint()
            while True:
                if self._closed:
                    raise trio.ClosedResourceError("this stream was closed")
                if self._incoming.readable():
                    break
                await self._incoming.wait()
            if self._incoming.broken:
                raise trio.BrokenResourceError("the server reset the connection")
            return self._incoming.take(max_bytes or DEFAULT_RECEIVE_SIZE)
        finally:
            self._receiving = False

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._outgoing.finish()
            self._incoming.close_reader()
        await trio.lowlevel.checkpoint()
