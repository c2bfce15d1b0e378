"""The keys that verify tokens: an HS256 secret, a PEM public key file or a JWKS file.

Each is read and checked once, when the server starts: a key that cannot verify the configured
algorithm's tokens (a missing or unreadable file, a private key, an RSA key for ES256, a short
RSA key or secret) raises ``TokenKeyError`` at once, with the file and the reason, instead of
turning every sign-in away later.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, TypeAlias

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from actors._errors import ActorsError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "ALGORITHMS",
    "MIN_RSA_BITS",
    "MIN_SECRET_BYTES",
    "PUBLIC_KEY_ALGORITHMS",
    "KeyRing",
    "TokenKeyError",
]

PUBLIC_KEY_ALGORITHMS: Final = ("RS256", "ES256")
ALGORITHMS: Final = ("HS256", *PUBLIC_KEY_ALGORITHMS)
MIN_SECRET_BYTES: Final = 32  # RFC 7518 section 3.2: an HS256 key is as long as the hash at least
MIN_RSA_BITS: Final = 2048  # RFC 7518 section 3.3
MAX_KEY_FILE_BYTES: Final = 1024 * 1024

VerifyingKey: TypeAlias = bytes | RSAPublicKey | EllipticCurvePublicKey


class TokenKeyError(ActorsError, ValueError):
    """The token key cannot work as configured: a bad secret, key file or algorithm."""


def _check_public_key(key: object, algorithm: str, where: str) -> VerifyingKey:
    """``key`` if it is a public key that verifies ``algorithm``; else ``TokenKeyError``."""
    if algorithm == "RS256":
        if not isinstance(key, RSAPublicKey):
            raise TokenKeyError(f"{where}: RS256 needs an RSA public key, not {_kind(key)}")
        if key.key_size < MIN_RSA_BITS:
            raise TokenKeyError(
                f"{where}: the RSA key has {key.key_size} bits; RS256 needs {MIN_RSA_BITS} or more"
            )
        return key
    if not isinstance(key, EllipticCurvePublicKey) or not isinstance(key.curve, SECP256R1):
        raise TokenKeyError(f"{where}: ES256 needs an EC P-256 public key, not {_kind(key)}")
    return key


def _kind(key: object) -> str:
    name = type(key).__name__.removeprefix("_")
    if "Private" in name:
        return "a private key (give the public key only)"
    curve = getattr(key, "curve", None)
    return f"{name} ({curve.name})" if curve is not None else name


def _read(path: Path, what: str) -> bytes:
    try:
        with path.open("rb") as file:
            data = file.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as error:
        raise TokenKeyError(f"the {what} {path} cannot be read: {error.strerror}") from None
    if len(data) > MAX_KEY_FILE_BYTES:
        raise TokenKeyError(f"the {what} {path} is larger than {MAX_KEY_FILE_BYTES} bytes")
    return data


class KeyRing:
    """The keys of one algorithm, by key id (``kid``); None is the id of a lone key without one.

    Build it with ``from_secret``, ``from_public_key_file`` or ``from_jwks_file``.
    """

    def __init__(self, algorithm: str, keys: dict[str | None, VerifyingKey]) -> None:
        self.algorithm = algorithm
        self._keys = keys

    @classmethod
    def from_secret(cls, secret: bytes) -> KeyRing:
        """HS256 with ``secret``, shared by every process that issues or verifies tokens.

        Raises:
            TokenKeyError: The secret is shorter than 32 bytes.
        """
        if len(secret) < MIN_SECRET_BYTES:
            raise TokenKeyError(
                f"the token secret has {len(secret)} bytes; HS256 needs {MIN_SECRET_BYTES} or more"
            )
        return cls("HS256", {None: secret})

    @classmethod
    def from_public_key_file(cls, path: Path, algorithm: str) -> KeyRing:
        """RS256 or ES256 with the PEM public key in ``path``; tokens may name any ``kid``.

        Raises:
            TokenKeyError: The file cannot be read or holds no public key for ``algorithm``.
        """
        if algorithm not in PUBLIC_KEY_ALGORITHMS:
            raise TokenKeyError(f"a public key file is for {' or '.join(PUBLIC_KEY_ALGORITHMS)}")
        data = _read(path, "public key file")
        try:
            key: object = serialization.load_pem_public_key(data)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            try:
                key = serialization.load_pem_private_key(data, password=None)
            except (ValueError, TypeError, UnsupportedAlgorithm):
                raise TokenKeyError(f"{path} holds no PEM public key for {algorithm}") from None
        return cls(algorithm, {None: _check_public_key(key, algorithm, str(path))})

    @classmethod
    def from_jwks_file(cls, path: Path, algorithm: str) -> KeyRing:
        """RS256 or ES256 with the keys of the JSON Web Key Set in ``path``, chosen by ``kid``.

        Keys of other algorithms in the set are left out; a key meant for encryption only
        (``"use": "enc"``) too.

        Raises:
            TokenKeyError: The file cannot be read, is not a key set, or has no public key for
                ``algorithm`` (or one of its keys for it is private, or two share a ``kid``).
        """
        if algorithm not in PUBLIC_KEY_ALGORITHMS:
            raise TokenKeyError(f"a JWKS file is for {' or '.join(PUBLIC_KEY_ALGORITHMS)}")
        data = _read(path, "JWKS file")
        try:
            key_set = jwt.PyJWKSet.from_json(data.decode("utf-8"))
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as error:
            raise TokenKeyError(f"{path} is not a usable JSON Web Key Set: {error}") from None
        keys: dict[str | None, VerifyingKey] = {}
        for jwk in key_set.keys:
            if jwk.algorithm_name != algorithm or jwk.public_key_use == "enc":
                continue
            where = f"{path}, key {jwk.key_id!r}"
            if jwk.key_id in keys:
                raise TokenKeyError(f"{where}: two keys have this kid")
            keys[jwk.key_id] = _check_public_key(jwk.key, algorithm, where)
        if not keys:
            raise TokenKeyError(f"{path} has no {algorithm} key")
        return cls(algorithm, keys)

    def key_for(self, kid: object) -> VerifyingKey | None:
        """The key a token's ``kid`` names; a lone key is used whatever the token names."""
        if len(self._keys) == 1:
            return next(iter(self._keys.values()))
        if isinstance(kid, str):
            return self._keys.get(kid)
        return None
