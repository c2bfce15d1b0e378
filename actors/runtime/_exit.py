"""Why an actor ended: the exit reasons and the messages that carry them to watchers."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

import attrs

if TYPE_CHECKING:
    from actors.runtime._ref import ActorRef


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


def is_abnormal(reason: ExitReason) -> bool:
    """Whether a transient child would be restarted after this exit (crashed or killed)."""
    return isinstance(reason, Crashed | Killed)


@attrs.frozen
class Down:
    """Sent to every watcher when the watched actor has stopped for good."""

    ref: ActorRef
    reason: ExitReason
