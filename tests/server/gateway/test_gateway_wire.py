"""Frames made ready for the wire once: the same bytes trio-websocket would write, written in
batches, in order, and the public ``send_message`` path where the library's internals differ."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
import trio
import trio_websocket
import wsproto
from gateway_helpers import Server, connected, running_gateway
from wsproto.connection import Connection, ConnectionType
from wsproto.events import TextMessage

from actors import ActorSystem
from actors.server.gateway import _wire
from actors.server.gateway._wire import FrameWriter, frame_text, text_frame


@pytest.fixture
async def server(system: ActorSystem) -> AsyncIterator[Server]:
    async with running_gateway(system) as server:
        yield server


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 65_535, 65_536, 70_000])
@pytest.mark.parametrize("character", ["x", "é", "😀"])
def test_a_frame_is_the_one_wsproto_writes(length: int, character: str) -> None:
    text = character * length
    expected = Connection(ConnectionType.SERVER).send(TextMessage(data=text))
    assert text_frame(text) == expected
    assert frame_text(text_frame(text)) == text
    assert wsproto.__version__  # the reference the gateway's bytes are checked against


async def test_the_writer_writes_a_connection_directly(server: Server) -> None:
    """Guards the two attributes of trio-websocket the writer relies on: with them gone, the
    gateway would fall back to ``send_message``, correct but slower."""
    async with connected(server, "ada"):
        (session,) = server.gateway.sessions
        assert FrameWriter(session.connection).direct


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every ``FrameWriter.write``, in order."""
    sizes: list[int] = []
    write = FrameWriter.write

    async def counted(self: FrameWriter, frames: bytes) -> None:
        sizes.append(len(frames))
        await write(self, frames)

    monkeypatch.setattr(FrameWriter, "write", counted)
    return sizes


async def test_frames_queued_together_go_out_in_one_write_and_in_order(
    server: Server, writes: list[int]
) -> None:
    async with connected(server, "ada", message_queue_size=200) as ada:
        await ada.receive()  # the global presence
        (session,) = server.gateway.sessions
        writes.clear()
        frames = [
            orjson.dumps({"type": "pong", "ref": f"r{index}"}).decode() for index in range(100)
        ]
        for frame in frames:  # no scheduling point: all 100 wait in the outbox
            session.push(frame)
        received = [await ada.receive() for _ in frames]
        assert [frame["ref"] for frame in received] == [f"r{index}" for index in range(100)]
        assert writes == [sum(len(text_frame(frame)) for frame in frames)]


async def test_a_batch_stops_at_its_byte_bound(
    server: Server, writes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_wire, "MAX_BATCH_BYTES", 1_000)
    monkeypatch.setattr("actors.server.gateway._session.MAX_BATCH_BYTES", 1_000)
    async with connected(server, "ada") as ada:
        await ada.receive()
        (session,) = server.gateway.sessions
        writes.clear()
        frame = orjson.dumps({"type": "pong", "ref": "x" * 280}).decode()
        size = len(text_frame(frame))  # 4 of them pass 1,000 bytes
        for _ in range(10):
            session.push(frame)
        for _ in range(10):
            await ada.expect("pong")
        assert writes == [4 * size, 4 * size, 2 * size]


class _PublicOnly:
    """A connection with trio-websocket's public interface only."""

    def __init__(self) -> None:
        self.closed: trio_websocket.CloseReason | None = None
        self.sent: list[str | bytes] = []

    async def send_message(self, message: str | bytes) -> None:
        await trio.lowlevel.checkpoint()
        self.sent.append(message)


async def test_without_the_internals_frames_go_through_send_message() -> None:
    connection = _PublicOnly()
    writer = FrameWriter(connection)  # type: ignore[arg-type]
    assert not writer.direct
    await writer.write(text_frame("héllo"))
    await writer.write(text_frame("x" * 70_000))
    assert connection.sent == ["héllo", "x" * 70_000]
    connection.closed = trio_websocket.CloseReason(1000, "bye")
    with pytest.raises(trio_websocket.ConnectionClosed):
        await writer.write(text_frame("too late"))
    assert len(connection.sent) == 2


class _BrokenStream(trio.abc.SendStream):
    def __init__(self) -> None:
        self.closed = False

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await trio.lowlevel.checkpoint()
        raise trio.BrokenResourceError("the peer reset the connection")

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        self.closed = True
        await trio.lowlevel.checkpoint()


class _Internals(_PublicOnly):
    """A connection with the two attributes the writer uses directly."""

    def __init__(self) -> None:
        super().__init__()
        self._stream = _BrokenStream()
        self._stream_lock = trio.StrictFIFOLock()


async def test_a_write_to_a_broken_socket_closes_the_stream_and_reports_it_lost() -> None:
    connection = _Internals()
    writer = FrameWriter(connection)  # type: ignore[arg-type]
    assert writer.direct
    with pytest.raises(trio_websocket.ConnectionClosed) as raised:
        await writer.write(text_frame("to nobody"))
    reason = raised.value.reason
    assert reason is not None
    assert (reason.code, reason.reason) == (1006, "the connection was lost")
    assert connection._stream.closed  # trio-websocket's reader ends on it at once
    assert not connection._stream_lock.locked()
    assert connection.sent == []
