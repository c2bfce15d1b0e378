"""WebSocket fan-out: 1,000 clients in one room of one server process, ours against trio-websocket.

Each run starts a fresh server in a child process (``_websocket_server.py``), so that the
server and this load generator each get a core:

- ours: the real gateway, ``open_gateway`` on ``memory://`` Pub/Sub and ``serve_gateway`` on
  127.0.0.1, with the per-user rate limit, the flood limit, the keepalive ping and the stats
  update lifted (``send_queue_size`` stays at its default, 256);
- peer: a minimal ``trio_websocket.serve_websocket`` server without actors whose handler reads
  each connection's frames and, for each ``say``, builds one ``message`` frame of the same shape
  (``{"type","room","user_id","text","sent_at"}``, orjson) and awaits ``send_message`` on every
  connection of the room in turn.

The load generator opens ``--clients`` connections on raw trio sockets (a hand-made upgrade
request and a minimal frame reader: server frames are counted, not parsed). Every client sends
``hello`` (a token signed with the secret given to the server) and ``join``, and waits for
``joined``; the first ``SENDERS`` of them also send the ``say`` frames, so the room holds exactly
``--clients`` sessions and every message is delivered ``--clients`` times. Only ``SAMPLES``
clients, spread over the join order, decode the JSON of their messages: the text carries the
sender's ``time.perf_counter()`` (same process, same clock).

Client i is user ``u{i % users}`` (``--users``, 10 by default): the gateway's presence is per
user, and each new user's join pushes a ``presence_diff`` to every session (global and room), so
1,000 distinct users would cost about a million frames before the first message, and a burst of
joins overflows the 256-frame send queues (300 distinct users joining 64 at a time had 12
sessions closed with 4002). The fan-out of messages, which is what is measured, is the same.

- Throughput: after a warm-up of ``WARMUP`` messages, ``--messages`` are sent with at most
  ``--window`` in flight (message k waits until every sample client has received k - window).
  deliveries/s = messages x clients / (last client's last message - first send).
- Latency: ``--rate`` messages a second for ``--latency-seconds``; p50 and p99 of send-to-receive
  over the sample clients.

Any client closed by the server during a run (4002, too slow, for instance) fails the run. The
load generator's and the server's CPU use over the throughput phase are extra keys: a figure near
1.0 says which side was the bottleneck.

Run: ``python benchmarks/bench_websocket.py [--quick]``. The last line of output is the JSON result.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import trio
import trio_websocket
from _common import emit, interleave, median, parse_args, progress, summary

from actors.server.gateway import DemoLogin, TokenVerifier

SERVER = Path(__file__).with_name("_websocket_server.py")
ROOM = "bench"
GOAL = 1.0  # ours / peer: the gateway at least as fast as the bare broadcast loop
SENDERS = 4
SAMPLES = 20
WARMUP = 10
CONNECTING = 64  # handshakes in flight while the room fills
TIMEOUT = 120.0  # seconds a phase may take before the run is declared stuck
MESSAGE = b'{"type":"message"'
JOINED = b'{"type":"joined"'
SECRET = secrets.token_bytes(32)  # the token secret, handed to each server process
OP_TEXT, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x8, 0x9, 0xA


class ClosedByServerError(RuntimeError):
    """The server closed clients during a run: the run is not valid."""


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """A client frame (FIN set, masked as RFC 6455 requires)."""
    length = len(payload)
    if length < 126:
        head = bytes((0x80 | opcode, 0x80 | length))
    elif length < 1 << 16:
        head = bytes((0x80 | opcode, 0x80 | 126)) + length.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + length.to_bytes(8, "big")
    mask = os.urandom(4)
    key = (mask * (length // 4 + 1))[:length]
    body = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(length, "big")
    return head + mask + body


class Tally:
    """Deliveries summed over every client, and the closes the server inflicted."""

    def __init__(self) -> None:
        self.deliveries = 0
        self.target = 0
        self.reached_at = 0.0
        self.reached = trio.Event()
        self.closes: Counter[int] = Counter()
        self.failed = trio.Event()

    def expect(self, target: int) -> None:
        self.target, self.reached = target, trio.Event()
        if self.deliveries >= target:
            self.reached_at = time.perf_counter()
            self.reached.set()

    def add(self, count: int) -> None:
        self.deliveries += count
        if self.deliveries >= self.target and not self.reached.is_set():
            self.reached_at = time.perf_counter()
            self.reached.set()

    def closed(self, code: int) -> None:
        self.closes[code] += 1
        self.failed.set()

    async def wait(self, target: int) -> float:
        """Wait until ``target`` deliveries in all; the time the last one arrived."""
        self.expect(target)
        with trio.fail_after(TIMEOUT):
            async with trio.open_nursery() as nursery:

                async def on_failure() -> None:
                    await self.failed.wait()
                    await trio.sleep(0.5)  # let the other closes come in before counting
                    nursery.cancel_scope.cancel()

                nursery.start_soon(on_failure)
                await self.reached.wait()
                nursery.cancel_scope.cancel()
        self.check()
        return self.reached_at

    def check(self) -> None:
        if self.closes:
            codes = ", ".join(f"{code}: {count}" for code, count in sorted(self.closes.items()))
            raise ClosedByServerError(
                f"the server closed {self.closes.total()} clients during the run (codes {codes})"
            )


class Gate:
    """Lets the sender wait until every sample client has received some number of messages."""

    def __init__(self, samples: list[RawClient]) -> None:
        self.samples = samples
        self.need = 0
        self.open = trio.Event()
        self.open.set()

    async def wait(self, need: int) -> None:
        if min(client.messages for client in self.samples) >= need:
            return
        self.need, self.open = need, trio.Event()
        await self.open.wait()

    def update(self) -> None:
        if not self.open.is_set() and all(c.messages >= self.need for c in self.samples):
            self.open.set()


class RawClient:
    """A WebSocket client on a raw trio socket: a hand-made upgrade and a counting reader."""

    def __init__(self, index: int, tally: Tally) -> None:
        self.index = index
        self.tally = tally
        self.socket = trio.socket.socket()
        self.socket.setsockopt(trio.socket.IPPROTO_TCP, trio.socket.TCP_NODELAY, 1)
        self.buffer = bytearray()
        self.messages = 0
        self.joined = trio.Event()
        self.gate: Gate | None = None
        """Set on sample clients: they decode their messages and record latencies."""
        self.latencies: list[float] = []

    async def connect(self, port: int) -> None:
        await self.socket.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        await self.send_all(
            (
                f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        while b"\r\n\r\n" not in self.buffer:
            data = await self.socket.recv(65536)
            if not data:
                raise ConnectionError(f"client {self.index}: the server closed the handshake")
            self.buffer += data
        end = self.buffer.index(b"\r\n\r\n") + 4
        if not self.buffer.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(f"client {self.index}: {bytes(self.buffer[:end])!r}")
        del self.buffer[:end]

    async def send_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            sent = await self.socket.send(view)
            view = view[sent:]

    async def send_json(self, **frame: Any) -> None:
        await self.send_all(masked_frame(OP_TEXT, orjson.dumps(frame)))

    async def read_loop(self) -> None:
        """Read until cancelled, counting ``message`` frames; a close or EOF is a failure."""
        buffer, tally = self.buffer, self.tally
        data = b""  # the buffer may hold frames that came with the handshake's answer
        while True:
            now = time.perf_counter()
            buffer += data
            count, position, size = 0, 0, len(buffer)
            while size - position >= 2:
                first, length = buffer[position], buffer[position + 1] & 0x7F
                start = position + 2
                if length == 126:
                    length = int.from_bytes(buffer[start : start + 2], "big")
                    start += 2
                elif length == 127:
                    length = int.from_bytes(buffer[start : start + 8], "big")
                    start += 8
                end = start + length
                if end > size:
                    break
                opcode = first & 0x0F
                if not first & 0x80:
                    raise RuntimeError(f"client {self.index}: fragmented frames are not handled")
                if opcode == OP_TEXT:
                    if buffer.startswith(MESSAGE, start):
                        count += 1
                        if self.gate is not None:
                            self.sample(buffer[start:end], now)
                    elif buffer.startswith(JOINED, start):
                        self.joined.set()
                elif opcode == OP_CLOSE:
                    code = int.from_bytes(buffer[start : start + 2], "big") if length else 1005
                    self.tally.closed(code)
                    return
                elif opcode == OP_PING:
                    await self.send_all(masked_frame(OP_PONG, bytes(buffer[start:end])))
                position = end
            del buffer[:position]
            if count:
                self.messages += count
                tally.add(count)
                if self.gate is not None:
                    self.gate.update()
            data = await self.socket.recv(262144)
            if not data:
                tally.closed(1006)
                return

    def sample(self, payload: bytearray, now: float) -> None:
        phase, _, stamp = orjson.loads(payload)["text"].split()
        if phase == "L":
            self.latencies.append(now - float(stamp))


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (Linux ``/proc``)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(kind: str, args: argparse.Namespace) -> tuple[subprocess.Popen[str], int]:
    command = [sys.executable, str(SERVER), kind, SECRET.hex()]
    if args.server_gc_threshold:
        command += ["--gc-threshold", str(args.server_gc_threshold)]
    if args.profile_dir:
        profiles = Path(args.profile_dir)
        command += ["--profile", str(profiles / f"{kind}-{len(list(profiles.glob(f'{kind}-*')))}")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("PORT "):
        process.kill()
        raise RuntimeError(f"the {kind} server did not start: {line!r}")
    return process, int(line.split()[1])


def stop_server(process: subprocess.Popen[str]) -> tuple[float, int]:
    """Stop a server; the seconds it spent in the garbage collector and its full collections."""
    process.send_signal(signal.SIGTERM)
    try:
        output, _ = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return float("nan"), -1
    for line in output.splitlines():
        if line.startswith("GC "):
            seconds, full = line.split()[1:]
            return float(seconds), int(full)
    return float("nan"), -1


async def fill_room(
    port: int, clients: list[RawClient], users: int, tally: Tally, readers: trio.Nursery
) -> None:
    """Connect every client, start its reader, say hello and join; wait for every ``joined``.

    Client i is user ``u{i % users}``. A close by the server fails the run at once.
    """
    signer = DemoLogin(TokenVerifier.from_secret(SECRET))
    limiter = trio.CapacityLimiter(CONNECTING)

    async def enter(client: RawClient) -> None:
        async with limiter:
            await client.connect(port)
            readers.start_soon(client.read_loop)
            token = signer.issue(f"u{client.index % users}")[0]
            await client.send_json(type="hello", token=token)
            await client.send_json(type="join", room=ROOM)
            await client.joined.wait()

    async def fail_fast(nursery: trio.Nursery) -> None:
        await tally.failed.wait()
        await trio.sleep(0.5)
        nursery.cancel_scope.cancel()

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as watcher:
            watcher.start_soon(fail_fast, watcher)
            async with trio.open_nursery() as nursery:
                for client in clients:
                    nursery.start_soon(enter, client)
            watcher.cancel_scope.cancel()
    tally.check()


def run_case(
    kind: str, args: argparse.Namespace, extra: dict[str, list[Any]]
) -> Callable[[int], float]:
    def run(count: int) -> float:
        process, port = start_server(kind, args)
        try:
            return trio.run(measure, kind, port, process.pid, count, args, extra)
        finally:
            seconds, full = stop_server(process)
            extra.setdefault(f"{kind}_server_gc_s", []).append(seconds)
            extra.setdefault(f"{kind}_server_full_gcs", []).append(full)
            progress(f"  {kind} server: {seconds:.2f} s in the garbage collector, {full} full runs")

    return run


async def measure(
    kind: str,
    port: int,
    pid: int,
    count: int,
    args: argparse.Namespace,
    extra: dict[str, list[Any]],
) -> float:
    tally = Tally()
    clients = [RawClient(index, tally) for index in range(args.clients)]
    senders = clients[:SENDERS]
    receivers = clients[SENDERS:]
    samples = [receivers[j * len(receivers) // SAMPLES] for j in range(SAMPLES)]
    gate = Gate(samples)
    for client in samples:
        client.gate = gate
    sent = 0

    async def say(phase: str) -> None:
        nonlocal sent
        sender = senders[sent % len(senders)]
        sent += 1
        await sender.send_json(type="say", room=ROOM, text=f"{phase} {sent} {time.perf_counter()}")

    async def paced_burst(messages: int) -> None:
        for _ in range(messages):
            await gate.wait(sent - args.window + 1)
            await say("T")

    try:
        async with trio.open_nursery() as readers:
            started = time.perf_counter()
            await fill_room(port, clients, args.users, tally, readers)
            setup = time.perf_counter() - started
            n = len(clients)

            await paced_burst(WARMUP)
            await tally.wait(sent * n)

            load_cpu, server_cpu = time.process_time(), cpu_seconds(pid)
            first = time.perf_counter()
            await paced_burst(count)
            last = await tally.wait(sent * n)
            elapsed = last - first
            load_cpu = (time.process_time() - load_cpu) / elapsed
            server_cpu = (cpu_seconds(pid) - server_cpu) / elapsed
            rate = count * n / elapsed

            interval = 1.0 / args.rate
            start = trio.current_time()
            for i in range(args.rate * args.latency_seconds):
                await trio.sleep_until(start + i * interval)
                await say("L")
            await tally.wait(sent * n)
            readers.cancel_scope.cancel()
    finally:
        for client in clients:
            client.socket.close()
    latencies = sorted(value for client in samples for value in client.latencies)
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    extra.setdefault(f"{kind}_p50_ms", []).append(cuts[49] * 1e3)
    extra.setdefault(f"{kind}_p99_ms", []).append(cuts[98] * 1e3)
    extra.setdefault(f"{kind}_max_ms", []).append(latencies[-1] * 1e3)
    extra.setdefault(f"{kind}_setup_s", []).append(setup)
    extra.setdefault(f"{kind}_loadgen_cpu", []).append(load_cpu)
    extra.setdefault(f"{kind}_server_cpu", []).append(server_cpu)
    progress(
        f"  {kind}: {n:,} clients joined in {setup:.1f} s; {count:,} messages in {elapsed:.2f} s "
        f"(cpu: load generator {load_cpu:.2f}, server {server_cpu:.2f}); "
        f"latency p50 {cuts[49] * 1e3:.1f} ms, p99 {cuts[98] * 1e3:.1f} ms"
    )
    return rate


def main() -> None:
    def extend(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--profile-dir", help="run each server under cProfile, stats files go here"
        )
        parser.add_argument(
            "--server-gc-threshold",
            type=int,
            default=0,
            help="both servers' generation-0 GC threshold; by default both tune their "
            "collector as `actors serve` does (gc.freeze, 50,000) once they listen",
        )

    args = parse_args(
        __doc__.splitlines()[0],
        full={
            "clients": 1000,
            "users": 10,
            "messages": 200,
            "window": 32,
            "rate": 5,
            "latency_seconds": 10,
            "repeats": 3,
        },
        quick={
            "clients": 1000,
            "users": 10,
            "messages": 50,
            "window": 32,
            "rate": 5,
            "latency_seconds": 4,
            "repeats": 2,
        },
        extend=extend,
    )
    if args.clients <= SENDERS + SAMPLES:
        raise SystemExit(f"--clients must be above {SENDERS + SAMPLES}")
    if args.profile_dir:
        Path(args.profile_dir).mkdir(parents=True, exist_ok=True)
    progress(
        f"bench_websocket: {args.clients:,} clients in one room ({SENDERS} of them send), "
        f"{args.messages:,} messages per run ({args.window} in flight), latency at "
        f"{args.rate} msg/s for {args.latency_seconds} s, {args.repeats} repeats"
    )
    extra: dict[str, list[Any]] = {}
    samples = interleave(
        {"ours": run_case("ours", args, extra), "peer": run_case("peer", args, extra)},
        size=args.messages,
        repeats=args.repeats,
        unit="deliveries/s",
    )
    mine, theirs = summary(samples["ours"]), summary(samples["peer"])
    figures = {key: round(median(values), 3) for key, values in extra.items()}
    ratio = mine["median"] / theirs["median"]
    progress(
        f"medians (deliveries/s): ours {mine['median']:,.0f}, peer {theirs['median']:,.0f}, "
        f"ratio {ratio:.2f} (goal >= {GOAL}); p99 ms: ours {figures['ours_p99_ms']}, "
        f"peer {figures['peer_p99_ms']}"
    )
    emit(
        "websocket",
        ours=mine["median"],
        peer=theirs["median"],
        unit="deliveries/s",
        goal=GOAL,
        goal_met=ratio >= GOAL,
        ours_messages_per_s=round(mine["median"] / args.clients, 1),
        peer_messages_per_s=round(theirs["median"] / args.clients, 1),
        **figures,
        ours_spread=mine["spread"],
        peer_spread=theirs["spread"],
        ours_samples=mine["samples"],
        peer_samples=theirs["samples"],
        ours_is="the gateway (open_gateway, memory:// Pub/Sub, serve_gateway) in a child "
        "process; rate, flood, ping and stats limits lifted, send_queue_size 256",
        peer_is="trio_websocket.serve_websocket in a child process; each say: one orjson "
        "message frame, awaited send_message to every connection in turn",
        clients=args.clients,
        users=args.users,
        senders=SENDERS,
        sample_clients=SAMPLES,
        messages=args.messages,
        window=args.window,
        latency_rate=args.rate,
        latency_seconds=args.latency_seconds,
        repeats=args.repeats,
        server_gc=(
            f"threshold {args.server_gc_threshold}, both servers"
            if args.server_gc_threshold
            else "tune_garbage_collector() once listening (gc.freeze(), threshold 50,000), "
            "both servers, as `actors serve`"
        ),
        trio_websocket=trio_websocket.__version__,
        quick=args.quick,
    )


if __name__ == "__main__":
    main()
