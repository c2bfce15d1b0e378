"""The operator commands of ``python -m actors``: publish, subscribe, health (real server)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from actors.testing import free_port

TIMEOUT = 30.0


@pytest.fixture(scope="module")
def redis_url(module_redis_url: str) -> str:
    return module_redis_url


def actors(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "actors", *arguments],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def test_health_reports_up_with_the_server_view(redis_url: str) -> None:
    result = actors("health", redis_url)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "up"
    assert report["server"]["protocol"] == 3
    assert report["probe_seconds"] < 3


def test_health_of_an_unreachable_server_is_down_with_exit_code_1() -> None:
    result = actors("health", f"redis://:secret@127.0.0.1:{free_port()}")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["status"] == "down"
    assert "secret" not in result.stdout
    assert report["url"].endswith(":***@127.0.0.1:" + report["url"].rsplit(":", 1)[1])


def test_subscribe_prints_what_publish_sends_with_channel_and_type(redis_url: str) -> None:
    subscriber = subprocess.Popen(
        [sys.executable, "-m", "actors", "subscribe", redis_url, "orders.*", "--count", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert subscriber.stdout is not None
        first = subscriber.stdout.readline()
        assert "subscribed to pattern orders.*" in first
        published = actors("publish", redis_url, "orders.eu", '{"type": "order", "id": 1}')
        assert published.returncode == 0, published.stderr
        assert published.stdout.strip() == "1 receiver(s)"
        assert actors("publish", redis_url, "orders.us", "[1, 2]").returncode == 0
        output, errors = subscriber.communicate(timeout=TIMEOUT)
    finally:
        subscriber.kill()
    assert subscriber.returncode == 0, errors
    lines = output.splitlines()
    assert " orders.eu order " in lines[0]
    assert '"id": 1' in lines[0]
    assert " orders.us - [1, 2]" in lines[1]
    assert lines[-1] == "stopped after 2 message(s)"


def test_publish_refuses_invalid_json(redis_url: str) -> None:
    result = actors("publish", redis_url, "orders.eu", "{not json")
    assert result.returncode == 2
    assert "not valid JSON" in result.stderr


def test_the_framework_command_line_has_the_operator_commands_alone(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``actors.cli`` (no server imported) offers publish, subscribe and health, nothing else."""
    from actors.cli import main

    with pytest.raises(SystemExit):
        main(["--help"])
    usage = capsys.readouterr().out
    commands = re.findall(r"^    (\w+)", usage, flags=re.MULTILINE)
    assert commands == ["publish", "subscribe", "health"]
    assert "serve" not in usage
    assert "demo" not in usage


def test_the_framework_command_line_loads_no_server_module() -> None:
    """Running ``python -m actors.cli`` imports nothing of ``actors.server``."""
    script = (
        "import sys, runpy\n"
        "sys.argv = ['actors', '--version']\n"
        "try:\n"
        "    runpy.run_module('actors.cli', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('actors.server')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=TIMEOUT, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout
