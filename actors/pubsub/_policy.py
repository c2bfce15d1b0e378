"""Error policies: what a subscription does when a payload will not decode or a handler fails.

The defaults are the ones our users asked for: retry a failing handler 3 times with exponential
backoff (100 ms, x2), skip (and dead-letter) a payload that does not decode. Per exception type,
a policy can say retry, skip or escalate; escalating crashes the subscription actor, so its
supervisor restarts it with backoff or gives up by restart intensity.
"""

from __future__ import annotations

import enum
import logging
from typing import TYPE_CHECKING, Final

import attrs

from actors._errors import MessageDecodeError
from actors.supervision import Backoff

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)


class ErrorAction(enum.Enum):
    """What to do with a message whose handling failed."""

    RETRY = "retry"
    """Call the handler again after a backoff, up to the retry policy's attempts; then escalate."""
    SKIP = "skip"
    """Count it, log it, hand it to the dead-letter sink, and go on with the next message."""
    ESCALATE = "escalate"
    """Crash the subscription actor; its supervisor decides (restart with backoff, or give up)."""


DEFAULT_RETRY_BACKOFF: Final = Backoff(
    initial=0.1, multiplier=2.0, maximum=10.0, jitter=0.0, reset_after=0.0
)


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How often and how patiently a failing handler is called again.

    Attributes:
        max_attempts: Calls in all, the first one included (the users' default: 3).
        backoff: The delay before each further attempt (100 ms, then x2).
    """

    max_attempts: int = attrs.field(default=3)
    backoff: Backoff = DEFAULT_RETRY_BACKOFF

    @max_attempts.validator
    def _check_attempts(self, _: object, value: int) -> None:
        if value < 1:
            raise ValueError(f"max_attempts must be at least 1: {value}")


DEFAULT_RETRY_POLICY: Final = RetryPolicy()


@attrs.frozen
class DeadLetter:
    """A message a subscription gave up on, with why."""

    channel: bytes
    """The concrete channel it came from."""
    subscription: bytes
    """The channel or pattern the subscription was made for."""
    payload: bytes
    """The raw payload, as published."""
    reason: str
    """Why it was skipped."""
    error: BaseException | None
    """The exception, if there was one."""


@attrs.frozen(kw_only=True)
class ErrorPolicy:
    """What a subscription does when decoding or handling a message fails.

    Attributes:
        retry: Attempts and backoff for ``ErrorAction.RETRY``.
        exhausted: What follows the last failed retry: ESCALATE (the default) or SKIP.
        actions: Per exception type, the action to take; the first matching entry wins
            (``isinstance``), so list subclasses before their bases.
        default: The action for handler exceptions no entry matches.
        decode_errors: The action for payloads that do not decode (``MessageDecodeError``);
            retrying cannot help them, so only SKIP or ESCALATE make sense.
        dead_letters: Called with every skipped message; ``None`` only logs and counts.
    """

    retry: RetryPolicy = DEFAULT_RETRY_POLICY
    exhausted: ErrorAction = ErrorAction.ESCALATE
    actions: tuple[tuple[type[BaseException], ErrorAction], ...] = ()
    default: ErrorAction = ErrorAction.RETRY
    decode_errors: ErrorAction = attrs.field(default=ErrorAction.SKIP)
    dead_letters: Callable[[DeadLetter], Awaitable[None]] | None = None

    @decode_errors.validator
    def _check_decode_errors(self, _: object, value: ErrorAction) -> None:
        if value is ErrorAction.RETRY:
            raise ValueError("a payload that does not decode cannot be retried: skip or escalate")

    def action_for(self, error: BaseException) -> ErrorAction:
        """The action for an exception raised while decoding or handling a message."""
        if isinstance(error, MessageDecodeError):
            return self.decode_errors
        for error_type, action in self.actions:
            if isinstance(error, error_type):
                return action
        return self.default

    def handle(self, error_type: type[BaseException], action: ErrorAction) -> ErrorPolicy:
        """A copy with one more per-type rule (checked after the existing ones)."""
        return attrs.evolve(self, actions=(*self.actions, (error_type, action)))


DEFAULT_ERROR_POLICY: Final = ErrorPolicy()
