"""``RedisServerFactory``: any number of private servers for one test, all stopped at its end."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from actors.testing._redis_server import (
    AclRedisServer,
    RedisServer,
    RedisServerError,
    TlsRedisServer,
    UnixRedisServer,
    missing_tooling,
)
from actors.testing._tls import generate_tls_files

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from actors.testing._tls import TlsFiles

__all__ = ["RedisServerFactory"]

_S = TypeVar("_S", bound=RedisServer)


class RedisServerFactory:
    """Starts any number of private servers and stops them all at once.

    ``factory(extra_args=(...), port=None)`` returns a started ``RedisServer``; ``unix()``,
    ``tls()`` and ``acl()`` return the other variants (``start=False``: not started yet). Each
    server gets its own directory under ``base``; the TLS servers share one set of certificates.
    The plugin's ``redis_server_factory`` fixture gives each test one, stopped at its teardown;
    elsewhere, call ``stop_all()`` in a ``finally:`` block.

    Args:
        base: The directory under which the servers work.
        on_missing: Called with the reason when ``redis-server`` (or, for TLS, ``openssl`` or a
            TLS-enabled build) is missing, before any server is made; it should raise. The
            plugin's fixture passes ``skip_or_fail``. If it returns, or without it,
            ``RedisServerError`` is raised.
    """

    def __init__(self, base: Path, *, on_missing: Callable[[str], object] | None = None) -> None:
        self.base = base
        """The directory under which the servers work."""
        self.servers: list[RedisServer] = []
        """Every server made so far and not stopped by ``stop_all()``, oldest first."""
        self._on_missing = on_missing
        self._tls: TlsFiles | None = None

    def _require(self, *, tls: bool = False) -> None:
        reason = missing_tooling(tls=tls)
        if reason is None:
            return
        if self._on_missing is not None:
            self._on_missing(reason)
        raise RedisServerError(reason)

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
        """A plain TCP server on ``port`` (by default a free one), started unless ``start=False``.

        Raises:
            RedisServerError: The server did not start.
        """
        self._require()
        server = RedisServer(self._directory("redis"), port=port, extra_args=extra_args)
        return self._add(server, start)

    def unix(self, extra_args: Sequence[str] = (), *, start: bool = True) -> UnixRedisServer:
        """A server listening only on a unix socket (``unix://``)."""
        self._require()
        return self._add(UnixRedisServer(self._directory("unix"), extra_args=extra_args), start)

    @property
    def tls_files(self) -> TlsFiles:
        """The CA and certificates of this factory's TLS servers, generated on first use."""
        if self._tls is None:
            self._require(tls=True)
            self._tls = generate_tls_files(self.base / "tls")
        return self._tls

    def tls(
        self,
        extra_args: Sequence[str] = (),
        *,
        require_client_cert: bool = False,
        start: bool = True,
    ) -> TlsRedisServer:
        """A server speaking only TLS (``rediss://``), with certificates from ``tls_files``.

        Args:
            extra_args: More ``redis-server`` arguments.
            require_client_cert: Whether clients must present a certificate signed by the CA.
            start: Whether to start it now.
        """
        server = TlsRedisServer(
            self.tls_files,
            self._directory("tls"),
            require_client_cert=require_client_cert,
            extra_args=extra_args,
        )
        return self._add(server, start)

    def acl(self, extra_args: Sequence[str] = (), *, start: bool = True) -> AclRedisServer:
        """A server with a ``default`` password and a user confined to ``allowed:*`` channels."""
        self._require()
        return self._add(AclRedisServer(self._directory("acl"), extra_args=extra_args), start)

    def stop_all(self) -> None:
        """Stop every server, newest first, even when stopping one of them fails.

        Raises:
            ExceptionGroup: Stopping one or more servers failed.
        """
        errors: list[Exception] = []
        while self.servers:
            server = self.servers.pop()
            try:
                server.stop()
            except Exception as error:  # pragma: no cover - reported below
                errors.append(error)
        if errors:
            raise ExceptionGroup("stopping redis-server processes failed", errors)
