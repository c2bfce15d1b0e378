"""Set up the project's virtual environment and run the demo or the whole test suite.

Usage:
    python3 scripts/dev.py test [pytest arguments...]
    python3 scripts/dev.py demo [serve arguments...]   (the chat server on http://127.0.0.1:8000)
    python3 scripts/dev.py bench NAME [--quick]

Only the standard library is used here, so a fresh machine with Python 3.11+ and pip needs nothing
else. The virtual environment lives in .venv/ and is refreshed whenever pyproject.toml changes.

demo runs the server as a child and passes SIGINT (Ctrl-C) and SIGTERM on to it: the server stops in
order; one still running SHUTDOWN_GRACE seconds later is killed. The exit code is the server's
(128 + N if signal N ended it).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import venv
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
STAMP = VENV / ".installed-from"
PLUGIN_ENTRY = "_actors_pytest_plugin.py"  # the test kit's pytest11 entry point, beside actors/
LINT_TARGETS = ["actors", PLUGIN_ENTRY, "tests", "examples", "benchmarks", "scripts"]
TYPE_TARGETS = ["actors", PLUGIN_ENTRY, "tests", "examples"]
SHUTDOWN_GRACE: Final = 10.0  # seconds the server gets to stop after a signal before it is killed


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def requirements_digest() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def environment_is_ready() -> bool:
    """Whether .venv exists and holds the project installed from this very pyproject.toml."""
    return (
        venv_python().exists()
        and STAMP.exists()
        and STAMP.read_text().strip() == requirements_digest()
    )


def ensure_environment() -> Path:
    """Create .venv and install the project with its dev extras, unless that is already done."""
    python = venv_python()
    if environment_is_ready():
        return python
    if not python.exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    print("installing actors with its dev extras into .venv", flush=True)
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "install", "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "install", "--editable", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(requirements_digest() + "\n")
    return python


def run(python: Path, *args: str) -> int:
    print("$", " ".join(args), flush=True)
    return subprocess.run([str(python), "-m", *args], cwd=ROOT).returncode


def run_forwarding_signals(command: list[str], grace: float = SHUTDOWN_GRACE) -> int:
    """Run ``command`` until it exits, as the only process that signals it.

    The child has a process group of its own, so a Ctrl-C at the terminal reaches it once, from
    here, and not a second time from the terminal (two make the server give up its orderly stop).
    SIGINT, SIGTERM, SIGHUP and SIGQUIT are passed on, and the first of them starts the clock: a
    child still running ``grace`` seconds later is killed. Ctrl-Z suspends the child with this
    process, and continuing this process continues the child.

    Returns:
        The child's exit code, or 128 + N if signal N ended it, as shells report it.
    """
    windows = sys.platform == "win32"
    child = subprocess.Popen(
        command, cwd=ROOT, stdin=subprocess.DEVNULL, process_group=None if windows else 0
    )
    killer = threading.Timer(grace, child.kill)
    killer.daemon = True

    def forward(signum: int, frame: FrameType | None) -> None:
        # On Windows the console sends Ctrl-C to the child itself, and SIGTERM is terminate().
        if not (windows and signum == signal.SIGINT):
            child.send_signal(signum)
        if killer.ident is None:  # the first signal: start the clock
            killer.start()

    # Left in place until this process exits: a second Ctrl-C is passed on too, and never ends
    # in a KeyboardInterrupt traceback here.
    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    if sys.platform != "win32":
        signal.signal(signal.SIGHUP, forward)
        signal.signal(signal.SIGQUIT, forward)

        def suspend(signum: int, frame: FrameType | None) -> None:
            child.send_signal(signal.SIGTSTP)
            signal.signal(signal.SIGTSTP, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTSTP)  # stops here until the shell continues it
            signal.signal(signal.SIGTSTP, suspend)
            child.send_signal(signal.SIGCONT)

        signal.signal(signal.SIGTSTP, suspend)
    code = child.wait()
    killer.cancel()
    return 128 - code if code < 0 else code


def test(python: Path, extra: list[str]) -> int:
    # The whole suite measures branch coverage and fails below the floor set in pyproject.toml,
    # naming the lines not covered; a run of a few tests (arguments given) does not.
    coverage = () if extra else ("--cov", "--cov-report=term-missing:skip-covered")
    steps = [
        ("ruff", "check", *LINT_TARGETS),
        ("ruff", "format", "--check", *LINT_TARGETS),
        ("mypy", "--strict", *TYPE_TARGETS),
        ("pytest", *coverage, *extra),
    ]
    for step in steps:
        code = run(python, *step)
        if code != 0:
            print(f"FAILED: {' '.join(step)} (exit code {code})", flush=True)
            return code
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"test", "demo", "bench"}:
        print(__doc__)
        return 2
    command, extra = argv[0], argv[1:]
    python = ensure_environment()
    if command == "test":
        return test(python, extra)
    if command == "demo":
        print("$ actors serve", *extra, flush=True)
        return run_forwarding_signals([str(python), "-m", "actors", "serve", *extra])
    if not extra:
        print("bench needs a benchmark name, for example: bench mailbox --quick")
        return 2
    script = ROOT / "benchmarks" / f"bench_{extra[0]}.py"
    return subprocess.run([str(python), str(script), *extra[1:]], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
