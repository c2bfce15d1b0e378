"""``Notifier``: publishes notifications on per-user channels and on ``notifications``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from actors.pubsub import History
from actors.server.notifications._messages import (
    BROADCAST_CHANNEL,
    USER_CHANNEL_GROUP,
    Notification,
    user_channel,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from actors.pubsub import ErrorPolicy, Position, PubSub, RecoveryEvent, SubscriptionHandle
    from actors.redis import ConnectionLost, Resubscribed

USER_CHANNELS: Final = "user:*"
"""The pattern of every user's channel: what the notifier keeps history for."""
DEFAULT_USER_HISTORY: Final = History(size=100, ttl=7 * 24 * 3600.0)
"""A user's last 100 notifications, for a week after the last one."""


class Notifier:
    """Sends notifications to one user or to everybody, and subscribes to them.

    A user's notifications go out on ``user:{user_id}`` only; broadcasts go out on
    ``notifications``. Every check is made before anything is published. Users' channels keep
    history (``pubsub.keep_history("user:*", ...)``, unless the ``PubSub``'s settings name
    them already): a subscriber that was away gets what was sent meanwhile (``recover``,
    ``since``). Every process that sends or follows users' notifications makes a ``Notifier``.

    Args:
        pubsub: Where notifications are published (``memory://`` or Redis).
        history: How much of each user's notifications is kept (the last 100, for a week).
    """

    def __init__(self, pubsub: PubSub, *, history: History = DEFAULT_USER_HISTORY) -> None:
        self.pubsub = pubsub
        if pubsub.history_rules.history_for(user_channel("someone")) is None:
            pubsub.keep_history(USER_CHANNELS, history)

    async def notify(
        self,
        user_id: str,
        *,
        kind: str,
        title: str,
        body: str = "",
        data: Mapping[str, str] | None = None,
    ) -> Notification:
        """Publish a notification on one user's channel, ``user:{user_id}``.

        Args:
            user_id: Who it is for (see ``check_user_id``).
            kind: What it is about, such as ``"mention"``: 1 to 32 ASCII letters, digits,
                ``-`` and ``_``.
            title: 1 to 200 characters, not blank.
            body: At most 2,000 characters.
            data: Strings for the client, at most 32 entries.

        Returns:
            The notification as published.

        Raises:
            InvalidIdentifierError: The user id breaks the rule of user ids.
            InvalidNotificationError: The kind, title, body or data is invalid.
            RedisConnectionError: The publish failed after its retries.
        """
        channel = user_channel(user_id)
        notification = Notification(
            user_id=user_id, kind=kind, title=title, body=body, data=dict(data or {})
        )
        await self.pubsub.publish(channel, notification, group=USER_CHANNEL_GROUP)
        return notification

    async def broadcast(
        self,
        *,
        kind: str,
        title: str,
        body: str = "",
        data: Mapping[str, str] | None = None,
    ) -> Notification:
        """Publish a notification for everybody on ``notifications`` (its ``user_id`` is None).

        Args:
            kind: As for ``notify``, such as ``"announcement"``.
            title: 1 to 200 characters, not blank.
            body: At most 2,000 characters.
            data: Strings for the client, at most 32 entries.

        Returns:
            The notification as published.

        Raises:
            InvalidNotificationError: The kind, title, body or data is invalid.
            RedisConnectionError: The publish failed after its retries.
        """
        notification = Notification(kind=kind, title=title, body=body, data=dict(data or {}))
        await self.pubsub.publish(BROADCAST_CHANNEL, notification)
        return notification

    async def subscribe_user(
        self,
        user_id: str,
        handler: Callable[..., Awaitable[object]],
        *,
        error_policy: ErrorPolicy | None = None,
        on_gap: Callable[[ConnectionLost | Resubscribed], Awaitable[object]] | None = None,
        recover: bool = False,
        since: Position | None = None,
        on_recovery: Callable[[RecoveryEvent], Awaitable[object]] | None = None,
    ) -> SubscriptionHandle:
        """Call ``handler`` for every notification sent to one user (by any process).

        Args:
            user_id: The user, validated as for ``notify``.
            handler: ``async def handler(notification)``, or ``(notification, channel,
                position)`` for each one's position in the user's history.
            error_policy: Default: the ``PubSub``'s.
            on_gap: Called with ``ConnectionLost`` and ``Resubscribed``: notifications sent
                in between are lost, unless ``recover``.
            recover: Get every notification once and in order across gaps, from the user's
                history (see ``PubSub.subscribe``).
            since: With ``recover``: the position of the last notification the subscriber got
                (a reconnecting browser's): what was sent since comes first.
            on_recovery: With ``recover``: told ``Recovered`` and ``Unrecoverable``.

        Raises:
            InvalidIdentifierError: The user id breaks the rule of user ids.
        """
        return await self.pubsub.subscribe(
            user_channel(user_id),
            handler,
            message_type=Notification,
            error_policy=error_policy,
            on_gap=on_gap,
            recover=recover,
            since=since,
            on_recovery=on_recovery,
        )

    async def subscribe_broadcast(
        self,
        handler: Callable[[Notification], Awaitable[object]],
        *,
        error_policy: ErrorPolicy | None = None,
        on_gap: Callable[[ConnectionLost | Resubscribed], Awaitable[object]] | None = None,
    ) -> SubscriptionHandle:
        """Call ``handler`` for every broadcast notification (``notifications``).

        Args:
            handler: ``async def handler(notification)``.
            error_policy: Default: the ``PubSub``'s.
            on_gap: Called with ``ConnectionLost`` and ``Resubscribed``.
        """
        return await self.pubsub.subscribe(
            BROADCAST_CHANNEL,
            handler,
            message_type=Notification,
            error_policy=error_policy,
            on_gap=on_gap,
        )
