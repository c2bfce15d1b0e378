"""A per-user token bucket, on trio's clock (so tests can run it on a mock clock)."""

from __future__ import annotations

from typing import Final

import attrs
import trio

from actors.server.chat._errors import RateLimitedError

DEFAULT_RATE: Final = 5.0  # messages per second
DEFAULT_BURST: Final = 10  # messages


@attrs.frozen(kw_only=True)
class RateLimit:
    """How fast one user may send.

    Attributes:
        rate: Tokens added per second (the sustained messages per second).
        burst: The bucket's size (messages that may be sent at once after a quiet spell).
    """

    rate: float = DEFAULT_RATE
    burst: int = DEFAULT_BURST

    def __attrs_post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError(f"rate must be positive: {self!r}")
        if self.burst < 1:
            raise ValueError(f"burst must be at least 1: {self!r}")


class RateLimiter:
    """One token bucket per user; ``take`` spends a token or raises ``RateLimitedError``.

    Full buckets are forgotten, so memory grows only with the users who sent recently.
    """

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._buckets: dict[str, tuple[float, float]] = {}
        """User id to (tokens, time of that count)."""

    def take(self, user_id: str) -> None:
        """Spend one of the user's tokens.

        Raises:
            RateLimitedError: The user has no token left; ``retry_after`` says when one will be.
        """
        now = trio.current_time()
        rate, burst = self.limit.rate, float(self.limit.burst)
        tokens, then = self._buckets.get(user_id, (burst, now))
        tokens = min(burst, tokens + (now - then) * rate)
        if tokens < 1.0:
            self._buckets[user_id] = (tokens, now)
            raise RateLimitedError(user_id, (1.0 - tokens) / rate)
        self._buckets[user_id] = (tokens - 1.0, now)
        if len(self._buckets) > 1024:
            self._forget_full(now)

    def _forget_full(self, now: float) -> None:
        burst = float(self.limit.burst)
        for user_id, (tokens, then) in list(self._buckets.items()):
            if tokens + (now - then) * self.limit.rate >= burst:
                del self._buckets[user_id]
