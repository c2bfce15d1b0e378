"""Throw-away TLS material for private ``rediss://`` servers: a CA, a server and a client cert.

Only the ``openssl`` command line is used, offline. The certificates pass Python's strict X.509
checks (key usage, subject alternative names, key identifiers), so a client context built from
them is as strict as one in production.
"""

from __future__ import annotations

import os
import ssl
import subprocess
from typing import TYPE_CHECKING, Final

import attrs

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["TlsFiles", "generate_tls_files"]

OPENSSL: Final = "openssl"
OPENSSL_TIMEOUT: Final = 30.0  # seconds for one openssl command

_OPENSSL_CONFIG: Final = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
"""

_SERVER_EXTENSIONS: Final = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""

_CLIENT_EXTENSIONS: Final = """\
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
    """The CA's certificate: what clients and the server trust."""
    ca_key: Path
    server_cert: Path
    """The server's certificate, valid for ``127.0.0.1`` and ``localhost``."""
    server_key: Path
    client_cert: Path
    """A client certificate signed by the CA, for servers that ask for one."""
    client_key: Path

    def client_context(self, *, with_client_cert: bool = True) -> ssl.SSLContext:
        """A client context that trusts only this CA.

        Args:
            with_client_cert: Whether the context presents the client certificate.
        """
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
        timeout=OPENSSL_TIMEOUT,
        check=False,
        env={**os.environ, "OPENSSL_CONF": str(cwd / "openssl.cnf")},
    )
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(map(str, args))} failed:\n{result.stderr}")


def generate_tls_files(directory: Path) -> TlsFiles:
    """Create a CA, a server and a client certificate (P-256 keys, valid 2 days) in ``directory``.

    Args:
        directory: Where the keys and certificates are written; created if missing.

    Returns:
        The paths of what was written.

    Raises:
        FileNotFoundError: ``openssl`` is not installed.
        RuntimeError: An ``openssl`` command failed; the message has its output.
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
