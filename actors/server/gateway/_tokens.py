"""Identity from JWTs: who a WebSocket session is, vouched for by an identity provider.

A token is a JWT (RFC 7519) signed with the one algorithm the server is configured for: HS256
with a secret shared by every process, or RS256/ES256 with the provider's public key (a PEM
file, or a JWKS file whose keys are chosen by ``kid``). PyJWT checks the signature, the audience
and the issuer; the algorithm comes from the configuration, never from the token, so neither
``none`` nor an HS256 token signed with an RS256 public key (the algorithm confusion attack)
gets through. ``exp`` and ``sub`` are required, ``nbf`` is honoured, and an optional claim lists
the rooms the user may join.

``exp``, ``nbf`` and ``iat`` are wall-clock claims, so they are checked here against a
wall clock (``time.time`` unless another is injected, as tests do), with a small leeway for
clock skew between the provider and the servers.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Final

import attrs
import jwt

from actors._errors import ActorsError, InvalidIdentifierError
from actors.messages import check_user_id
from actors.server.gateway._protocol import ProtocolError, check_room
from actors.server.gateway._token_keys import KeyRing

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "DEFAULT_LEEWAY",
    "DEFAULT_ROOMS_CLAIM",
    "DEFAULT_TOKEN_TTL",
    "DemoLogin",
    "Identity",
    "InvalidTokenError",
    "TokenRules",
    "TokenVerifier",
]

DEFAULT_TOKEN_TTL: Final = 12 * 3600.0  # seconds a demo login's token is valid
DEFAULT_LEEWAY: Final = 10.0  # seconds of clock skew allowed on exp, nbf and iat
MAX_LEEWAY: Final = 300.0  # seconds; more would keep expired tokens alive noticeably
DEFAULT_ROOMS_CLAIM: Final = "rooms"
MAX_TOKEN_LENGTH: Final = 8192  # characters; an RS256 token with a list of rooms fits easily
MAX_ROOMS_IN_CLAIM: Final = 1000


class InvalidTokenError(ActorsError):
    """A token is malformed, wrongly signed, expired, not yet valid, or meant for another
    audience or from another issuer."""


def _check_leeway(instance: object, attribute: object, value: float) -> None:
    if not 0 <= value <= MAX_LEEWAY:
        raise ValueError(f"the token leeway must be from 0 to {MAX_LEEWAY:.0f} seconds: {value}")


@attrs.frozen(kw_only=True)
class TokenRules:
    """What a token's claims must say, beyond a good signature, ``sub`` and ``exp``."""

    audience: str | None = None
    """The ``aud`` tokens must name; None: tokens must have no ``aud``."""
    issuer: str | None = None
    """The ``iss`` tokens must have; None: any or none."""
    leeway: float = attrs.field(default=DEFAULT_LEEWAY, validator=_check_leeway)
    """Seconds of clock skew allowed on ``exp``, ``nbf`` and ``iat`` (from 0 to 300)."""
    rooms_claim: str | None = DEFAULT_ROOMS_CLAIM
    """The claim listing the rooms the user may join; a token without it may join any room.
    None: no claim limits rooms."""


@attrs.frozen
class Identity:
    """Who a valid token names, and what it allows."""

    user_id: str
    rooms: frozenset[str] | None
    """The rooms the user may join; None: any room."""
    expires_at: float
    """The token's ``exp`` (Unix seconds)."""


def _number(claims: dict[str, object], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidTokenError(f"the token's {name} is not a number")
    return float(value)


class TokenVerifier:
    """Verifies tokens with one key ring and one set of rules.

    Args:
        keys: The algorithm and its keys (``KeyRing.from_secret`` and the others).
        rules: Audience, issuer, leeway and the rooms claim.
        clock: The wall clock, in Unix seconds; tests inject a fixed one.
    """

    def __init__(
        self,
        keys: KeyRing,
        rules: TokenRules | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys = keys
        self.rules = rules or TokenRules()
        self._clock = clock

    @classmethod
    def from_secret(
        cls,
        secret: bytes,
        rules: TokenRules | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> TokenVerifier:
        """An HS256 verifier with ``secret``, shared by every process of the deployment.

        Raises:
            TokenKeyError: The secret is shorter than 32 bytes.
        """
        return cls(KeyRing.from_secret(secret), rules, clock=clock)

    @property
    def algorithm(self) -> str:
        """The one algorithm tokens must be signed with (``HS256``, ``RS256`` or ``ES256``)."""
        return self.keys.algorithm

    def verify(self, token: object) -> Identity:
        """The identity a valid token gives.

        Raises:
            InvalidTokenError: The token is not a str or too long, is malformed, is signed with
                another algorithm or key, has expired, is not valid yet, names another audience
                or issuer, names no valid user, or has a rooms claim that is not a list of rooms.
        """
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
            raise InvalidTokenError("the token is missing or too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidTokenError("the token is malformed") from None
        algorithm = header.get("alg")
        if algorithm != self.algorithm:
            raise InvalidTokenError(
                f"the token is signed with {str(algorithm)[:20]!r}; {self.algorithm} is expected"
            )
        key = self.keys.key_for(header.get("kid"))
        if key is None:
            raise InvalidTokenError("the token names no known key (kid)")
        rules = self.rules
        try:
            claims: dict[str, object] = jwt.decode(
                token,
                key,
                algorithms=[self.algorithm],
                audience=rules.audience,
                issuer=rules.issuer,
                # The times are checked below, on the injectable clock.
                options={
                    "require": ["exp", "sub"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.MissingRequiredClaimError as error:
            raise InvalidTokenError(f"the token has no {error.claim}") from None
        except jwt.PyJWTError as error:
            raise InvalidTokenError(f"the token is refused: {error}") from None
        self._check_times(claims)
        try:
            user_id = check_user_id(claims.get("sub"))
        except InvalidIdentifierError:
            raise InvalidTokenError("the token names no valid user (sub)") from None
        expires_at = _number(claims, "exp")
        assert expires_at is not None  # required, checked by _check_times
        return Identity(user_id, self._rooms(claims), expires_at)

    def _check_times(self, claims: dict[str, object]) -> None:
        now, leeway = self._clock(), self.rules.leeway
        expires_at = _number(claims, "exp")
        if expires_at is None or expires_at <= now - leeway:
            raise InvalidTokenError("the token has expired")
        not_before = _number(claims, "nbf")
        if not_before is not None and not_before > now + leeway:
            raise InvalidTokenError("the token is not valid yet (nbf)")
        issued_at = _number(claims, "iat")
        if issued_at is not None and issued_at > now + leeway:
            raise InvalidTokenError("the token was issued in the future (iat)")

    def _rooms(self, claims: dict[str, object]) -> frozenset[str] | None:
        name = self.rules.rooms_claim
        if name is None or name not in claims:
            return None
        rooms = claims[name]
        if (
            not isinstance(rooms, list)
            or len(rooms) > MAX_ROOMS_IN_CLAIM
            or not all(isinstance(room, str) for room in rooms)
        ):
            raise InvalidTokenError(f"the token's {name} claim is not a list of rooms")
        try:
            return frozenset(check_room(room) for room in rooms)
        except ProtocolError:
            raise InvalidTokenError(f"the token's {name} claim names an invalid room") from None


class DemoLogin:
    """The demo's sign-in: HS256 tokens for any valid name, from the servers' shared secret.

    It vouches for nobody: whoever asks gets a token for the name they give. Real deployments
    take tokens from their identity provider and leave it off.

    Args:
        verifier: The server's verifier; its algorithm must be HS256 (the secret is its key),
            and the tokens carry its audience and issuer.
        ttl: Seconds a new token stays valid.
        clock: The wall clock, in Unix seconds.

    Raises:
        ValueError: The verifier is not HS256, or ``ttl`` is not positive.
    """

    def __init__(
        self,
        verifier: TokenVerifier,
        *,
        ttl: float = DEFAULT_TOKEN_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if verifier.algorithm != "HS256":
            raise ValueError(
                f"the demo login signs HS256 tokens with the secret; the tokens are "
                f"{verifier.algorithm} here"
            )
        if not ttl > 0:
            raise ValueError(f"ttl must be positive: {ttl}")
        secret = verifier.keys.key_for(None)
        assert isinstance(secret, bytes)
        self._secret = secret
        self._rules = verifier.rules
        self.ttl = ttl
        self._clock = clock

    def issue(self, user_id: str) -> tuple[str, float]:
        """A token for ``user_id`` and its expiry time (Unix seconds).

        Raises:
            InvalidIdentifierError: The user id breaks the rule of user ids.
        """
        check_user_id(user_id)
        now = self._clock()
        expires_at = math.floor(now + self.ttl)
        claims: dict[str, object] = {"sub": user_id, "iat": math.floor(now), "exp": expires_at}
        if self._rules.audience is not None:
            claims["aud"] = self._rules.audience
        if self._rules.issuer is not None:
            claims["iss"] = self._rules.issuer
        return jwt.encode(claims, self._secret, algorithm="HS256"), float(expires_at)
