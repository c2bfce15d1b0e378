"""``python -m actors serve`` in a child process on a free port, for tests that need a real one."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parents[2]
SECRET = "a shared test secret, 32+ bytes long"
_SERVING = re.compile(r"serving on http://127\.0\.0\.1:(\d+)")
START_TIMEOUT = 30.0


@attrs.define
class ServerProcess:
    process: subprocess.Popen[str]
    port: int
    output: list[str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to say goodbye."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


def server_arguments(redis_url: str = "memory://", *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "actors",
        "serve",
        "--port",
        "0",
        "--redis-url",
        redis_url,
        "--secret",
        SECRET,
        "--demo-login",  # the page signs in with POST /token
        *extra,
    ]


@contextmanager
def server_process(redis_url: str = "memory://", *extra: str) -> Iterator[ServerProcess]:
    """A running server; stopped with SIGTERM (or already killed) when the block ends.

    Its output is collected in ``output`` (and shown if it fails to start).
    """
    process = subprocess.Popen(
        server_arguments(redis_url, *extra),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    output: list[str] = []
    started = threading.Event()
    port: list[int] = []

    def read(stream: object = process.stdout) -> None:
        for line in process.stdout:  # type: ignore[union-attr]
            output.append(line)
            match = _SERVING.search(line)
            if match and not port:
                port.append(int(match.group(1)))
                started.set()
        started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if not started.wait(START_TIMEOUT) or not port:
            raise RuntimeError("the server did not start:\n" + "".join(output))
        yield ServerProcess(process, port[0], output)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        reader.join(timeout=5)
        process.stdout.close()
