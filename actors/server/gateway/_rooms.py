"""``RoomHub``: a room's presence in this process and its fan-out to the local sessions in it.

One hub actor runs per room with at least one local session, under the hubs supervisor
(simple_one_for_one, temporary). It holds the room's presence tracker and one subscription to
each of ``chat:{room}`` and ``typing:{room}``, however many local sessions are in the room:
each event is encoded to a frame once and pushed to every session. The room's messages are
followed with ``recover=True``: a gap in Pub/Sub is filled from the room's history, so every
session gets every message once and in order; when the history cannot fill it, the sessions
get the room's newest messages again. When its last session leaves, the hub stops.
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Final

import attrs
import trio

from actors._errors import ActorsError
from actors.messages import Message, channel_name, message_type
from actors.presence import open_presence_tracker
from actors.pubsub import Recovered
from actors.runtime import Ask
from actors.server.gateway import _protocol as protocol
from actors.server.gateway._wire import text_frame

if TYPE_CHECKING:
    from actors.presence import PresenceChange, PresenceTracker
    from actors.pubsub import Position, RecoveryEvent
    from actors.runtime import ActorContext
    from actors.server.chat import ChatMessage
    from actors.server.gateway._gateway import Gateway
    from actors.server.gateway._session import Session

logger = logging.getLogger(__name__)

TYPING_CHANNEL: Final = "typing:{room}"
TYPING_SHARDED: Final = True
"""Typing notices travel on shard channels: on a cluster they stay in the room's shard."""


@message_type("chat.typing")
@attrs.frozen(kw_only=True)
class TypingNotice(Message):
    """A user types in a room; published on ``typing:{room}``, never stored."""

    room: str
    user_id: str


def typing_channel(room: str) -> str:
    """``typing:{room}`` with the room validated and as its hash tag (``typing:{lobby}``): a
    shard channel in the room's slot."""
    return channel_name(TYPING_CHANNEL, room=room, hash_tag="room")


@attrs.frozen
class Attach:
    session: Session


@attrs.frozen
class ResyncPresence:
    """Load the room's presence snapshot from the store again (as after a gap): the sessions
    get the whole state."""


@attrs.frozen
class Attached:
    """A hub's answer to ``Attach``: who was online in the room once the session joined.

    An immutable value, so that no caller holds the hub's own state.
    """

    room: str
    online: frozenset[str]


@attrs.frozen
class Detach:
    session: Session
    asked: bool = False
    """The user left the room (no grace window), rather than the session ending."""


class RoomHub:
    """One room as this process sees it."""

    def __init__(self, room: str, gateway: Gateway) -> None:
        self.room = room
        self.gateway = gateway
        self.presence_batcher = gateway.presence_batcher
        self.sessions: set[Session] = set()

    def _push(self, frame: str, *, skip_user: str | None = None) -> None:
        for session in list(self.sessions):
            if session.user_id != skip_user:
                session.push(frame)

    async def on_message(
        self, message: ChatMessage, channel: str, position: Position | None
    ) -> None:
        # Made ready for the wire once, for every session of the room.
        frame = text_frame(protocol.message_frame(message, position))
        for session in list(self.sessions):
            session.push_room_message(self.room, position, frame)
        # Let the sessions' send loops drain before the next message of a burst: a batch
        # pushed without a pause could fill a healthy client's queue and close it as slow.
        await trio.lowlevel.checkpoint()

    async def on_recovery(self, event: RecoveryEvent) -> None:
        """A gap the room's history could not fill: the sessions get its newest messages."""
        if isinstance(event, Recovered):
            return
        try:
            history = await self.gateway.chat.read(self.room)
        except ActorsError as error:
            logger.warning("room %r: its history could not be read again: %s", self.room, error)
            return
        for session in list(self.sessions):
            session.room_reset(self.room, history)

    async def on_typing(self, notice: TypingNotice) -> None:
        self._push(protocol.typing_frame(self.room, notice.user_id), skip_user=notice.user_id)

    def on_presence(self, change: PresenceChange) -> None:
        self.presence_batcher.add(change, self._push)


async def run_room_hub(context: ActorContext, gateway: Gateway, room: str) -> None:
    """The hub's actor: attaches and detaches sessions until the room has none here.

    If the hub ends for any other reason (a crash, the server stopping), the sessions still in
    it get ``left`` for the room: a client that still wants it joins again.
    """
    hub = RoomHub(room, gateway)
    try:
        async with AsyncExitStack() as stack:  # leaving it: subscriptions first, then presence
            tracker = await stack.enter_async_context(
                open_presence_tracker(gateway.pubsub, room, settings=gateway.settings.presence)
            )
            await tracker.watch(hub.on_presence)
            messages = await gateway.chat.subscribe(
                room, hub.on_message, recover=True, on_recovery=hub.on_recovery
            )
            stack.push_async_callback(messages.close)
            typing = await gateway.pubsub.subscribe(
                typing_channel(room),
                hub.on_typing,
                message_type=TypingNotice,
                sharded=TYPING_SHARDED,
            )
            stack.push_async_callback(typing.close)
            async for request in context:
                await _serve(hub, tracker, request)
                if not hub.sessions:
                    break
    finally:
        gateway.hubs.forget(room, context.ref)
        for session in hub.sessions:
            session.room_lost(room)


async def _serve(hub: RoomHub, tracker: PresenceTracker, request: object) -> None:
    """Attach or detach a session; an attach asked is answered with ``Attached``."""
    message = request.message if isinstance(request, Ask) else request
    answer: Attached | None = None
    try:
        if isinstance(message, Attach):
            session = message.session
            if session not in hub.sessions:  # attached again on a join: only the answer
                hub.sessions.add(session)
                await tracker.join(session.user_id, session.session_id, session.metadata)
            # Users in the room across every process, from the tracker's state.
            online = frozenset(await tracker.online_users())
            answer = Attached(room=hub.room, online=online)
        elif isinstance(message, ResyncPresence):
            await tracker.resync()
        elif isinstance(message, Detach):
            hub.sessions.discard(message.session)
            await tracker.leave(
                message.session.user_id,
                message.session.session_id,
                grace=0.0 if message.asked else None,
            )
    except ActorsError as error:
        logger.warning("room %r: %r failed: %s", hub.room, message, error)
        if isinstance(message, Attach):
            hub.sessions.discard(message.session)
        if isinstance(request, Ask):
            request.fail(error)
        return
    if isinstance(request, Ask):
        request.reply(answer)
