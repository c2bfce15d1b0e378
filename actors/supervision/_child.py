"""A supervisor's record of one child, and the message its task sends when an incarnation ends."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    import trio

    from actors.runtime import ExitReason
    from actors.runtime.lowlevel import ActorCell, Behavior
    from actors.supervision._spec import ChildSpec


class ChildStatus(enum.Enum):
    """Where a child is, from its supervisor's point of view."""

    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    TERMINATING = "terminating"
    STOPPED = "stopped"


class Child:
    """One child: its spec, its cell and ref (stable across restarts), its restart bookkeeping."""

    __slots__ = (
        "attempt",
        "behavior",
        "cell",
        "exited",
        "key",
        "last_exit",
        "ref",
        "running",
        "spec",
        "started_at",
        "status",
    )

    def __init__(self, key: object, spec: ChildSpec, behavior: Behavior, cell: ActorCell) -> None:
        self.key = key
        self.spec = spec
        self.behavior = behavior
        self.cell = cell
        self.ref = cell.ref
        self.status = ChildStatus.STARTING
        self.running = False
        self.last_exit: ExitReason | None = None
        self.exited: trio.Event | None = None
        self.attempt = 0
        self.started_at = 0.0


@attrs.frozen
class ChildExited:
    """Control message from a child's task to its supervisor: this incarnation has ended."""

    child: Child
    incarnation: int
    reason: ExitReason
