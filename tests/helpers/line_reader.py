"""``LineReader``: a child process's pipe read in a thread, so that a test waits for a line with a
deadline instead of blocking on ``readline`` (or sleeping)."""

from __future__ import annotations

import queue
import re
import threading
import time
from typing import IO

import pytest


class LineReader:
    """Reads a pipe in a thread; ``seen`` holds the lines the test has waited through so far."""

    def __init__(self, pipe: IO[str]) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self.thread.start()

    def _read(self, pipe: IO[str]) -> None:
        for line in pipe:
            self.lines.put(line)
        self.lines.put(None)  # end of output

    def wait_for(self, pattern: str | re.Pattern[str], timeout: float) -> str:
        """Return the next line that contains ``pattern`` (a string, or a regular expression
        searched in the line); fail at the deadline or at the end of the output."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(remaining, 0))
            except queue.Empty:
                pytest.fail(f"no line with {pattern!r} within {timeout} s: {self.seen}")
            if line is None:
                self.lines.put(None)  # the end stays the end for the next wait
                pytest.fail(f"output ended without a line with {pattern!r}: {self.seen}")
            self.seen.append(line)
            found = pattern in line if isinstance(pattern, str) else pattern.search(line)
            if found:
                return line

    def rest(self, timeout: float) -> str:
        """Everything up to the end of the output, which must come within ``timeout``."""
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the output did not end"
        while (line := self.lines.get_nowait()) is not None:
            self.seen.append(line)
        self.lines.put(None)
        return "".join(self.seen)
