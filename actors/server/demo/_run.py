"""``python -m actors demo``: a small supervision tree that fails on purpose, shown live.

The tree, started top to bottom and stopped bottom to top::

    root            one_for_one
    ├─ ticker       periodic work that never fails
    ├─ flaky        fails at random (seeded), restarted with exponential backoff
    └─ pipeline     one_for_all, at most 3 restarts in 2 s
       ├─ uplink    forwards readings upstream; crashes while the upstream is down
       └─ sampler   takes readings and tells them to the uplink

The upstream goes down on a fixed schedule. While it is down, the uplink crashes within
milliseconds of every restart, so the pipeline exceeds its restart intensity, gives up and
escalates to root, which restarts the whole pipeline after a backoff of its own.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import signal
from typing import TYPE_CHECKING, Final

import attrs
import trio

from actors._errors import ActorStoppedError, RestartIntensityError
from actors.runtime import Killed, open_actor_system
from actors.server.demo._dashboard import Dashboard
from actors.server.demo._view import LiveView, PlainView
from actors.supervision import Backoff, ChildSpec, Strategy, SupervisorSpec, open_supervisor

if TYPE_CHECKING:
    from typing import TextIO

    from actors.runtime import ActorContext

logger = logging.getLogger(__name__)

ROOT: Final = "root"
TICKER: Final = "ticker"
FLAKY: Final = "flaky"
PIPELINE: Final = "pipeline"
UPLINK: Final = "uplink"
SAMPLER: Final = "sampler"

TICK_INTERVAL: Final = 0.25  # seconds
JOB_INTERVAL: Final = 0.1  # seconds between two jobs of the flaky worker
FAILURE_RATE: Final = 0.15  # chance that one job of the flaky worker fails
SAMPLE_INTERVAL: Final = 0.1  # seconds
CONNECT_TIME: Final = 0.05  # seconds the uplink takes to find out whether the upstream is up
FIRST_OUTAGE: Final = 0.8  # seconds after the start
OUTAGE_LENGTH: Final = 1.0  # seconds
OUTAGE_PERIOD: Final = 6.0  # seconds from the start of one outage to the start of the next

# The brief: 100 ms, doubling, with jitter. reset_after makes a worker that ran well for a while
# start again from the short delay.
FLAKY_BACKOFF: Final = Backoff(
    initial=0.1, multiplier=2.0, maximum=2.0, jitter=0.25, reset_after=1.5
)
# Short enough that, during an outage, the uplink's fourth crash comes well within the
# pipeline's 2 s window: that is what makes the pipeline give up.
UPLINK_BACKOFF: Final = Backoff(
    initial=0.05, multiplier=2.0, maximum=1.0, jitter=0.1, reset_after=1.0
)
PIPELINE_BACKOFF: Final = Backoff(
    initial=0.25, multiplier=2.0, maximum=4.0, jitter=0.1, reset_after=3.0
)


@attrs.frozen(kw_only=True)
class DemoOptions:
    """What the command line asked for."""

    duration: float = 20.0
    """Seconds before the demo stops by itself."""
    seed: int = 1
    """Seeds the flaky worker's failures and the backoff jitter."""
    live: bool = False
    """Redraw a screen with ANSI escape codes, rather than print one line per event."""


@attrs.frozen
class Reading:
    """What the sampler tells the uplink."""

    number: int
    value: float


class Upstream:
    """The remote end the uplink talks to: down for OUTAGE_LENGTH every OUTAGE_PERIOD seconds."""

    def __init__(self) -> None:
        self.started_at = trio.current_time()

    def is_down(self) -> bool:
        since_first = trio.current_time() - self.started_at - FIRST_OUTAGE
        return since_first >= 0 and since_first % OUTAGE_PERIOD < OUTAGE_LENGTH


# -- the workers: function actors, cancelled when they are stopped ---------------------------------


async def ticker(context: ActorContext, board: Dashboard) -> None:
    ticks = 0
    while True:
        await trio.sleep(TICK_INTERVAL)
        ticks += 1
        board.note(TICKER, f"tick {ticks}")


async def flaky(context: ActorContext, board: Dashboard, failures: random.Random) -> None:
    # ``failures`` comes from the child spec, so every incarnation shares it and the sequence of
    # failures carries on across restarts instead of repeating.
    jobs = 0
    while True:
        await trio.sleep(JOB_INTERVAL)
        jobs += 1
        if failures.random() < FAILURE_RATE:
            raise RuntimeError(f"job {jobs} hit a simulated fault")
        board.note(FLAKY, f"job {jobs} done")


async def uplink(context: ActorContext, board: Dashboard, upstream: Upstream) -> None:
    board.note(UPLINK, "connecting")
    await trio.sleep(CONNECT_TIME)
    if upstream.is_down():
        raise ConnectionError("upstream unreachable")
    sent = 0
    board.note(UPLINK, "connected")
    async for message in context:
        if upstream.is_down():
            raise ConnectionError("upstream connection lost")
        if isinstance(message, Reading):
            sent += 1
            board.note(UPLINK, f"{sent} readings sent")


async def sampler(context: ActorContext, board: Dashboard) -> None:
    number = 0
    while True:
        await trio.sleep(SAMPLE_INTERVAL)
        number += 1
        reading = Reading(number, round(20 + 2 * math.sin(number / 10), 1))
        board.note(SAMPLER, f"reading {reading.number}: {reading.value} C")
        # Looked up by name every time: after the pipeline restarts, the uplink has a new ref.
        target = context.system.lookup(UPLINK)
        if target is None:
            continue
        # A reading lost while the uplink is busy or restarting does not matter: more follow.
        with contextlib.suppress(trio.WouldBlock, ActorStoppedError):
            target.tell_nowait(reading)


def demo_tree(board: Dashboard, upstream: Upstream, seed: int) -> SupervisorSpec:
    """The demo's supervision tree; every child has a name, which is how the dashboard finds it."""
    pipeline = SupervisorSpec(
        strategy=Strategy.ONE_FOR_ALL,
        # The sampler is useless without the uplink, so they restart together, uplink first.
        children=[
            ChildSpec(
                id=UPLINK, name=UPLINK, start=uplink, args=(board, upstream), backoff=UPLINK_BACKOFF
            ),
            ChildSpec(id=SAMPLER, name=SAMPLER, start=sampler, args=(board,)),
        ],
        max_restarts=3,
        within=2.0,
    )
    failures = random.Random(f"flaky-{seed}")
    return SupervisorSpec(
        strategy=Strategy.ONE_FOR_ONE,
        children=[
            ChildSpec(id=TICKER, name=TICKER, start=ticker, args=(board,)),
            ChildSpec(
                id=FLAKY, name=FLAKY, start=flaky, args=(board, failures), backoff=FLAKY_BACKOFF
            ),
            ChildSpec(id=PIPELINE, name=PIPELINE, start=pipeline, backoff=PIPELINE_BACKOFF),
        ],
        # Generous: the demo is about the pipeline giving up, not the root.
        max_restarts=25,
        within=10.0,
    )


async def _watch_signals(
    interrupted: trio.Event, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    wanted = [signal.SIGINT] + ([signal.SIGTERM] if os.name == "posix" else [])
    with trio.open_signal_receiver(*wanted) as signals:
        task_status.started()
        async for number in signals:
            if interrupted.is_set():
                # A second Ctrl-C: give up on the orderly shutdown.
                raise KeyboardInterrupt
            logger.info("received %s: stopping the demo", signal.Signals(number).name)
            interrupted.set()


async def demo(options: DemoOptions, stream: TextIO) -> int:
    """Run until ``options.duration`` has passed or SIGINT arrives; return the exit code."""
    # Set by Ctrl-C, and by a view whose stream broke: either way the demo stops in order.
    interrupted = trio.Event()
    view = (LiveView if options.live else PlainView)(stream, on_broken=interrupted.set)
    board = Dashboard(on_event=view.event)
    upstream = Upstream()
    tree = demo_tree(board, upstream, options.seed)
    board.show_tree(ROOT, tree, ascii_only=not _can_encode(stream, "├─└│"))
    gave_up: RestartIntensityError | None = None
    heading = f"actors demo: seed {options.seed}, {options.duration:g} s, Ctrl-C stops it"
    async with trio.open_nursery() as helpers:
        await helpers.start(_watch_signals, interrupted)
        helpers.start_soon(view.run, board, heading)
        try:
            async with (
                open_actor_system(
                    name="demo", instruments=[board], random=random.Random(options.seed)
                ) as system,
                open_supervisor(system, tree, name=ROOT),
            ):
                with trio.move_on_after(options.duration):
                    await interrupted.wait()
                why = "interrupted" if interrupted.is_set() else f"{options.duration:g} s are up"
                view.snapshot(board)
                board.emit("info", f"{why}: stopping everything in reverse start order")
        except RestartIntensityError as error:
            gave_up = error
            board.emit("escalation", f"{ROOT} gave up: {error}")
        helpers.cancel_scope.cancel(reason="demo finished")
    rows = board.rows.values()
    clean = gave_up is None and all(
        row.ref is None or (not row.ref.alive and not isinstance(row.ref.exit_reason, Killed))
        for row in rows
    )
    view.finish(board, board.summary(clean=clean))
    return 0 if clean else 1


def _can_encode(stream: TextIO, text: str) -> bool:
    try:
        text.encode(getattr(stream, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def run_demo(options: DemoOptions, stream: TextIO) -> int:
    """Run the demo in a fresh trio run; returns the exit code: 0 if it stopped cleanly."""
    return trio.run(demo, options, stream)
