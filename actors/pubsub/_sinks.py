"""Sinks: where the Redis reader hands subscription events, without ever waiting."""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from actors._errors import MailboxFullError
from actors.runtime import Overflow

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
        # The reader calls this for every message, so it is the ref's delivery function (the
        # mailbox's own put_nowait): one call per message. It returns False when the policy
        # dropped a message, and raises (WouldBlock, MailboxFullError, ActorStoppedError) when
        # it refused one; the subscription table counts both as drops.
        self.deliver: Callable[[SubscriptionEvent], bool] = ref.delivery()


class SubscriptionSink(MailboxSink):
    """The sink of a typed subscription: a ``MailboxSink`` that reports each refused message.

    The table calls ``dropped`` where the loss happens (in the Redis reader, off its hot path:
    only a full or closed mailbox gets there), so the loss reaches the metrics at once.
    """

    __slots__ = ("on_dropped", "overflow")

    def __init__(self, ref: ActorRef, on_dropped: Callable[[str], object]) -> None:
        super().__init__(ref)
        self.overflow = ref.statistics().mailbox.overflow
        self.on_dropped = on_dropped

    def dropped(self, error: BaseException | None) -> None:
        """Tell ``on_dropped`` why a message was lost: ``overflow_<policy>`` or
        ``subscriber_stopped``."""
        if isinstance(error, trio.ClosedResourceError):
            reason = "subscriber_stopped"
        elif isinstance(error, trio.WouldBlock):
            reason = f"overflow_{Overflow.BLOCK.value}"
        elif isinstance(error, MailboxFullError):
            reason = f"overflow_{Overflow.FAIL.value}"
        else:
            reason = f"overflow_{self.overflow.value}"
        self.on_dropped(reason)


class ChannelSink:
    """Delivers subscription events into a trio memory channel (for code that is not an actor).

    A full channel drops the new message; the subscription counts it. A channel closed at
    either end closes the sink for good: the broker removes it.
    """

    __slots__ = ("channel",)

    def __init__(self, channel: trio.MemorySendChannel[SubscriptionEvent]) -> None:
        self.channel = channel

    def deliver(self, event: SubscriptionEvent) -> bool:
        """Send ``event`` without waiting; False when the channel is full (the caller counts it)."""
        try:
            self.channel.send_nowait(event)
        except trio.WouldBlock:
            return False
        except (trio.BrokenResourceError, trio.ClosedResourceError) as error:
            raise trio.ClosedResourceError("the sink's channel is closed") from error
        return True
