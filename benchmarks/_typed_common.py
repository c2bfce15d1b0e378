"""Helpers shared by the typed Pub/Sub benchmarks: the message, its peer twin, payload files.

``BenchNotification`` is a registered ``Message`` shaped like the users' guide's notification
(id, timestamp, user id, a type-like ``category``, a small ``data`` dict). Its payloads are
encoded with our ``CODEC`` (189 to 199 bytes each) and written one per line to a file that
``_raw_publisher.py flood`` sends round-robin.

``PeerNotification`` is the same fields as a plain attrs class, structured by a plain
``cattrs.preconf.orjson.make_converter()`` converter: the peer's decoding does the same work
(``orjson.loads`` then ``converter.structure``) without our codec.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import attrs
import orjson
from cattrs.preconf.orjson import make_converter

from actors.messages import CODEC, Codec, Message, message_type

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
