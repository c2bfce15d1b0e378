"""``Inbox``: collects what handlers receive, and wakes a waiter once enough has arrived."""

from __future__ import annotations

from typing import Any

import trio

WAIT = 10.0  # seconds a test waits for deliveries that should come at once


class Inbox:
    """Use ``inbox`` itself as an async handler, or call ``add`` from one."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = trio.Event()

    def add(self, item: Any) -> None:
        self.items.append(item)
        self._changed.set()
        self._changed = trio.Event()

    async def __call__(self, item: Any) -> None:
        self.add(item)

    async def wait_for(self, count: int) -> list[Any]:
        """The items, once at least ``count`` have arrived (``trio.TooSlowError`` after
        ``WAIT`` seconds)."""
        with trio.fail_after(WAIT):
            while len(self.items) < count:
                await self._changed.wait()
        return self.items
