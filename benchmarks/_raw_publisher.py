"""A raw pipelined publisher, run as its own process by the Redis benchmarks.

    python _raw_publisher.py HOST PORT flood CHANNELS COUNT [PAYLOAD_FILE]
    python _raw_publisher.py HOST PORT paced CHANNELS RATE SECONDS
    python _raw_publisher.py HOST PORT steady CHANNELS RATE [TEMPLATE_FILE]

A plain socket writes batches of RESP ``PUBLISH`` commands, round-robin over ``ch.0`` ..
``ch.{CHANNELS-1}``; a thread reads and discards the replies. ``flood`` sends COUNT messages as
fast as it can (batches of 1,000 commands, 130-140 byte JSON payloads). ``paced`` sends RATE
messages per second for SECONDS seconds, each payload stamped with ``time.monotonic_ns()`` (the
same ``CLOCK_MONOTONIC`` as the subscriber's process) just before its batch is written. The
last line printed is a JSON summary.

With PAYLOAD_FILE, ``flood`` sends the file's lines (one payload per line, without the newline)
round-robin instead of the built-in JSON payloads: the typed benchmarks write encoded messages
there.

``steady`` sends RATE stamped messages per second until its standard input is closed, through
server restarts: when the connection breaks (a write fails, or the server closes it) it connects
again every 2 ms until the server accepts, and paces from then on (what could not be sent during
the outage is skipped, never sent late in a burst). With TEMPLATE_FILE, each payload is the
file's content formatted with ``template % (sequence, channel_index, stamp)``: a ``%032x`` and
two ``%d`` placeholders, in that order (the outage benchmark writes an encoded typed message
there); without it, the built-in JSON payloads.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Callable

from _redis_common import encode_command, payload

BATCH = 1000


def _drain(sock: socket.socket, expected: int, done: threading.Event) -> None:
    lines = 0
    while lines < expected:
        data = sock.recv(1 << 20)
        if not data:
            break
        lines += data.count(b"\n")
    done.set()


def flood(
    sock: socket.socket, channels: int, count: int, payloads: list[bytes] | None = None
) -> dict[str, float]:
    names = [b"ch.%d" % index for index in range(channels)]
    make: Callable[[int], bytes] = payload
    if payloads:
        given = payloads

        def make(index: int) -> bytes:  # the file's payloads, round-robin
            return given[index % len(given)]

    batches = [
        b"".join(
            encode_command(b"PUBLISH", names[(start + index) % channels], make(start + index))
            for index in range(BATCH)
        )
        for start in range(0, BATCH * 4, BATCH)
    ]
    started = time.perf_counter()
    sent = 0
    round_ = 0
    while sent < count:
        size = min(BATCH, count - sent)
        batch = batches[round_ % len(batches)]
        if size < BATCH:
            batch = b"".join(
                encode_command(b"PUBLISH", names[index % channels], make(index))
                for index in range(size)
            )
        sock.sendall(batch)
        sent += size
        round_ += 1
    return {"sent": sent, "send_seconds": time.perf_counter() - started}


def paced(sock: socket.socket, channels: int, rate: int, seconds: float) -> dict[str, float]:
    names = [b"ch.%d" % index for index in range(channels)]
    total = int(rate * seconds)
    started = time.monotonic_ns()
    sent = 0
    while sent < total:
        now = time.monotonic_ns()
        due = min(total, (now - started) * rate // 1_000_000_000 + 1)
        if due > sent:
            stamp = time.monotonic_ns()
            sock.sendall(
                b"".join(
                    encode_command(b"PUBLISH", names[index % channels], payload(index, stamp))
                    for index in range(sent, due)
                )
            )
            sent = due
        else:
            time.sleep(max(0.0, (started + sent * 1_000_000_000 // rate - now) / 1e9) / 2)
    elapsed = (time.monotonic_ns() - started) / 1e9
    return {"sent": sent, "send_seconds": elapsed, "rate": sent / elapsed}


def _replies(sock: socket.socket) -> None:
    """Read and discard every reply waiting; a closed connection raises ``ConnectionError``."""
    while True:
        try:
            data = sock.recv(1 << 20, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        if not data:
            raise ConnectionError("the server closed the connection")


def steady(
    address: tuple[str, int], channels: int, rate: int, template: bytes | None
) -> dict[str, float]:
    names = [b"ch.%d" % index for index in range(channels)]
    stopping = threading.Event()

    def wait_for_eof() -> None:
        sys.stdin.buffer.read()
        stopping.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    started = time.monotonic()
    sent = skipped = connects = 0
    down_since: float | None = None
    down_seconds = 0.0
    sock: socket.socket | None = None
    paced_from = paced_count = 0
    while not stopping.is_set():
        if sock is None:
            try:
                sock = socket.create_connection(address, timeout=0.5)
            except OSError:
                time.sleep(0.002)
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(None)  # blocking writes; a socket with a timeout would wait in recv
            connects += 1
            if down_since is not None:
                down_seconds += time.monotonic() - down_since
                down_since = None
            paced_from, paced_count = time.monotonic_ns(), sent + skipped
        now_ns = time.monotonic_ns()
        due = paced_count + (now_ns - paced_from) * rate // 1_000_000_000 + 1
        first = sent + skipped
        if due <= first:
            next_at = paced_from + (first - paced_count) * 1_000_000_000 // rate
            time.sleep(max(0.0, (next_at - now_ns) / 1e9) / 2)
            continue
        stamp = time.monotonic_ns()
        batch = b"".join(
            encode_command(
                b"PUBLISH",
                names[index % channels],
                template % (index, index % channels, stamp) if template else payload(index, stamp),
            )
            for index in range(first, due)
        )
        try:
            sock.sendall(batch)
            _replies(sock)
        except OSError:
            sock.close()
            sock = None
            down_since = time.monotonic()
            skipped += due - first
            continue
        sent += due - first
    if sock is not None:
        sock.close()
    elapsed = time.monotonic() - started
    return {
        "sent": sent,
        "skipped": skipped,
        "connects": connects,
        "seconds": elapsed,
        "seconds_disconnected": down_seconds,
        "rate_while_connected": sent / max(elapsed - down_seconds, 1e-9),
    }


def main() -> None:
    host, port, mode, channels = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    if mode == "steady":
        template = None
        if len(sys.argv) > 6:
            with open(sys.argv[6], "rb") as source:
                template = source.read()
        result = steady((host, port), channels, int(sys.argv[5]), template)
        print(json.dumps(result), flush=True)
        return
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    expected = int(sys.argv[5]) if mode == "flood" else int(int(sys.argv[5]) * float(sys.argv[6]))
    done = threading.Event()
    reader = threading.Thread(target=_drain, args=(sock, expected, done), daemon=True)
    reader.start()
    if mode == "flood":
        payloads = None
        if len(sys.argv) > 6:
            with open(sys.argv[6], "rb") as source:
                payloads = [line for line in source.read().splitlines() if line]
        result = flood(sock, channels, int(sys.argv[5]), payloads)
    else:
        result = paced(sock, channels, int(sys.argv[5]), float(sys.argv[6]))
    done.wait(60)
    sock.close()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
