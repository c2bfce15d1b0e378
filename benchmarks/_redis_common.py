"""Helpers shared by the Redis benchmarks: a private redis-server, payloads, publishers, decoding.

Every Redis benchmark runs against its own ``redis-server`` (a free port of 127.0.0.1, never
6379, ``--save "" --appendonly no``), started here and stopped at the end, unless ``REDIS_URL``
is set, in which case that server is used as it is (``bench_recovery.py`` needs its own server,
since it kills it).

The JSON decoder is ``orjson.loads`` when orjson is importable (the anchor figures used it), else
the stdlib ``json.loads``; both sides of a benchmark use the same one and the JSON line says which.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HOST = "127.0.0.1"
SHARED_PORT = 6379
PUBLISHER = Path(__file__).with_name("_raw_publisher.py")

try:
    import orjson

    loads: Callable[[bytes], Any] = orjson.loads
    DECODER = f"orjson {orjson.__version__}"
except ImportError:  # pragma: no cover - depends on the environment
    loads = json.loads
    DECODER = "json (stdlib)"


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now (never 6379)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port: int = sock.getsockname()[1]
        if port != SHARED_PORT:
            return port


def channel_names(count: int) -> list[str]:
    return [f"ch.{index}" for index in range(count)]


def encode_command(*args: str | bytes | int) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def payload(index: int, stamp: int = 0) -> bytes:
    """A JSON object of 130-140 bytes (stamp: a ``time.monotonic_ns()`` value, or 0)."""
    return (
        b'{"id":%d,"t":%d,"type":"chat.message","room":"room-%d","user":"user-%d",'
        b'"text":"hello from the benchmark publisher, padding..."}'
        % (index, stamp, index % 1000, index % 97)
    )


def ping(port: int, timeout: float = 0.25) -> bool:
    """Whether a server on ``port`` answers PING now."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def redis_version() -> str:
    executable = shutil.which("redis-server")
    if executable is None:
        return "unknown"
    output = subprocess.run([executable, "--version"], capture_output=True, text=True).stdout
    for word in output.split():
        if word.startswith("v="):
            return word[2:]
    return output.strip()


class RedisServer:
    """A private redis-server on a fixed free port; ``kill()`` (SIGKILL) and ``start()`` again."""

    def __init__(self, extra_args: tuple[str, ...] = ()) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise SystemExit("redis-server is not on PATH (Debian: apt-get install redis-server)")
        self.executable = executable
        self.port = free_port()
        self.extra_args = extra_args
        self.directory = Path(tempfile.mkdtemp(prefix="actors-bench-redis-"))
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        """``time.monotonic()`` just before the last ``start()`` spawned the process."""
        self.accepting_at = 0.0
        """``time.monotonic()`` of the first PING answered after the last ``start()``."""

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}"

    def start(self, timeout: float = 10.0) -> RedisServer:
        args = [
            self.executable,
            "--port", str(self.port), "--bind", HOST, "--save", "", "--appendonly", "no",
            "--dir", str(self.directory), "--logfile", str(self.directory / "redis.log"),
            *self.extra_args,
        ]  # fmt: skip
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not ping(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server did not start on {self.port}:\n{log}")
            time.sleep(0.002)
        self.accepting_at = time.monotonic()
        return self

    def kill(self) -> None:
        """SIGKILL the server and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        self.kill()
        self.process = None
        shutil.rmtree(self.directory, ignore_errors=True)


@contextlib.contextmanager
def redis_url(extra_args: tuple[str, ...] = ()) -> Iterator[str]:
    """``REDIS_URL`` if set, else the URL of a private server started for the block."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    server = RedisServer(extra_args).start()
    try:
        yield server.url
    finally:
        server.stop()


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or HOST, parts.port or SHARED_PORT


def start_publisher(url: str, *args: str | int) -> subprocess.Popen[str]:
    """Run ``_raw_publisher.py`` in its own process; see that file for the arguments.

    Every side calls this once it has subscribed, so each collects its garbage here first: a
    side that has just built a thousand subscriptions would otherwise pay for a full collection
    of them in the middle of its measured run (the collector's thresholds stay as they are)."""
    gc.collect()
    host, port = host_port(url)
    command = [sys.executable, str(PUBLISHER), host, str(port), *map(str, args)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def backlog(publisher: subprocess.Popen[str]) -> subprocess.Popen[str]:
    """Wait, blocking the caller's event loop on purpose, until a flooding publisher has sent
    everything: the server then holds the whole flood, and what the fan-in benchmarks measure is
    the subscriber draining it alone. A publisher running beside a subscriber that keeps up
    measures its own pace, and both share the two cores."""
    publisher.wait(timeout=300)
    return publisher


def flood_backlog(url: str, *args: str | int) -> subprocess.Popen[str]:
    """``start_publisher(url, "flood", *args)``, waited for with ``backlog``."""
    return backlog(start_publisher(url, "flood", *args))


def finish_publisher(process: subprocess.Popen[str], timeout: float = 120.0) -> dict[str, Any]:
    """Wait for a publisher and return the JSON summary it printed."""
    output, _ = process.communicate(timeout=timeout)
    if process.returncode != 0:
        raise RuntimeError(f"the publisher failed ({process.returncode}): {output[-500:]}")
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


class SteadyPublisher:
    """``_raw_publisher.py steady`` in its own process for the duration of a block.

    It publishes ``rate`` stamped messages per second round-robin over ``ch.0`` ..
    ``ch.{channels-1}``, reconnecting by itself whenever the server goes away; closing its
    standard input stops it, and ``summary`` then holds what it printed (messages sent and
    skipped, connections made, seconds disconnected, the rate while connected).
    """

    def __init__(
        self, url: str, channels: int, rate: int, template_file: Path | None = None
    ) -> None:
        host, port = host_port(url)
        self.command = [sys.executable, str(PUBLISHER), host, str(port), "steady"]
        self.command += [str(channels), str(rate)]
        if template_file is not None:
            self.command.append(str(template_file))
        self.process: subprocess.Popen[str] | None = None
        self.summary: dict[str, Any] = {}

    def __enter__(self) -> SteadyPublisher:
        self.process = subprocess.Popen(
            self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        return self

    def __exit__(self, *_: object) -> None:
        assert self.process is not None
        output = self.process.communicate(timeout=30)[0]  # closes its standard input first
        if self.process.returncode == 0 and output.strip():
            self.summary = json.loads(output.strip().splitlines()[-1])


class RoundPublisher:
    """A thread publishing one message to every channel, round after round, every ``interval``.

    It reconnects whenever the server is gone, so it keeps probing through a restart. Each
    payload carries ``time.monotonic_ns()``.
    """

    def __init__(self, url: str, channels: list[str], interval: float = 0.005) -> None:
        self.address = host_port(url)
        self.channels = [name.encode() for name in channels]
        self.interval = interval
        self.stopping = threading.Event()
        self.rounds = 0
        self.thread = threading.Thread(target=self._run, name="round-publisher", daemon=True)

    def __enter__(self) -> RoundPublisher:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        self.thread.join()

    def _run(self) -> None:
        sock: socket.socket | None = None
        while not self.stopping.is_set():
            try:
                if sock is None:
                    sock = socket.create_connection(self.address, timeout=0.5)
                    sock.setblocking(False)
                stamp = time.monotonic_ns()
                batch = b"".join(
                    encode_command(b"PUBLISH", name, payload(index, stamp))
                    for index, name in enumerate(self.channels)
                )
                sock.setblocking(True)
                sock.sendall(batch)
                sock.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    while sock.recv(1 << 20):
                        pass
                self.rounds += 1
            except OSError:
                if sock is not None:
                    sock.close()
                sock = None
            self.stopping.wait(self.interval)
        if sock is not None:
            sock.close()


def redis_asyncio_fanin(
    url: str, channels: int, count: int, decode: Callable[[bytes], object], *publisher_args: str
) -> tuple[float, int]:
    """The peer of the fan-in benchmarks: redis.asyncio PubSub with default settings.

    Subscribes to ``channels`` channels, floods them once every subscription is acknowledged
    (``flood_backlog``), decodes every message with ``decode``, and returns (messages/s from
    the first decoded message to the last, messages decoded). Runs its own asyncio loop.
    """
    import asyncio

    import redis.asyncio

    async def main() -> tuple[float, int]:
        client = redis.asyncio.Redis.from_url(url)
        pubsub = client.pubsub()
        await pubsub.subscribe(*channel_names(channels))
        acks = handled = 0
        first = last = 0.0
        publisher = None
        async for message in pubsub.listen():
            kind = message["type"]
            if kind == "message":
                decode(message["data"])
                handled += 1
                if handled == 1:
                    first = time.perf_counter()
                if handled == count:
                    last = time.perf_counter()
                    break
            elif kind == "subscribe":
                acks += 1
                if acks == channels:
                    publisher = flood_backlog(url, channels, count, *publisher_args)
        assert publisher is not None
        await asyncio.to_thread(finish_publisher, publisher)
        await pubsub.aclose()
        await client.aclose()
        return (handled - 1) / (last - first), handled

    return asyncio.run(main())


class Tally:
    """Counts what many subscribers handle, and when the first and the last one came."""

    def __init__(self, expected: int) -> None:
        import trio

        self.expected = expected
        self.count = 0
        self.first = 0.0
        self.last = 0.0
        self.done = trio.Event()

    def record(self) -> None:
        self.count += 1
        if self.count == 1:
            self.first = time.perf_counter()
        if self.count == self.expected:
            self.last = time.perf_counter()
            self.done.set()

    def rate(self) -> float:
        """Items per second from the first to the last."""
        return (self.count - 1) / (self.last - self.first)


async def wait_for_tally(tally: Tally, publisher: subprocess.Popen[str]) -> None:
    """Wait until everything is counted, or 3 s without progress once the publisher is done."""
    import trio

    seen = -1
    while not tally.done.is_set():
        with trio.move_on_after(3.0):
            await tally.done.wait()
        if tally.count == seen and publisher.poll() is not None:
            tally.last = time.perf_counter()
            print(f"  stalled at {tally.count:,} of {tally.expected:,} (dropped?)", flush=True)
            return
        seen = tally.count


def pubsub_fanin(
    url: str,
    channels: int,
    count: int,
    message_type: object,
    extra: dict[str, list[float]],
    *publisher_args: str,
) -> float:
    """Ours in the fan-in benchmarks: ``open_pubsub`` with default settings and one
    ``pubsub.subscribe(channel, handler, message_type=...)`` per channel, a handler that
    counts; the flood (``flood_backlog``) is sent once all are subscribed. Returns messages/s
    from the first handled to the last, and appends ``ours_dropped``, ``ours_decode_errors``
    and ``ours_handled`` to ``extra``."""
    import trio

    from actors import open_actor_system
    from actors.pubsub import open_pubsub

    async def main() -> float:
        tally = Tally(count)

        async def handle(message: object) -> None:
            tally.record()

        async with open_actor_system() as system, open_pubsub(system, url) as pubsub:
            handles = [
                await pubsub.subscribe(name, handle, message_type=message_type)
                for name in channel_names(channels)
            ]
            publisher = flood_backlog(url, channels, count, *publisher_args)
            await wait_for_tally(tally, publisher)
            await trio.to_thread.run_sync(finish_publisher, publisher)
            stats = [handle.statistics() for handle in handles]
            extra.setdefault("ours_dropped", []).append(sum(s.mailbox.dropped for s in stats))
            extra.setdefault("ours_decode_errors", []).append(
                sum(s.counters.decode_errors for s in stats)
            )
            extra.setdefault("ours_handled", []).append(tally.count)
        return tally.rate()

    return trio.run(main)
