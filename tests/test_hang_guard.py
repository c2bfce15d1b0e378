"""No hang can pass CI: pytest-timeout, configured in pyproject.toml, ends a session that hangs.

Each hanging test runs in a pytest session of its own, in a subprocess, under the project's own
configuration (``-c pyproject.toml``: trio mode, the strict settings, the timeout method) with a
one-second timeout. A subprocess, not pytester's in-process run: the thread method ends a hung
session with ``os._exit``, which would end this session too.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Final

import pytest

PYPROJECT: Final = Path(__file__).resolve().parent.parent / "pyproject.toml"
HANG_TIMEOUT: Final = 1  # seconds: the timeout the hanging session runs with
BOUND: Final = 30.0  # seconds for that session to end: interpreter start, collection, timeout

TRIO_HANG: Final = '''
import trio


async def test_hangs() -> None:
    """Real time, no autojump clock: nothing ever wakes this task."""
    await trio.sleep_forever()
'''

BLOCKING_HANG: Final = '''
import threading


def test_hangs() -> None:
    """Blocks the main thread outside of any event loop."""
    threading.Event().wait()
'''


@pytest.mark.parametrize("source", [TRIO_HANG, BLOCKING_HANG], ids=["trio", "blocking"])
def test_a_hanging_test_ends_its_session_with_a_timeout(source: str, tmp_path: Path) -> None:
    (tmp_path / "test_hang.py").write_text(source)
    environment = {key: value for key, value in os.environ.items() if key != "PYTEST_ADDOPTS"}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-c",
        str(PYPROJECT),
        "--rootdir",
        str(tmp_path),
        "-p",
        "no:cacheprovider",
        "-o",
        f"timeout={HANG_TIMEOUT}",
        "test_hang.py",
    ]
    started = time.monotonic()
    result = subprocess.run(
        command,
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=BOUND,
        check=False,
    )
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    assert "timeout method: thread" in output, output
    assert result.returncode == 1, output
    # The progress line ends with the banner the thread method prints before its stack dump.
    assert re.search(r"^test_hang\.py \++ Timeout \++$", output, flags=re.MULTILINE), output
    assert "passed" not in output
    assert HANG_TIMEOUT <= elapsed < BOUND
