"""Private ``redis-server`` processes for tests: plain TCP, unix socket, TLS and ACL variants.

Each server runs on a free port of 127.0.0.1 (never 6379, where a developer's own Redis listens),
without persistence, in its own directory, until it is stopped. The classes are synchronous so
that plain code can use them (``with RedisServer() as server: ...``); trio code calls the quick
methods (``kill()``, ``port``) directly and the ones that wait for a process (``restart``,
``start``, ``stop``) through their ``*_async`` twins, which run in a worker thread so that the trio
loop keeps running meanwhile.

Readiness is an event, never a sleep or a poll: each server is started with ``--supervised
systemd`` and says ``READY=1`` on a datagram socket of ours once it accepts connections; the
wait ends at that, at the process's exit (a pidfd), or at a deadline. This needs Linux.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Final, Self

import trio

from actors.testing._tls import OPENSSL

if TYPE_CHECKING:
    import ssl
    from collections.abc import Iterator, Sequence
    from types import TracebackType

    from actors.testing._tls import TlsFiles

__all__ = [
    "AclRedisServer",
    "RedisServer",
    "RedisServerError",
    "TlsRedisServer",
    "UnixRedisServer",
    "free_port",
    "missing_tooling",
]

REDIS_SERVER: Final = "redis-server"
REDIS_CLI: Final = "redis-cli"
HOST: Final = "127.0.0.1"
SHARED_PORT: Final = 6379
START_TIMEOUT: Final = 10.0  # seconds for a server to say it is ready
STOP_TIMEOUT: Final = 5.0  # seconds a graceful stop waits before SIGKILL
UNIX_PATH_MAX: Final = 100
"""Bytes in a unix socket's path: ``sun_path`` holds 108 on Linux, 104 on macOS."""


class RedisServerError(RuntimeError):
    """A private redis-server could not start, or died while starting; the message has its log.

    A failure of the test harness, not of the library: hence not an ``ActorsError``.
    """


# --- what this machine has ------------------------------------------------------------------


def _redis_server_path() -> str | None:
    """The path of the ``redis-server`` executable on ``PATH``, or None."""
    return shutil.which(REDIS_SERVER)


_tls_support: bool | None = None
_tls_support_lock = threading.Lock()


def _redis_server_supports_tls() -> bool:
    """Whether the installed redis-server was built with TLS (``--tls-port`` is a known option)."""
    global _tls_support
    with _tls_support_lock:
        if _tls_support is None:
            executable = _redis_server_path()
            if executable is None:
                _tls_support = False
            else:
                # The bogus log level stops the server right after parsing its arguments; when
                # --tls-port is unknown, parsing stops there first and the error names it.
                result = subprocess.run(
                    [executable, "--port", "0", "--tls-port", "0", "--loglevel", "bogus-level"],
                    capture_output=True,
                    text=True,
                    timeout=10,
                    check=False,
                )
                output = result.stdout + result.stderr
                _tls_support = "tls-port" not in output
        return _tls_support


def missing_tooling(*, tls: bool = False, cluster: bool = False) -> str | None:
    """Why a private server cannot run on this machine, or None when it can.

    Args:
        tls: Also require what a TLS server needs: ``openssl`` and a TLS-enabled build.
        cluster: Also require what a ``RedisCluster`` needs: ``redis-cli``, which joins the nodes.

    Returns:
        A sentence saying what is missing (and how to install it), or None.
    """
    if _redis_server_path() is None:
        return (
            f"{REDIS_SERVER} is not on PATH: the tests against a real Redis server need it "
            "(Debian: apt-get install redis-server)"
        )
    if cluster and shutil.which(REDIS_CLI) is None:
        return (
            f"{REDIS_CLI} is not on PATH: a Redis Cluster is joined with it "
            "(Debian: apt-get install redis-tools)"
        )
    if tls and shutil.which(OPENSSL) is None:
        return f"{OPENSSL} is not on PATH: the TLS tests generate their certificates with it"
    if tls and not _redis_server_supports_tls():
        return f"the installed {REDIS_SERVER} was built without TLS support"
    return None


_notify_numbers = itertools.count()


@contextlib.contextmanager
def _notify_socket() -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket in the abstract namespace, and its NOTIFY_SOCKET address."""
    name = f"actors-test-redis-{os.getpid()}-{next(_notify_numbers)}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind("\0" + name)
        yield notify, "@" + name


def free_port(host: str = HOST) -> int:
    """A TCP port of ``host`` that nothing listens on now (the kernel's choice, never 6379).

    Another process may take it before you bind it: ``RedisServer`` retries with another port.
    """
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port: int = sock.getsockname()[1]
        if port != SHARED_PORT:
            return port


def _short_directory() -> Path:
    return Path(tempfile.mkdtemp(prefix="actors-redis-"))


# --- servers ----------------------------------------------------------------------------------

_live_servers: weakref.WeakSet[RedisServer] = weakref.WeakSet()


@atexit.register
def _kill_leftovers() -> None:  # pragma: no cover - only when a test run is interrupted
    for server in list(_live_servers):
        server.kill()


class RedisServer:
    """A private ``redis-server`` on 127.0.0.1, without persistence, in its own directory.

    Nothing runs until ``start()`` (or ``with RedisServer() as server:``). ``kill()`` ends it as a
    crash would, ``restart()`` starts it again on the same port, and ``stop()`` ends it for good.

    Args:
        directory: Where the server works and logs; ``None`` makes a temporary directory that
            ``stop()`` removes.
        port: The port to listen on; ``None`` picks a free one (and another one if it is taken
            before the server binds it). Never 6379.
        extra_args: More ``redis-server`` command-line arguments, such as
            ``("--client-output-buffer-limit", "pubsub 1mb 512kb 0")``.
        start_timeout: Seconds a start may take before it fails with ``RedisServerError``.

    Raises:
        ValueError: ``port`` is 6379.
    """

    scheme: ClassVar[str] = "redis"
    """The URL scheme clients use for this kind of server."""
    protocol: ClassVar[int] = 3
    """The RESP version ``actors.redis`` settles on with this server."""

    def __init__(
        self,
        directory: Path | None = None,
        *,
        port: int | None = None,
        extra_args: Sequence[str] = (),
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        if port == SHARED_PORT:
            raise ValueError("port 6379 belongs to the shared Redis instance; use a private port")
        self._owns_directory = directory is None
        self.directory = _short_directory() if directory is None else directory
        """Where the server works and logs."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.log_path = self.directory / "redis.log"
        """The server's log file; ``log()`` reads it."""
        self._fixed_port = port is not None
        self._port = port if port is not None else free_port()
        self._extra_args = tuple(extra_args)
        self.start_timeout = start_timeout
        """Seconds a start may take."""
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.RLock()
        self.starts = 0
        """How many times a process was started (1 after ``start()``, +1 per ``restart()``)."""

    # -- what clients need

    @property
    def host(self) -> str:
        """The address the server listens on: always ``127.0.0.1``."""
        return HOST

    @property
    def port(self) -> int:
        """The TCP port, the same across restarts (0 for a unix-socket-only server)."""
        return self._port

    @property
    def url(self) -> str:
        """The URL to give ``actors.redis`` or ``open_redis_pubsub``."""
        return f"{self.scheme}://{HOST}:{self._port}"

    @property
    def extra_args(self) -> tuple[str, ...]:
        """The extra ``redis-server`` arguments this server runs with."""
        return self._extra_args

    @property
    def pid(self) -> int | None:
        """The process id while the process runs, else None."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    @property
    def running(self) -> bool:
        """Whether the process is alive (it may still be starting up)."""
        return self._process is not None and self._process.poll() is None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<{type(self).__name__} {self.url} {state} pid={self.pid}>"

    # -- the command line, per variant

    def _listen_args(self) -> list[str]:
        return ["--port", str(self._port), "--bind", HOST]

    def _variant_args(self) -> list[str]:
        return []

    def command_line(self, executable: str = REDIS_SERVER) -> list[str]:
        """The command that starts this server, ``executable`` first."""
        return [
            executable,
            *self._listen_args(),
            "--save", "",
            "--appendonly", "no",
            "--protected-mode", "no",
            "--daemonize", "no",
            # Readiness comes as a datagram on NOTIFY_SOCKET (the systemd protocol).
            "--supervised", "systemd",
            "--dir", str(self.directory),
            "--logfile", str(self.log_path),
            *self._variant_args(),
            *self._extra_args,
        ]  # fmt: skip

    # -- life cycle

    def start(self) -> Self:
        """Start the process and return once it is ready (it said ``READY=1``).

        Returns:
            The server itself.

        Raises:
            RedisServerError: ``redis-server`` is not installed, or did not get ready within
                ``start_timeout`` seconds, or exited while starting; the message has its log.
            RuntimeError: The server is running already.
        """
        with self._lock:
            if self.running:
                raise RuntimeError(f"{self!r} is already running")
            executable = _redis_server_path()
            if executable is None:
                raise RedisServerError(missing_tooling())
            deadline = time.monotonic() + self.start_timeout
            while True:
                log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
                with _notify_socket() as (notify, address):
                    self._spawn(executable, address)
                    failure = self._wait_ready(notify, deadline)
                if failure is None:
                    self.starts += 1
                    self._fixed_port = True  # from now on the server keeps its port
                    return self
                self.kill()
                log = self._log_since(log_offset)
                if "already in use" in log and time.monotonic() < deadline:
                    # Someone took the port before the first start: take another one. On a
                    # restart, old connections may still hold it (TIME_WAIT): try it again
                    # (each attempt waits for the failed process to exit, which paces them).
                    if not self._fixed_port:
                        self._pick_new_ports()
                    continue
                raise RedisServerError(f"{self!r} did not start: {failure}\n--- log ---\n{log}")

    def _spawn(self, executable: str, notify_address: str) -> None:
        self._process = subprocess.Popen(
            self.command_line(executable),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.directory,
            start_new_session=True,
            env={**os.environ, "NOTIFY_SOCKET": notify_address},
        )
        _live_servers.add(self)

    def _pick_new_ports(self) -> None:
        """Move to other free ports after a port was taken before the first start."""
        self._port = free_port()

    def _wait_ready(self, notify: socket.socket, deadline: float) -> str | None:
        """Wait for the server's ``READY=1``, or for it to exit; the reason it failed, or None."""
        process = self._process
        assert process is not None
        exited = os.pidfd_open(process.pid)
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return f"not ready after {self.start_timeout} s"
                readable, _, _ = select.select([notify.fileno(), exited], [], [], remaining)
                if notify.fileno() in readable and b"READY=1" in notify.recv(4096):
                    return None
                if exited in readable:
                    process.wait()
                    return f"exited with code {process.returncode}"
        finally:
            os.close(exited)

    def _log_since(self, offset: int) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                return log.read().decode(errors="replace")
        except FileNotFoundError:
            return "(no log)"

    def log(self) -> str:
        """Everything the server logged so far, for assertion messages."""
        return self._log_since(0)

    def kill(self) -> None:
        """SIGKILL the process and reap it: clients see EOF or a reset, as after a crash.

        Nothing happens when it is not running. ``restart()`` brings it back on the same port.
        """
        with self._lock:
            process = self._process
            if process is not None and process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGKILL)
                process.wait()
            _live_servers.discard(self)

    def restart(self) -> Self:
        """Start the server again on the same port (after ``kill()``, or after SIGTERM if running).

        The new process starts empty: no keys and no subscriptions survive. Binding is retried
        until the start deadline while the port is still held (TIME_WAIT).

        Returns:
            The server itself.

        Raises:
            RedisServerError: As ``start()``.
        """
        with self._lock:
            if self.running:
                self._terminate()
            return self.start()

    def _terminate(self) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        _live_servers.discard(self)

    def stop(self, *, graceful: bool = False) -> None:
        """Stop the process and remove a temporary directory.

        Without persistence there is nothing to save, so the default is SIGKILL (immediate);
        ``graceful=True`` sends SIGTERM, which Redis handles within 100 ms, SIGKILL after 5 s.
        """
        with self._lock:
            if graceful:
                self._terminate()
            else:
                self.kill()
            if self._owns_directory:
                shutil.rmtree(self.directory, ignore_errors=True)

    async def start_async(self) -> Self:
        """``start()`` in a worker thread, so that the trio loop keeps running meanwhile."""
        return await trio.to_thread.run_sync(self.start)

    async def restart_async(self) -> Self:
        """``restart()`` in a worker thread, so that the trio loop keeps running meanwhile."""
        return await trio.to_thread.run_sync(self.restart)

    async def stop_async(self, *, graceful: bool = False) -> None:
        """``stop()`` in a worker thread, so that the trio loop keeps running meanwhile."""
        await trio.to_thread.run_sync(lambda: self.stop(graceful=graceful))

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class UnixRedisServer(RedisServer):
    """A server listening only on a unix socket (``unix://PATH``); ``port`` is 0.

    The socket is ``directory/redis.sock``, or sits in a short temporary directory when that path
    is too long for a unix socket. The arguments are ``RedisServer``'s.
    """

    scheme: ClassVar[str] = "unix"

    def __init__(
        self,
        directory: Path | None = None,
        *,
        extra_args: Sequence[str] = (),
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        super().__init__(directory, extra_args=extra_args, start_timeout=start_timeout)
        self._port = 0
        self._fixed_port = True
        socket_path = self.directory / "redis.sock"
        self._socket_directory: Path | None = None
        if len(os.fsencode(socket_path)) > UNIX_PATH_MAX:
            self._socket_directory = _short_directory()
            socket_path = self._socket_directory / "redis.sock"
        self.socket_path = socket_path
        """The path of the server's socket."""

    @property
    def url(self) -> str:
        """``unix://`` and the socket's path."""
        return f"unix://{self.socket_path}"

    def _listen_args(self) -> list[str]:
        return ["--port", "0", "--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]

    def stop(self, *, graceful: bool = False) -> None:
        """Stop the process as ``RedisServer.stop`` does, and remove a short socket directory."""
        super().stop(graceful=graceful)
        if self._socket_directory is not None:
            shutil.rmtree(self._socket_directory, ignore_errors=True)


class TlsRedisServer(RedisServer):
    """A server speaking only TLS (``rediss://``) with certificates from ``generate_tls_files``.

    Args:
        tls: The CA and the server's certificate (``generate_tls_files``).
        require_client_cert: ``False`` runs ``--tls-auth-clients optional`` (a client certificate
            is checked when presented); ``True`` runs ``--tls-auth-clients yes``.

    The other arguments are ``RedisServer``'s.
    """

    scheme: ClassVar[str] = "rediss"

    def __init__(
        self,
        tls: TlsFiles,
        directory: Path | None = None,
        *,
        port: int | None = None,
        require_client_cert: bool = False,
        extra_args: Sequence[str] = (),
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        super().__init__(directory, port=port, extra_args=extra_args, start_timeout=start_timeout)
        self.tls = tls
        """The certificates the server and its clients use."""
        self.require_client_cert = require_client_cert
        """Whether clients must present a certificate signed by the CA."""

    @property
    def ca_cert(self) -> Path:
        """The CA certificate a client must trust."""
        return self.tls.ca_cert

    @property
    def client_cert(self) -> Path:
        """A client certificate the server accepts."""
        return self.tls.client_cert

    @property
    def client_key(self) -> Path:
        """The key of ``client_cert``."""
        return self.tls.client_key

    def client_context(self, *, with_client_cert: bool = True) -> ssl.SSLContext:
        """A client context trusting only the CA (see ``TlsFiles.client_context``)."""
        return self.tls.client_context(with_client_cert=with_client_cert)

    def _listen_args(self) -> list[str]:
        return ["--port", "0", "--tls-port", str(self._port), "--bind", HOST]

    def _variant_args(self) -> list[str]:
        return [
            "--tls-cert-file", str(self.tls.server_cert),
            "--tls-key-file", str(self.tls.server_key),
            "--tls-ca-cert-file", str(self.tls.ca_cert),
            "--tls-auth-clients", "yes" if self.require_client_cert else "optional",
        ]  # fmt: skip


class AclRedisServer(RedisServer):
    """A server with a password on ``default`` and a ``limited`` user confined to ``allowed:*``.

    ``limited`` (password ``secret``) may use every key and every command outside ``@dangerous``,
    but only channels matching ``allowed:*``: ``PUBLISH notallowed x`` answers ``-NOPERM``.
    Unauthenticated commands answer ``-NOAUTH``; a wrong password answers ``-WRONGPASS``.
    A subclass may change the class attributes. The arguments are ``RedisServer``'s.
    """

    default_password: ClassVar[str] = "default-secret"
    """The password of the ``default`` user, which may do everything."""
    username: ClassVar[str] = "limited"
    """The confined user."""
    password: ClassVar[str] = "secret"
    """The confined user's password."""
    allowed_channels: ClassVar[str] = "allowed:*"
    """The channel pattern the confined user may publish and subscribe to."""

    def _variant_args(self) -> list[str]:
        # redis-server joins the words after one --option into one config line; a user rule
        # must be separate words (a single quoted argument would be read as the user name).
        return [
            "--user", "default", "on", f">{self.default_password}", "~*", "&*", "+@all",
            "--user", self.username, "on", f">{self.password}", "~*",
            f"&{self.allowed_channels}", "+@all", "-@dangerous",
        ]  # fmt: skip

    @property
    def limited_url(self) -> str:
        """A URL with the confined user's credentials."""
        return f"redis://{self.username}:{self.password}@{HOST}:{self._port}"

    @property
    def default_url(self) -> str:
        """A URL with the ``default`` user's password."""
        return f"redis://:{self.default_password}@{HOST}:{self._port}"
