"""Frames made ready for the wire once, and written to a session's socket in batches.

A room message goes to every session in the room. trio-websocket's ``send_message`` would encode
its text and build its WebSocket frame once per connection, and take the connection's write lock
and the socket write as two scheduling points; a server's frames are not masked (RFC 6455, 5.1)
and the gateway negotiates no extension, so one frame's bytes are the same for every connection.
``text_frame`` builds them once, the session's outbox holds them, and ``FrameWriter`` writes
whatever has queued up in one socket write, under the connection's own write lock so that the
pongs and the close frame trio-websocket writes stay in order with ours.

The writer reaches into two attributes of ``trio_websocket.WebSocketConnection`` (the stream and
its write lock), checked when it is made; a trio-websocket without them gets the public
``send_message`` path, frame by frame, which is slower but the same on the wire.
"""

from __future__ import annotations

from typing import Final

import trio
import trio_websocket

__all__ = ["MAX_BATCH_BYTES", "FrameWriter", "frame_text", "text_frame"]

MAX_BATCH_BYTES: Final = 64 * 1024
"""The most bytes of queued frames joined into one socket write (one frame may be longer)."""

_FIN_TEXT: Final = 0x81  # FIN set, opcode 1 (text)
_LENGTH_16: Final = 126
_LENGTH_64: Final = 127
_CONNECTION_LOST: Final = trio_websocket.CloseReason(1006, "the connection was lost")


def text_frame(text: str) -> bytes:
    """One complete, unmasked WebSocket text frame carrying ``text`` (a server's frame)."""
    payload = text.encode()
    length = len(payload)
    if length < _LENGTH_16:
        head = bytes((_FIN_TEXT, length))
    elif length < 1 << 16:
        head = bytes((_FIN_TEXT, _LENGTH_16)) + length.to_bytes(2, "big")
    else:
        head = bytes((_FIN_TEXT, _LENGTH_64)) + length.to_bytes(8, "big")
    return head + payload


def frame_text(frame: bytes) -> str:
    """The text that ``text_frame`` put into ``frame``."""
    length = frame[1]
    start = 2 if length < _LENGTH_16 else 4 if length == _LENGTH_16 else 10
    return frame[start:].decode()


class FrameWriter:
    """Writes ready-made frames (from ``text_frame``) to one trio-websocket connection.

    Args:
        connection: An accepted server connection, with no extension negotiated.
    """

    def __init__(self, connection: trio_websocket.WebSocketConnection) -> None:
        self.connection = connection
        stream = getattr(connection, "_stream", None)
        lock = getattr(connection, "_stream_lock", None)
        self._stream = stream if isinstance(stream, trio.abc.SendStream) else None
        self._lock = lock if isinstance(lock, (trio.StrictFIFOLock, trio.Lock)) else None

    @property
    def direct(self) -> bool:
        """Whether frames go to the socket as they are (else through ``send_message``)."""
        return self._stream is not None and self._lock is not None

    async def write(self, frames: bytes) -> None:
        """Write one frame, or several joined, in order with the connection's own writes.

        Raises:
            trio_websocket.ConnectionClosed: The connection is closed or closing, or broke.
        """
        connection = self.connection
        if connection.closed is not None:
            raise trio_websocket.ConnectionClosed(connection.closed)
        stream, lock = self._stream, self._lock
        if stream is None or lock is None:
            await connection.send_message(frame_text(frames))
            return
        # Uncontended (the usual case), the lock is taken without a scheduling point of its
        # own: the socket write that follows is one already.
        try:
            lock.acquire_nowait()
        except trio.WouldBlock:
            await lock.acquire()
        try:
            await stream.send_all(frames)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            # The socket is gone: closing the stream ends trio-websocket's reader too, so the
            # session's receive loop learns of it at once.
            await stream.aclose()
            raise trio_websocket.ConnectionClosed(_CONNECTION_LOST) from None
        finally:
            lock.release()
