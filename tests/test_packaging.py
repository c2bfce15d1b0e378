"""The sdist carries what README.md's commands need: ``scripts/dev.py demo`` and ``test`` (with
what the test command lints and runs) and ``.ci/run`` work from an unpacked sdist."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parent.parent
# What the commands of README.md read, beside the package itself.
NEEDED_FILES: Final = (
    "pyproject.toml",
    "README.md",
    "LICENSE",
    "CHANGELOG.md",
    "_actors_pytest_plugin.py",
    "scripts/dev.py",
    ".ci/run",
    "tests/kotlin/build_peer.py",
)
# Folders whose every file goes in: the test command lints and runs all of them.
WHOLE_FOLDERS: Final = ("actors", "tests", "examples", "docs", "benchmarks", "scripts", "deploy")


def source_files(folder: str) -> set[str]:
    """The files of a folder of the checkout, without the caches that running leaves there."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def test_the_sdist_holds_what_the_readme_commands_need(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "--target", "sdist", "--directory", tmp_path],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=60,
    )
    (archive,) = tmp_path.glob("actors-*.tar.gz")
    with tarfile.open(archive) as sdist:
        top = archive.name.removesuffix(".tar.gz") + "/"
        names = {name.removeprefix(top) for name in sdist.getnames()}
    missing = [name for name in NEEDED_FILES if name not in names]
    for folder in WHOLE_FOLDERS:
        missing += sorted(source_files(folder) - names)
    assert missing == []
