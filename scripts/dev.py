"""Set up the project's virtual environment and run the demo or the whole test suite.

Usage:
    python3 scripts/dev.py test [pytest arguments...]
    python3 scripts/dev.py demo [serve arguments...]   (the chat server on http://127.0.0.1:8000)
    python3 scripts/dev.py bench NAME [--quick]

Only the standard library is used here, so a fresh machine with Python 3.11+ and pip needs nothing
else. The virtual environment lives in .venv/ and is refreshed whenever pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
STAMP = VENV / ".installed-from"
LINT_TARGETS = ["actors", "tests", "examples", "benchmarks", "scripts"]
TYPE_TARGETS = ["actors", "tests", "examples"]


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def requirements_digest() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def ensure_environment() -> Path:
    """Create .venv and install the project with its dev extras, unless that is already done."""
    python = venv_python()
    if not python.exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    digest = requirements_digest()
    if not STAMP.exists() or STAMP.read_text().strip() != digest:
        print("installing actors with its dev extras into .venv", flush=True)
        pip = [str(python), "-m", "pip", "--disable-pip-version-check", "--quiet"]
        subprocess.run([*pip, "install", "--upgrade", "pip"], check=True)
        subprocess.run([*pip, "install", "--editable", f"{ROOT}[dev]"], check=True)
        STAMP.write_text(digest + "\n")
    return python


def run(python: Path, *args: str) -> int:
    print("$", " ".join(args), flush=True)
    return subprocess.run([str(python), "-m", *args], cwd=ROOT).returncode


def test(python: Path, extra: list[str]) -> int:
    steps = [
        ("ruff", "check", *LINT_TARGETS),
        ("ruff", "format", "--check", *LINT_TARGETS),
        ("mypy", "--strict", *TYPE_TARGETS),
        ("pytest", *extra),
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
        return run(python, "actors", "serve", *extra)
    if not extra:
        print("bench needs a benchmark name, for example: bench mailbox --quick")
        return 2
    script = ROOT / "benchmarks" / f"bench_{extra[0]}.py"
    return subprocess.run([str(python), str(script), *extra[1:]], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
