"""Signed tokens: who a WebSocket session is, vouched for by the server secret.

A token is ``BASE64URL(payload) "." BASE64URL(HMAC-SHA256(secret, BASE64URL(payload)))`` with
the JSON payload ``{"sub": user_id, "exp": expiry}``. Every process of one deployment shares the
secret, so a token issued by one is accepted by all. Nothing in a token is trusted before its
signature is checked, and the comparison takes constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from typing import Final

import orjson

from actors._errors import ActorsError, InvalidIdentifierError
from actors.messages import check_user_id

__all__ = [
    "DEFAULT_TOKEN_TTL",
    "InvalidTokenError",
    "TokenSigner",
]

DEFAULT_TOKEN_TTL: Final = 12 * 3600.0  # seconds
MAX_TOKEN_LENGTH: Final = 1024
MIN_SECRET_BYTES: Final = 16


class InvalidTokenError(ActorsError):
    """A token is malformed, wrongly signed or expired."""


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """Issues and verifies tokens with one secret.

    Args:
        secret: At least 16 bytes, shared by every process of the deployment.
        ttl: Seconds a new token stays valid.

    Raises:
        ValueError: The secret is too short or ``ttl`` is not positive.
    """

    def __init__(self, secret: bytes, *, ttl: float = DEFAULT_TOKEN_TTL) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"the token secret must be at least {MIN_SECRET_BYTES} bytes")
        if not ttl > 0:
            raise ValueError(f"ttl must be positive: {ttl}")
        self._secret = secret
        self.ttl = ttl

    def _signature(self, payload: str) -> str:
        return _encode(hmac.new(self._secret, payload.encode("ascii"), hashlib.sha256).digest())

    def issue(self, user_id: str, *, now: float | None = None) -> tuple[str, float]:
        """A token for ``user_id`` and its expiry time (Unix seconds).

        Raises:
            InvalidIdentifierError: The user id breaks the rule of user ids.
        """
        check_user_id(user_id)
        expires_at = (time.time() if now is None else now) + self.ttl
        payload = _encode(orjson.dumps({"sub": user_id, "exp": expires_at}))
        return f"{payload}.{self._signature(payload)}", expires_at

    def verify(self, token: object, *, now: float | None = None) -> str:
        """The user id a valid token names.

        Raises:
            InvalidTokenError: The token is not a str, is malformed, is signed with another
                secret, or has expired.
        """
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
            raise InvalidTokenError("the token is missing or too long")
        payload, dot, signature = token.partition(".")
        if not dot or not payload.isascii() or not signature.isascii():
            raise InvalidTokenError("the token is malformed")
        if not hmac.compare_digest(signature, self._signature(payload)):
            raise InvalidTokenError("the token's signature is wrong")
        try:
            claims = orjson.loads(_decode(payload))
        except (binascii.Error, ValueError, orjson.JSONDecodeError):
            raise InvalidTokenError("the token's payload is malformed") from None
        if not isinstance(claims, dict):
            raise InvalidTokenError("the token's payload is malformed")
        expires_at = claims.get("exp")
        if isinstance(expires_at, bool) or not isinstance(expires_at, (int, float)):
            raise InvalidTokenError("the token has no expiry")
        if expires_at <= (time.time() if now is None else now):
            raise InvalidTokenError("the token has expired")
        try:
            return check_user_id(claims.get("sub"))
        except InvalidIdentifierError:
            raise InvalidTokenError("the token names no valid user") from None
