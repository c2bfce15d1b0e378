"""``UpdateDispatcher``: one ``events.*`` subscription, a handler per live update type."""

from __future__ import annotations

import functools
import operator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final, TypeVar, overload

import trio

from actors.server.notifications._updates import (
    UPDATES_PATTERN,
    LiveUpdate,
    registered_update_types,
    update_type_name,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from actors.pubsub import ErrorPolicy, HandlerStatistics, PubSub, SubscriptionHandle
    from actors.redis import ConnectionLost, Resubscribed
    from actors.runtime import MailboxConfig

U = TypeVar("U", bound=LiveUpdate)

CLOSE_GRACE: Final = 5.0  # seconds to unsubscribe when leaving ``open``


class UpdateDispatcher:
    """Calls the handlers registered for each live update's type, from one subscription.

    Register handlers with ``on`` (per type) and ``on_any`` (every update), then ``start`` (or
    ``async with dispatcher.open()``): it pattern-subscribes ``events.*`` once, expecting the
    tagged union of the handled types, so the codec picks the class by the ``"type"`` field.
    An update of a type nobody handles, or one that does not decode, is a decode error: the
    ``PubSub``'s error policy counts it, logs it and dead-letters it (skip, by default), and
    the next update is dispatched as usual.

    Each update is passed to its type's handlers, then to the catch-all ones, in registration
    order. If one raises, the error policy's retry calls them all again from the first.

    Args:
        pubsub: Where updates arrive.
        error_policy: The subscription's policy; default: the ``PubSub``'s.
        mailbox: The subscription's mailbox; default: the ``PubSub``'s settings.
        on_gap: Called with ``ConnectionLost`` and ``Resubscribed``: updates published in
            between are lost.
    """

    def __init__(
        self,
        pubsub: PubSub,
        *,
        error_policy: ErrorPolicy | None = None,
        mailbox: MailboxConfig | None = None,
        on_gap: Callable[[ConnectionLost | Resubscribed], Awaitable[object]] | None = None,
    ) -> None:
        self.pubsub = pubsub
        self.error_policy = error_policy
        self.mailbox = mailbox
        self.on_gap = on_gap
        self._handlers: dict[type[LiveUpdate], list[Callable[[Any], Awaitable[object]]]] = {}
        self._any: list[Callable[[LiveUpdate], Awaitable[object]]] = []
        self._handle: SubscriptionHandle | None = None
        self._started = False

    @overload
    def on(
        self, update_type: type[U], handler: Callable[[U], Awaitable[object]]
    ) -> Callable[[U], Awaitable[object]]: ...
    @overload
    def on(
        self, update_type: type[U], handler: None = None
    ) -> Callable[[Callable[[U], Awaitable[object]]], Callable[[U], Awaitable[object]]]: ...
    def on(
        self, update_type: type[U], handler: Callable[[U], Awaitable[object]] | None = None
    ) -> Any:
        """Call ``handler`` for every update of one type; usable as a decorator.

        ``dispatcher.on(ServerStats, show)``, or ``@dispatcher.on(ServerStats)`` over
        ``async def show(stats: ServerStats)``.

        Args:
            update_type: A ``LiveUpdate`` class registered with ``@message_type``.
            handler: ``async def handler(update)``; omitted, ``on`` returns a decorator.

        Returns:
            The handler (or a decorator registering it).

        Raises:
            TypeError: ``update_type`` is not a registered ``LiveUpdate`` class.
            RuntimeError: The dispatcher has started already.
        """
        update_type_name(update_type)
        self._check_not_started()
        if handler is None:

            def register(function: Callable[[U], Awaitable[object]]) -> Callable[[U], Any]:
                return self.on(update_type, function)

            return register
        self._handlers.setdefault(update_type, []).append(handler)
        return handler

    def on_any(
        self, handler: Callable[[LiveUpdate], Awaitable[object]]
    ) -> Callable[[LiveUpdate], Awaitable[object]]:
        """Call ``handler`` for every update this process knows the type of; a decorator too.

        With a catch-all handler, the subscription expects every ``LiveUpdate`` class
        registered when the dispatcher starts (``registered_update_types()``).

        Returns:
            The handler.

        Raises:
            RuntimeError: The dispatcher has started already.
        """
        self._check_not_started()
        self._any.append(handler)
        return handler

    @property
    def handled_types(self) -> tuple[type[LiveUpdate], ...]:
        """The update classes the subscription decodes, sorted by type name."""
        if self._any:
            return registered_update_types()
        return tuple(sorted(self._handlers, key=update_type_name))

    @property
    def handle(self) -> SubscriptionHandle | None:
        """The ``events.*`` subscription, once started and until closed."""
        return self._handle

    async def start(self) -> SubscriptionHandle:
        """Pattern-subscribe ``events.*`` with the union of the handled types.

        Returns:
            The subscription's handle.

        Raises:
            RuntimeError: No handler is registered, or the dispatcher has started already.
        """
        self._check_not_started()
        handled = self.handled_types
        if not handled:
            raise RuntimeError("register a handler with on() or on_any() before starting")
        self._started = True
        expected: object = functools.reduce(operator.or_, handled)
        self._handle = await self.pubsub.psubscribe(
            UPDATES_PATTERN,
            self._dispatch,
            message_type=expected,
            mailbox=self.mailbox,
            error_policy=self.error_policy,
            on_gap=self.on_gap,
        )
        return self._handle

    async def close(self) -> None:
        """Unsubscribe and stop the subscription's actor; a no-op when not running."""
        handle, self._handle = self._handle, None
        if handle is not None:
            await handle.close()
        else:
            await trio.lowlevel.checkpoint()

    @asynccontextmanager
    async def open(self) -> AsyncIterator[UpdateDispatcher]:
        """Start the dispatcher for the duration of a block, and close it on the way out."""
        await self.start()
        try:
            yield self
        finally:
            with trio.move_on_after(CLOSE_GRACE, shield=True):
                await self.close()

    def statistics(self) -> HandlerStatistics:
        """The subscription's counters (received, handled, decode errors, skipped...).

        Raises:
            RuntimeError: The dispatcher is not running.
        """
        if self._handle is None:
            raise RuntimeError("the dispatcher is not running")
        return self._handle.statistics()

    async def _dispatch(self, update: LiveUpdate) -> None:
        for handler in self._handlers.get(type(update), ()):
            await handler(update)
        for catch_all in self._any:
            await catch_all(update)

    def _check_not_started(self) -> None:
        if self._started:
            raise RuntimeError("the dispatcher has started: register handlers before start()")
