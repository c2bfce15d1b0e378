"""``python -m actors serve`` at its edges, as a process: Redis out of reach, refused, lost, late,
and signals at any moment.

Each test runs the real command in a child process and talks to it over real sockets. Waits on
the child's output and on HTTP have generous deadlines (a loaded machine starts Python slowly);
the bounds the command promises are asserted as they are: it stops within ``STOP_BOUND`` of
SIGINT or SIGTERM, and a misconfiguration that cannot heal ends it within ``FATAL_BOUND``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import attrs
import pytest
import redis
from line_reader import LineReader

from actors.cli import EXIT_INTERRUPTED
from actors.server.gateway import SHUTDOWN_BOUND
from actors.testing import RedisServer, free_port
from actors.testing.pytest_plugin import require_redis_server

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="sends SIGINT and SIGTERM to a child process"
)

ROOT: Final = Path(__file__).resolve().parents[2]
STARTUP: Final = 30.0  # seconds a child gets to print a line; far above what it needs
WAIT: Final = 15.0  # seconds for something the server does by itself (a retry, a reconnect)
STOP_BOUND: Final = SHUTDOWN_BOUND  # seconds from SIGINT or SIGTERM to exit: the promise
FATAL_BOUND: Final = 10.0  # seconds from start to exit when Redis refuses us for good: the promise
POLL: Final = 0.05  # seconds between two HTTP requests while polling
PASSWORD: Final = "correct-horse-4f1d"  # the private server's
WRONG_PASSWORD: Final = "wrong-staple-9c2e"

LISTENING: Final = re.compile(
    r"^listening on http://127\.0\.0\.1:(\d+) \(.+\): /health and /metrics answer now$"
)
# Python's verbose import log, as the gateway package is loaded (from source or from a .pyc).
GATEWAY_IMPORT: Final = re.compile(
    r"code object from .*actors/server/gateway/(__pycache__/)?__init__\."
)
LOG_LINE: Final = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING) \S+: ")


def retry_warning(redis_port: int) -> re.Pattern[str]:
    """The one line a failed connection attempt logs: the error, the next delay, no traceback."""
    return re.compile(
        r" WARNING actors\.runtime: redis-connection \(actor#\d+\) failed: RedisConnectionError: "
        rf"cannot connect to redis://127\.0\.0\.1:{redis_port}/0: connection refused; "
        r"restarting in \d+\.\d+ s \(one_for_one\)$"
    )


@attrs.define
class Answer:
    status: int
    body: str

    def json(self) -> dict[str, object]:
        document = json.loads(self.body)
        assert isinstance(document, dict), self.body
        return document


def get(port: int, path: str) -> Answer:
    """One HTTP GET on 127.0.0.1; error statuses are answers too."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=WAIT) as response:
            return Answer(response.status, response.read().decode())
    except urllib.error.HTTPError as error:
        with error:
            return Answer(error.code, error.read().decode())


def connection_check(health: Answer) -> dict[str, object]:
    """The detail of ``/health``'s connection check."""
    checks = health.json()["checks"]
    assert isinstance(checks, dict), health.body
    detail = checks["connection"]["detail"]
    assert isinstance(detail, dict), health.body
    return detail


@attrs.define
class Serve:
    """A ``serve`` child process, with its stdout and stderr read line by line."""

    process: subprocess.Popen[str]
    out: LineReader
    err: LineReader
    started: float  # time.monotonic() when it was started

    def wait_listening(self) -> int:
        """The HTTP port, once ``listening on`` is printed."""
        line = self.out.wait_for("listening on", STARTUP)
        match = LISTENING.match(line.rstrip("\n"))
        assert match is not None, line
        return int(match.group(1))

    def poll(self, port: int, path: str, done: Callable[[Answer], bool]) -> Answer:
        """GET ``path`` until ``done`` holds, for at most ``WAIT`` seconds; fail if it exits."""
        deadline = time.monotonic() + WAIT
        while True:
            answer = get(port, path)
            if done(answer):
                return answer
            if time.monotonic() > deadline:
                pytest.fail(f"{path} still answers {answer} after {WAIT} s")
            # Waiting on the process, not sleeping: an exit ends the poll at once.
            try:
                code = self.process.wait(POLL)
            except subprocess.TimeoutExpired:
                continue
            pytest.fail(f"serve exited with {code} while {path} answered {answer}")

    def stop(self, signal_number: signal.Signals) -> tuple[int, float]:
        """Send the signal; the exit code and the seconds it took, within ``STOP_BOUND``."""
        signalled = time.monotonic()
        self.process.send_signal(signal_number)
        try:
            code = self.process.wait(STOP_BOUND)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {STOP_BOUND} s after {signal_number.name}")
        return code, time.monotonic() - signalled

    def output(self) -> tuple[str, str]:
        """Everything it printed, once it has exited: stdout and stderr."""
        return self.out.rest(WAIT), self.err.rest(WAIT)


@contextmanager
def serve(
    redis_url: str,
    *,
    environment: dict[str, str] | None = None,
    arguments: Sequence[str] = (),
) -> Iterator[Serve]:
    """``python -m actors serve --demo-login --port 0 --redis-url redis_url [arguments]``,
    killed at the end if it runs."""
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "actors", "serve", "--demo-login"),
            *("--port", "0", "--redis-url", redis_url),
            *arguments,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(environment or {})},
    )
    started = time.monotonic()
    try:
        assert process.stdout is not None
        assert process.stderr is not None
        yield Serve(process, LineReader(process.stdout), LineReader(process.stderr), started)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()


def assert_closed(port: int) -> None:
    """Nothing listens on ``port`` any more."""
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=WAIT).close()


def assert_only_log_lines(errors: str) -> None:
    """stderr holds log lines and nothing else: no traceback, no stray output."""
    assert "Traceback" not in errors, errors
    for line in errors.splitlines():
        assert LOG_LINE.match(line), f"not a log line: {line!r}\n{errors}"


def measured(request: pytest.FixtureRequest, seconds: float) -> None:
    """Keep how long the stop (or the exit) took, for reports (``--junitxml``)."""
    request.node.user_properties.append(("seconds", round(seconds, 3)))


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server with a password, not started: the test starts it."""
    require_redis_server()
    server = RedisServer(
        tmp_path / "redis", port=free_port(), extra_args=("--requirepass", PASSWORD)
    )
    try:
        yield server
    finally:
        server.stop()


def authenticated(server: RedisServer, path: str = "") -> str:
    return f"redis://:{PASSWORD}@127.0.0.1:{server.port}{path}"


signals = pytest.mark.parametrize(
    "signal_number", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"]
)


@signals
def test_out_of_reach_redis_serves_health_and_metrics_retries_quietly_and_stops_on_a_signal(
    signal_number: signal.Signals, request: pytest.FixtureRequest
) -> None:
    redis_port = free_port()  # nobody listens there
    with serve(f"redis://127.0.0.1:{redis_port}") as server:
        port = server.wait_listening()
        health = server.poll(
            port,
            "/health",
            lambda answer: (
                answer.status != 503
                or connection_check(answer).get("cause") == "connection refused"
            ),
        )
        assert health.status == 503, health
        assert health.json()["status"] == "down"
        detail = connection_check(health)
        assert detail["connected"] is False
        assert "connection refused" in str(detail["reason"])
        metrics = get(port, "/metrics")
        assert metrics.status == 200, metrics
        assert "\nactors_redis_connected 0.0\n" in metrics.body
        page = get(port, "/")
        assert page.status == 503, page
        # About a second of retries: 0.1 + 0.2 + 0.4 s of backoff (with jitter) between these.
        for _ in range(4):
            server.err.wait_for(retry_warning(redis_port), WAIT)
        code, seconds = server.stop(signal_number)
        measured(request, seconds)
        output, errors = server.output()
    assert code == 0, errors
    assert_only_log_lines(errors)
    assert f"signal {signal_number.value}: stopping" in errors
    assert "serving on" not in output
    assert_closed(port)


def test_a_sigterm_as_soon_as_serve_exists_stops_it(
    request: pytest.FixtureRequest,
) -> None:
    """Before trio watches SIGTERM its default action ends the process, after it in order."""
    with serve(f"redis://127.0.0.1:{free_port()}") as server:
        code, seconds = server.stop(signal.SIGTERM)
        measured(request, seconds)
        _, errors = server.output()
    assert code in {0, -signal.SIGTERM}, errors
    assert "Traceback" not in errors, errors


def test_a_sigint_while_serve_imports_its_modules_stops_it_without_a_traceback(
    request: pytest.FixtureRequest,
) -> None:
    """The signal comes while ``serve`` imports the gateway, before trio can catch it.

    Python's verbose import log tells the test when that is. (Earlier still, while Python
    starts and imports the ``actors`` package, only Python itself could catch it.)
    """
    with serve(f"redis://127.0.0.1:{free_port()}", environment={"PYTHONVERBOSE": "1"}) as server:
        server.err.wait_for(GATEWAY_IMPORT, STARTUP)
        code, seconds = server.stop(signal.SIGINT)
        measured(request, seconds)
        _, errors = server.output()
    assert code in {0, EXIT_INTERRUPTED}, errors
    assert "Traceback" not in errors, errors[-3000:]
    assert "KeyboardInterrupt" not in errors, errors[-3000:]


@signals
def test_a_signal_right_after_listening_stops_serve(
    signal_number: signal.Signals, request: pytest.FixtureRequest
) -> None:
    with serve(f"redis://127.0.0.1:{free_port()}") as server:
        port = server.wait_listening()
        code, seconds = server.stop(signal_number)
        measured(request, seconds)
        output, errors = server.output()
    assert code == 0, errors
    assert [line for line in output.splitlines() if "listening on" not in line] == []
    assert_only_log_lines(errors)
    assert errors.count(f"signal {signal_number.value}: stopping") == 1, errors
    assert_closed(port)


@pytest.mark.parametrize(
    ("path", "password", "expected"),
    [
        ("", WRONG_PASSWORD, r"RedisAuthenticationError: WRONGPASS "),
        ("", None, r"RedisAuthenticationError: NOAUTH "),
        ("/99", PASSWORD, r"RedisHandshakeError: Redis refused SELECT .*DB index is out of range"),
    ],
    ids=["wrong-password", "no-password", "select-out-of-range"],
)
def test_redis_refusing_serve_for_good_ends_it_with_one_error_line(
    private_redis: RedisServer,
    path: str,
    password: str | None,
    expected: str,
    request: pytest.FixtureRequest,
) -> None:
    private_redis.start()
    credentials = f":{password}@" if password else ""
    with serve(f"redis://{credentials}127.0.0.1:{private_redis.port}{path}") as server:
        try:
            code = server.process.wait(max(FATAL_BOUND - (time.monotonic() - server.started), 0))
        except subprocess.TimeoutExpired:
            pytest.fail(f"serve still runs {FATAL_BOUND} s after it started")
        measured(request, time.monotonic() - server.started)
        output, errors = server.output()
    assert code == 1, errors
    assert "Traceback" not in errors, errors
    lines = errors.splitlines()
    assert re.match(rf"^error: {expected}", lines[-1]), errors
    assert [line for line in lines if line.startswith("error:")] == [lines[-1]], errors
    for line in lines[:-1]:
        assert LOG_LINE.match(line), f"not a log line: {line!r}\n{errors}"
    assert "serving on" not in output
    for secret in (PASSWORD, WRONG_PASSWORD):
        assert secret not in output + errors


def test_losing_redis_turns_health_down_and_serve_still_stops_in_time(
    private_redis: RedisServer, request: pytest.FixtureRequest
) -> None:
    private_redis.start()
    with serve(authenticated(private_redis)) as server:
        port = server.wait_listening()
        server.out.wait_for("serving on", STARTUP)
        assert server.poll(port, "/health", lambda answer: answer.status == 200).status == 200
        assert get(port, "/").status == 200
        private_redis.kill()
        # The server check may fail first (a command meets the closed socket), then the
        # connection check says why.
        health = server.poll(
            port,
            "/health",
            lambda answer: answer.status == 503 and connection_check(answer)["connected"] is False,
        )
        assert health.json()["status"] == "down"
        code, seconds = server.stop(signal.SIGTERM)
        measured(request, seconds)
        _, errors = server.output()
    assert code == 0, errors
    assert "Traceback" not in errors, errors
    assert_closed(port)


def test_serve_starts_the_gateway_once_redis_comes_up(
    private_redis: RedisServer, request: pytest.FixtureRequest
) -> None:
    with serve(authenticated(private_redis)) as server:
        port = server.wait_listening()
        server.err.wait_for(retry_warning(private_redis.port), WAIT)
        assert get(port, "/health").status == 503
        private_redis.start()
        server.out.wait_for("serving on", WAIT)
        health = server.poll(port, "/health", lambda answer: answer.status == 200)
        assert health.json()["status"] == "up"
        assert get(port, "/").status == 200
        code, seconds = server.stop(signal.SIGTERM)
        measured(request, seconds)
        output, errors = server.output()
    assert code == 0, errors
    assert "Traceback" not in errors, errors
    assert PASSWORD not in output + errors


JSON_TIME: Final = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def client_names(server: RedisServer) -> list[str]:
    """The names of the clients the private server lists."""
    with redis.Redis(port=server.port, password=PASSWORD, socket_timeout=WAIT) as client:
        return [str(entry["name"]) for entry in client.client_list()]


def test_without_redis_livez_stays_200_and_readyz_is_503_until_it_is_back(
    private_redis: RedisServer,
) -> None:
    """Liveness is the process and its supervision tree, readiness the Redis connection with
    its subscriptions restored; the connection keeps its --client-name across the restart, and
    --log-format json makes every line of stderr a JSON object."""
    private_redis.start()
    arguments = ("--log-format", "json", "--client-name", "edge-probe")
    with serve(authenticated(private_redis), arguments=arguments) as server:
        port = server.wait_listening()
        server.out.wait_for("serving on", STARTUP)
        ready = server.poll(port, "/readyz", lambda answer: answer.status == 200)
        assert ready.json() == {
            "status": "up",
            "checks": {
                "broker": {"status": "up", "detail": {"connected": True}},
                "gateway": {"status": "up", "detail": {}},
            },
        }
        assert get(port, "/livez").status == 200
        assert "edge-probe" in client_names(private_redis)
        private_redis.kill()
        unready = server.poll(port, "/readyz", lambda answer: answer.status == 503)
        assert unready.json()["checks"] == {
            "broker": {
                "status": "down",
                "detail": {
                    "connected": False,
                    "reason": "not connected, or restoring subscriptions",
                },
            },
            "gateway": {"status": "up", "detail": {}},
        }
        live = get(port, "/livez")
        assert (live.status, live.json()["status"]) == (200, "up")
        assert get(port, "/health").status == 503
        private_redis.restart()
        server.poll(port, "/readyz", lambda answer: answer.status == 200)
        assert get(port, "/livez").status == 200
        assert "edge-probe" in client_names(private_redis)
        code, _ = server.stop(signal.SIGTERM)
        _, errors = server.output()
    assert code == 0, errors
    records = [json.loads(line) for line in errors.splitlines()]
    for record in records:
        assert {"time", "level", "logger", "event"} <= set(record), record
        assert JSON_TIME.match(record["time"]), record
    lost = [record for record in records if record["event"].startswith("Redis connection to")]
    assert lost, errors
    assert lost[0]["level"] == "WARNING"
    restarts = [record for record in records if "restarting in" in record["event"]]
    assert restarts, errors
    assert re.match(r"^redis-connection \(actor#\d+\)$", restarts[0]["actor"]), restarts[0]
    assert PASSWORD not in errors


def test_a_client_name_redis_would_refuse_is_refused_before_anything_starts() -> None:
    with serve("redis://127.0.0.1:1", arguments=("--client-name", "two words")) as server:
        code = server.process.wait(STARTUP)
        _, errors = server.output()
    assert code == 2, errors
    assert "--client-name: Redis client names must be non-empty" in errors, errors
