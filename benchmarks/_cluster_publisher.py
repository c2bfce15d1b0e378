"""A raw pipelined ``SPUBLISH`` publisher for a Redis Cluster, run as its own process.

    python _cluster_publisher.py flood ROUTES_FILE COUNT PAYLOAD_FILE
    python _cluster_publisher.py steady ROUTES_FILE RATE TEMPLATE_FILE PROBES

ROUTES_FILE is JSON written by ``bench_cluster.py``: ``{"host": "127.0.0.1", "masters": [port,
...], "owners": [port of ch.0, port of ch.1, ...]}``, the master that owns each channel's hash
slot when the run starts (``CLUSTER NODES`` and ``key_slot``). One plain socket per master; a
thread per socket reads and discards the replies.

``flood`` sends COUNT ``SPUBLISH`` commands as fast as it can, round-robin over ``ch.0`` ..
``ch.{N-1}`` (N: the length of ``owners``), each to the owner of its channel, with the payload
file's lines (one encoded payload per line) round-robin, in batches of 1,000 commands split by
owner: the cluster twin of ``_raw_publisher.py flood``.

``steady`` runs until its standard input closes. Every 2 ms it sends RATE messages per second
round-robin over all channels, plus one message to each of the PROBES channels (a comma-separated
list of channel indices), and sends every message to every master: the owner of the slot
delivers it, the others answer ``MOVED`` (discarded), so no routing table needs to follow a slot
move. Each payload is TEMPLATE_FILE's content formatted with ``template % (sequence, port)``, the
port of the master it was sent to, so that a subscriber sees which node delivered it.

The last line printed is a JSON summary.
"""

from __future__ import annotations

import json
import math
import socket
import sys
import threading
import time
from typing import Any

from _redis_common import encode_command

BATCH = 1000
TICK = 0.002  # seconds between two batches of ``steady``


def _connect(host: str, port: int) -> socket.socket:
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _drain(sock: socket.socket, expected: int | None, done: threading.Event) -> None:
    """Read replies until ``expected`` lines came (``None``: until the socket closes)."""
    lines = 0
    try:
        while expected is None or lines < expected:
            data = sock.recv(1 << 20)
            if not data:
                break
            lines += data.count(b"\n")
    except OSError:
        pass
    done.set()


def flood(routes: dict[str, Any], count: int, payloads: list[bytes]) -> dict[str, Any]:
    host, owners = routes["host"], routes["owners"]
    channels = len(owners)
    names = [b"ch.%d" % index for index in range(channels)]
    sockets = {port: _connect(host, port) for port in routes["masters"]}

    def batch(start: int, size: int) -> dict[int, bytes]:
        parts: dict[int, list[bytes]] = {port: [] for port in sockets}
        for index in range(start, start + size):
            channel = index % channels
            parts[owners[channel]].append(
                encode_command(b"SPUBLISH", names[channel], payloads[index % len(payloads)])
            )
        return {port: b"".join(chunks) for port, chunks in parts.items() if chunks}

    period = math.lcm(channels, len(payloads), BATCH) // BATCH
    batches = [batch(start * BATCH, BATCH) for start in range(min(period, 64))]
    per_port = dict.fromkeys(sockets, 0)
    for index in range(channels):
        per_port[owners[index]] += 1
    expected = dict.fromkeys(sockets, 0)
    full, rest = divmod(count, channels)
    for port in sockets:
        expected[port] = full * per_port[port]
    for index in range(rest):
        expected[owners[index]] += 1
    done = {port: threading.Event() for port in sockets}
    for port, sock in sockets.items():
        threading.Thread(
            target=_drain, args=(sock, expected[port], done[port]), daemon=True
        ).start()
    started = time.perf_counter()
    sent = 0
    round_ = 0
    while sent < count:
        size = min(BATCH, count - sent)
        cached = size == BATCH and period <= len(batches)
        chunks = batches[round_ % period] if cached else batch(sent, size)
        for port, data in chunks.items():
            sockets[port].sendall(data)
        sent += size
        round_ += 1
    send_seconds = time.perf_counter() - started
    for event in done.values():
        event.wait(120)
    for sock in sockets.values():
        sock.close()
    return {"sent": sent, "send_seconds": send_seconds, "per_master": expected}


def steady(routes: dict[str, Any], rate: int, template: bytes, probes: list[int]) -> dict[str, Any]:
    host, channels = routes["host"], len(routes["owners"])
    names = [b"ch.%d" % index for index in range(channels)]
    sockets = {port: _connect(host, port) for port in routes["masters"]}
    for sock in sockets.values():
        threading.Thread(target=_drain, args=(sock, None, threading.Event()), daemon=True).start()
    stopping = threading.Event()

    def wait_for_eof() -> None:
        sys.stdin.buffer.read()
        stopping.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    started = time.monotonic_ns()
    sequence = background = ticks = 0
    while not stopping.is_set():
        due = (time.monotonic_ns() - started) * rate // 1_000_000_000
        indices = [index % channels for index in range(background, due)]
        background = max(background, due)
        indices += probes
        for port, sock in sockets.items():
            sock.sendall(
                b"".join(
                    encode_command(
                        b"SPUBLISH", names[channel], template % (sequence + offset, port)
                    )
                    for offset, channel in enumerate(indices)
                )
            )
        sequence += len(indices)
        ticks += 1
        time.sleep(TICK)
    for sock in sockets.values():
        sock.close()
    elapsed = (time.monotonic_ns() - started) / 1e9
    return {"messages": sequence, "ticks": ticks, "seconds": elapsed, "masters": len(sockets)}


def main() -> None:
    mode, routes_file = sys.argv[1], sys.argv[2]
    with open(routes_file) as source:
        routes = json.load(source)
    if mode == "flood":
        with open(sys.argv[4], "rb") as source:
            payloads = [line for line in source.read().splitlines() if line]
        result = flood(routes, int(sys.argv[3]), payloads)
    elif mode == "steady":
        with open(sys.argv[4], "rb") as source:
            template = source.read()
        probes = [int(index) for index in sys.argv[5].split(",") if index]
        result = steady(routes, int(sys.argv[3]), template, probes)
    else:
        raise SystemExit(f"unknown mode {mode!r}: flood or steady")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
