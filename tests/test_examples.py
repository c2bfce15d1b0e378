"""Every script in examples/ runs to completion; docs include their code, so docs stay true.

Examples that talk to Redis get ``REDIS_URL`` pointing at a private redis-server.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))


def _needs_redis(script: Path) -> bool:
    return "REDIS_URL" in script.read_text()


@pytest.fixture(scope="module")
def examples_redis(module_redis_url: str) -> str:
    return module_redis_url


@pytest.mark.parametrize("script", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_example_runs(script: Path, request: pytest.FixtureRequest) -> None:
    environment = dict(os.environ)
    if _needs_redis(script):
        environment["REDIS_URL"] = request.getfixturevalue("examples_redis")
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=environment,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip(), "an example should show what it did"
