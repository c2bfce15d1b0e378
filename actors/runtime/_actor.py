"""The two ways to write an actor: a subclass of ``Actor``, or a plain async function."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias

import trio

from actors._errors import ActorCrashedError, ActorShutdown, ActorStoppedError
from actors.runtime._ask import Ask
from actors.runtime._exit import (
    CANCELLED,
    NORMAL,
    Crashed,
    ExitReason,
    Shutdown,
    StopRequest,
)

if TYPE_CHECKING:
    from actors.runtime._cell import ActorCell, Behavior
    from actors.runtime._context import ActorContext
    from actors.runtime._mailbox import Mailbox


class Actor:
    """Base class for class-based actors.

    The runtime creates a fresh instance for every start and restart, so the state an actor keeps
    in ``self`` is rebuilt from scratch after a crash. Messages are handled one at a time by
    ``receive``; for a message sent with ``ask``, the value ``receive`` returns is the reply.

    Hooks run in this order: ``restarted`` (only after a restart), ``started``, then ``receive``
    for each message, then ``stopping`` when the actor stops or crashes (not when it is
    cancelled). ``self.context`` is set before ``restarted`` and ``started`` run.

    Example:
        class Counter(Actor):
            def __init__(self, start: int = 0) -> None:
                self.count = start

            async def receive(self, message: object) -> object:
                match message:
                    case Increment(by=amount):
                        self.count += amount
                    case Get():
                        return self.count
                return None
    """

    # The runtime's one attribute on the instance, as a slot: a subclass that declares
    # ``__slots__`` too has no instance dict (many subscription actors are idle at once).
    __slots__ = ("_actor_cell",)

    _actor_cell: ActorCell  # set by the runtime before any hook runs
    _actor_behavior: ClassVar[ClassBehavior]  # set on each class by the runtime (behavior_for)

    @property
    def context(self) -> ActorContext:
        """This actor's context: its ref, its system, ``watch``, ``link``, ``stop``.

        Made the first time it is read, so an actor that never reads it does not pay for it.
        """
        return self._actor_cell.context

    async def started(self) -> None:
        """Called once the actor is ready, before its first message."""

    async def receive(self, message: Any) -> Any:
        """Handle one message; the return value answers an ``ask``."""
        raise NotImplementedError(f"{type(self).__name__} must implement receive()")

    async def receive_many(self, messages: Iterator[Any]) -> None:
        """Handle one batch of user messages, in order, in one call.

        By default the runtime calls ``receive_one`` for each message itself, and this method is
        never called. A subclass that handles a flood of one kind of message may override it to
        save a call and a coroutine per message: it must take every message from ``messages``,
        in order, and pass each one it does not handle itself (an ask, say) to
        ``receive_one``. If it raises, the message it was handling is lost and the ones it had
        not taken yet go back to the front of the mailbox, as with ``receive``.
        """
        for message in messages:
            await self.receive_one(message)

    async def receive_one(self, message: Any) -> None:
        """Handle one user message as the runtime does: ``receive`` it, or, for an ``ask``,
        ``receive`` its request and answer with what ``receive`` returns (or its exception)."""
        if type(message) is Ask:
            await _answer(self.receive, message, self._actor_cell)
        else:
            await self.receive(message)

    async def stopping(self, reason: ExitReason) -> None:
        """Called when the actor stops on request, stops itself, or crashes."""

    async def restarted(self, reason: ExitReason) -> None:
        """Called on the fresh instance after a supervisor restarts the actor."""


ActorFunction: TypeAlias = Callable[..., Awaitable[None]]
"""An async function taking an ``ActorContext`` (and the spawn arguments) as an actor."""


class ClassBehavior:
    """Runs an ``Actor`` subclass: a new instance per incarnation, messages taken in batches."""

    __slots__ = ("actor_class", "args")
    graceful = True
    is_supervisor = False

    def __init__(self, actor_class: type[Actor], args: tuple[object, ...]) -> None:
        self.actor_class = actor_class
        self.args = args

    def describe(self) -> str:
        return self.actor_class.__qualname__

    async def run_incarnation(
        self, cell: ActorCell, previous: ExitReason | None, record: object
    ) -> ExitReason:
        """Run one incarnation, as ``ActorCell.run_incarnation`` describes: the hooks, then
        control messages first and batches of user messages, until asked to stop.

        The cell's steps (``enter_incarnation`` and the others) are taken here, around the
        message loop, rather than by the cell around a ``run_actor`` coroutine; and the loop,
        the hot path of every class-based actor, is written out here rather than in a coroutine
        of its own. An idle actor keeps this one frame alive, and each frame fewer per actor is
        less for the garbage collector to walk. For the same reason it parks on the mailbox
        itself rather than awaiting ``Mailbox.wait``, and it holds the bound ``receive`` only
        while it handles a batch.
        """
        reason: ExitReason = CANCELLED
        incarnation = cell.incarnation
        try:
            early = cell.enter_incarnation()
            if early is not None:
                reason = early
                return reason
            try:
                if cell.pending_crash is not None:
                    await trio.lowlevel.checkpoint()  # crashes at once: see enter_incarnation
                actor = self.actor_class(*self.args)
                actor._actor_cell = cell
                cell.instance = actor
                if previous is not None:
                    await actor.restarted(previous)
                await actor.started()
                cell.mark_started()
                mailbox = cell.mailbox
                batch_size = mailbox.batch_size
                wait = trio.lowlevel.wait_task_rescheduled
                try:
                    while True:
                        control = mailbox.take_control()
                        if control is not None:
                            if isinstance(control, StopRequest):
                                ending = control.exit_reason()
                                break
                            await actor.receive(control)  # a Down notification
                            continue
                        if not len(mailbox):
                            await wait(mailbox.park())
                            continue
                        batch = mailbox.take_batch(batch_size)
                        # Looked up per batch, not kept: a local more is a slot more in the
                        # frame of every idle actor.
                        if type(actor).receive_many is not Actor.receive_many:
                            await _receive_many(actor, batch, mailbox)
                            del batch
                        else:
                            receive = actor.receive
                            done = 0
                            try:
                                for message in batch:
                                    done += 1
                                    if type(message) is Ask:
                                        await _answer(receive, message, cell)
                                    else:
                                        await receive(message)
                            finally:
                                if done < len(batch):
                                    # Crashed or cancelled mid-batch: the messages not yet
                                    # handled go back to the front of the mailbox for the next
                                    # incarnation. Only the failing one is lost.
                                    mailbox.return_unhandled(batch[done:])
                            # An idle actor keeps neither its last batch nor a bound method.
                            del batch, receive
                        # One checkpoint per batch, not per message, and only when more is
                        # waiting: fair to other tasks under load. An emptied mailbox parks at
                        # the top of the loop, which is a checkpoint already; a second one
                        # there would double the task switches of an actor that handles one
                        # message per wake-up.
                        if len(mailbox):
                            await trio.lowlevel.checkpoint()
                except ActorShutdown as stop:
                    ending = Shutdown(stop.detail)
                except Exception as error:
                    await actor.stopping(Crashed(error))
                    raise
                await actor.stopping(ending)
            except BaseException as error:
                reason = cell.leave_incarnation(error)
            else:
                reason = cell.leave_incarnation(ending)
            return reason
        finally:
            cell.end_incarnation(record, incarnation, reason)


async def _receive_many(actor: Actor, batch: list[object], mailbox: Mailbox) -> None:
    """Hand a batch to ``actor.receive_many``; what it did not take goes back to the front of
    the mailbox, as in the loop of ``run_incarnation``. A coroutine of its own, so that its
    locals are not kept in the frame of every idle actor."""
    messages = iter(batch)
    try:
        await actor.receive_many(messages)
    finally:
        unhandled = list(messages)
        if unhandled:
            mailbox.return_unhandled(unhandled)


async def _answer(receive: Callable[[Any], Awaitable[Any]], request: Ask, cell: ActorCell) -> None:
    """Handle an ask: the return value is the reply; a crash is reported to the asker too."""
    try:
        reply = await receive(request.message)
    except ActorShutdown:
        request.fail(ActorStoppedError("the actor shut down while handling this ask"))
        raise
    except Exception as error:
        request.fail(_crashed_while_asked(cell, request, error))
        raise
    except BaseException:
        # Cancelled: killed after its grace period, crashed by a link or by its mailbox
        # overflowing. The asker hears of it now instead of waiting out its deadline.
        pending = cell.pending_crash
        if pending is not None:
            request.fail(_crashed_while_asked(cell, request, pending))
        else:
            request.fail(ActorStoppedError("the actor was cancelled while handling this ask"))
        raise
    request.reply(reply)


def _crashed_while_asked(cell: ActorCell, request: Ask, error: BaseException) -> ActorCrashedError:
    crashed = ActorCrashedError(f"{cell.label} crashed handling {type(request.message).__name__}")
    crashed.__cause__ = error
    return crashed


class FunctionBehavior:
    """Runs an async function ``fn(context, *args)``; stopping it cancels it."""

    __slots__ = ("args", "function")
    graceful = False
    is_supervisor = False

    def __init__(self, function: ActorFunction, args: tuple[object, ...]) -> None:
        self.function = function
        self.args = args

    def describe(self) -> str:
        return getattr(self.function, "__qualname__", repr(self.function))

    async def run_actor(self, cell: ActorCell, previous: ExitReason | None) -> ExitReason:
        cell.mark_started()
        await self.function(cell.context, *self.args)
        return NORMAL


def behavior_for(target: object, args: tuple[object, ...]) -> Behavior:
    """Turn what a user spawns (a class, a function, or a ready behavior) into a Behavior."""
    if isinstance(target, type) and issubclass(target, Actor):
        return _class_behavior(target) if not args else ClassBehavior(target, args)
    if hasattr(target, "run_actor") and not isinstance(target, type):
        if args:
            raise TypeError(f"{target!r} takes no spawn arguments")
        return target  # type: ignore[return-value]
    if inspect.iscoroutinefunction(target) or (
        callable(target) and inspect.iscoroutinefunction(target.__call__)
    ):
        return FunctionBehavior(target, args)
    raise TypeError(
        f"cannot run {target!r} as an actor: pass an Actor subclass, an async function "
        "taking an ActorContext, or a supervisor spec"
    )


def _class_behavior(actor_class: type[Actor]) -> ClassBehavior:
    """The one behavior of every actor of ``actor_class`` spawned without arguments.

    Behaviors are immutable, so these actors share one: a behavior made per spawn would be one
    more object per live actor (its running incarnation holds it). It is kept on the class
    itself (in its own ``__dict__``, not inherited), so that it goes with the class; a module
    dict would keep every class alive for ever.
    """
    behavior: ClassBehavior | None = actor_class.__dict__.get("_actor_behavior")
    if behavior is None:
        # Looked up in the class's own __dict__ above, so a subclass never takes its base's.
        behavior = actor_class._actor_behavior = ClassBehavior(actor_class, ())
    return behavior
