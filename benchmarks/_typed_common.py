"""Helpers shared by the typed Pub/Sub benchmarks: the message, its peer twin, payload files,
and publisher actors.

``BenchNotification`` is a registered ``Message`` shaped like the users' guide's notification
(id, timestamp, user id, a type-like ``category``, a small ``data`` dict). Its payloads are
encoded with our ``CODEC`` (189 to 199 bytes each) and written one per line to a file that
``_raw_publisher.py flood`` sends round-robin.

``PeerNotification`` is the same fields as a plain attrs class, structured by a plain
``cattrs.preconf.orjson.make_converter()`` converter: the peer's decoding does the same work
(``orjson.loads`` then ``converter.structure``) without our codec, and its encoding likewise
(``converter.unstructure`` then ``orjson.dumps``).

``Publisher`` actors publish bursts of messages through ``PubSub.publish``, the path users take:
``publish_bursts`` times 100 of them (bench_publish, bench_history).
"""

from __future__ import annotations

import gc
import itertools
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import attrs
import orjson
import trio
from cattrs.preconf.orjson import make_converter

from actors import Actor, ActorSystem
from actors.messages import CODEC, Codec, Message, message_type
from actors.pubsub import PubSub

PAYLOADS = 1000  # distinct payloads in a file, sent round-robin
VERSIONS = f"cattrs {version('cattrs')}, orjson {orjson.__version__}, msgspec {version('msgspec')}"


@message_type("bench.notification")
@attrs.frozen(kw_only=True)
class BenchNotification(Message):
    user_id: str
    category: str
    data: dict[str, str]


@attrs.frozen(kw_only=True)
class PeerNotification:
    """The peer's twin of ``BenchNotification`` (the ``"type"`` key is ignored by cattrs)."""

    id: str
    timestamp: datetime
    user_id: str
    category: str
    data: dict[str, str]


PEER_CONVERTER = make_converter()


def peer_decode(payload: bytes) -> PeerNotification:
    """The peer's decoding: orjson, then a plain cattrs converter."""
    value: Any = orjson.loads(payload)
    return PEER_CONVERTER.structure(value, PeerNotification)


def encoded_payloads(count: int = PAYLOADS) -> list[bytes]:
    """``count`` distinct ``BenchNotification`` payloads encoded with ``CODEC``."""
    start = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
    return [
        CODEC.encode(
            BenchNotification(
                id=f"{index:032x}",
                timestamp=start + timedelta(milliseconds=index),
                user_id=f"u-{index % 997}",
                category="chat.message",
                data={"room": f"room-{index % 100}", "text": "hi there"},
            )
        )
        for index in range(count)
    ]


def write_payloads(payloads: list[bytes]) -> Path:
    """A temporary file with one payload per line, for ``_raw_publisher.py flood``."""
    with tempfile.NamedTemporaryFile(
        "wb", prefix="actors-bench-", suffix=".jsonl", delete=False
    ) as f:
        for payload in payloads:
            if b"\n" in payload:
                raise ValueError("a payload with a newline cannot go into a payload file")
            f.write(payload + b"\n")
    return Path(f.name)


class CountingCodec(Codec):
    """Our codec, counting ``decode`` calls (to report decodes per message)."""

    def __init__(self) -> None:
        super().__init__()
        self.decodes = 0

    def decode(self, payload: bytes, expected: object) -> Any:
        self.decodes += 1
        return super().decode(payload, expected)


def check_payloads(payloads: list[bytes]) -> dict[str, Any]:
    """Both decoders accept every payload and agree; returns the payload sizes."""
    for payload in payloads[:50]:
        ours = CODEC.decode(payload, BenchNotification)
        theirs = peer_decode(payload)
        assert attrs.asdict(ours) == attrs.asdict(theirs), (ours, theirs)
    sizes = sorted(len(payload) for payload in payloads)
    return {"payload_bytes_min": sizes[0], "payload_bytes_max": sizes[-1]}


def peer_encode(message: PeerNotification) -> bytes:
    """The peer's encoding: a plain cattrs converter, then orjson."""
    return orjson.dumps(PEER_CONVERTER.unstructure(message))


def peer_twin(message: BenchNotification) -> PeerNotification:
    """The peer's message with the same field values."""
    return PeerNotification(**attrs.asdict(message, recurse=False))


# -- publisher actors ------------------------------------------------------------------------

STAMP = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)
DATA = {"room": "room-7", "text": "hi there"}
_ids = itertools.count()


def new_messages(count: int) -> list[BenchNotification]:
    """``count`` messages with ids never used before in this process (a history remembers an
    id for its dedupe window and would not append it again)."""
    return [
        BenchNotification(
            id=f"{next(_ids):032x}",
            timestamp=STAMP,
            user_id=f"u-{index % 997}",
            category="chat.message",
            data=DATA,
        )
        for index in range(count)
    ]


@attrs.frozen
class Burst:
    """Told to a publisher: publish these, then report done."""

    messages: list[BenchNotification]


class Finish:
    """Counts the publishers that are done."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.count = 0
        self.done = trio.Event()

    def one_done(self) -> None:
        self.count += 1
        if self.count == self.expected:
            self.done.set()


class Publisher(Actor):
    """Publishes every message of a burst on its channel, one after another."""

    def __init__(self, pubsub: PubSub, channel: str, finish: Finish) -> None:
        self.pubsub = pubsub
        self.channel = channel
        self.finish = finish

    async def receive(self, message: Any) -> None:
        if type(message) is Burst:
            publish, channel = self.pubsub.publish, self.channel
            for item in message.messages:
                await publish(channel, item)
            self.finish.one_done()


async def publish_bursts(
    system: ActorSystem,
    pubsub: PubSub,
    channels: Sequence[str],
    bursts: Sequence[Burst],
) -> float:
    """Spawn a ``Publisher`` per channel, tell each its burst, and return the seconds from
    telling the first until the last is done (the actors are stopped afterwards). Unbounded:
    the caller bounds it."""
    finish = Finish(len(channels))
    refs = [await system.spawn(Publisher, pubsub, channel, finish) for channel in channels]
    gc.collect()
    started = time.perf_counter()
    for ref, burst in zip(refs, bursts, strict=True):
        await ref.tell(burst)
    await finish.done.wait()
    elapsed = time.perf_counter() - started
    for ref in refs:
        await ref.stop()
    return elapsed
