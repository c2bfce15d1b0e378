"""``Session``: one WebSocket connection, run as a temporary actor under the sessions supervisor.

A session has three tasks: the receive loop reads client frames and acts on them one at a time,
in order; the send loop writes the session's outbox to the socket; the keepalive pings. Events
for the session (room messages, presence, notifications) are pushed into its outbox with
``push``, which never blocks: the outbox is bounded, and a client too slow to drain it is closed
with 4002 instead of holding the pushers up or growing memory.
"""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from typing import TYPE_CHECKING, Final, TypeVar

import trio
import trio_websocket

from actors._errors import ActorsError, InvalidIdentifierError
from actors.messages import check_user_id
from actors.pubsub import Position
from actors.runtime.lowlevel import WaitSlot
from actors.server.chat import ChatError, InvalidChatMessageError, RateLimitedError
from actors.server.gateway import _protocol as protocol
from actors.server.gateway._protocol import (
    Hello,
    HistoryRequest,
    Join,
    Leave,
    Ping,
    ProtocolError,
    Say,
    Typing,
)
from actors.server.gateway._room_feeds import JoinBacklogFullError, RoomFeeds
from actors.server.gateway._wire import MAX_BATCH_BYTES, FrameWriter, text_frame

T = TypeVar("T")

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from actors.pubsub import SubscriptionHandle
    from actors.runtime import ActorContext
    from actors.server.chat import ChatMessage, RoomHistory
    from actors.server.gateway._gateway import Gateway
    from actors.server.notifications import Notification

logger = logging.getLogger(__name__)

CLOSE_NORMAL: Final = 1000
CLOSE_GOING_AWAY: Final = 1001
CLOSE_ABNORMAL: Final = 1006  # the connection ended without a close frame (never sent)
CLOSE_INTERNAL_ERROR: Final = 1011
CLOSE_UNAUTHORIZED: Final = 4001
CLOSE_TOO_SLOW: Final = 4002
CLOSE_FLOOD: Final = 4003
CLOSE_NO_PONG: Final = 4004
MAX_MENTIONS: Final = 5  # users notified per message at most
MENTION_BODY_LENGTH: Final = 200  # characters of the message quoted in a mention's notification
MAX_AGENT_LENGTH: Final = 200
_MENTION: Final = re.compile(r"(?<![\w@])@([A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*)")


class _Close:
    """The outbox's last item: close the socket with this code."""

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


class Session:
    """The state of one connection; ``run_session`` is its actor."""

    def __init__(
        self,
        gateway: Gateway,
        connection: trio_websocket.WebSocketConnection,
        user_id: str,
        agent: str = "",
        allowed_rooms: frozenset[str] | None = None,
    ) -> None:
        self.gateway = gateway
        self.settings = gateway.settings
        self.connection = connection
        self.user_id = user_id
        self.allowed_rooms = allowed_rooms
        """The rooms the user's token lets them join; None: any room."""
        self.session_id = gateway.new_session_id()
        self.metadata = {
            "server": gateway.settings.server_name,
            "agent": agent[:MAX_AGENT_LENGTH],
            "since": f"{time.time():.0f}",
        }
        """This connection's presence metadata: each tab or device has its own."""
        self.rooms: set[str] = set()
        """The rooms this session is in (attached to their hubs)."""
        self.feeds = RoomFeeds[bytes](backlog=self.settings.send_queue_size)
        """Where the client stands in each room's history."""
        self.close_code: int | None = None
        self.notifications: SubscriptionHandle | None = None
        """This user's notification subscription, while the session runs."""
        self.notifications_since: Position | None = None
        """The last notification's position the client had when it connected (a reconnect)."""
        # The outbox: frames ready for the wire, and the one task that drains it (parked when it
        # is empty). It is on every frame's path, so it is lighter than a memory channel.
        self._outbox: deque[bytes | _Close] = deque()
        self._writer = FrameWriter(connection)
        self._sender = WaitSlot()
        self._closing = trio.Event()
        self.stopped = trio.Event()
        """Set once the session's actor has ended and cleaned up."""
        self._typing_at: dict[str, float] = {}
        self._window_start = 0.0
        self._frames_in_window = 0
        self._refused_in_a_row = 0

    def __repr__(self) -> str:
        return f"<Session {self.session_id} of {self.user_id!r}>"

    @property
    def queued(self) -> int:
        """Frames waiting in the outbox for the client (at most ``send_queue_size``)."""
        return len(self._outbox)

    # --- what other tasks call -----------------------------------------------------------

    def push(self, frame: str) -> None:
        """Queue a frame for the client without blocking; a full outbox closes with 4002."""
        self.push_wire(text_frame(frame))

    def push_wire(self, frame: bytes) -> None:
        """``push`` for a frame made ready for the wire (``text_frame``), as a room's hub makes
        each message's once for all its sessions."""
        if self.close_code is not None:
            return
        if len(self._outbox) >= self.settings.send_queue_size:
            self.gateway.metrics.slow_sessions.inc()
            logger.info("%r: send queue full, closing as too slow", self)
            self.close(CLOSE_TOO_SLOW, "too slow")
            return
        self._enqueue(frame)

    def _enqueue(self, item: bytes | _Close) -> None:
        self._outbox.append(item)
        self._sender.wake()

    async def _next_item(self) -> bytes | _Close:
        """The next item of the outbox, waiting (parked) while it is empty: the frames queued
        behind each other joined into one write (up to ``MAX_BATCH_BYTES``), or the close."""
        outbox = self._outbox
        if not outbox:
            await self._sender.wait()
        item = outbox.popleft()
        if isinstance(item, _Close) or not outbox or not self._writer.direct:
            return item
        batch, size = [item], len(item)
        while outbox and size < MAX_BATCH_BYTES:
            following = outbox[0]
            if isinstance(following, _Close):
                break
            outbox.popleft()
            batch.append(following)
            size += len(following)
        return b"".join(batch)

    def close(self, code: int, reason: str) -> None:
        """Close the session: queued frames are dropped, then the socket is closed with ``code``.

        The frame being written may still finish; if the client does not let it within
        ``settings.close_timeout``, the connection is dropped.
        """
        if self.close_code is not None:
            return
        self.close_code = code
        self._outbox.clear()  # what was queued is dropped: the close goes next
        self._enqueue(_Close(code, reason))
        self._closing.set()

    def push_room_message(self, room: str, position: Position | None, frame: bytes) -> None:
        """Queue a room's live message (made ready for the wire), unless the client has it (or
        a join holds it back)."""
        try:
            frames = self.feeds.live(room, position, frame)
        except JoinBacklogFullError:
            self.gateway.metrics.slow_sessions.inc()
            logger.info("%r: too many messages in %r while joining it, closing", self, room)
            self.close(CLOSE_TOO_SLOW, "too slow")
            return
        for ready in frames:
            self.push_wire(ready)

    def room_reset(self, room: str, history: RoomHistory) -> None:
        """The room's hub lost messages its history could not give back: the client gets the
        room's newest messages again, to replace what it holds."""
        if room in self.rooms:
            self.push(protocol.joined_frame(room, history))
            self.feeds.reset(room, history.position)

    async def on_notification(
        self, notification: Notification, channel: str, position: Position | None
    ) -> None:
        """Queue a notification for this session's browser, with its position."""
        self.push(protocol.notification_frame(notification, position))

    # --- the actor's tasks ---------------------------------------------------------------

    async def send_loop(self, done: trio.CancelScope) -> None:
        """Write queued frames in order until the close frame is sent, then cancel ``done``."""
        writer = self._writer
        try:
            while True:
                item = await self._next_item()
                if isinstance(item, _Close):
                    await self.connection.aclose(item.code, item.reason)
                    break
                await writer.write(item)
        except trio_websocket.ConnectionClosed:
            # The client closed. The receive loop ends the session once it has handled the
            # frames the client sent before its close (the leaves of a sign-out, say):
            # cancelling here could drop them.
            return
        done.cancel()

    async def close_deadline(self, done: trio.CancelScope) -> None:
        """Once closing began, allow the handshake ``close_timeout`` s, then cancel ``done``."""
        await self._closing.wait()
        await trio.sleep(self.settings.close_timeout)
        done.cancel()

    async def keepalive_loop(self) -> None:
        """Ping every ``ping_interval``; a pong later than ``ping_timeout`` closes the session."""
        while True:
            await trio.sleep(self.settings.ping_interval)
            with trio.move_on_after(self.settings.ping_timeout) as scope:
                try:
                    await self.connection.ping()
                except trio_websocket.ConnectionClosed:
                    return
            if scope.cancelled_caught:
                self.close(CLOSE_NO_PONG, "no pong")
                return

    async def receive_loop(self, done: trio.CancelScope) -> None:
        """Read frames from the browser and handle each until the session closes."""
        try:
            while self.close_code is None:
                data = await self.connection.get_message()
                if self._flooding():
                    self.close(CLOSE_FLOOD, "flood")
                    return
                await self.handle(data)
        except trio_websocket.ConnectionClosed as closed:
            if self.close_code is None:
                self.close_code = closed.reason.code if closed.reason else CLOSE_ABNORMAL
                done.cancel()

    def _flooding(self) -> bool:
        now = trio.current_time()
        if now - self._window_start >= 1.0:
            self._window_start, self._frames_in_window = now, 0
        self._frames_in_window += 1
        return self._frames_in_window > self.settings.max_frames_per_second

    # --- client frames -------------------------------------------------------------------

    async def handle(self, data: str | bytes) -> None:
        """Act on one client frame; a refused one gets an ``error`` frame."""
        metrics = self.gateway.metrics
        try:
            frame = protocol.parse_client_frame(data)
            metrics.frames_received.labels(type(frame).__name__.lower()).inc()
            await self._act(frame)
        except ProtocolError as error:
            metrics.frames_refused.labels(error.code).inc()
            logger.debug("%r refused a frame: %s %s", self, error.code, error.message)
            self.push(protocol.error_frame(error.code, error.message, error.ref))
            self._refused_in_a_row += 1
            if self._refused_in_a_row >= self.settings.max_refused_in_a_row:
                self.close(CLOSE_FLOOD, "too many refused frames")
            return
        self._refused_in_a_row = 0

    async def _act(self, frame: protocol.ClientFrame) -> None:
        match frame:
            case Say(room=room, text=text, ref=ref):
                self._check_joined(room, ref)
                message = await self._say(room, text, ref)
                if ref is not None:
                    self.push(
                        protocol.encode({"type": "ack", "ref": ref, "sent_at": message.sent_at})
                    )
                await self._notify_mentions(message)
            case Typing(room=room):
                self._check_joined(room, None)
                now = trio.current_time()
                if now - self._typing_at.get(room, -1e9) >= self.settings.typing_interval:
                    self._typing_at[room] = now
                    await self._unavailable_on_error(
                        self.gateway.publish_typing(room, self.user_id)
                    )
            case Join(room=room, ref=ref, epoch=epoch, offset=offset):
                since = None if epoch is None or offset is None else Position(epoch, offset)
                await self.join(room, ref, since)
            case Leave(room=room, ref=ref):
                self._check_joined(room, ref)
                await self.leave(room, asked=True)
                self.push(protocol.encode({"type": "left", "room": room}))
            case HistoryRequest(room=room, limit=limit, ref=ref):
                self._check_joined(room, ref)
                history = await self._unavailable_on_error(
                    self.gateway.chat.read(room, limit=limit), ref
                )
                self.push(protocol.history_frame(room, history.messages))
            case Ping(ref=ref):
                self.push(protocol.encode({"type": "pong", "ref": ref}))
            case Hello():
                self.close(CLOSE_UNAUTHORIZED, "hello was already said")

    def _check_joined(self, room: str, ref: str | None) -> None:
        if room not in self.rooms:
            raise ProtocolError("not_joined", f"join {room!r} first", ref)

    async def _say(self, room: str, text: str, ref: str | None) -> ChatMessage:
        try:
            return await self.gateway.chat.send(room, self.user_id, text)
        except InvalidChatMessageError as error:
            raise ProtocolError("invalid_text", str(error), ref) from None
        except RateLimitedError as error:
            raise ProtocolError("rate_limited", str(error), ref) from None
        except (ChatError, ActorsError) as error:
            logger.warning("%r: a message to %r failed: %s", self, room, error)
            raise ProtocolError("unavailable", "the message could not be sent", ref) from None

    async def _unavailable_on_error(self, call: Awaitable[T], ref: str | None = None) -> T:
        try:
            return await call
        except ActorsError as error:
            logger.warning("%r: a request failed: %s", self, error)
            raise ProtocolError(
                "unavailable", "the server could not do it; try again", ref
            ) from None

    async def _notify_mentions(self, message: ChatMessage) -> None:
        users: list[str] = []
        for match in _MENTION.finditer(message.text):
            user = match.group(1)
            if user != self.user_id and user not in users and _is_user_id(user):
                users.append(user)
            if len(users) == MAX_MENTIONS:
                break
        for user in users:
            try:
                await self.gateway.notifier.notify(
                    user,
                    kind="mention",
                    title=f"{self.user_id} mentioned you in {message.room}",
                    body=message.text[:MENTION_BODY_LENGTH],
                    data={"room": message.room},
                )
            except ActorsError as error:
                logger.warning("%r: the mention of %r was not sent: %s", self, user, error)

    async def join(self, room: str, ref: str | None, since: Position | None = None) -> None:
        """Enter a room (again): ``joined`` with its history (what came after ``since``, the
        client's last position, or the newest), then its presence state."""
        if self.allowed_rooms is not None and room not in self.allowed_rooms:
            raise ProtocolError("room_not_allowed", f"your token does not allow {room!r}", ref)
        if room not in self.rooms and len(self.rooms) >= self.settings.max_rooms_per_session:
            raise ProtocolError(
                "too_many_rooms", f"at most {self.settings.max_rooms_per_session} rooms", ref
            )
        # Live messages that come from the attach on wait for ``joined``: those the history
        # read holds are dropped, the others follow it, so the client gets each one once.
        self.feeds.start_join(room)
        try:
            # Attached again on a repeated join: the hub only answers who is online.
            online = (await self.gateway.attach(room, self)).online
            self.rooms.add(room)
            history = await self.gateway.chat.read(room, since=since)
        except ActorsError as error:
            logger.warning("%r: joining %r failed: %s", self, room, error)
            await self.leave(room)
            self.feeds.forget(room)
            raise ProtocolError("unavailable", f"could not join {room!r}; try again", ref) from None
        self.push(protocol.joined_frame(room, history))
        for frame in self.feeds.joined(room, history.position):
            self.push_wire(frame)
        self.push(protocol.presence_state_frame(room, online))

    async def leave(self, room: str, *, asked: bool = False) -> None:
        """Leave a room, if in it; ``asked``: at the user's request, so at once, no grace."""
        self.feeds.forget(room)
        if room in self.rooms:
            self.rooms.discard(room)
            await self.gateway.detach(room, self, asked=asked)

    def room_lost(self, room: str) -> None:
        """The room's hub ended without this session leaving: tell the client."""
        self.feeds.forget(room)
        if room in self.rooms:
            self.rooms.discard(room)
            self.push(protocol.encode({"type": "left", "room": room}))


def _is_user_id(name: str) -> bool:
    """Whether a mentioned name may be a user's (the one rule of ``actors.messages``)."""
    try:
        check_user_id(name)
    except InvalidIdentifierError:
        return False
    return True


async def run_session(context: ActorContext, session: Session) -> None:
    """The session's actor: runs its tasks until the client or the server closes."""
    gateway = session.gateway
    code, reason = CLOSE_GOING_AWAY, "server shutting down"
    try:
        async with trio.open_nursery() as nursery:
            await gateway.session_started(session)
            nursery.start_soon(session.send_loop, nursery.cancel_scope)
            nursery.start_soon(session.close_deadline, nursery.cancel_scope)
            nursery.start_soon(session.keepalive_loop)
            nursery.start_soon(session.receive_loop, nursery.cancel_scope)
    except Exception:
        # A bug, not bad input (bad input gets error frames): the actor crashes (temporary, not
        # restarted) and the client learns it was the server's fault; other sessions go on.
        code, reason = CLOSE_INTERNAL_ERROR, "internal error"
        raise
    finally:
        with trio.CancelScope(shield=True):
            if session.close_code is None:  # stopped by the server, or crashed
                session.close_code = code
                with trio.move_on_after(1):
                    await session.connection.aclose(code, reason)
            with trio.move_on_after(session.settings.close_timeout):
                await gateway.session_ended(session)
            gateway.sessions.discard(session)
            gateway.metrics.sessions_closed.labels(str(session.close_code)).inc()
            session.stopped.set()
