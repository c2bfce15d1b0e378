"""Sinks: where the Redis reader hands subscription events, without ever waiting."""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from collections.abc import Callable

    from actors.redis import SubscriptionEvent
    from actors.runtime import ActorRef


class MailboxSink:
    """Delivers subscription events into an actor's mailbox, under its overflow policy.

    The reader that feeds every subscription never waits for one actor: a full mailbox
    applies its policy (drop oldest, drop newest, fail, stop the actor) and the loss is counted
    by the mailbox and by the subscription. A mailbox with the ``block`` policy cannot push back
    on Redis, so here a full one drops the new message.
    """

    __slots__ = ("deliver", "ref")

    def __init__(self, ref: ActorRef) -> None:
        self.ref = ref
        # The reader calls this for every message, so it is the mailbox's own put_nowait: one
        # call per message. It returns False when the policy dropped a message, and raises
        # (WouldBlock, MailboxFullError, ActorStoppedError) when it refused one; the
        # subscription table counts both as drops.
        self.deliver: Callable[[SubscriptionEvent], bool] = ref._mailbox.put_nowait


class ChannelSink:
    """Delivers subscription events into a trio memory channel (for code that is not an actor).

    A full channel drops the new message; the subscription counts it.
    """

    __slots__ = ("channel",)

    def __init__(self, channel: trio.MemorySendChannel[SubscriptionEvent]) -> None:
        self.channel = channel

    def deliver(self, event: SubscriptionEvent) -> bool:
        try:
            self.channel.send_nowait(event)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        return True
