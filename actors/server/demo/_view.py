"""The demo's two views: a live ANSI screen for terminals, and plain lines for pipes and CI."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, Final

import trio

from actors.server.demo._dashboard import COLORS, RESET

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TextIO

    from actors.server.demo._dashboard import Dashboard, Event

FRAME_INTERVAL: Final = 0.2  # seconds between two frames of the live view
HIDE_CURSOR: Final = "\x1b[?25l"
SHOW_CURSOR: Final = "\x1b[?25h"
CLEAR_SCREEN: Final = "\x1b[2J"
HOME: Final = "\x1b[H"
CLEAR_LINE_END: Final = "\x1b[K"
CLEAR_BELOW: Final = "\x1b[J"


class _Output:
    """Writes to a stream until the stream breaks (``actors demo | head``), then stays quiet.

    Writes happen inside instrument hooks, which must not raise, so a broken stream is reported
    through ``on_broken`` instead: the demo then stops.
    """

    def __init__(self, stream: TextIO, on_broken: Callable[[], None]) -> None:
        self.stream = stream
        self.on_broken = on_broken
        self.broken = False

    def write(self, text: str) -> None:
        if self.broken:
            return
        try:
            self.stream.write(text)
            self.stream.flush()  # a reader at the other end of a pipe sees each line at once
        except OSError:
            self.broken = True
            self.on_broken()


class PlainView(_Output):
    """One line per event, as it happens: for pipes, log files and CI."""

    def event(self, event: Event) -> None:
        self.write(event.line() + "\n")

    async def run(self, dashboard: Dashboard, heading: str) -> None:
        self.write(heading + "\n")
        await trio.sleep_forever()

    def snapshot(self, dashboard: Dashboard) -> None:
        """Show the tree once, before it shuts down, lined up under the events' text."""
        self.write("".join(f"{'':9}{line}\n" for line in dashboard.table(color=False)))

    def finish(self, dashboard: Dashboard, summary: str) -> None:
        self.write(summary + "\n")


class LiveView(_Output):
    """A screen redrawn in place with ANSI escape codes: the tree on top, recent events below."""

    heading = ""

    def event(self, event: Event) -> None:
        pass  # drawn with the next frame

    async def run(self, dashboard: Dashboard, heading: str) -> None:
        self.heading = heading
        self.write(HIDE_CURSOR + CLEAR_SCREEN)
        try:
            while True:
                self.draw(dashboard)
                await trio.sleep(FRAME_INTERVAL)
        finally:
            self.write(SHOW_CURSOR)  # the cursor comes back however the demo ends

    def snapshot(self, dashboard: Dashboard) -> None:
        self.draw(dashboard)

    def draw(self, dashboard: Dashboard) -> None:
        columns, lines = shutil.get_terminal_size()
        bold = COLORS["header"]
        table = dashboard.table(color=True, width=columns)
        screen = [
            f"{bold}{self.heading[:columns]}{RESET}",
            f"{dashboard.elapsed():.1f} s",
            "",
            f"{bold}{table[0]}{RESET}",
            *table[1:],
            "",
            f"{bold}events{RESET}",
        ]
        room = max(lines - len(screen) - 2, 3)  # two lines stay free for the summary
        for event in list(dashboard.events)[-room:]:
            text = event.line()[:columns]
            color = COLORS.get(event.kind)
            screen.append(color + text + RESET if color else text)
        # Overwrite in place and clear what is left, rather than clear the screen: no flicker.
        body = "".join(line + CLEAR_LINE_END + "\n" for line in screen)
        self.write(HOME + body + CLEAR_BELOW)

    def finish(self, dashboard: Dashboard, summary: str) -> None:
        self.draw(dashboard)
        self.write(f"{COLORS['header']}{summary}{RESET}\n")
