"""Keys and tokens for the token tests: an identity provider's key pairs, written as files the
way a deployment mounts them, and tokens signed or forged by hand."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any, Final

import attrs
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

NOW: Final = 1_800_000_000.0  # the tests' wall clock, in Unix seconds
SECRET: Final = b"a token secret of 32 bytes long!"


@attrs.frozen
class KeyPair:
    """A provider's signing key and the PEM of its public half."""

    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    public_pem: bytes

    @property
    def private_pem(self) -> bytes:
        return self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def sign(self, claims: dict[str, Any], algorithm: str, kid: str | None = None) -> str:
        headers = {"kid": kid} if kid is not None else None
        return jwt.encode(claims, self.private, algorithm=algorithm, headers=headers)

    def jwk(self, algorithm: str, kid: str) -> dict[str, Any]:
        """The public key as a JSON Web Key."""
        public = self.private.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            document = jwt.algorithms.RSAAlgorithm.to_jwk(public, as_dict=True)
        else:
            document = jwt.algorithms.ECAlgorithm.to_jwk(public, as_dict=True)
        return {**document, "alg": algorithm, "kid": kid, "use": "sig"}


def _public_pem(private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def rsa_pair(bits: int = 2048) -> KeyPair:
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return KeyPair(private, _public_pem(private))


def ec_pair(curve: ec.EllipticCurve | None = None) -> KeyPair:
    private = ec.generate_private_key(curve or ec.SECP256R1())
    return KeyPair(private, _public_pem(private))


def claims(**overrides: Any) -> dict[str, Any]:
    """Claims valid at NOW for user ada, with ``overrides`` (None removes a claim)."""
    document: dict[str, Any] = {"sub": "ada", "iat": int(NOW), "exp": int(NOW) + 600}
    document.update(overrides)
    return {name: value for name, value in document.items() if value is not None}


def _segment(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def forged(header: dict[str, Any], payload: dict[str, Any], key: bytes | None) -> str:
    """A token put together by hand: HMAC-SHA256 with ``key``, or no signature at all.

    PyJWT refuses to sign HS256 with a PEM public key; an attacker need not use PyJWT.
    """
    signed = f"{_segment(json.dumps(header).encode())}.{_segment(json.dumps(payload).encode())}"
    signature = b"" if key is None else hmac.new(key, signed.encode(), hashlib.sha256).digest()
    return f"{signed}.{_segment(signature)}"


def write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path
