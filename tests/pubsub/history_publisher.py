"""The publishers of the single-server test of test_history_faults.py, in a process of their own.

Usage: ``python history_publisher.py REDIS_URL [RATE]``. It runs ``PUBLISHERS`` publishers on
each of ``CHANNELS`` (tests/helpers/numbered_publishers.py), ``RATE`` messages a second in all,
on one connection of its own, so that publishing has a core of its own while the test's process
runs the subscribers. It speaks JSON, one object a line on stdout, and takes commands a line on
stdin:

- once connected and publishing: ``{"started": true}``;
- ``marks``: ``{"published": {channel: [last number of publisher 0, 1, ...]}}``, what each
  publisher has published so far (a publish under way is not counted);
- ``stop``: the publishers stop between two numbers, and it says ``{"published": ...,
  "retried": ..., "elapsed": ..., "cpu": ...}`` (the final numbers, the publishes retried past
  ``publish``'s own retries, the seconds from the first publish to the stop on trio's clock, and
  the CPU seconds it used meanwhile), then exits 0.

At the end of stdin (the test is gone) it stops at once, without a word, even when its server is
gone too.

Its log goes to stderr.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "helpers"))
from numbered_publishers import (
    CHANNELS,
    PUBLISHER_BACKOFF,
    RATE,
    WAIT,
    publishers,
    settings,
)

from actors import open_actor_system
from actors.pubsub import open_pubsub


def say(report: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()


class Commands:
    """The lines of stdin, read without blocking trio's loop."""

    def __init__(self) -> None:
        self.stream = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
        self.buffer = b""

    async def next(self) -> str | None:
        """The next line, or ``None`` at the end of stdin."""
        while b"\n" not in self.buffer:
            chunk = await self.stream.receive_some()
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode().strip()


async def main(url: str, rate: float) -> None:
    commands = Commands()
    async with (
        open_actor_system() as system,
        open_pubsub(system, url, settings=settings(PUBLISHER_BACKOFF)) as pubsub,
    ):
        with trio.fail_after(WAIT):
            await pubsub.broker.wait_connected()
        cpu = time.process_time()
        with trio.CancelScope() as running:
            async with publishers(pubsub, CHANNELS, rate, sharded=False) as publishing:
                say({"started": True})
                while (command := await commands.next()) != "stop":
                    if command is None:
                        running.cancel()  # the publishers, even in the middle of a publish
                        await trio.lowlevel.checkpoint()
                    elif command == "marks":
                        say({"published": publishing.counts()})
                    else:
                        raise ValueError(f"unknown command {command!r}")
        if not running.cancelled_caught:
            say({**publishing.report(), "cpu": time.process_time() - cpu})
    await commands.stream.aclose()


if __name__ == "__main__":
    trio.run(main, sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else RATE)
