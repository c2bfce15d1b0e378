"""A push handler for tests of the raw Redis client: it keeps every push frame it is given."""

from __future__ import annotations

from typing import Any

import trio


class PushCollector:
    """A push handler that keeps every frame and lets a test wait for the n-th one."""

    def __init__(self) -> None:
        self.frames: list[list[Any]] = []
        self._changed = trio.Event()

    def __call__(self, frame: list[Any]) -> None:
        self.frames.append(list(frame))
        self._changed.set()

    async def wait_for(self, count: int) -> list[list[Any]]:
        """Wait (under the caller's deadline) until ``count`` frames came; all of them."""
        while len(self.frames) < count:
            self._changed = trio.Event()
            await self._changed.wait()
        return self.frames
