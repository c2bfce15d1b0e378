"""The demo's dashboard: an instrument that turns life-cycle hooks into rows and events.

Instrument hooks run synchronously inside the runtime, so they only record and format; the views
in ``actors.server.demo._view`` show what was recorded.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Final, Literal

import attrs
import trio

from actors._errors import ActorsError, RestartIntensityError
from actors.runtime import Crashed, Instrument, Killed, describe_exit
from actors.supervision import Supervisor, SupervisorSpec

if TYPE_CHECKING:
    from collections.abc import Callable

    from actors.runtime import ActorRef, ExitReason

EVENT_LOG_LENGTH: Final = 200  # events kept; the live view shows as many as fit
ERROR_WIDTH: Final = 40  # characters of an exception's repr shown in the table

EventKind = Literal["info", "start", "stop", "crash", "restart", "escalation"]

RESET: Final = "\x1b[0m"
COLORS: Final[dict[str, str]] = {
    "starting": "\x1b[36m",  # cyan
    "running": "\x1b[32m",  # green
    "restarting": "\x1b[33m",  # yellow
    "stopping": "\x1b[35m",  # magenta
    "stopped": "\x1b[31m",  # red
    "crash": "\x1b[31m",
    "restart": "\x1b[33m",
    "escalation": "\x1b[1;31m",  # bold red
    "stop": "\x1b[2m",  # dim
    "header": "\x1b[1m",  # bold
}


@attrs.frozen
class Event:
    """One line of the event log."""

    at: float
    """Seconds since the demo started."""
    kind: EventKind
    text: str

    def line(self) -> str:
        return f"{self.at:7.3f}s  {self.text}"


@attrs.define
class ActorRow:
    """What the dashboard knows about one named actor, across restarts and new refs."""

    name: str
    prefix: str
    """Tree drawing that goes before the name."""
    parent: str | None
    supervisor_spec: SupervisorSpec | None
    ref: ActorRef | None = None
    starts: int = 0
    last_exit: str = ""
    restart_due: float | None = None
    """When the pending restart is due, in trio time; set by actor_restarted."""
    pending_crash: BaseException | None = None
    """A crash not yet reported: the line waits for what the supervisor does about it."""
    crash_reported_for: ActorRef | None = None
    """The ref whose crash was reported as not restarted, so its stop need not be."""
    detail: str = ""

    @property
    def restarts(self) -> int:
        # Every start after the first is a restart, whether the supervisor restarted this ref or
        # a restarted parent made a new ref under the same name.
        return max(self.starts - 1, 0)


def describe_error(error: BaseException) -> str:
    text = repr(error)
    return text if len(text) <= ERROR_WIDTH else text[: ERROR_WIDTH - 3] + "..."


class Dashboard(Instrument):
    """Collects the demo's rows and events from the runtime's instrument hooks.

    Args:
        on_event: Called with every new event, for views that print events as they happen.
    """

    def __init__(self, on_event: Callable[[Event], None]) -> None:
        self.on_event = on_event
        self.rows: dict[str, ActorRow] = {}
        self.events: deque[Event] = deque(maxlen=EVENT_LOG_LENGTH)
        self.started_at = trio.current_time()
        self.crashes = 0
        self.restarts = 0
        self.escalations = 0
        self.kills = 0

    def show_tree(self, name: str, spec: SupervisorSpec, *, ascii_only: bool = False) -> None:
        """Lay out one row per actor of the tree, in start order; every child needs a name."""
        branch, last, pipe = ("|- ", "`- ", "|  ") if ascii_only else ("├─ ", "└─ ", "│  ")
        self.rows[name] = ActorRow(name, "", None, spec)

        def add_children(parent: str, parent_spec: SupervisorSpec, indent: str) -> None:
            for index, child in enumerate(parent_spec.children):
                assert child.name is not None, "the dashboard follows actors by name"
                is_last = index == len(parent_spec.children) - 1
                nested = child.start if isinstance(child.start, SupervisorSpec) else None
                prefix = indent + (last if is_last else branch)
                self.rows[child.name] = ActorRow(child.name, prefix, parent, nested)
                if nested is not None:
                    add_children(child.name, nested, indent + ("   " if is_last else pipe))

        add_children(name, spec, "")

    def elapsed(self) -> float:
        return trio.current_time() - self.started_at

    def note(self, name: str, detail: str) -> None:
        """Set the detail column of an actor: what the actor itself says it is doing."""
        row = self.rows.get(name)
        if row is not None:
            row.detail = detail

    def emit(self, kind: EventKind, text: str) -> None:
        event = Event(round(self.elapsed(), 3), kind, text)
        self.events.append(event)
        self.on_event(event)

    def _row(self, ref: ActorRef) -> ActorRow | None:
        return self.rows.get(ref.name) if ref.name is not None else None

    # -- instrument hooks --------------------------------------------------------------------------

    def actor_started(self, ref: ActorRef) -> None:
        row = self._row(ref)
        if row is None:
            return
        row.ref = ref
        row.starts += 1
        row.restart_due = None
        if row.restarts:
            self.emit("start", f"{row.name} restarted (restart {row.restarts})")
        else:
            self.emit("start", f"{row.name} started")

    def actor_crashed(self, ref: ActorRef, error: BaseException) -> None:
        row = self._row(ref)
        self.crashes += 1
        if row is None:
            return
        row.last_exit = describe_error(error)
        if isinstance(error, RestartIntensityError) and row.supervisor_spec is not None:
            self.escalations += 1
            row.last_exit = "gave up: restart intensity"
            spec = row.supervisor_spec
            self.emit(
                "escalation",
                f"{row.name}: restart intensity reached (more than {spec.max_restarts} restarts "
                f"within {spec.within:g} s), escalating to {row.parent or 'the actor system'}",
            )
        else:
            row.pending_crash = error

    def actor_restarted(self, ref: ActorRef, reason: ExitReason, delay: float) -> None:
        self.restarts += 1
        row = self._row(ref)
        if row is None:
            return
        row.restart_due = trio.current_time() + delay
        error, row.pending_crash = row.pending_crash, None
        if error is not None:
            self.emit("crash", f"{row.name} crashed: {error!r}; restarting in {delay:.3f} s")
        else:
            self.emit("restart", f"{row.parent}: restarting {row.name} in {delay:.3f} s")

    def actor_stopped(self, ref: ActorRef, reason: ExitReason) -> None:
        if isinstance(reason, Killed):
            self.kills += 1
        row = self._row(ref)
        if row is None:
            return
        # A supervisor that gives up stops its children in reverse start order, so the child
        # whose crash made it give up may come after its siblings: report that crash first.
        for sibling in self.rows.values():
            if sibling.parent == row.parent:
                self._report_unrestarted_crash(sibling)
        if row.crash_reported_for is ref and isinstance(reason, Crashed):
            return  # just reported, as the crash that was not restarted
        row.last_exit = describe_exit(reason, describe_error)
        self.emit("stop", f"{row.name} stopped ({row.last_exit})")

    def _report_unrestarted_crash(self, row: ActorRow) -> None:
        error, row.pending_crash = row.pending_crash, None
        if error is not None:
            row.crash_reported_for = row.ref
            self.emit("crash", f"{row.name} crashed: {error!r}; not restarted")

    # -- reading -----------------------------------------------------------------------------------

    def table(self, *, color: bool, width: int | None = None) -> list[str]:
        """The rows as aligned text lines, a heading line first, each cut to ``width``."""
        now = trio.current_time()
        cells = [("ACTOR", "STATE", "RESTARTS", "NEXT RESTART", "LAST EXIT", "DETAIL")]
        for row in self.rows.values():
            state = row.ref.state.value if row.ref is not None else "-"
            due = ""
            if row.restart_due is not None and state == "restarting":
                due = f"in {max(row.restart_due - now, 0.0):.2f} s"
            detail = row.detail
            if row.supervisor_spec is not None:
                detail = self._supervisor_detail(row)
            cells.append(
                (row.prefix + row.name, state, str(row.restarts), due, row.last_exit, detail)
            )
        widths = [max(len(line[column]) for line in cells) for column in range(5)]
        lines = []
        for index, (name, state, restarts, due, last_exit, detail) in enumerate(cells):
            text = "  ".join(
                [
                    name.ljust(widths[0]),
                    state.ljust(widths[1]),
                    restarts.rjust(widths[2]),
                    due.ljust(widths[3]),
                    last_exit.ljust(widths[4]),
                    detail,
                ]
            ).rstrip()[:width]
            # Color is added after cutting, so escape codes are never cut in half.
            start = widths[0] + 2
            if color and index > 0 and state in COLORS and len(text) >= start + len(state):
                end = start + len(state)
                text = text[:start] + COLORS[state] + state + RESET + text[end:]
            lines.append(text)
        return lines

    def _supervisor_detail(self, row: ActorRow) -> str:
        assert row.supervisor_spec is not None
        spec = row.supervisor_spec
        limit = f"{spec.strategy.value}, at most {spec.max_restarts} restarts in {spec.within:g} s"
        if row.ref is None:
            return limit
        try:
            statistics = Supervisor(row.ref).statistics()
        except ActorsError:  # stopped: there is no running incarnation to ask
            return limit
        return f"{limit}; {statistics.restarts} so far"

    def summary(self, *, clean: bool) -> str:
        def count(number: int, noun: str, plural: str) -> str:
            return f"{number} {noun if number == 1 else plural}"

        ending = "stopped cleanly" if clean else "did not stop cleanly"
        if self.kills:
            ending += f" ({count(self.kills, 'actor', 'actors')} killed)"
        return (
            f"demo finished after {self.elapsed():.1f} s: "
            f"{count(self.crashes, 'crash', 'crashes')}, "
            f"{count(self.restarts, 'restart', 'restarts')}, "
            f"{count(self.escalations, 'escalation', 'escalations')}, {ending}"
        )
