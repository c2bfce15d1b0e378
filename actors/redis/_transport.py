"""Opening the byte stream to a server: TCP, TLS or a Unix socket."""

from __future__ import annotations

import errno
import logging
import os
import socket
import ssl
from typing import TYPE_CHECKING, Final, TypeAlias

import attrs
import trio

from actors._errors import RedisConnectionError, RedisError, RedisTlsError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from actors.redis._config import RedisSettings

__all__ = ["Connector", "Transport", "open_transport", "tls_failure"]

logger = logging.getLogger(__name__)

KEEPALIVE_IDLE: Final = 30  # seconds of silence before the first probe
KEEPALIVE_INTERVAL: Final = 10  # seconds between probes
KEEPALIVE_COUNT: Final = 3  # unanswered probes before the kernel drops the connection


@attrs.frozen
class Transport:
    """An open connection to a server."""

    stream: trio.abc.Stream
    """The stream commands are written to (and replies read from, unless ``raw_socket``)."""
    raw_socket: socket.socket | None = None
    """The non-blocking stdlib socket under a plain TCP or Unix stream, read directly in
    batches; ``None`` for TLS and for other streams (such as an in-memory test server), which
    are read with ``stream.receive_some``."""


Connector: TypeAlias = "Callable[[RedisSettings], Awaitable[Transport]]"
"""Opens the byte stream to a server: ``open_transport`` for real servers; tests pass the
``connect`` method of an in-memory server. It raises ``RedisConnectionError`` for what a retry
may heal, and the caller applies the connect timeout."""


def _set_keepalive(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (
        ("TCP_KEEPIDLE", KEEPALIVE_IDLE),
        ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
        ("TCP_KEEPCNT", KEEPALIVE_COUNT),
    ):
        option = getattr(socket, name, None)
        if option is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)


async def _connect_socket(settings: RedisSettings) -> tuple[socket.socket, trio.socket.SocketType]:
    if settings.unix_path is not None:
        targets: list[tuple[socket.AddressFamily, int, object]] = [
            (socket.AF_UNIX, 0, settings.unix_path)
        ]
    else:
        try:
            infos = await trio.socket.getaddrinfo(
                settings.host, settings.port, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise RedisConnectionError(
                f"cannot resolve {settings.host!r} for {settings.describe()}: {exc}"
            ) from exc
        targets = [(family, proto, address) for family, _, proto, _, address in infos]
    failures: list[OSError] = []
    for family, proto, address in targets:
        raw = socket.socket(family, socket.SOCK_STREAM, proto)
        try:
            sock = trio.socket.from_stdlib_socket(raw)
            await sock.connect(address)
            if family != socket.AF_UNIX:
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if settings.keepalive:
                    _set_keepalive(raw)
        except OSError as exc:
            raw.close()
            failures.append(exc)
            continue
        except BaseException:
            raw.close()
            raise
        return raw, sock
    reasons = "; ".join(dict.fromkeys(_reason(failure) for failure in failures)) or "no address"
    raise RedisConnectionError(f"cannot connect to {settings.describe()}: {reasons}") from (
        failures[-1] if failures else None
    )


def _reason(error: OSError) -> str:
    """A few words for an operator: ``connection refused`` rather than the whole errno text."""
    if error.errno is not None and error.errno in errno.errorcode:
        return os.strerror(error.errno).lower()
    return str(error)


# TLS failures a retry may heal: the peer went away in the middle of the handshake.
_TRANSIENT_TLS: Final = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError)


def tls_failure(error: BaseException, settings: RedisSettings) -> RedisError | None:
    """The fatal ``RedisTlsError`` that ``error`` amounts to, or None if a retry may heal it.

    A certificate or host name that does not verify, a certificate of ours the server refuses,
    or a server that does not speak TLS at all is configuration; a connection dropped in the
    middle of the handshake is chance. trio reports TLS failures as ``BrokenResourceError``
    with the ``ssl.SSLError`` as its cause, so the whole cause chain is searched.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            detail = current.verify_message or str(current)
            return RedisTlsError(
                f"the TLS certificate of {settings.describe()} did not verify: {detail}"
            )
        if isinstance(current, ssl.SSLError) and not isinstance(current, _TRANSIENT_TLS):
            reason = (current.reason or str(current)).lower().replace("_", " ")
            return RedisTlsError(f"TLS with {settings.describe()} failed: {reason}")
        current = current.__cause__ or current.__context__
    return None


def _ssl_context(settings: RedisSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=settings.tls_ca_file)
    context.check_hostname = settings.tls_verify_hostname
    if settings.tls_cert_file is not None:
        context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
    return context


async def open_transport(settings: RedisSettings) -> Transport:
    """Connect to the server and finish the TLS handshake when TLS is on.

    The caller applies the connect timeout.

    Args:
        settings: Where to connect and how.

    Returns:
        The open transport.

    Raises:
        RedisConnectionError: The server could not be reached, or the TLS handshake was cut
            off: a retry may succeed.
        RedisTlsError: The TLS files could not be loaded, or the certificates did not verify.
    """
    raw, sock = await _connect_socket(settings)
    # The trio socket wraps the same stdlib socket object, so both share one file descriptor.
    stream = trio.SocketStream(sock)
    if not settings.tls:
        return Transport(stream=stream, raw_socket=raw)
    try:
        context = _ssl_context(settings)
    except (OSError, ValueError) as exc:
        await trio.aclose_forcefully(stream)
        raise RedisTlsError(f"cannot load the TLS files for {settings.describe()}: {exc}") from exc
    try:
        tls_stream = trio.SSLStream(stream, context, server_hostname=settings.host)
        await tls_stream.do_handshake()
    except (OSError, trio.BrokenResourceError) as exc:
        await trio.aclose_forcefully(stream)
        fatal = tls_failure(exc, settings)
        if fatal is not None:
            raise fatal from exc
        raise RedisConnectionError(
            f"TLS handshake with {settings.describe()} failed: {exc!r}"
        ) from exc
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return Transport(stream=tls_stream, raw_socket=None)
