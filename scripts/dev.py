"""Set up the project's virtual environment and run the demo or the whole test suite.

Usage:
    python3 scripts/dev.py test [pytest arguments...]
    python3 scripts/dev.py demo [serve arguments...]   (the chat server on http://127.0.0.1:8000,
                                                        with the demo login on)
    python3 scripts/dev.py bench NAME [--quick]
    python3 scripts/dev.py bench all [--only NAME,NAME...] [--quick] [benchmark arguments...]

bench all runs every benchmarks/bench_*.py (or those --only names), one after another, each in a
process of its own with the arguments given, showing each one's output as it runs; then it prints
a table of their results and their JSON lines. It exits non-zero if any of them failed.

Only the standard library is used here, so a fresh machine with Python 3.11+ and pip needs nothing
else. The virtual environment lives in .venv/ and is refreshed whenever pyproject.toml changes.
demo installs only what the server needs; test and bench add the dev extras to it (once), and a
demo after them installs nothing more.

demo runs the server as a child and passes SIGINT (Ctrl-C) and SIGTERM on to it: the server stops in
order; one still running SHUTDOWN_GRACE seconds later is killed. The exit code is the server's
(128 + N if signal N ended it).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import venv
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
STAMP = VENV / ".installed-from"
PLUGIN_ENTRY = "_actors_pytest_plugin.py"  # the test kit's pytest11 entry point, beside actors/
LINT_TARGETS = ["actors", PLUGIN_ENTRY, "tests", "examples", "benchmarks", "scripts"]
TYPE_TARGETS = ["actors", PLUGIN_ENTRY, "tests", "examples"]
SERVER: Final = "server"  # what `demo` installs: the project and its dependencies
DEV: Final = "dev"  # what `test` and `bench` install: the dev extras too
EXTRAS_SHOWN: Final = {
    SERVER: "with what the server needs",
    DEV: "with its dev extras (test kit, pytest, ruff, mypy, playwright, hypothesis)",
}
SHUTDOWN_GRACE: Final = 10.0  # seconds the server gets to stop after a signal before it is killed
BENCHMARKS = ROOT / "benchmarks"
BENCH_REQUIRED: Final = ("bench", "ours", "peer", "ratio", "unit")  # in every last line
BENCH_COLUMNS: Final = ("bench", "ours", "peer", "ratio", "unit", "goal", "met")
BENCH_NUMERIC: Final = frozenset({"ours", "peer", "ratio"})  # right-aligned


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def requirements_digest() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def installed_extras() -> str | None:
    """What .venv holds, by its stamp: SERVER or DEV; None if it is missing or out of date.

    The stamp is the digest of the pyproject.toml installed from, then the extras (a stamp with
    the digest alone, as older versions wrote it, had the dev extras).
    """
    if not venv_python().exists() or not STAMP.exists():
        return None
    digest, _, extras = STAMP.read_text().strip().partition(" ")
    if digest != requirements_digest():
        return None
    return extras or DEV


def environment_is_ready(extras: str = SERVER) -> bool:
    """Whether .venv holds the project, installed from this very pyproject.toml, with at least
    ``extras`` (the dev extras include what the server needs)."""
    installed = installed_extras()
    return installed is not None and (installed == DEV or extras == SERVER)


def ensure_environment(extras: str = DEV) -> Path:
    """Create .venv and install the project with ``extras``, unless that is already done.

    SERVER installs what the chat server needs and nothing else; DEV adds the test kit and the
    tools of the test command. pip says what it fetches, so a first run is not silent.
    """
    python = venv_python()
    if environment_is_ready(extras):
        return python
    started = time.monotonic()  # a progress figure for people, not program logic
    if not python.exists():
        print(f"dev.py: creating a virtual environment in {VENV} (first run only)", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    print(f"dev.py: installing actors {EXTRAS_SHOWN[extras]} into .venv", flush=True)
    target = str(ROOT) if extras == SERVER else f"{ROOT}[{extras}]"
    install = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
    code = subprocess.run([*install, "--progress-bar", "off", "--editable", target]).returncode
    if code != 0:
        raise SystemExit(f"dev.py: pip could not install {target} (exit code {code}; see above)")
    STAMP.write_text(f"{requirements_digest()} {extras}\n")
    print(f"dev.py: .venv ready in {time.monotonic() - started:.0f} s", flush=True)
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


def demo(python: Path, extra: list[str]) -> int:
    """Run the chat server with the demo login on (``POST /token`` for any name)."""
    arguments = ["serve", "--demo-login", *extra]
    print("$ actors", *arguments, flush=True)
    print("dev.py: starting the chat server; open the address it is serving on", flush=True)
    return run_forwarding_signals([str(python), "-m", "actors", *arguments])


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


class BenchRun(NamedTuple):
    """What ``bench all`` keeps of one benchmark's run."""

    name: str
    """The benchmark's name as ``bench NAME`` takes it: ``mailbox`` for ``bench_mailbox.py``."""
    exit_code: int
    last_line: str
    """The last non-blank line of its standard output, stripped; empty if it printed nothing."""


def benchmark_names() -> list[str]:
    """Every benchmark in benchmarks/, by name, in alphabetical order."""
    return sorted(path.stem.removeprefix("bench_") for path in BENCHMARKS.glob("bench_*.py"))


def select_benchmarks(args: Sequence[str], known: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split ``bench all``'s arguments into the benchmarks to run and their own arguments.

    ``--only a,b`` (or ``--only=a,b``) picks benchmarks, in that order; everything else is passed
    on to each benchmark unchanged.

    Raises:
        ValueError: ``--only`` has no names or names a benchmark that does not exist.
    """
    names: list[str] | None = None
    passed: list[str] = []
    rest = iter(args)
    for arg in rest:
        if arg == "--only" or arg.startswith("--only="):
            value = arg.partition("=")[2] if "=" in arg else next(rest, "")
            names = [name.strip() for name in value.split(",") if name.strip()]
            if not names:
                raise ValueError("--only needs benchmark names, for example --only mailbox,ask")
            unknown = [name for name in names if name not in known]
            if unknown:
                raise ValueError(
                    f"no such benchmark: {', '.join(unknown)} (there are: {', '.join(known)})"
                )
        else:
            passed.append(arg)
    return (list(known) if names is None else names), passed


def read_bench_result(run: BenchRun) -> dict[str, Any] | str:
    """The JSON object a benchmark printed as its last line, or why the run counts as failed."""
    if run.exit_code != 0:
        return f"exit code {run.exit_code}"
    if not run.last_line:
        return "no output"
    try:
        record = json.loads(run.last_line)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        shown = run.last_line if len(run.last_line) <= 60 else run.last_line[:57] + "..."
        return f"last line is not a JSON object: {shown}"
    missing = [key for key in BENCH_REQUIRED if key not in record]
    if missing:
        return f"last line lacks {', '.join(missing)}"
    return record


def _figure(value: object) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return str(value)


def _goal(record: dict[str, Any]) -> str:
    """The benchmark's goals in words: its main one, then any other ``NAME_goal`` the line has
    (such as a cost goal), which ``all_goals_met`` covers too."""
    others = [
        f"{key.removesuffix('_goal')} goal {_figure(value)}"
        for key, value in record.items()
        if key.endswith("_goal") and isinstance(value, int | float) and not isinstance(value, bool)
    ]
    return ", ".join(filter(None, [_main_goal(record), *others]))


def _main_goal(record: dict[str, Any]) -> str:
    if isinstance(record.get("goals"), dict):  # bench_latency: one named goal per rate
        return ", ".join(record["goals"])
    if "goal_ratio" in record:
        return f"ratio >= {_figure(record['goal_ratio'])}"
    if "goal_seconds" in record:
        return f"<= {_figure(record['goal_seconds'])} s"
    if "goal_spawns_per_s" in record:
        return f">= {_figure(record['goal_spawns_per_s'])} spawns/s"
    if "goal" in record:
        # emit_against_goal's goal is a floor on the ratio; a benchmark that times a duration
        # (its ratio inverted, as ratio_definition says) sets a ceiling on ours instead.
        if "ratio_definition" in record:
            return f"ours <= {_figure(record['goal'])}"
        return f"ratio >= {_figure(record['goal'])}"
    return ""


def _bench_row(run: BenchRun) -> list[str]:
    result = read_bench_result(run)
    if isinstance(result, str):
        return [run.name, "", "", "", "", "", f"FAILED: {result}"]
    met = result.get("all_goals_met", result.get("goal_met"))
    return [
        run.name,
        _figure(result["ours"]),
        _figure(result["peer"]),
        _figure(result["ratio"]),
        str(result["unit"]).partition(" (")[0],  # the note in brackets stays in the JSON line
        _goal(result),
        "" if met is None else _figure(met),
    ]


def bench_report(runs: Sequence[BenchRun]) -> tuple[str, bool]:
    """The table of ``bench all`` (Markdown), then each benchmark's JSON line, one per line.

    A failed run (non-zero exit, or a last line that is not a JSON object with the keys of
    BENCH_REQUIRED) keeps its row, saying why, and has no JSON line.

    Returns:
        The text, and whether every run succeeded.
    """
    rows = [list(BENCH_COLUMNS), *(_bench_row(run) for run in runs)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(BENCH_COLUMNS))]

    def line(cells: list[str]) -> str:
        padded = (
            cell.rjust(width) if name in BENCH_NUMERIC else cell.ljust(width)
            for name, cell, width in zip(BENCH_COLUMNS, cells, widths, strict=True)
        )
        return "| " + " | ".join(padded) + " |"

    rule = [
        "-" * (width - 1) + ":" if name in BENCH_NUMERIC else "-" * width
        for name, width in zip(BENCH_COLUMNS, widths, strict=True)
    ]
    table = [line(rows[0]), line(rule), *(line(row) for row in rows[1:])]
    results = [(run, read_bench_result(run)) for run in runs]
    json_lines = [run.last_line for run, result in results if not isinstance(result, str)]
    text = "\n".join([*table, "", *json_lines] if json_lines else table)
    return text, all(not isinstance(result, str) for _, result in results)


def run_benchmark(python: Path, name: str, args: Sequence[str]) -> BenchRun:
    """Run one benchmark in a process of its own, echoing its output line by line as it comes."""
    script = BENCHMARKS / f"bench_{name}.py"
    print(f"$ {script.relative_to(ROOT)}", *args, flush=True)
    last_line = ""
    with subprocess.Popen(
        [str(python), str(script), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
        env={**os.environ, "PYTHONUNBUFFERED": "1"},  # progress as it happens, not at exit
    ) as child:
        assert child.stdout is not None
        try:
            for output in child.stdout:
                sys.stdout.write(output)
                sys.stdout.flush()
                if output.strip():
                    last_line = output.strip()
        except KeyboardInterrupt:
            # The benchmark had the Ctrl-C too: let it stop its servers and exit, its output
            # still read, before giving up.
            sys.stdout.write(child.communicate()[0])
            raise
    return BenchRun(name, child.returncode, last_line)


def bench_all(python: Path, args: Sequence[str]) -> int:
    """Run the benchmarks one after another, then print the table and the JSON lines.

    Returns:
        0 if every benchmark succeeded, 1 if any failed, 2 for bad arguments and 130 after a
        Ctrl-C (the table then has the benchmarks that finished).
    """
    try:
        names, passed = select_benchmarks(args, benchmark_names())
    except ValueError as exc:
        print(f"bench all: {exc}")
        return 2
    runs: list[BenchRun] = []
    interrupted = False
    try:
        for name in names:
            runs.append(run_benchmark(python, name, passed))
    except KeyboardInterrupt:  # the benchmark had the Ctrl-C too, and has stopped
        interrupted = True
    text, ok = bench_report(runs)
    print()
    print(text, flush=True)
    if interrupted:
        print(f"interrupted after {len(runs)} of {len(names)} benchmarks", flush=True)
        return 130
    return 0 if ok else 1


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"test", "demo", "bench"}:
        print(__doc__)
        return 2
    command, extra = argv[0], argv[1:]
    python = ensure_environment(SERVER if command == "demo" else DEV)
    if command == "test":
        return test(python, extra)
    if command == "demo":
        return demo(python, extra)
    if not extra:
        print("bench needs a benchmark name or all, for example: bench mailbox --quick")
        return 2
    if extra[0] == "all":
        return bench_all(python, extra[1:])
    script = ROOT / "benchmarks" / f"bench_{extra[0]}.py"
    return subprocess.run([str(python), str(script), *extra[1:]], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
