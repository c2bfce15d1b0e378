"""The error of the notifications layer."""

from __future__ import annotations

from actors._errors import ActorsError


class InvalidNotificationError(ActorsError, ValueError):
    """A notification was refused before it was published: a bad kind, title, body or data."""
