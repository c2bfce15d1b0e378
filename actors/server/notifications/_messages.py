"""The ``Notification`` message, its channels and the checks made before anything is sent."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

from actors.messages import channel_name, check_user_id, message_type
from actors.server.notifications._errors import InvalidNotificationError

USER_CHANNEL: Final = "user:{user_id}"
"""The template of a user's own channel, ``user:{user_id}``."""
USER_CHANNEL_GROUP: Final = "user:*"
"""The metrics channel group of every user's channel."""
BROADCAST_CHANNEL: Final = "notifications"
"""The channel of notifications for everybody."""
MAX_KIND_LENGTH: Final = 32  # characters
MAX_TITLE_LENGTH: Final = 200  # characters
MAX_BODY_LENGTH: Final = 2000  # characters
MAX_DATA_ENTRIES: Final = 32  # keys
NOTIFICATION_ID_PREFIX: Final = "n-"

_KIND: Final = re.compile(r"[A-Za-z0-9_\-]+")


def new_notification_id() -> str:
    """A fresh notification id: ``"n-"`` and 16 random hex digits."""
    return NOTIFICATION_ID_PREFIX + secrets.token_hex(8)


def user_channel(user_id: str) -> str:
    """The channel of one user's notifications, ``user:{user_id}``.

    Raises:
        InvalidIdentifierError: The user id breaks the rule of user ids.
    """
    return channel_name(USER_CHANNEL, user_id=check_user_id(user_id))


def check_kind(kind: str) -> str:
    """Return ``kind`` if it is 1 to 32 ASCII letters, digits, ``-`` and ``_``.

    Raises:
        InvalidNotificationError: It is not.
    """
    if not isinstance(kind, str) or not _KIND.fullmatch(kind) or len(kind) > MAX_KIND_LENGTH:
        raise InvalidNotificationError(
            f"kind must be 1 to {MAX_KIND_LENGTH} ASCII letters, digits, - and _: {kind!r:.60}"
        )
    return kind


def check_title(title: str) -> str:
    """Return ``title`` if it is a non-blank string of at most 200 characters.

    Raises:
        InvalidNotificationError: It is not.
    """
    if not isinstance(title, str) or not title.strip():
        raise InvalidNotificationError("title must be a non-blank str")
    if len(title) > MAX_TITLE_LENGTH:
        raise InvalidNotificationError(
            f"title is {len(title)} characters long; the limit is {MAX_TITLE_LENGTH}"
        )
    return title


def check_body(body: str) -> str:
    """Return ``body`` if it is a string of at most 2,000 characters (it may be empty).

    Raises:
        InvalidNotificationError: It is not.
    """
    if not isinstance(body, str):
        raise InvalidNotificationError(f"body must be a str, not {type(body).__name__}")
    if len(body) > MAX_BODY_LENGTH:
        raise InvalidNotificationError(
            f"body is {len(body)} characters long; the limit is {MAX_BODY_LENGTH}"
        )
    return body


def check_data(data: Mapping[str, str]) -> dict[str, str]:
    """Return a copy of ``data`` if it maps at most 32 strings to strings.

    Raises:
        InvalidNotificationError: It does not.
    """
    if not isinstance(data, Mapping):
        raise InvalidNotificationError(f"data must be a mapping, not {type(data).__name__}")
    if len(data) > MAX_DATA_ENTRIES:
        raise InvalidNotificationError(f"data has more than {MAX_DATA_ENTRIES} entries")
    copy = dict(data)
    if not all(isinstance(key, str) and isinstance(value, str) for key, value in copy.items()):
        raise InvalidNotificationError("data must map str to str")
    return copy


def _validate(check: Callable[[Any], object]) -> Callable[[object, object, Any], None]:
    """An attrs validator running one of the checks above."""

    def validator(_instance: object, _attribute: object, value: Any) -> None:
        check(value)

    return validator


def _validate_user_id(_instance: object, _attribute: object, value: str | None) -> None:
    if value is not None:
        check_user_id(value)


@message_type("notification")
@attrs.frozen(kw_only=True)
class Notification:
    """A notification for one user (``user_id``) or for everybody (``user_id`` is None).

    Its fields are checked when it is made, here or by the codec on receipt: a payload with a
    bad kind, title, body or data does not decode, and is skipped by the error policy.

    Attributes:
        id: A unique id, by default ``"n-"`` and 16 random hex digits.
        user_id: The user it is for; None for a broadcast.
        kind: A short word saying what it is about, such as ``"mention"`` or
            ``"announcement"``: 1 to 32 ASCII letters, digits, ``-`` and ``_``.
        title: One line for the user: 1 to 200 characters, not blank.
        body: More text, at most 2,000 characters.
        data: Strings for the client (a room to open, a link), at most 32 entries.
        sent_at: Wall-clock time of sending, in seconds since the epoch.

    Raises:
        InvalidNotificationError: The kind, title, body or data is invalid.
        InvalidChannelNameError: The user id could not name a channel.
    """

    id: str = attrs.field(factory=new_notification_id)
    user_id: str | None = attrs.field(default=None, validator=_validate_user_id)
    kind: str = attrs.field(validator=_validate(check_kind))
    title: str = attrs.field(validator=_validate(check_title))
    body: str = attrs.field(default="", validator=_validate(check_body))
    data: dict[str, str] = attrs.field(factory=dict, validator=_validate(check_data))
    sent_at: float = attrs.field(factory=time.time)

    @property
    def channel(self) -> str:
        """The channel it goes out on: its user's, or ``notifications`` for a broadcast."""
        return BROADCAST_CHANNEL if self.user_id is None else user_channel(self.user_id)
