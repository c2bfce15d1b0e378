"""``PresenceBatcher``: presence changes to sessions at most once per interval per scope.

Every change of who is online goes to every session that shows the scope: a storm of joins (a
server restart, a class logging in at nine) would be users times sessions frames, enough to fill
healthy sessions' send queues. The batcher keeps, per scope, the last change of each user
since the previous flush and sends one ``presence_diff`` for all of them, or one
``presence_state`` if the tracker resynchronized meanwhile. The last change wins (a user who
joined then left is sent as left), so a client that applies diffs to the state it was given,
in order, ends up with the truth whatever the timing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import attrs
import trio

from actors.server.gateway import _protocol as protocol

if TYPE_CHECKING:
    from collections.abc import Callable

    from actors.presence import PresenceChange
    from actors.runtime import ActorContext

DEFAULT_PRESENCE_INTERVAL: Final = 0.1  # seconds


@attrs.define
class _Pending:
    push: Callable[[str], object]
    online: dict[str, bool] = attrs.field(factory=dict)
    state: set[str] | None = None
    """Who is online, once the tracker resynchronized (the changes since applied)."""


class PresenceBatcher:
    """Collects presence changes per scope; its actor (``run_presence_batcher``) flushes them."""

    def __init__(self, interval: float = DEFAULT_PRESENCE_INTERVAL) -> None:
        self.interval = interval
        self._pending: dict[str, _Pending] = {}
        self._wake = trio.Event()

    def add(self, change: PresenceChange, push: Callable[[str], object]) -> None:
        """Remember a change; ``push`` sends a frame to the scope's sessions. Never blocks."""
        pending = self._pending.get(change.scope)
        if pending is None:
            pending = self._pending[change.scope] = _Pending(push)
        pending.push = push  # a scope's newest hub is the one to tell
        if change.online is not None:  # a resync: the whole state goes out
            pending.state = set(change.online)
        elif pending.state is not None:
            pending.state -= change.left
            pending.state |= change.joined
        else:
            for user in change.joined:
                pending.online[user] = True
            for user in change.left:
                pending.online[user] = False
        self._wake.set()

    def flush(self) -> None:
        """Send what is pending now."""
        pending, self._pending = self._pending, {}
        for scope, changes in pending.items():
            if changes.state is not None:
                changes.push(protocol.presence_state_frame(scope, changes.state))
            else:
                joined = [user for user, online in changes.online.items() if online]
                left = [user for user, online in changes.online.items() if not online]
                changes.push(protocol.presence_diff_frame(scope, joined, left))

    async def run(self) -> None:
        """Flush at most once per ``interval``, and only when something changed."""
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            await trio.sleep(self.interval)
            self.flush()


async def run_presence_batcher(context: ActorContext, batcher: PresenceBatcher) -> None:
    """The batcher's actor."""
    await batcher.run()
