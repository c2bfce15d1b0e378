"""Where and how to connect: ``RedisSettings`` and its URL form."""

from __future__ import annotations

import math
import os
import socket
from typing import Final, Literal
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import attrs

from actors._errors import RedisUrlError

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_PORT",
    "RedisSettings",
    "check_client_name",
    "default_client_name",
    "redact_url",
    "with_client_name",
]

DEFAULT_PORT: Final = 6379
DEFAULT_CONNECT_TIMEOUT: Final = 5.0  # seconds

_SCHEMES: Final = ("redis", "rediss", "unix")
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


# Redis accepts a client name made of the printable ASCII characters from "!" to "~" (no spaces,
# no newlines, nothing else): CLIENT SETNAME and HELLO ... SETNAME refuse anything more.
_NAME_CHARACTERS: Final = frozenset(chr(code) for code in range(ord("!"), ord("~") + 1))


def check_client_name(name: str) -> str:
    """``name`` if Redis accepts it as a client name (``CLIENT SETNAME``).

    Args:
        name: The name to check.

    Returns:
        The name, unchanged.

    Raises:
        ValueError: The name is empty or holds a character other than the printable ASCII
            ones from ``!`` to ``~`` (a space, a newline, a letter outside ASCII).
    """
    if not name or not _NAME_CHARACTERS.issuperset(name):
        raise ValueError(
            f"Redis client names must be non-empty and made of the printable ASCII characters "
            f"from '!' to '~', without spaces: {name!r}"
        )
    return name


def default_client_name() -> str:
    """``actors:<host>:<pid>``: the name every connection gets unless told otherwise.

    It tells in ``CLIENT LIST`` which process holds a connection. A character of the host name
    that Redis would refuse becomes ``-``.
    """
    host = "".join(c if c in _NAME_CHARACTERS else "-" for c in socket.gethostname())
    return f"actors:{host or 'unknown'}:{os.getpid()}"


def _check_client_name(
    instance: RedisSettings, attribute: attrs.Attribute[str | None], value: str | None
) -> None:
    if value is not None:
        check_client_name(value)


def _hide_secret(value: str | None) -> str:
    return "None" if value is None else "'***'"


def _check_port(instance: RedisSettings, attribute: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or not 1 <= value <= 65535:
        raise ValueError(f"Redis port must be an integer from 1 to 65535, not {value!r}")


def _check_db(instance: RedisSettings, attribute: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or value < 0:
        raise ValueError(f"Redis db must be a non-negative integer, not {value!r}")


def _check_protocol(instance: RedisSettings, attribute: attrs.Attribute[int], value: int) -> None:
    if value not in (2, 3) or type(value) is not int:
        raise ValueError(f"Redis protocol must be 2 or 3, not {value!r}")


def _check_timeout(
    instance: RedisSettings, attribute: attrs.Attribute[float], value: float
) -> None:
    if not isinstance(value, int | float) or not (value > 0 and math.isfinite(value)):
        raise ValueError(f"connect_timeout must be a positive number of seconds, not {value!r}")


@attrs.frozen(kw_only=True)
class RedisSettings:
    """How to reach one Redis server and set up each connection to it.

    Build one directly or from a URL with ``RedisSettings.from_url``. The password never appears in
    ``repr`` or in ``describe()``, so settings are safe to log.
    """

    host: str = "localhost"
    """Host name or IP address (ignored when ``unix_path`` is set)."""
    port: int = attrs.field(default=DEFAULT_PORT, validator=_check_port)
    """TCP port."""
    unix_path: str | None = None
    """Path of a Unix domain socket to connect to instead of TCP."""
    tls: bool = False
    """Whether to speak TLS (``rediss://``)."""
    tls_ca_file: str | None = None
    """PEM file of the certificate authorities to trust; the system's defaults when unset."""
    tls_cert_file: str | None = None
    """PEM client certificate, for servers that require one (``tls-auth-clients``)."""
    tls_key_file: str | None = None
    """PEM private key of the client certificate (when not inside ``tls_cert_file``)."""
    tls_verify_hostname: bool = True
    """Whether the server certificate must match ``host``."""
    username: str | None = None
    """ACL user name; ``None`` means the ``default`` user."""
    password: str | None = attrs.field(default=None, repr=_hide_secret)
    """Password of the user (``requirepass`` or an ACL user's)."""
    db: int = attrs.field(default=0, validator=_check_db)
    """Database number selected on each connection."""
    client_name: str | None = attrs.field(factory=default_client_name, validator=_check_client_name)
    """Name given to each connection in its handshake (``HELLO ... SETNAME`` or ``CLIENT
    SETNAME``), shown by ``CLIENT LIST``: ``actors:<host>:<pid>`` by default; None sends none.
    Printable ASCII from ``!`` to ``~`` only, as Redis requires."""
    protocol: Literal[2, 3] = attrs.field(default=3, validator=_check_protocol)
    """RESP version to ask for: 3 (one connection for everything) or 2."""
    connect_timeout: float = attrs.field(default=DEFAULT_CONNECT_TIMEOUT, validator=_check_timeout)
    """Seconds allowed to connect, handshake TLS and authenticate."""
    keepalive: bool = True
    """Whether to turn on TCP keepalive probes."""

    def __attrs_post_init__(self) -> None:
        if self.unix_path is not None and self.tls:
            raise ValueError("TLS over a Unix socket is not supported")
        if self.tls_key_file is not None and self.tls_cert_file is None:
            raise ValueError("tls_key_file needs tls_cert_file")
        if self.username is not None and self.password is None:
            raise ValueError("a Redis username needs a password")

    @classmethod
    def from_url(cls, url: str) -> RedisSettings:
        """Parse a Redis URL.

        Accepted forms::

            redis://[[user]:password@]host[:port][/db][?option=value&...]
            rediss://...                     (TLS)
            unix://[[user]:password@]/path/to/socket[?db=N&...]

        Options: ``db``, ``client_name``, ``protocol`` (2 or 3), ``connect_timeout`` (seconds),
        ``keepalive``, ``tls_ca_file``, ``tls_cert_file``, ``tls_key_file`` and
        ``tls_verify_hostname`` (booleans as ``true``/``false``/``1``/``0``). User name and password
        are percent-decoded.

        Args:
            url: The URL.

        Returns:
            The settings it describes.

        Raises:
            RedisUrlError: The URL is malformed, or an option is unknown, repeated or invalid
                (a ``ValueError``).
        """
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise RedisUrlError(f"invalid Redis URL {redact_url(url)!r}: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme not in _SCHEMES:
            raise RedisUrlError(
                f"invalid Redis URL {redact_url(url)!r}: the scheme must be redis://, rediss:// or "
                "unix://"
            )
        if parts.fragment:
            raise RedisUrlError(f"invalid Redis URL {redact_url(url)!r}: fragments are not allowed")
        options: dict[str, object] = {}
        if parts.username:
            options["username"] = unquote(parts.username)
        if parts.password is not None:
            options["password"] = unquote(parts.password)
        if scheme == "unix":
            if not parts.path or parts.path == "/":
                raise RedisUrlError(f"invalid Redis URL {redact_url(url)!r}: no socket path")
            if parts.hostname or port is not None:
                raise RedisUrlError(
                    f"invalid Redis URL {redact_url(url)!r}: a unix:// URL takes no host or port "
                    "(write unix:///path/to/socket)"
                )
            options["unix_path"] = unquote(parts.path)
        else:
            options["tls"] = scheme == "rediss"
            if parts.hostname:
                options["host"] = unquote(parts.hostname)
            if port is not None:
                options["port"] = port
            path = parts.path.strip("/")
            if path:
                options["db"] = _parse_int(url, "db", path)
        for name, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
            key = name.lower()
            if key not in _QUERY_PARSERS:
                known = ", ".join(sorted(_QUERY_PARSERS))
                raise RedisUrlError(
                    f"invalid Redis URL {redact_url(url)!r}: unknown option {name!r} "
                    f"(known: {known})"
                )
            if key in options and (key != "db" or "db" in options):
                raise RedisUrlError(f"invalid Redis URL {redact_url(url)!r}: {name!r} given twice")
            options[key] = _QUERY_PARSERS[key](url, key, value)
        try:
            return cls(**options)  # type: ignore[arg-type]
        except (ValueError, TypeError) as exc:
            raise RedisUrlError(f"invalid Redis URL {redact_url(url)!r}: {exc}") from None

    def describe(self) -> str:
        """Return where this connects, as a URL without the password, for logs and errors."""
        user = f"{self.username}@" if self.username else ""
        if self.unix_path is not None:
            return f"unix://{user}{self.unix_path}?db={self.db}"
        scheme = "rediss" if self.tls else "redis"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{user}{host}:{self.port}/{self.db}"


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, for logs, errors and reports.

    Args:
        url: Any URL.

    Returns:
        The URL as it was, but for the password; ``<unparsable URL>`` for one ``urlsplit``
        cannot read.
    """
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparsable URL>"
    if password is None:
        return url
    netloc = parts.netloc.replace(f":{password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def with_client_name(url: str, name: str) -> str:
    """``url`` with its ``client_name`` option set to ``name``, replacing any it had.

    For a ``redis://``, ``rediss://`` or ``unix://`` URL and for the cluster URLs, whose nodes
    take the same option; the rest of the URL (the password included) is kept as written.

    Args:
        url: A Redis URL.
        name: The client name; see ``check_client_name``.

    Returns:
        The URL with ``client_name=name`` in its query.

    Raises:
        ValueError: ``name`` is no name Redis accepts.
    """
    check_client_name(name)
    base, _, query = url.partition("?")
    options = [
        (key, value)
        for key, value in parse_qsl(query, keep_blank_values=True)
        if key.lower() != "client_name"
    ]
    return f"{base}?{urlencode([*options, ('client_name', name)])}"


def _parse_int(url: str, key: str, value: str) -> int:
    try:
        return int(value, 10)
    except ValueError:
        raise RedisUrlError(
            f"invalid Redis URL {redact_url(url)!r}: {key} must be an integer, not {value!r}"
        ) from None


def parse_float_option(url: str, key: str, value: str) -> float:
    """A URL option's number, or ``RedisUrlError`` naming the URL (its password hidden)."""
    try:
        return float(value)
    except ValueError:
        raise RedisUrlError(
            f"invalid Redis URL {redact_url(url)!r}: {key} must be a number, not {value!r}"
        ) from None


def parse_bool_option(url: str, key: str, value: str) -> bool:
    """A URL option's boolean (true/false, yes/no, on/off, 1/0), or ``RedisUrlError``."""
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise RedisUrlError(
        f"invalid Redis URL {redact_url(url)!r}: {key} must be true or false, not {value!r}"
    )


def _parse_text(url: str, key: str, value: str) -> str:
    if not value:
        raise RedisUrlError(f"invalid Redis URL {redact_url(url)!r}: {key} is empty")
    return value


_QUERY_PARSERS: Final = {
    "db": _parse_int,
    "client_name": _parse_text,
    "protocol": _parse_int,
    "connect_timeout": parse_float_option,
    "keepalive": parse_bool_option,
    "tls_ca_file": _parse_text,
    "tls_cert_file": _parse_text,
    "tls_key_file": _parse_text,
    "tls_verify_hostname": parse_bool_option,
}
