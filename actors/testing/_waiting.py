"""Waiting in tests for something to become true, always with a deadline.

Two ways: ``wait_until`` polls a condition (a plain or an async predicate, such as a query to a
server) until it holds; ``Inbox`` records what a handler is given and wakes its waiters on each
item, so that waiting on it takes no polling at all. Both read trio's clock: under
``autojump_clock`` a deadline that nothing else beats is reached at once, so a test that would
hang fails immediately, and polling takes no real time.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Final

import trio

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["POLL_INTERVAL", "WAIT_TIMEOUT", "Inbox", "wait_until"]

WAIT_TIMEOUT: Final = 10.0  # seconds a wait lasts by default before it fails
POLL_INTERVAL: Final = 0.01  # seconds between two checks of a polled condition


async def wait_until(
    condition: Callable[[], object] | Callable[[], Awaitable[object]],
    *,
    timeout: float = WAIT_TIMEOUT,  # noqa: ASYNC109 - a test's wait always has a deadline
    interval: float = POLL_INTERVAL,
    what: str | None = None,
    retry_on: type[Exception] | tuple[type[Exception], ...] = (),
) -> None:
    """Wait until ``condition()`` is true, checking it every ``interval`` seconds.

    The condition may be a plain function or an async one (a query to a server, say); the
    deadline covers each call too, so a query that hangs fails at the deadline. A checkpoint,
    even when the condition holds at once.

    Args:
        condition: Called with no arguments; its result (awaited if it is awaitable) is tested
            for truth.
        timeout: Seconds, on trio's clock, before the wait fails.
        interval: Seconds between two checks.
        what: What is awaited, for the error message (by default the condition's name).
        retry_on: Exceptions of the condition that mean "not yet", such as ``OSError`` while a
            server restarts; the last one becomes the failure's cause. Others propagate.

    Raises:
        trio.TooSlowError: The condition did not hold within ``timeout`` seconds.
    """
    await trio.lowlevel.checkpoint()
    last_error: Exception | None = None
    with trio.move_on_after(timeout):
        while True:
            try:
                result = condition()
                if inspect.isawaitable(result):
                    result = await result
            except retry_on as error:
                last_error = error
            else:
                if result:
                    return
            await trio.sleep(interval)
    description = what or getattr(condition, "__qualname__", repr(condition))
    raise trio.TooSlowError(
        f"timed out after {timeout} s waiting for {description}"
    ) from last_error


class Inbox:
    """Records what a handler is given, and lets a test wait for it with a deadline.

    Pass the inbox itself as an async handler (``await pubsub.subscribe(Chat, inbox)``), or call
    ``add`` from a handler of your own. Each item wakes the waiters, so waiting takes no polling.
    """

    def __init__(self) -> None:
        self.items: list[Any] = []
        """Everything received so far, in order."""
        self._changed = trio.Event()

    def add(self, item: Any) -> None:
        """Record ``item`` and wake the waiters."""
        self.items.append(item)
        self._changed.set()
        self._changed = trio.Event()

    async def __call__(self, item: Any) -> None:
        """Record ``item``: the inbox as an async handler.

        Deliberately not a checkpoint: the caller finishes its own bookkeeping (counting the
        message as handled, say) before a waiter wakes up and looks at it.
        """
        self.add(item)

    async def wait_until(
        self,
        condition: Callable[[list[Any]], object],
        *,
        timeout: float = WAIT_TIMEOUT,  # noqa: ASYNC109 - a test's wait always has a deadline
        what: str | None = None,
    ) -> list[Any]:
        """Wait until ``condition(items)`` is true, checking it after every new item.

        Args:
            condition: Called with the items so far.
            timeout: Seconds, on trio's clock, before the wait fails.
            what: What is awaited, for the error message.

        Returns:
            The items, once the condition holds.

        Raises:
            trio.TooSlowError: The condition did not hold within ``timeout`` seconds.
        """
        await trio.lowlevel.checkpoint()
        with trio.move_on_after(timeout):
            while not condition(self.items):
                await self._changed.wait()
            return self.items
        description = what or getattr(condition, "__qualname__", repr(condition))
        raise trio.TooSlowError(
            f"timed out after {timeout} s waiting for {description}; received: {self.items!r}"
        )

    async def wait_for(
        self,
        count: int,
        *,
        timeout: float = WAIT_TIMEOUT,  # noqa: ASYNC109 - a test's wait always has a deadline
    ) -> list[Any]:
        """The items, once at least ``count`` of them have arrived.

        Raises:
            trio.TooSlowError: Fewer than ``count`` arrived within ``timeout`` seconds.
        """
        return await self.wait_until(
            lambda items: len(items) >= count, timeout=timeout, what=f"{count} items"
        )
