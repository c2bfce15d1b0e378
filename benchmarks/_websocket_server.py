"""The server side of ``bench_websocket.py``, run in a child process: ours or the peer.

``python benchmarks/_websocket_server.py ours SECRET_HEX`` serves the real gateway
(``open_gateway`` on ``memory://`` Pub/Sub, limits lifted so that the benchmark measures the
fan-out, not the rate limiter); ``... peer SECRET_HEX`` serves a minimal trio-websocket
broadcast loop without actors. Either prints ``PORT <port>`` on its first line once it
listens on 127.0.0.1, then serves until SIGTERM or SIGINT, and prints ``GC <seconds> <full>`` as
it stops: the time spent in the garbage collector and the number of full (generation 2)
collections. ``--profile FILE`` runs the server under cProfile and writes the stats to FILE;
``--gc-threshold N`` sets the collector's generation-0 threshold; without it, either server
tunes its collector once it listens, as ``python -m actors serve`` does
(``tune_garbage_collector()``: ``gc.freeze()``, threshold 50,000).

The peer answers ``join`` with ``joined`` (and adds the connection to the room), and each
``say`` with one ``message`` frame of the gateway's shape, sent to every connection in the room
by awaiting ``send_message`` on each in turn. It checks no token and keeps no history.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import signal
import time
from typing import Any

import orjson
import trio
import trio_websocket

from actors import open_actor_system
from actors.pubsub import open_pubsub
from actors.runtime import tune_garbage_collector
from actors.server.chat import RateLimit
from actors.server.gateway import GatewaySettings, TokenVerifier, open_gateway, serve_gateway

UNLIMITED = 1_000_000_000
LONG = 3600.0  # seconds: no keepalive ping, no stats update during a run


def gateway_settings(send_queue_size: int) -> GatewaySettings:
    """The gateway's defaults, less every limit that a load test would trip by design."""
    return GatewaySettings(
        chat_rate=RateLimit(rate=float(UNLIMITED), burst=UNLIMITED),
        max_frames_per_second=UNLIMITED,
        ping_interval=LONG,
        ping_timeout=LONG,
        hello_timeout=LONG,
        stats_interval=LONG,
        send_queue_size=send_queue_size,
    )


class GcTimer:
    """A ``gc.callbacks`` entry: seconds spent collecting, and the number of full collections."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.full = 0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
            self.full += info["generation"] == 2


def announce(port: int) -> None:
    print(f"PORT {port}", flush=True)


async def until_signalled(cancel_scope: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            cancel_scope.cancel()
            return


async def serve_ours(secret: bytes, send_queue_size: int, tune_gc: bool) -> None:
    settings = gateway_settings(send_queue_size)
    async with (
        open_actor_system() as system,
        open_pubsub(system, "memory://") as pubsub,
        open_gateway(
            system, pubsub, tokens=TokenVerifier.from_secret(secret), settings=settings
        ) as gateway,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(until_signalled, nursery.cancel_scope)
        port = await nursery.start(serve_gateway, gateway, 0)
        if tune_gc:  # as ``python -m actors serve`` does once it is up
            tune_garbage_collector()
        announce(port)


class PeerRoom:
    """The peer: one room, a set of connections, a broadcast loop per ``say``."""

    def __init__(self) -> None:
        self.connections: set[trio_websocket.WebSocketConnection] = set()
        self.numbers = 0

    async def handler(self, request: trio_websocket.WebSocketRequest) -> None:
        connection = await request.accept()
        self.numbers += 1
        user_id = f"user-{self.numbers}"
        try:
            while True:
                frame = orjson.loads(await connection.get_message())
                kind = frame.get("type")
                if kind == "say":
                    await self.broadcast(frame["room"], user_id, frame["text"])
                elif kind == "join":
                    self.connections.add(connection)
                    await connection.send_message(
                        orjson.dumps(
                            {"type": "joined", "room": frame["room"], "history": []}
                        ).decode()
                    )
        except trio_websocket.ConnectionClosed:
            pass
        finally:
            self.connections.discard(connection)

    async def broadcast(self, room: str, user_id: str, text: str) -> None:
        message = {"type": "message", "room": room, "user_id": user_id, "text": text}
        message["sent_at"] = time.time()
        data = orjson.dumps(message).decode()
        for connection in list(self.connections):
            try:
                await connection.send_message(data)
            except trio_websocket.ConnectionClosed:
                self.connections.discard(connection)


async def serve_peer(tune_gc: bool) -> None:
    room = PeerRoom()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(until_signalled, nursery.cancel_scope)
        server = await nursery.start(
            trio_websocket.serve_websocket, room.handler, "127.0.0.1", 0, None
        )
        if tune_gc:  # the same collector setting as ours, at the same point
            tune_garbage_collector()
        announce(server.port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("ours", "peer"))
    parser.add_argument("secret", help="the token secret, hex")
    parser.add_argument("--send-queue-size", type=int, default=256)
    parser.add_argument(
        "--gc-threshold", type=int, default=0, help="the garbage collector's gen0 threshold"
    )
    parser.add_argument("--profile", help="write cProfile stats here when the server stops")
    args = parser.parse_args()
    runner: Any
    if args.kind == "ours":
        runner = (
            serve_ours,
            bytes.fromhex(args.secret),
            args.send_queue_size,
            not args.gc_threshold,
        )
    else:
        runner = (serve_peer, not args.gc_threshold)
    if args.gc_threshold:
        gc.set_threshold(args.gc_threshold, *gc.get_threshold()[1:])
    timer = GcTimer()
    gc.callbacks.append(timer)
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        profiler.enable()
    try:
        trio.run(*runner)
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
        gc.callbacks.remove(timer)
        print(f"GC {timer.seconds:.4f} {timer.full}", flush=True)


if __name__ == "__main__":
    main()
