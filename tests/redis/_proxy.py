"""A small trio TCP proxy for fault tests: it can black-hole its connections or drop them all.

``await nursery.start(proxy.serve)`` listens on a free port of 127.0.0.1 and returns it; every
connection accepted there is joined to a new connection to the upstream port. ``await
proxy.black_hole()`` stops forwarding in both directions without closing anything: clients stay
connected and their writes succeed, but nothing reaches the other side (the classic half-dead
connection, as after a silent network partition). The proxy stops reading while black-holed, so
data waits in kernel buffers and back-pressure builds up as it would behind a real partition;
``restore()`` resumes forwarding and what was held is delivered, in order. New connections made
while black-holed are accepted but not joined upstream until ``restore()``. ``close_all()``
drops every current connection (``reset=True`` sends a TCP RST instead of a FIN).
"""

from __future__ import annotations

import contextlib
import socket
import struct

import attrs
import trio

HOST = "127.0.0.1"
CHUNK = 65536


@attrs.define(eq=False)
class _Link:
    """One proxied connection: the accepted client stream and its upstream stream."""

    client: trio.SocketStream
    upstream: trio.SocketStream | None = None
    cancel_scope: trio.CancelScope = attrs.Factory(trio.CancelScope)

    def close(self, *, reset: bool) -> None:
        for stream in (self.client, self.upstream):
            if stream is None:
                continue
            if reset:
                linger = struct.pack("ii", 1, 0)
                with contextlib.suppress(OSError):
                    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            stream.socket.close()
        self.cancel_scope.cancel()


class BlackHoleProxy:
    """Forwards between its clients and ``upstream_host:upstream_port``; see the module doc."""

    def __init__(self, upstream_port: int, upstream_host: str = HOST) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        """Where new connections go; may be changed while serving (existing links stay)."""
        self.port: int | None = None
        self.accepted = 0
        """Connections accepted so far."""
        self._links: set[_Link] = set()
        self._forwarding = trio.Event()
        self._forwarding.set()
        self._sending = 0
        self._idle = trio.Event()  # set (and replaced) whenever _sending drops to zero

    @property
    def connections(self) -> int:
        """Connections currently open through the proxy."""
        return len(self._links)

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT`` of the listening side, once ``serve`` has started."""
        if self.port is None:
            raise RuntimeError("the proxy is not serving yet: await nursery.start(proxy.serve)")
        return f"redis://{HOST}:{self.port}"

    @property
    def black_holed(self) -> bool:
        return not self._forwarding.is_set()

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen on a free port of 127.0.0.1 (reported to ``nursery.start``) until cancelled."""
        listeners = await trio.open_tcp_listeners(0, host=HOST)
        self.port = listeners[0].socket.getsockname()[1]
        try:
            async with trio.open_nursery() as nursery:
                task_status.started(self.port)
                await trio.serve_listeners(self._handle, listeners, handler_nursery=nursery)
        finally:
            self.close_all()

    async def black_hole(self) -> None:
        """Stop forwarding in both directions, keeping every socket open.

        Returns once no chunk is on its way any more: after this, nothing more reaches either
        side until ``restore()`` (a chunk already being written completes first).
        """
        if self._forwarding.is_set():
            self._forwarding = trio.Event()
        while self._sending:
            await self._idle.wait()

    def restore(self) -> None:
        """Resume forwarding; data held during the black hole is delivered first, in order."""
        self._forwarding.set()

    def close_all(self, *, reset: bool = False) -> None:
        """Drop every current connection (FIN, or RST with ``reset=True``); keep listening."""
        for link in list(self._links):
            link.close(reset=reset)
        self._links.clear()

    async def _handle(self, client: trio.SocketStream) -> None:
        self.accepted += 1
        link = _Link(client)
        self._links.add(link)
        try:
            with link.cancel_scope:
                await self._forwarding.wait()
                try:
                    link.upstream = await trio.open_tcp_stream(
                        self.upstream_host, self.upstream_port
                    )
                except OSError:
                    return  # upstream down: the client sees its connection closed
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._pump, link, client, link.upstream)
                    nursery.start_soon(self._pump, link, link.upstream, client)
        finally:
            self._links.discard(link)
            link.close(reset=False)

    async def _pump(
        self, link: _Link, source: trio.SocketStream, destination: trio.SocketStream
    ) -> None:
        try:
            while True:
                await self._forwarding.wait()
                data = await source.receive_some(CHUNK)
                await self._forwarding.wait()  # a chunk read just before a black hole waits here
                if not data:
                    break
                self._sending += 1
                try:
                    await destination.send_all(data)
                finally:
                    self._sending -= 1
                    if not self._sending:
                        self._idle.set()
                        self._idle = trio.Event()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        # Either side closing (or failing) ends the whole link, as Redis clients never half-close.
        link.cancel_scope.cancel()
