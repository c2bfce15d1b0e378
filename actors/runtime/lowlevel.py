"""The runtime's low-level surface: what owners of actors (supervisors) build on.

In the manner of ``trio.lowlevel``: application code needs none of this, and it may change more
often than ``actors.runtime``. Supervision uses only these names and public ones, never the
private attributes of runtime objects (a test checks it).

An owner makes a cell with ``new_cell``, runs each incarnation in a task of its own with
``ActorCell.run_incarnation`` (calling ``ActorCell.begin_start`` first and
``ActorCell.wait_started`` after starting the task), stops an incarnation it wants to replace
with ``ActorCell.terminate``, and ends the actor for good with ``ActorCell.finalize``. The cell
tells its owner (a ``CellOwner``) when someone asks the actor to stop for good and when the
actor reports itself healthy.
"""

from __future__ import annotations

from actors.runtime._actor import behavior_for
from actors.runtime._cell import ActorCell, Behavior, BodyBehavior, CellOwner
from actors.runtime._exit import StopRequest, log_exit
from actors.runtime._parking import WaitSlot
from actors.runtime._ref import cell_of
from actors.runtime._system import new_cell, start_system_task

__all__ = [
    "ActorCell",
    "Behavior",
    "BodyBehavior",
    "CellOwner",
    "StopRequest",
    "WaitSlot",
    "behavior_for",
    "cell_of",
    "log_exit",
    "new_cell",
    "start_system_task",
]
