"""The command line, run the way users run it: ``python -m actors ...`` and
``python3 scripts/dev.py demo`` in a subprocess.

Subprocess output is a pipe, not a terminal, so the demo prints one line per event; that is what
these tests read. Every wait has a deadline, so a hung demo fails the test instead of the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import dev
import pytest
from line_reader import LineReader

from actors.observability import LOG_FORMATS
from actors.server.cli import LOG_FORMATS as CLI_LOG_FORMATS
from actors.server.cli import build_parser, main
from actors.testing import RedisServer, free_port
from actors.testing.pytest_plugin import require_redis_server

ROOT: Final = Path(__file__).resolve().parents[2]
DEMO: Final = [sys.executable, "-m", "actors", "demo"]
DEV_DEMO: Final = [sys.executable, str(ROOT / "scripts" / "dev.py"), "demo"]
TIMEOUT: Final = 30.0  # seconds; far above what any of these runs needs
SHUTDOWN_TIMEOUT: Final = 5.0  # seconds from SIGINT to exit

SUMMARY: Final = re.compile(
    r"demo finished after \d+\.\d s: \d+ crash(es)?, \d+ restarts?, \d+ escalations?, "
    r"stopped cleanly"
)
# After the demo's time is up, the tree stops in reverse start order.
SHUTDOWN_ORDER: Final = ["sampler", "uplink", "pipeline", "flaky", "ticker", "root"]


def stopped_at_the_end(output: str) -> list[str]:
    """The actors that stopped once the demo began to shut down, in the order they stopped."""
    _, found, shutdown = output.partition("stopping everything in reverse start order")
    assert found, output
    return re.findall(r"^ *\d+\.\d+s  (\w+) stopped \(shutdown", shutdown, flags=re.MULTILINE)


def test_help_lists_the_demo_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "actors", "--help"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: actors")
    assert "demo" in result.stdout


def test_demo_shows_crash_backoff_escalation_and_orderly_shutdown() -> None:
    result = subprocess.run(
        [*DEMO, "--duration", "3", "--seed", "1"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=ROOT,
        check=False,
    )
    output = result.stdout
    assert result.returncode == 0, result.stderr + output
    assert result.stderr == ""
    assert "\x1b" not in output, "no escape codes when stdout is not a terminal"
    crash = re.search(r"flaky crashed: RuntimeError\('.+'\); restarting in (\d+\.\d{3}) s", output)
    assert crash is not None, output
    # 100 ms for the first restart, doubling after that, with at most 25 % jitter either way.
    assert 0.075 <= float(crash.group(1)) <= 2.0
    assert "flaky restarted (restart 1)" in output
    escalation = output.index(
        "pipeline: restart intensity reached (more than 3 restarts within 2 s), escalating to root"
    )
    restart = re.compile(r"root: restarting pipeline in \d+\.\d{3} s").search(output, escalation)
    assert restart is not None, output
    assert "pipeline restarted (restart 1)" in output[restart.end() :]
    assert stopped_at_the_end(output) == SHUTDOWN_ORDER
    assert SUMMARY.fullmatch(output.splitlines()[-1]), output


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT cannot be sent to a child on Windows")
def test_demo_stops_in_order_on_sigint() -> None:
    process = subprocess.Popen(
        [*DEMO, "--duration", "600", "--seed", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        assert process.stderr is not None
        reader = LineReader(process.stdout)
        reader.wait_for("root started", TIMEOUT)
        process.send_signal(signal.SIGINT)
        code = process.wait(SHUTDOWN_TIMEOUT)
        output = reader.rest(SHUTDOWN_TIMEOUT)
        errors = process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
    assert code == 0, errors + output
    assert errors == ""
    assert "interrupted: stopping everything in reverse start order" in output
    assert stopped_at_the_end(output) == SHUTDOWN_ORDER
    assert SUMMARY.fullmatch(output.splitlines()[-1]), output


def test_main_runs_the_demo_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["demo", "--duration", "0.5", "--seed", "1", "--view", "plain"])
    output = capsys.readouterr().out
    assert code == 0, output
    assert "flaky crashed" in output
    assert SUMMARY.fullmatch(output.splitlines()[-1]), output


@pytest.mark.parametrize("duration", ["0", "-1", "soon", "inf"])
def test_demo_refuses_a_bad_duration(duration: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--duration", duration])
    assert exit_info.value.code == 2
    assert "--duration" in capsys.readouterr().err


def test_main_needs_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


def test_serve_refuses_inconsistent_presence_timings(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["serve", "--port", "0", "--presence-ttl", "5", "--presence-heartbeat", "10"])
    assert code == 2
    assert "heartbeat must be positive and below ttl" in capsys.readouterr().err


@pytest.mark.parametrize("port", ["-1", "65536", "99999999999", "80.5", "http", ""])
def test_serve_refuses_a_port_outside_0_to_65535(
    port: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--port", port])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err.splitlines()[-1]
    assert message == (
        f"actors serve: error: argument --port: must be a port number from 0 to 65535: {port!r}"
    )


@pytest.mark.parametrize("port", [0, 65535])
def test_serve_takes_both_ends_of_the_port_range(port: int) -> None:
    assert build_parser().parse_args(["serve", "--port", str(port)]).port == port


@pytest.mark.parametrize(
    ("option", "value"),
    [
        *[
            (option, value)
            for option in ("--presence-ttl", "--presence-heartbeat", "--presence-sweep")
            for value in ("0", "-1", "nan", "inf", "soon")
        ],
        *[("--presence-grace", value) for value in ("-1", "-0.5", "nan", "inf", "-inf", "soon")],
        *[("--gc-threshold", value) for value in ("-1", "1.5", "many")],
    ],
)
def test_serve_refuses_nonsense_timings_and_thresholds(
    option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", f"{option}={value}"])
    assert exit_info.value.code == 2
    assert f"argument {option}: " in capsys.readouterr().err


@pytest.mark.parametrize("name", ["two words", "tab\there", "naïve", ""])
def test_serve_refuses_a_client_name_redis_would_refuse(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--client-name", name])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err.splitlines()[-1]
    assert message == (
        "actors serve: error: argument --client-name: Redis client names must be non-empty and "
        f"made of the printable ASCII characters from '!' to '~', without spaces: {name!r}"
    )


def test_serve_logs_as_text_unless_told_json() -> None:
    assert build_parser().parse_args(["serve"]).log_format == "text"
    assert build_parser().parse_args(["serve", "--log-format", "json"]).log_format == "json"
    assert LOG_FORMATS == CLI_LOG_FORMATS
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--log-format", "xml"])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            [],
            "no token key: give --secret (or $ACTORS_GATEWAY_SECRET), --token-public-key or "
            "--token-jwks; --demo-login lets anybody sign in, to try the server",
        ),
        (["--secret", "too short"], "the token secret has 9 bytes; HS256 needs 32 or more"),
        (
            ["--token-public-key", "/nonexistent/idp.pem"],
            "the public key file /nonexistent/idp.pem cannot be read: No such file or directory",
        ),
        (
            ["--token-jwks", "/nonexistent/jwks.json", "--token-algorithm", "ES256"],
            "the JWKS file /nonexistent/jwks.json cannot be read: No such file or directory",
        ),
        (
            ["--token-public-key", "idp.pem", "--demo-login"],
            "--demo-login signs HS256 tokens: it needs --secret, not a key file",
        ),
        (
            ["--token-public-key", "idp.pem", "--token-algorithm", "HS256"],
            "a key file is for RS256 or ES256 tokens: HS256 takes --secret",
        ),
        (["--token-algorithm", "ES256"], "ES256 needs --token-public-key or --token-jwks"),
        (["--token-algorithm", "none"], "--token-algorithm must be one of HS256, RS256, ES256"),
        (
            ["--demo-login", "--token-leeway", "600"],
            "the token leeway must be from 0 to 300 seconds: 600.0",
        ),
    ],
)
def test_serve_fails_at_once_on_token_settings_that_cannot_work(
    arguments: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nothing is served: the error names what is wrong, before any port is bound."""
    monkeypatch.delenv("ACTORS_GATEWAY_SECRET", raising=False)
    assert main(["serve", "--port", "0", *arguments]) == 2
    output = capsys.readouterr()
    assert output.err.splitlines() == [f"error: {message}"]
    assert "listening" not in output.out


def test_serve_takes_no_presence_grace_and_no_collector_setting() -> None:
    """0 is meaningful for both: leave at once, and leave Python's collector alone."""
    arguments = build_parser().parse_args(["serve", "--presence-grace", "0", "--gc-threshold", "0"])
    assert arguments.presence_grace == 0.0
    assert arguments.gc_threshold == 0


def test_serve_reports_a_port_in_use_in_one_line() -> None:
    """A real socket holds the port; the server says so in one line, without a traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "actors", "serve", "--demo-login", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            cwd=ROOT,
            check=False,
        )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"error: cannot listen on 127.0.0.1:{port}: address already in use; "
        "pick another port with --port"
    )
    assert "serving on" not in result.stdout


HEALTH_PASSWORD: Final = "health-check-secret-7b3a"


def run_health(url: str) -> tuple[int, dict[str, object], str]:
    """``actors health URL``: its exit code, its JSON report, and everything it printed."""
    result = subprocess.run(
        [sys.executable, "-m", "actors", "health", url],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=ROOT,
        check=False,
    )
    report = json.loads(result.stdout)
    assert isinstance(report, dict), result.stdout
    return result.returncode, report, result.stdout + result.stderr


def test_health_names_connection_refused_for_a_closed_port() -> None:
    port = free_port()  # nobody listens there
    code, report, output = run_health(f"redis://:{HEALTH_PASSWORD}@127.0.0.1:{port}")
    assert code == 1, output
    assert report["status"] == "down"
    assert report["cause"] == "connection refused"
    assert report["url"] == f"redis://:***@127.0.0.1:{port}"
    assert HEALTH_PASSWORD not in output


def test_health_names_a_refused_password(tmp_path: Path) -> None:
    require_redis_server()
    with RedisServer(tmp_path / "redis", extra_args=("--requirepass", "the-right-one")) as server:
        code, report, output = run_health(f"redis://:{HEALTH_PASSWORD}@127.0.0.1:{server.port}")
    assert code == 1, output
    assert report["status"] == "down"
    assert report["cause"] == "authentication failed"
    assert "WRONGPASS" in str(report["error"])
    assert HEALTH_PASSWORD not in output


def test_health_gives_up_on_a_server_that_never_answers() -> None:
    """The socket accepts connections (the kernel completes them) but never reads or writes."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        code, report, output = run_health(f"redis://:{HEALTH_PASSWORD}@127.0.0.1:{port}")
    assert code == 1, output
    assert report["status"] == "down"
    assert report["cause"] == "timed out after 5 s"
    assert HEALTH_PASSWORD not in output


def child_of(pid: int) -> int:
    """The one child process of ``pid`` (Linux's /proc)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def is_gone(pid: int) -> bool:
    """Whether the process has ended and been reaped (a zombie still has its /proc entry)."""
    return not Path(f"/proc/{pid}").exists()


@contextlib.contextmanager
def killed_at_the_end(process: subprocess.Popen[str]) -> Iterator[list[int]]:
    """Kill ``process`` at the end if it still runs, and the pids added to the list; close pipes.

    ``process`` must have been started with ``start_new_session``: its whole group is killed.
    """
    others: list[int] = []
    try:
        yield others
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        for pid in others:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()


on_linux = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="finds the child process in /proc"
)


@on_linux
@pytest.mark.parametrize(
    ("signal_number", "to_group", "expected"),
    [
        (signal.SIGTERM, False, 0),
        (signal.SIGINT, False, 0),
        (signal.SIGINT, True, 0),
        (signal.SIGHUP, True, 128 + signal.SIGHUP),
    ],
    ids=["sigterm", "sigint", "ctrl-c", "terminal-closed"],
)
def test_dev_demo_stops_its_server_on_a_signal(
    signal_number: signal.Signals, to_group: bool, expected: int
) -> None:
    """The signal reaches the server once; nothing is left running and nothing raises.

    A terminal signals its foreground process group (Ctrl-C, or SIGHUP when it closes): that is
    dev.py's, while the server has one of its own and hears the signal from dev.py alone. A
    second SIGINT would make the server give up its orderly stop and exit with 130. The server
    stops in order on SIGINT and SIGTERM; SIGHUP ends it as its default action does.
    """
    if not dev.environment_is_ready():
        pytest.skip(".venv is not installed from this pyproject.toml: dev.py would install it")
    process = subprocess.Popen(
        [*DEV_DEMO, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        start_new_session=True,
    )
    with killed_at_the_end(process) as also_killed:
        assert process.stdout is not None
        assert process.stderr is not None
        output = LineReader(process.stdout)
        errors = LineReader(process.stderr)
        serving = output.wait_for("serving on http://127.0.0.1:", TIMEOUT)
        port = int(serving.split("http://127.0.0.1:", 1)[1].split()[0])
        server = child_of(process.pid)
        also_killed.append(server)
        if to_group:
            os.killpg(process.pid, signal_number)
        else:
            process.send_signal(signal_number)
        code = process.wait(SHUTDOWN_TIMEOUT)
        logged = errors.rest(SHUTDOWN_TIMEOUT)
    assert code == expected, logged
    assert "Traceback" not in logged
    stopping = f"signal {signal_number.value}: stopping"
    assert logged.count(stopping) == (1 if expected == 0 else 0), logged
    assert is_gone(server)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=SHUTDOWN_TIMEOUT).close()


def run_forwarding_signals_command(child_source: str, grace: float) -> list[str]:
    """A process that runs ``python -c child_source`` under ``dev.run_forwarding_signals``."""
    child = [sys.executable, "-c", child_source]
    runner = (
        f"import sys; sys.path.insert(0, {str(ROOT / 'scripts')!r}); import dev; "
        f"sys.exit(dev.run_forwarding_signals({child!r}, grace={grace!r}))"
    )
    return [sys.executable, "-c", runner]


STUBBORN: Final = (
    "import signal, threading\n"
    "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "threading.Event().wait()\n"
)


@on_linux
@pytest.mark.parametrize(
    "signal_number", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"]
)
def test_dev_demo_kills_a_server_that_outlives_the_grace(signal_number: signal.Signals) -> None:
    grace = 0.5
    process = subprocess.Popen(
        run_forwarding_signals_command(STUBBORN, grace),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        start_new_session=True,
    )
    with killed_at_the_end(process) as also_killed:
        assert process.stdout is not None
        assert process.stderr is not None
        errors = LineReader(process.stderr)
        LineReader(process.stdout).wait_for("ready", TIMEOUT)
        stubborn = child_of(process.pid)
        also_killed.append(stubborn)
        signalled = time.monotonic()
        process.send_signal(signal_number)
        code = process.wait(grace + SHUTDOWN_TIMEOUT)
        waited = time.monotonic() - signalled
        logged = errors.rest(SHUTDOWN_TIMEOUT)
    assert code == 128 + signal.SIGKILL, logged
    assert waited >= grace
    assert "Traceback" not in logged
    assert is_gone(stubborn)


@on_linux
@pytest.mark.parametrize(
    ("child_source", "expected"),
    [
        ("pass", 0),
        ("raise SystemExit(3)", 3),
        ("import os, signal; os.kill(os.getpid(), signal.SIGTERM)", 128 + signal.SIGTERM),
    ],
    ids=["success", "failure", "ended-by-a-signal"],
)
def test_dev_demo_exits_with_the_code_of_its_server(child_source: str, expected: int) -> None:
    result = subprocess.run(
        run_forwarding_signals_command(child_source, grace=1.0),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == expected, result.stderr
    assert result.stderr == ""


def test_serve_builds_its_verifier_from_the_token_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A JWKS file, an audience, an issuer, a leeway and no rooms claim, as given; the help
    states the verifier's own defaults."""
    import json

    from token_keys import ec_pair

    from actors.server import cli
    from actors.server.gateway import DEFAULT_LEEWAY, DEFAULT_ROOMS_CLAIM, TokenRules

    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [ec_pair().jwk("ES256", "k1")]}))
    options = [
        *("--token-jwks", str(jwks), "--token-algorithm", "ES256"),
        *("--token-audience", "chat", "--token-issuer", "https://login.example.com"),
        *("--token-leeway", "0", "--token-rooms-claim", ""),
    ]
    tokens, demo_login = cli._token_setup(build_parser().parse_args(["serve", *options]))
    assert (tokens.algorithm, demo_login) == ("ES256", None)
    assert tokens.rules == TokenRules(
        audience="chat", issuer="https://login.example.com", leeway=0, rooms_claim=None
    )
    arguments = build_parser().parse_args(["serve", "--demo-login", "--secret", "s" * 32])
    tokens, demo_login = cli._token_setup(arguments)
    assert tokens.rules == TokenRules()
    assert demo_login is not None
    assert tokens.verify(demo_login.issue("ada")[0]).user_id == "ada"
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    usage = " ".join(capsys.readouterr().out.split())
    assert f"at most 300 (default: {DEFAULT_LEEWAY:g})" in usage
    assert f"(default: {DEFAULT_ROOMS_CLAIM})" in usage
