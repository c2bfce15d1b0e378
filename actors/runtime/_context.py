"""ActorContext: what an actor knows about itself and can do to the runtime."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import trio

from actors._errors import ActorStoppedError
from actors.runtime._exit import Down, StopRequest
from actors.runtime._ref import cell_of

if TYPE_CHECKING:
    from actors.runtime._cell import ActorCell
    from actors.runtime._ref import ActorRef
    from actors.runtime._system import ActorSystem


_NOTHING: Final = object()  # what ``_take_one`` returns when no message is waiting


class ActorContext:
    """Handed to function actors as their first argument, and set as ``Actor.context``.

    Function actors read their mailbox through it: ``receive``, ``receive_batch``,
    ``receive_nowait``, or ``async for message in context``. Requests sent with ``ask`` arrive
    as ``Ask`` objects that must be answered with ``Ask.reply``. ``Down`` notifications from
    watched actors arrive ahead of user messages.
    """

    __slots__ = ("_cell", "ref")

    def __init__(self, cell: ActorCell) -> None:
        self._cell = cell
        self.ref: ActorRef = cell.ref
        """This actor's own ref."""

    @property
    def system(self) -> ActorSystem:
        """The actor system this actor lives in."""
        return self._cell.system

    @property
    def name(self) -> str | None:
        """The actor's registered name, if any."""
        return self._cell.name

    @property
    def stopping(self) -> bool:
        """Whether this incarnation has been asked to stop (by its ref, supervisor or system)."""
        return self._cell.stopping

    def watch(self, other: ActorRef) -> None:
        """Get a ``Down`` message when ``other`` stops for good (at once if it already has)."""
        cell_of(other).watch(self._cell)

    def unwatch(self, other: ActorRef) -> None:
        """Stop watching ``other``. A ``Down`` already queued stays queued."""
        cell_of(other).unwatch(self._cell)

    def link(self, other: ActorRef) -> None:
        """Tie two lives together: when either ends abnormally, the other crashes too.

        The crash is a ``LinkedActorCrashedError`` whose ``__cause__`` is the original error.
        Linking to an actor that already ended abnormally crashes this actor at once.
        """
        self._cell.link(cell_of(other))

    def unlink(self, other: ActorRef) -> None:
        """Undo ``link``."""
        self._cell.unlink(cell_of(other))

    def reset_backoff(self) -> None:
        """Tell the supervisor that this incarnation is healthy.

        If it ends later, its restart waits the backoff's initial delay again instead of the
        next, longer one: the backoff then punishes only incarnations that fail before they
        prove themselves (a connection that fails its handshake again and again), not one that
        worked and broke. Without this call, the backoff starts over once an incarnation has run
        for ``Backoff.reset_after`` seconds. Harmless when the actor has no supervisor.
        """
        self._cell.report_healthy()

    def stop(self) -> None:
        """Stop this actor with the ``normal`` exit reason.

        A class-based actor stops after the current batch of messages; a function actor is
        cancelled at its next checkpoint (returning from the function does the same).
        """
        self._cell.stop_self()

    # -- reading the mailbox (function actors) ---------------------------------------------------

    def _take_control(self) -> Down | None:
        mailbox = self._cell.mailbox
        while mailbox.has_control():
            control = mailbox.take_control()
            if isinstance(control, Down):
                return control
            # A StopRequest only means something to class-based actors; function actors are
            # stopped by cancellation, so they never need to see one.
            assert isinstance(control, StopRequest)
        return None

    def _take_one(self) -> object:
        """The next message, or ``_NOTHING``; raises ActorStoppedError once the mailbox closed."""
        down = self._take_control()
        if down is not None:
            return down
        mailbox = self._cell.mailbox
        batch = mailbox.take_batch(1)
        if batch:
            return batch[0]
        if mailbox.closed:
            raise ActorStoppedError(f"{self._cell.label} has stopped")
        return _NOTHING

    def receive_nowait(self) -> object:
        """Return the next message without waiting.

        Raises:
            trio.WouldBlock: Nothing is waiting.
        """
        message = self._take_one()
        if message is _NOTHING:
            raise trio.WouldBlock
        return message

    async def receive(self) -> object:
        """Wait for the next message and return it."""
        await trio.lowlevel.checkpoint_if_cancelled()
        mailbox = self._cell.mailbox
        while True:
            message = self._take_one()
            if message is not _NOTHING:
                await trio.lowlevel.cancel_shielded_checkpoint()
                return message
            # Nothing is waiting, control messages included, and the mailbox is open: park on
            # it here rather than in Mailbox.wait, so that an idle function actor keeps no
            # frame for it; and not inside an ``except WouldBlock`` block, which would keep the
            # exception, its traceback and a frame alive for as long as the actor waits.
            await trio.lowlevel.wait_task_rescheduled(mailbox.park())

    async def receive_batch(self, max_messages: int | None = None) -> list[object]:
        """Wait until at least one message is ready, then take up to ``max_messages`` of them.

        ``max_messages`` defaults to the mailbox's ``batch_size``. Taking many messages per
        wake-up is how an actor keeps up with a fast producer.
        """
        mailbox = self._cell.mailbox
        limit = max_messages if max_messages is not None else mailbox.batch_size
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            batch: list[object] = []
            while len(batch) < limit:
                down = self._take_control()
                if down is None:
                    break
                batch.append(down)
            batch.extend(mailbox.take_batch(limit - len(batch)))
            if batch:
                await trio.lowlevel.cancel_shielded_checkpoint()
                return batch
            if mailbox.closed:
                raise ActorStoppedError(f"{self._cell.label} has stopped")
            await mailbox.wait()

    def __aiter__(self) -> ActorContext:
        return self

    # A plain iterator rather than an async generator: a function actor that leaves its
    # ``async for`` early must not leave a generator behind for trio to finalize. ``receive``
    # itself, not a method that awaits it: no frame more while the actor waits.
    __anext__ = receive
