"""Why an actor ended: the exit reasons, the control messages that carry them (a stop request to
the actor, ``Down`` to its watchers), and the log line of an abnormal end."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final, TypeAlias

import attrs

if TYPE_CHECKING:
    from collections.abc import Callable

    from actors.runtime._ref import ActorRef

logger = logging.getLogger("actors.runtime")


@attrs.frozen
class Normal:
    """The actor returned from its body, or stopped itself with ``context.stop()``."""


@attrs.frozen
class Shutdown:
    """The actor was asked to stop, or raised ``ActorShutdown``; ``detail`` says why when known."""

    detail: object = None


@attrs.frozen
class Crashed:
    """The actor raised an exception."""

    exception: BaseException


@attrs.frozen
class Killed:
    """The actor did not stop within its grace period and was cancelled."""


ExitReason: TypeAlias = Normal | Shutdown | Crashed | Killed

NORMAL = Normal()
KILLED = Killed()
CANCELLED: Final = Shutdown("cancelled")
"""The exit reason of an incarnation cancelled from outside (its owner's nursery, say)."""


@attrs.frozen
class StopRequest:
    """Control message: end the current incarnation at the next batch boundary."""

    detail: object = None

    def exit_reason(self) -> ExitReason:
        """The reason an actor that honours this request ends with."""
        return NORMAL if self is SELF_STOP else Shutdown(self.detail)


SELF_STOP: Final = StopRequest("self")
"""The stop request of ``ActorContext.stop``: the actor ends with ``Normal``."""


def is_abnormal(reason: ExitReason) -> bool:
    """Whether a transient child would be restarted after this exit (crashed or killed)."""
    return isinstance(reason, Crashed | Killed)


def describe_exit(reason: ExitReason, describe_error: Callable[[BaseException], str] = repr) -> str:
    """One short line for an exit reason: ``crashed: ValueError('x')``, ``shutdown``, ...

    Args:
        reason: How an incarnation ended.
        describe_error: How a crash's exception is written (its ``repr`` by default).
    """
    match reason:
        case Crashed(exception=error):
            return f"crashed: {describe_error(error)}"
        case Shutdown(detail=None):
            return "shutdown"
        case Shutdown(detail=detail):
            return f"shutdown: {detail}"
        case Normal():
            return "normal"
        case Killed():
            return "killed after its grace period"


@attrs.frozen
class Down:
    """Sent to every watcher when the watched actor has stopped for good."""

    ref: ActorRef
    reason: ExitReason


def log_exit(
    label: str,
    reason: ExitReason,
    what_next: str,
    *,
    level: int = logging.ERROR,
    context: str | None = None,
) -> None:
    """Log an abnormal exit with the actor's identity and what its owner does about it.

    A crash logged at ERROR (the default) carries its traceback. Below ERROR, for failures the
    owner expects and heals (a lost connection), it is one line with the error's type and
    message, and the traceback goes to DEBUG.

    Args:
        label: The actor's label (``ActorCell.label``).
        reason: How it ended; only ``Crashed`` and ``Killed`` are logged.
        what_next: What its owner does about it, such as ``restarting in 0.100 s``.
        level: The level of a crash's line.
        context: Says which actor crashed instead of ``label``, such as the child's spec id and
            its label.
    """
    name = context or label
    # Which actor, as a field of its own for structured logs (JsonLogFormatter).
    about = {"actor": name}
    if isinstance(reason, Crashed):
        error = reason.exception
        if level >= logging.ERROR:
            logger.log(
                level, "%s crashed: %r; %s", name, error, what_next, exc_info=error, extra=about
            )
        else:
            logger.log(
                level,
                "%s failed: %s: %s; %s",
                name,
                type(error).__name__,
                error,
                what_next,
                extra=about,
            )
            logger.debug("%s failed", name, exc_info=error, extra=about)
    elif isinstance(reason, Killed):
        logger.warning(
            "%s did not stop within its grace period and was cancelled", label, extra=about
        )
