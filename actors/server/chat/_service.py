"""``ChatService``: one ``RoomActor`` per active room, under a dynamic rooms supervisor.

The tree::

    chat supervisor (one_for_one)
    ├── timers          wakes rooms when their idle deadline passes
    └── rooms supervisor (simple_one_for_one)
        └── RoomActor   one per active room, transient: stops itself when idle

A room actor is spawned by the first ``send`` or history read for its room, takes that room's
publishes and reads one at a time, and stops itself (a normal exit, so its transient spec is
not restarted) once ``idle_timeout`` seconds pass without either. A room's history is its
channel's: each publish numbers the message and appends it to the channel's stream in one
script (see ``actors.server.chat._history``).
"""

from __future__ import annotations

import contextlib
import logging
import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final

import attrs
import trio

from actors._errors import ActorsError
from actors.messages import check_user_id
from actors.runtime import Actor
from actors.server.chat._history import (
    CHAT_CHANNELS,
    DEFAULT_HISTORY_TTL,
    RoomHistory,
    chat_history,
    newest,
    since,
)
from actors.server.chat._messages import (
    CHAT_SHARDED,
    MAX_TEXT_LENGTH,
    ChatMessage,
    check_text,
    room_channel,
)
from actors.server.chat._rate import RateLimit, RateLimiter
from actors.supervision import (
    ChildSpec,
    KeyedChildren,
    Restart,
    Strategy,
    Supervisor,
    SupervisorSpec,
    open_supervisor,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from actors.pubsub import Position, PubSub, RecoveryEvent, SubscriptionHandle
    from actors.runtime import ActorContext, ActorRef, ActorSystem, ExitReason

logger = logging.getLogger(__name__)

DEFAULT_HISTORY_SIZE: Final = 50
DEFAULT_IDLE_TIMEOUT: Final = 300.0  # seconds
ROOMS_CHILD_ID: Final = "rooms"
TIMERS_CHILD_ID: Final = "timers"


@attrs.frozen
class _Post:
    message: ChatMessage


@attrs.frozen
class _History:
    limit: int
    since: Position | None = None


@attrs.frozen
class _IdleCheck:
    pass


@attrs.frozen
class _Wake:
    ref: ActorRef
    deadline: float


@attrs.frozen
class _Failed:
    error: ActorsError


class _Shared:
    """What every room actor of one service uses."""

    def __init__(
        self,
        pubsub: PubSub,
        history_size: int,
        idle_timeout: float,
    ) -> None:
        self.pubsub = pubsub
        self.history_size = history_size
        self.idle_timeout = idle_timeout
        self.rooms: KeyedChildren[str] | None = None
        self.timers: ActorRef | None = None

    def wake_at(self, ref: ActorRef, deadline: float) -> None:
        """Have the timers actor send ``ref`` an idle check at ``deadline``."""
        if self.timers is None:
            return
        try:
            self.timers.tell_nowait(_Wake(ref, deadline))
        except (ActorsError, trio.WouldBlock) as error:
            logger.warning("chat idle timer for %s not set: %s", ref, error)


class RoomActor(Actor):
    """One active room: publishes on ``chat:{room}`` (kept in its history) and reads it.

    Stops itself after ``idle_timeout`` seconds without a message or a history request.
    """

    def __init__(self, shared: _Shared, room: str) -> None:
        self.shared = shared
        self.room = room
        self.channel = room_channel(room)
        self.deadline = 0.0

    async def started(self) -> None:
        """Start the idle clock."""
        self.deadline = trio.current_time() + self.shared.idle_timeout
        self.shared.wake_at(self.context.ref, self.deadline)

    async def receive(self, message: object) -> object:
        """Handle a post, a history request or an idle check."""
        if isinstance(message, _IdleCheck):
            if trio.current_time() >= self.deadline:
                self.context.stop()
            else:
                self.shared.wake_at(self.context.ref, self.deadline)
            return None
        self.deadline = trio.current_time() + self.shared.idle_timeout
        try:
            if isinstance(message, _Post):
                return await self.shared.pubsub.publish(
                    self.channel, message.message, group=CHAT_CHANNELS, sharded=CHAT_SHARDED
                )
            if isinstance(message, _History):
                store = self.shared.pubsub.history_store
                if message.since is None:
                    return await newest(store, self.room, message.limit)
                return await since(store, self.room, message.since, message.limit)
        except ActorsError as error:
            # Returned, not raised: a Redis outage fails the caller, not the supervisor.
            return _Failed(error)
        raise TypeError(f"unexpected message for a chat room: {message!r}")

    async def stopping(self, reason: ExitReason) -> None:
        """Forget this room so that the next message spawns a fresh actor."""
        if self.shared.rooms is not None:
            self.shared.rooms.forget(self.room, self.context.ref)


async def _wake(ref: ActorRef, deadline: float) -> None:
    await trio.sleep_until(deadline)
    # Stopped already, or too busy to be idle.
    with contextlib.suppress(ActorsError, trio.WouldBlock):
        ref.tell_nowait(_IdleCheck())


async def _run_timers(context: ActorContext) -> None:
    """The timers actor: one sleeping task per requested wake-up."""
    async with trio.open_nursery() as nursery:
        async for request in context:
            if isinstance(request, _Wake):
                nursery.start_soon(_wake, request.ref, request.deadline)


class ChatService:
    """Chat rooms of one process. Open it with ``open_chat_service``."""

    def __init__(
        self,
        shared: _Shared,
        rooms: Supervisor,
        rate: RateLimit,
        max_text_length: int,
    ) -> None:
        self._shared = shared
        self.rooms_supervisor = rooms
        """The rooms supervisor (simple_one_for_one)."""
        self.limiter = RateLimiter(rate)
        self.max_text_length = max_text_length
        self._rooms: KeyedChildren[str] = KeyedChildren(rooms)
        shared.rooms = self._rooms

    @property
    def history_size(self) -> int:
        """How many messages each room's history keeps."""
        return self._shared.history_size

    def active_rooms(self) -> set[str]:
        """Rooms with a running room actor in this process."""
        return self._rooms.keys()

    async def send(self, room: str, user_id: str, text: str) -> ChatMessage:
        """Validate, rate limit, and publish a message (its room's history keeps it).

        Returns:
            The message as published.

        Raises:
            InvalidIdentifierError: The room name or the user id breaks its rule.
            InvalidChatMessageError: The text is empty or too long.
            RateLimitedError: The user is over the rate limit; nothing was sent.
            RedisConnectionError: The history or the publish failed.
        """
        room_channel(room)
        check_user_id(user_id)
        check_text(text, self.max_text_length)
        self.limiter.take(user_id)
        message = ChatMessage(room=room, user_id=user_id, text=text, sent_at=time.time())
        await self._call(room, _Post(message))
        return message

    async def history(self, room: str, limit: int | None = None) -> list[ChatMessage]:
        """The room's last messages, oldest first (at most ``history_size``, or ``limit``).

        Raises:
            InvalidIdentifierError: The room name breaks the rule of room names.
        """
        read = await self.read(room, limit=limit)
        return [message for _, message in read.messages]

    async def read(
        self, room: str, *, since: Position | None = None, limit: int | None = None
    ) -> RoomHistory:
        """The room's history with positions: what came after ``since``, or the newest.

        Args:
            room: The room.
            since: The position of the last message the reader has (a reconnecting client's):
                the answer is exactly what came after it (``resumed``), unless the history
                cannot say (another epoch, or further back than it keeps, or than ``limit``):
                then the newest, to replace what the reader holds.
            limit: At most this many messages (default and most: ``history_size``).

        Raises:
            InvalidIdentifierError: The room name breaks the rule of room names.
            RedisConnectionError: The history could not be read.
        """
        room_channel(room)
        size = self._shared.history_size
        wanted = size if limit is None else max(0, min(limit, size))
        result = await self._call(room, _History(wanted, since))
        assert isinstance(result, RoomHistory)
        return result

    async def subscribe(
        self,
        room: str,
        handler: Callable[..., Awaitable[object]],
        *,
        recover: bool = False,
        on_recovery: Callable[[RecoveryEvent], Awaitable[object]] | None = None,
    ) -> SubscriptionHandle:
        """Call ``handler`` for every message published in a room (by any process).

        Args:
            room: The room.
            handler: ``async def handler(message)``, or ``(message, channel, position)`` for
                each message's position in the room's history.
            recover: Deliver every message once and in order across gaps, from the room's
                history (see ``PubSub.subscribe``).
            on_recovery: With ``recover``: told ``Recovered`` and ``Unrecoverable``.
        """
        return await self._shared.pubsub.subscribe(
            room_channel(room),
            handler,
            message_type=ChatMessage,
            sharded=CHAT_SHARDED,
            recover=recover,
            on_recovery=on_recovery,
        )

    async def _call(self, room: str, request: object) -> object:
        result = await self._rooms.ask(room, request)
        if isinstance(result, _Failed):
            raise result.error
        return result


@asynccontextmanager
async def open_chat_service(
    system: ActorSystem,
    pubsub: PubSub,
    *,
    history_size: int = DEFAULT_HISTORY_SIZE,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    rate: RateLimit | None = None,
    max_text_length: int = MAX_TEXT_LENGTH,
    history_ttl: float = DEFAULT_HISTORY_TTL,
) -> AsyncIterator[ChatService]:
    """Run chat rooms for the duration of a block.

    Args:
        system: The actor system the supervisors and room actors run in.
        pubsub: Where messages are published (``chat:{room}``).
        history_size: Messages kept per room and sent to joiners. Rooms keep their history in
            their channels' (``pubsub.keep_history("chat:*", ...)``), unless the ``PubSub``'s
            settings name the chat channels already: then those settings keep it.
        idle_timeout: Seconds without activity after which a room actor stops.
        rate: The per-user rate limit; default 5 messages per second, bursts of 10.
        max_text_length: The longest message text, in characters.
        history_ttl: Seconds a room's history lives after its last message (a week).

    Raises:
        ValueError: ``history_size`` is below 1 or ``idle_timeout`` is not positive.
    """
    if history_size < 1:
        raise ValueError(f"history_size must be at least 1: {history_size}")
    if not idle_timeout > 0:
        raise ValueError(f"idle_timeout must be positive: {idle_timeout}")
    if pubsub.history_rules.history_for(room_channel("lobby")) is None:
        pubsub.keep_history(CHAT_CHANNELS, chat_history(history_size, history_ttl))
    shared = _Shared(pubsub, history_size, idle_timeout)
    rooms_spec = SupervisorSpec(
        strategy=Strategy.SIMPLE_ONE_FOR_ONE,
        children=[ChildSpec(id="room", start=RoomActor, args=(shared,), restart=Restart.TRANSIENT)],
    )
    spec = SupervisorSpec(
        children=[
            ChildSpec(id=TIMERS_CHILD_ID, start=_run_timers, shutdown=0),
            ChildSpec(id=ROOMS_CHILD_ID, start=rooms_spec),
        ]
    )
    async with open_supervisor(system, spec) as chat:
        shared.timers = chat.child(TIMERS_CHILD_ID)
        rooms = Supervisor(chat.child(ROOMS_CHILD_ID))
        yield ChatService(shared, rooms, rate or RateLimit(), max_text_length)
