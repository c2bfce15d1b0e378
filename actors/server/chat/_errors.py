"""The errors of the chat layer, all ``ChatError`` (an ``ActorsError``)."""

from __future__ import annotations

from actors._errors import ActorsError


class ChatError(ActorsError):
    """Base class of the chat layer's errors."""


class InvalidChatMessageError(ChatError, ValueError):
    """A message was refused before it was sent: empty or too long text, or a bad user id."""


class RateLimitedError(ChatError):
    """The user sent faster than the rate limit allows; nothing was sent.

    Attributes:
        user_id: Who was refused.
        retry_after: Seconds until one more message would be accepted.
    """

    def __init__(self, user_id: str, retry_after: float) -> None:
        super().__init__(f"user {user_id!r} is rate limited; retry after {retry_after:.3f} s")
        self.user_id = user_id
        self.retry_after = retry_after
