"""``scripts/dev.py``'s virtual environment: ``demo`` installs what the server needs, ``test``
adds the dev extras, and neither installs again what is there.

``.venv/bin/python`` is a stand-in script here that records each pip command it is given, so the
tests see what dev.py asks pip for without installing anything.
"""

from __future__ import annotations

import os
from pathlib import Path

import dev
import pytest

RECORDER = """#!/bin/sh
echo "$@" >> "$(dirname "$0")/../commands"
"""


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout with a pyproject.toml and a .venv whose python records its commands."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "actors"\n')
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(RECORDER)
    python.chmod(0o755)
    monkeypatch.setattr(dev, "ROOT", tmp_path)
    monkeypatch.setattr(dev, "VENV", tmp_path / ".venv")
    monkeypatch.setattr(dev, "STAMP", tmp_path / ".venv" / ".installed-from")
    return tmp_path


def installs(checkout: Path) -> list[str]:
    """The targets of the pip installs run so far, in order."""
    commands = checkout / ".venv" / "commands"
    lines = commands.read_text().splitlines() if commands.exists() else []
    return [line.split()[-1] for line in lines]


pytestmark = pytest.mark.skipif(os.name == "nt", reason="the stand-in python is a shell script")


def test_demo_installs_the_project_without_extras(checkout: Path) -> None:
    dev.ensure_environment(dev.SERVER)
    assert installs(checkout) == [str(checkout)]
    (command,) = (checkout / ".venv" / "commands").read_text().splitlines()
    assert command.split() == [
        *("-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off"),
        *("--editable", str(checkout)),
    ]
    assert dev.installed_extras() == dev.SERVER
    assert dev.environment_is_ready(dev.SERVER)
    assert not dev.environment_is_ready(dev.DEV)


def test_test_after_demo_adds_the_dev_extras_once(checkout: Path) -> None:
    dev.ensure_environment(dev.SERVER)
    dev.ensure_environment(dev.DEV)
    dev.ensure_environment(dev.DEV)
    assert installs(checkout) == [str(checkout), f"{checkout}[dev]"]
    assert dev.installed_extras() == dev.DEV


def test_demo_after_test_installs_nothing(checkout: Path) -> None:
    dev.ensure_environment(dev.DEV)
    dev.ensure_environment(dev.SERVER)
    assert installs(checkout) == [f"{checkout}[dev]"]
    assert dev.installed_extras() == dev.DEV


def test_a_changed_pyproject_installs_again(checkout: Path) -> None:
    dev.ensure_environment(dev.DEV)
    (checkout / "pyproject.toml").write_text('[project]\nname = "actors"\nversion = "2"\n')
    assert dev.installed_extras() is None
    dev.ensure_environment(dev.SERVER)
    assert installs(checkout) == [f"{checkout}[dev]", str(checkout)]


def test_a_stamp_of_the_digest_alone_means_the_dev_extras(checkout: Path) -> None:
    """Stamps written before the extras were recorded always had the dev extras."""
    dev.STAMP.write_text(dev.requirements_digest() + "\n")
    assert dev.installed_extras() == dev.DEV
    dev.ensure_environment(dev.DEV)
    assert installs(checkout) == []


def test_a_failed_install_stops_with_a_line_and_no_stamp(checkout: Path) -> None:
    python = checkout / ".venv" / "bin" / "python"
    python.write_text("#!/bin/sh\nexit 3\n")
    with pytest.raises(SystemExit) as exited:
        dev.ensure_environment(dev.SERVER)
    assert str(exited.value) == (
        f"dev.py: pip could not install {checkout} (exit code 3; see above)"
    )
    assert dev.installed_extras() is None


def test_the_first_run_says_what_it_does(
    checkout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dev.ensure_environment(dev.SERVER)
    output = capsys.readouterr().out
    assert "dev.py: installing actors with what the server needs into .venv" in output
    assert "dev.py: .venv ready in" in output
