"""Private ``redis-server`` processes for tests: plain TCP, unix socket, TLS and ACL variants.

Every server here is started by the test that needs it, on a free port of 127.0.0.1 (never the
shared instance on 6379), without persistence, in its own directory, and is stopped by the fixture
that started it. The classes are synchronous so that plain code can use them (``with
RedisServer(path) as server: ...``); trio tests call the quick methods (``kill()``, ``port``)
directly and the ones that wait for a process (``restart``, ``start``, ``stop``) through their
``*_async`` twins, which run in a worker thread so that the trio loop keeps running meanwhile.

Readiness is an event, never a sleep or a poll: each server is started with ``--supervised
systemd`` and says ``READY=1`` on a datagram socket of ours once it accepts connections; the
wait ends at that, at the process's exit (a pidfd), or at a deadline.
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
import ssl
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import ClassVar, NoReturn, Self, TypeVar

import attrs
import fakeredis
import pytest
import trio

REDIS_SERVER = "redis-server"
OPENSSL = "openssl"
REQUIRE_ENV = "ACTORS_REQUIRE_REDIS"
HOST = "127.0.0.1"
SHARED_PORT = 6379
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
UNIX_PATH_MAX = 100
"""``sun_path`` holds 108 bytes on Linux and 104 on macOS; keep well below both."""


class RedisServerError(RuntimeError):
    """A private redis-server did not start, or died while starting; the message has its log."""


# --- availability and the skip policy -------------------------------------------------------


def redis_required() -> bool:
    """True when ``ACTORS_REQUIRE_REDIS=1``: missing server tooling is a failure, not a skip."""
    return os.environ.get(REQUIRE_ENV, "") == "1"


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the current test with ``reason``, or fail it when ``ACTORS_REQUIRE_REDIS=1``."""
    if redis_required():
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1 turns this skip into a failure)", pytrace=False)
    pytest.skip(f"{reason} (set {REQUIRE_ENV}=1 to make this a failure)")


def redis_server_path() -> str | None:
    return shutil.which(REDIS_SERVER)


_tls_support: bool | None = None
_tls_support_lock = threading.Lock()


def redis_server_supports_tls() -> bool:
    """Whether the installed redis-server was built with TLS (``--tls-port`` is a known option)."""
    global _tls_support
    with _tls_support_lock:
        if _tls_support is None:
            executable = redis_server_path()
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


def require_redis_server() -> str:
    """The path of ``redis-server``, or skip (fail under ``ACTORS_REQUIRE_REDIS=1``)."""
    executable = redis_server_path()
    if executable is None:
        skip_or_fail(
            f"{REDIS_SERVER} is not on PATH: the tests against a real Redis server need it "
            "(Debian: apt-get install redis-server)"
        )
    return executable


def require_tls_tooling() -> None:
    """Skip (or fail) unless both ``openssl`` and a TLS-enabled ``redis-server`` are installed."""
    require_redis_server()
    if shutil.which(OPENSSL) is None:
        skip_or_fail(f"{OPENSSL} is not on PATH: the TLS tests generate their certificates with it")
    if not redis_server_supports_tls():
        skip_or_fail(f"the installed {REDIS_SERVER} was built without TLS support")


# --- small helpers ----------------------------------------------------------------------------


_notify_numbers = itertools.count()


@contextlib.contextmanager
def _notify_socket() -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket in the abstract namespace, and its NOTIFY_SOCKET address."""
    name = f"actors-test-redis-{os.getpid()}-{next(_notify_numbers)}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind("\0" + name)
        yield notify, "@" + name


def free_port(host: str = HOST) -> int:
    """A TCP port of ``host`` that nothing listens on now (the kernel's choice, never 6379)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port: int = sock.getsockname()[1]
        if port != SHARED_PORT:
            return port


def encode_command(*args: str | bytes | int) -> bytes:
    """One command as a RESP array of bulk strings, as every client sends it."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _short_directory() -> Path:
    return Path(tempfile.mkdtemp(prefix="actors-redis-"))


# --- TLS material -----------------------------------------------------------------------------

_OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
"""

_SERVER_EXTENSIONS = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""

_CLIENT_EXTENSIONS = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


@attrs.frozen
class TlsFiles:
    """A throw-away CA, a server certificate for 127.0.0.1/localhost, and a client certificate."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    def client_context(self, *, with_client_cert: bool = True) -> ssl.SSLContext:
        """A client context trusting only the test CA; by default it presents the client cert."""
        context = ssl.create_default_context(cafile=str(self.ca_cert))
        context.verify_flags |= ssl.VERIFY_X509_STRICT  # as Python 3.13+ does by default
        if with_client_cert:
            context.load_cert_chain(str(self.client_cert), str(self.client_key))
        return context


def _openssl(*args: str | Path, cwd: Path) -> None:
    result = subprocess.run(
        [OPENSSL, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, "OPENSSL_CONF": str(cwd / "openssl.cnf")},
    )
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(map(str, args))} failed:\n{result.stderr}")


def generate_tls_files(directory: Path) -> TlsFiles:
    """Create a CA, a server and a client certificate (P-256 keys, valid 2 days) in ``directory``.

    Only the ``openssl`` command line is used, offline; the certificates pass Python's strict X.509
    checks (key usage, SAN, key identifiers).
    """
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "openssl.cnf"
    config.write_text(_OPENSSL_CONFIG)
    for name, text in [
        ("server.ext", _SERVER_EXTENSIONS),
        ("client.ext", _CLIENT_EXTENSIONS),
    ]:
        (directory / name).write_text(text)
    key_options = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        "req", "-x509", *key_options, "-config", config,
        "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=actors test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-addext", "subjectKeyIdentifier=hash",
        cwd=directory,
    )  # fmt: skip
    for name, subject, serial in [
        ("server", "/CN=localhost", "2"),
        ("client", "/CN=actors test client", "3"),
    ]:
        _openssl(
            "req", "-new", *key_options, "-config", config, "-subj", subject,
            "-keyout", f"{name}.key", "-out", f"{name}.csr",
            cwd=directory,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-set_serial", serial, "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.crt",
            cwd=directory,
        )  # fmt: skip
    return TlsFiles(
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        client_cert=directory / "client.crt",
        client_key=directory / "client.key",
    )


# --- servers ----------------------------------------------------------------------------------

_live_servers: weakref.WeakSet[RedisServer] = weakref.WeakSet()


@atexit.register
def _kill_leftovers() -> None:  # pragma: no cover - only when a test run is interrupted
    for server in list(_live_servers):
        server.kill()


class RedisServer:
    """A private ``redis-server`` on 127.0.0.1, without persistence, in its own directory.

    ``port=None`` picks a free port (and another one if it is taken before the server binds it);
    ``restart()`` always reuses the same port. ``extra_args`` are redis-server command-line
    arguments, e.g. ``("--client-output-buffer-limit", "pubsub 1mb 512kb 0")``. ``directory=None``
    makes a temporary directory that ``stop()`` removes. Nothing runs until ``start()``.
    """

    scheme: ClassVar[str] = "redis"
    protocol: ClassVar[int] = 3  # the RESP version our client settles on with it

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
        self.directory.mkdir(parents=True, exist_ok=True)
        self.log_path = self.directory / "redis.log"
        self._fixed_port = port is not None
        self._port = port if port is not None else free_port()
        self._extra_args = tuple(extra_args)
        self.start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.RLock()
        self.starts = 0
        """How many times a process was started (1 after ``start()``, +1 per ``restart()``)."""

    # -- what clients need

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"{self.scheme}://{HOST}:{self._port}"

    @property
    def extra_args(self) -> tuple[str, ...]:
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
        """Start the process and return once it is ready; raises ``RedisServerError``."""
        with self._lock:
            if self.running:
                raise RuntimeError(f"{self!r} is already running")
            executable = require_redis_server()
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
                        self._port = free_port()
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
        """SIGKILL the process and reap it: clients see EOF or a reset, as after a crash."""
        with self._lock:
            process = self._process
            if process is not None and process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGKILL)
                process.wait()
            _live_servers.discard(self)

    def restart(self) -> Self:
        """Start the server again on the same port (after ``kill()``, or after SIGTERM if running).

        Binding is retried until the start deadline while the port is still held (TIME_WAIT).
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
        return await trio.to_thread.run_sync(self.start)

    async def restart_async(self) -> Self:
        """``restart()`` in a worker thread, so that the trio loop keeps running meanwhile."""
        return await trio.to_thread.run_sync(self.restart)

    async def stop_async(self, *, graceful: bool = False) -> None:
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
    """A server listening only on a unix socket (``unix://PATH``); ``port`` is 0."""

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

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def _listen_args(self) -> list[str]:
        return ["--port", "0", "--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]

    def stop(self, *, graceful: bool = False) -> None:
        super().stop(graceful=graceful)
        if self._socket_directory is not None:
            shutil.rmtree(self._socket_directory, ignore_errors=True)


class TlsRedisServer(RedisServer):
    """A server speaking only TLS (``rediss://``) with certificates from ``generate_tls_files``.

    ``require_client_cert=False`` runs ``--tls-auth-clients optional`` (a client certificate is
    checked when presented); ``True`` runs ``--tls-auth-clients yes``.
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
        self.require_client_cert = require_client_cert

    @property
    def ca_cert(self) -> Path:
        return self.tls.ca_cert

    @property
    def client_cert(self) -> Path:
        return self.tls.client_cert

    @property
    def client_key(self) -> Path:
        return self.tls.client_key

    def client_context(self, *, with_client_cert: bool = True) -> ssl.SSLContext:
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
    """

    default_password: ClassVar[str] = "default-secret"
    username: ClassVar[str] = "limited"
    password: ClassVar[str] = "secret"
    allowed_channels: ClassVar[str] = "allowed:*"

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
        return f"redis://{self.username}:{self.password}@{HOST}:{self._port}"

    @property
    def default_url(self) -> str:
        return f"redis://:{self.default_password}@{HOST}:{self._port}"


# --- fakeredis over TCP -----------------------------------------------------------------------


class FakeRedisTcpServer:
    """fakeredis's ``TcpFakeServer`` in a thread on a free port: the zero-install server.

    It answers ``HELLO 3`` but sends pub/sub pushes as plain arrays, so clients must use their
    RESP2 mode with it (``protocol`` says 2).
    """

    scheme: ClassVar[str] = "redis"
    protocol: ClassVar[int] = 2

    def __init__(self) -> None:
        self._server = fakeredis.TcpFakeServer((HOST, 0))
        self._port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fakeredis-tcp-{self._port}",
            daemon=True,
        )

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self._port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, end every client thread and close the listening socket."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


_S = TypeVar("_S", bound=RedisServer)


class RedisServerFactory:
    """Starts any number of private servers for one test and stops them all at teardown.

    ``factory(extra_args=(...), port=None)`` returns a started ``RedisServer`` (``start=False``:
    not started yet); ``unix()``, ``tls()`` and ``acl()`` return the other variants. Each server
    gets its own directory under ``base``; the TLS servers share one set of certificates.
    """

    def __init__(self, base: Path) -> None:
        self.base = base
        self.servers: list[RedisServer] = []
        self._tls: TlsFiles | None = None

    def _directory(self, kind: str) -> Path:
        return self.base / f"{kind}-{len(self.servers)}"

    def _add(self, server: _S, start: bool) -> _S:
        self.servers.append(server)
        if start:
            server.start()
        return server

    def __call__(
        self, extra_args: Sequence[str] = (), *, port: int | None = None, start: bool = True
    ) -> RedisServer:
        server = RedisServer(self._directory("redis"), port=port, extra_args=extra_args)
        return self._add(server, start)

    def unix(self, extra_args: Sequence[str] = (), *, start: bool = True) -> UnixRedisServer:
        return self._add(UnixRedisServer(self._directory("unix"), extra_args=extra_args), start)

    @property
    def tls_files(self) -> TlsFiles:
        """The CA and certificates of this test's TLS servers, generated on first use."""
        if self._tls is None:
            require_tls_tooling()
            self._tls = generate_tls_files(self.base / "tls")
        return self._tls

    def tls(
        self,
        extra_args: Sequence[str] = (),
        *,
        require_client_cert: bool = False,
        start: bool = True,
    ) -> TlsRedisServer:
        server = TlsRedisServer(
            self.tls_files,
            self._directory("tls"),
            require_client_cert=require_client_cert,
            extra_args=extra_args,
        )
        return self._add(server, start)

    def acl(self, extra_args: Sequence[str] = (), *, start: bool = True) -> AclRedisServer:
        return self._add(AclRedisServer(self._directory("acl"), extra_args=extra_args), start)

    def stop_all(self) -> None:
        """Stop every server, newest first, even when stopping one of them fails."""
        errors: list[Exception] = []
        while self.servers:
            server = self.servers.pop()
            try:
                server.stop()
            except Exception as error:  # pragma: no cover - reported below
                errors.append(error)
        if errors:
            raise ExceptionGroup("stopping redis-server processes failed", errors)


@contextlib.contextmanager
def running_redis_server(directory: Path) -> Iterator[RedisServer]:
    """A started private server in ``directory``, stopped on exit (skips without redis-server)."""
    require_redis_server()
    server = RedisServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()
