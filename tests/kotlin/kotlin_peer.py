"""``KotlinPeer``: the guide's message classes in a real Kotlin program, driven from trio tests.

The program is ``GuidePeer.kt`` beside this file (its header documents the protocol): it
publishes one fixed sample of every guide message kind, or receives payloads and says what
kotlinx.serialization made of them. ``build_peer.py`` compiles it; ``require_kotlin_peer()`` gives
a ready peer to the session fixture ``kotlin_peer`` in ``tests/conftest.py``, or skips the test
when the toolchain is missing. Under ``ACTORS_REQUIRE_REDIS=1`` or in CI (``CI`` set) a missing
toolchain fails instead: ``.ci/run`` installs it.

    lines = await kotlin_peer.publish(redis_server.url, "interop")
    async with kotlin_peer.receiving(redis_server.url, "interop", count=2) as receiver:
        await redis.publish(kotlin_peer.channel("interop", "Event"), b'{"id":"e1","type":"x"}')
        ...
    lines = await receiver.lines()  # or inside the block, once all came
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Final
from urllib.parse import urlsplit

import attrs
import build_peer
import pytest
import trio

REQUIRE_ENV: Final = "ACTORS_REQUIRE_REDIS"

KINDS: Final = (
    "NotificationMessage",
    "Notification",
    "Event",
    "PresenceMessage",
    "UserOnline",
    "UserOffline",
    "UserPresence",
    "PubSubMessage",
    "PubSubMessage.Notification",
    "ChatMessage",
    "LiveUpdate",
    "DataUpdate",
    "ConfigUpdate",
    "StatusUpdate",
)
"""Every Kotlin type the peer encodes and decodes, in the order ``publish`` goes through them."""


class KotlinPeerError(RuntimeError):
    """The peer exited with an error, or its output was not what the protocol says."""


@attrs.frozen
class PeerLine:
    """One line of the peer's output: a payload of ``kind``, or kotlinx's refusal of one."""

    kind: str
    json: str | None = None
    """The JSON text (published, or decoded and encoded again), when kotlinx took it."""
    error: str | None = None
    """``decode: ...`` or ``encode: ...`` with the exception, when kotlinx refused it."""

    @classmethod
    def parse(cls, line: str) -> PeerLine:
        match line.split("\t", 2):
            case ["ERROR", kind, error]:
                return cls(kind, error=error)
            case [kind, json] if kind in KINDS:
                return cls(kind, json=json)
            case _:
                raise KotlinPeerError(f"not a line of the peer's protocol: {line!r}")


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "redis" or parts.hostname is None:
        raise ValueError(f"the Kotlin peer speaks plain TCP only, not {url!r}")
    return parts.hostname, parts.port or 6379


def _parse(output: bytes) -> list[PeerLine]:
    return [PeerLine.parse(line) for line in output.decode().splitlines()]


class KotlinReceiver:
    """A running ``receive``: subscribed to every kind's channel until it has had its count."""

    def __init__(self, process: trio.Process) -> None:
        assert process.stdout is not None
        assert process.stderr is not None
        self._process = process
        self._stdout = process.stdout
        self._stderr = process.stderr
        self._buffer = bytearray()

    async def wait_ready(self) -> None:
        """Wait for the peer's READY: from then on it is subscribed to every kind's channel."""
        while b"\n" not in self._buffer:
            chunk = await self._stdout.receive_some()
            if not chunk:
                raise KotlinPeerError(f"the peer ended before READY: {bytes(self._buffer)!r}")
            self._buffer += chunk
        line, _, rest = bytes(self._buffer).partition(b"\n")
        if line != b"READY":
            raise KotlinPeerError(f"the peer said {line!r} instead of READY")
        self._buffer = bytearray(rest)

    async def lines(self) -> list[PeerLine]:
        """Wait for the peer to take its count of messages and exit; return what it printed."""
        while chunk := await self._stdout.receive_some():
            self._buffer += chunk
        errors = bytearray()
        while chunk := await self._stderr.receive_some():
            errors += chunk
        code = await self._process.wait()
        if code != 0:
            raise KotlinPeerError(f"receive exited with {code}: {bytes(errors)!r}")
        return _parse(bytes(self._buffer))


@attrs.frozen
class KotlinPeer:
    """The compiled peer; ``command`` runs it (the mode and its arguments follow).

    Callers bound each call with ``trio.fail_after``, as they bound any wait; the peer itself gives
    up (exit code 1) when Redis stays silent for 30 s, so no JVM outlives a test run for long.
    """

    command: tuple[str, ...]

    @staticmethod
    def channel(channel: str, kind: str) -> str:
        """The channel that payloads of ``kind`` travel on, for a peer run given ``channel``."""
        return f"{channel}.{kind}"

    async def publish(self, url: str, channel: str) -> list[PeerLine]:
        """Publish the sample of every kind on its channel; return the peer's lines, in order."""
        host, port = _host_port(url)
        result = await trio.run_process(
            [*self.command, "publish", host, str(port), channel],
            stdin=subprocess.DEVNULL,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
        if result.returncode != 0:
            raise KotlinPeerError(f"publish exited with {result.returncode}: {result.stderr!r}")
        return _parse(result.stdout)

    @asynccontextmanager
    async def receiving(self, url: str, channel: str, count: int) -> AsyncIterator[KotlinReceiver]:
        """Run ``receive`` for ``count`` messages; the body starts once the peer is subscribed.

        A peer still running when the block ends is terminated.
        """
        host, port = _host_port(url)
        command = [*self.command, "receive", host, str(port), channel, str(count)]
        async with trio.open_nursery() as nursery:
            process: trio.Process = await nursery.start(
                partial(
                    trio.run_process,
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,  # read at the end: the peer writes little there
                    check=False,
                )
            )
            receiver = KotlinReceiver(process)
            await receiver.wait_ready()
            yield receiver
            nursery.cancel_scope.cancel(reason="the receiving block ended")


def toolchain_required() -> bool:
    """In CI or under ``ACTORS_REQUIRE_REDIS=1`` a missing toolchain is a failure, not a skip."""
    ci = os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}
    return ci or os.environ.get(REQUIRE_ENV, "") == "1"


def require_kotlin_peer() -> KotlinPeer:
    """Build the peer (or reuse the cached build); skip, or fail in CI, without the toolchain."""
    toolchain = build_peer.find_toolchain()
    if toolchain is None:
        reason = "the Kotlin peer's toolchain is missing: " + "; ".join(build_peer.missing_parts())
        if toolchain_required():
            pytest.fail(f"{reason} (CI and {REQUIRE_ENV}=1 make this a failure)", pytrace=False)
        pytest.skip(f"{reason} (CI and {REQUIRE_ENV}=1 make this a failure)")
    try:
        jar = build_peer.build(toolchain)
    except build_peer.ToolchainError as error:
        pytest.fail(f"the Kotlin peer did not compile: {error}", pytrace=False)
    return KotlinPeer(tuple(build_peer.run_command(toolchain, jar)))
